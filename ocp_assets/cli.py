"""The `ocp-assets` command line: one subcommand per `_register_*` function in COMMAND_REGISTRARS.

Each registrar adds its subparser and sets `run` to a handler taking the parsed arguments and returning the
exit code. Every error ends the command with one line on stderr, `ocp-assets: <what> — <hint>`, and exit code 2
(bad input or configuration: OcpAssetsError) or 1 (PostgreSQL, storage, anything unexpected); `--verbose` adds
the traceback above it. A password of a DSN given on the command line or in OCP_ASSETS_DSN is never printed.
"""

import argparse
import sys
import traceback
from collections.abc import Callable
from typing import ClassVar

import psycopg

from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.generate import SCALES, generate
from ocp_assets.core.ingest import DEFAULT_ACCOUNT, describe, ingest
from ocp_assets.core.storage import open_data_root
from ocp_assets.progress import Progress
from ocp_assets.redaction import first_line, known_secrets, redact
from ocp_assets.summary_commands import register_db, register_summarize

EXIT_ERROR = 2  # bad input or configuration: fix it and run again
EXIT_INFRASTRUCTURE = 1  # the database or storage failed: run again when it is back
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
# postgresql://user:PASSWORD@host and password=PASSWORD (libpq's keyword form).


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DATA_ROOT", help="local directory or s3://bucket/prefix")
    parser.add_argument(
        "--account", default=DEFAULT_ACCOUNT, help=f"koku account key segment (default {DEFAULT_ACCOUNT})"
    )
    parser.add_argument(
        "--source", metavar="UUID", help="koku source (provider) uuid; default: derived from the cluster id"
    )
    parser.add_argument("--cluster-id", help="override the cluster id from the manifest or nise file names")
    parser.add_argument("--cluster-alias", help="display name recorded with the cluster")


def _register_ingest(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="convert an operator/nise CSV payload into koku's Parquet layout",
        description="PAYLOAD is a payload directory (manifest.json + CSVs, or nise --insights-upload output), "
        "a directory of nise CSVs, or one CSV file.",
    )
    parser.add_argument("payload", metavar="PAYLOAD")
    _add_cluster_options(parser)
    parser.set_defaults(run=_run_ingest)


class PhaseProgress:
    """The core's progress callbacks, (phase, done, total), shown as one Progress per phase."""

    PHASES: ClassVar[dict[str, tuple[str, str]]] = {
        "convert": ("ingest: converting CSVs", "files"),
        "write": ("ingest: writing Parquet", "objects"),
    }

    def __init__(self, nise_label: str = ""):
        self.nise_label = nise_label
        self.phase = ""
        self.current: Progress | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if total == 0:  # a step of unknown length (nise): said once, its time is printed when the command ends
            print(f"{phase}: running on {self.nise_label} (its payload is cached for the next time)", file=sys.stderr)
            return
        if phase != self.phase or self.current is None:
            self.close()
            label, unit = self.PHASES.get(phase, (phase, "steps"))
            self.phase, self.current = phase, Progress(label, total, unit)
        self.current.advance(done - self.current.done)

    def close(self, finished: bool = True) -> None:
        if self.current is not None:
            self.current.close(finished)
            self.current = None


def _run_ingest(args: argparse.Namespace) -> int:
    progress = PhaseProgress()
    try:
        result = ingest(
            args.payload,
            open_data_root(args.out),
            account=args.account,
            source_uuid=args.source,
            cluster_id=args.cluster_id,
            cluster_alias=args.cluster_alias,
            progress=progress,
        )
    except BaseException:
        progress.close(finished=False)
        raise
    progress.close()
    print("\n".join(describe(result)))
    return 0


def _register_generate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate OCP data with nise (cached) and ingest it",
        description="nise payloads are cached by YAML content and cluster id in --cache-dir "
        "(default $OCP_ASSETS_CACHE or ~/.cache/ocp_assets/nise).",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scale", choices=list(SCALES), help="built-in scale, in hourly pod rows over 3 days")
    what.add_argument("--yaml", metavar="FILE", help="a nise static report YAML")
    _add_cluster_options(parser)
    parser.add_argument("--cache-dir", metavar="DIR")
    parser.set_defaults(run=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    progress = PhaseProgress(nise_label=f"scale {args.scale}" if args.scale else args.yaml)
    try:
        result = generate(
            open_data_root(args.out),
            scale=args.scale,
            yaml_path=args.yaml,
            cluster_id=args.cluster_id,
            account=args.account,
            source_uuid=args.source,
            cluster_alias=args.cluster_alias,
            cache_dir=args.cache_dir,
            progress=progress,
        )
    except BaseException:
        progress.close(finished=False)
        raise
    progress.close()
    origin = "cached" if result.cache_hit else f"generated in {result.nise_seconds:.1f} s"
    print(f"nise payload ({origin}): {result.payload_dir}")
    print(f"ingested in {result.ingest_seconds:.1f} s")
    print("\n".join(describe(result.ingest)))
    return 0


COMMAND_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_ingest,
    _register_generate,
    register_db,
    register_summarize,
]


def _accept_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--verbose` before or after a (sub)command; SUPPRESS keeps a subcommand from resetting `ocp-assets -v CMD`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(
                    "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show an error's traceback"
                )
                _accept_verbose_everywhere(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocp-assets", description="koku OCP daily usage summary without Trino")
    parser.add_argument("-v", "--verbose", action="store_true", help="show an error's traceback")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMAND_REGISTRARS:
        register(subparsers)
    _accept_verbose_everywhere(parser)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def privilege_hint(message: str) -> str:
    """What to grant, from PostgreSQL's "permission denied for <kind> <name>" (docs/operations.md, Privileges)."""
    if message.startswith("must be owner of"):
        # Creating a month's partition (ATTACH) takes ownership of the partitioned table, not a grant.
        return (
            f"the user {message.removeprefix('must be')}: koku's summary tables must be owned by the user (or a role "
            "it is a member of) for the monthly partitions; see docs/operations.md, Privileges"
        )
    kind, _, name = message.partition("permission denied for ")[2].partition(" ")
    if kind == "database":
        return (
            f"the user needs CREATE on database {name} to create a schema: grant it, or create the schema first "
            "as a user who may (an existing schema needs no privilege on the database)"
        )
    if kind == "schema":
        return f"the user needs USAGE and CREATE on schema {name} (its tables and monthly partitions): grant them"
    if kind in ("table", "relation", "sequence"):
        return f"the user needs SELECT, INSERT, UPDATE and DELETE on {name} (and USAGE on its sequences): grant them"
    return "grant the user the privileges docs/operations.md lists (Privileges), then run again"


def _written_before(exc: BaseException) -> str:
    """What `summarize` committed before an infrastructure error ended it (its summaries commit one by one)."""
    said = getattr(exc, "written_before", "")
    return f" ({said})" if said else ""


def describe_error(exc: BaseException) -> tuple[str, str, int]:
    """(what happened, what to do, exit code) for an error ending a command."""
    if isinstance(exc, OcpAssetsError):
        hint = exc.hint or (
            "fix the named file, column or row (or the data that produced it) and run again"
            if isinstance(exc, InputDataError)
            else "see `ocp-assets COMMAND --help`"
        )
        return f"error: {exc}", hint, EXIT_ERROR
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        # Configuration, not infrastructure: running again changes nothing until the privilege is granted.
        first = first_line(exc)
        return f"database error ({type(exc).__name__}): {first}", privilege_hint(first), EXIT_ERROR
    if isinstance(exc, psycopg.Error):
        # Infrastructure, not input (a lost connection, a restart, a full disk): the summary being written was not
        # committed (summarize says before this what was). The message is PostgreSQL's, which never includes the DSN.
        first = first_line(exc)
        return (
            f"database error ({type(exc).__name__}): {first}",
            "run the same command again once PostgreSQL is back; the days not written keep their previous rows"
            + _written_before(exc),
            EXIT_INFRASTRUCTURE,
        )
    if isinstance(exc, OSError):
        # Storage out of reach (S3 endpoint down, a disk gone).
        first = first_line(exc)
        return (
            f"storage error ({type(exc).__name__}): {first}",
            "check the path or the S3 endpoint, bucket and credentials, then run again" + _written_before(exc),
            EXIT_INFRASTRUCTURE,
        )
    return (
        f"unexpected error ({type(exc).__name__}): {exc}",
        "this is a bug; run again with --verbose and report the traceback",
        EXIT_INFRASTRUCTURE,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(
            "\nocp-assets: interrupted — each summary of a day (usage, GPU) and each file is written whole or not at "
            "all; run the same command again",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as exc:
        what, hint, code = describe_error(exc)
        secrets = known_secrets(argv)
        if args.verbose:
            traceback_text = "".join(traceback.format_exception(exc))
            details = getattr(exc, "details", "")
            print(redact(traceback_text + (f"{details}\n" if details else ""), secrets), file=sys.stderr, end="")
        print(redact(f"ocp-assets: {_one_line(what)} — {hint}", secrets), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
