"""The `ocp-assets` command line: one subcommand per `_register_*` function in COMMAND_REGISTRARS.

Each registrar adds its subparser and sets `run` to a handler taking the parsed arguments and returning the
exit code. Every error ends the command with one line on stderr, `ocp-assets: <what> — <hint>`, and exit code 2
(bad input or configuration: OcpAssetsError) or 1 (PostgreSQL unreachable or lost, storage, anything unexpected);
`--verbose` adds the traceback above it. No piece of a DSN's password is ever printed (redaction.py). Results go to
stdout, whose failure (`| head`, a full disk) never changes what the command writes.
"""

import argparse
import io
import os
import sys
import traceback
from collections.abc import Callable
from typing import ClassVar

# Only light modules here: the command's own (pyarrow, pandas, psycopg, pandera: about a second) are imported inside
# main's try, so that Ctrl-C while they load is the one-line interruption, not a traceback.
from ocp_assets.core.errors import DatabaseUnreachable, InputDataError, OcpAssetsError
from ocp_assets.progress import Progress
from ocp_assets.redaction import first_line, known_dsns, redact

EXIT_ERROR = 2  # bad input or configuration: fix it and run again
EXIT_INFRASTRUCTURE = 1  # the database or storage failed: run again when it is back
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    from ocp_assets.core.scales import DEFAULT_ACCOUNT

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
    from ocp_assets.core.ingest import describe, ingest
    from ocp_assets.core.storage import open_data_root

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
    from ocp_assets.core.scales import SCALES

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
    from ocp_assets.core.generate import generate
    from ocp_assets.core.ingest import describe
    from ocp_assets.core.storage import open_data_root

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


def _command_registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    from ocp_assets.cost_arguments import register_costs, register_koku_sql
    from ocp_assets.summary_arguments import register_db, register_summarize

    return [_register_ingest, _register_generate, register_db, register_summarize, register_costs, register_koku_sql]


def _accept_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--verbose` before or after a (sub)command; SUPPRESS keeps a subcommand from resetting `ocp-assets -v CMD`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(
                    "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show an error's traceback"
                )
                _accept_verbose_everywhere(command)


class RedactingParser(argparse.ArgumentParser):
    """argparse quotes the arguments it refuses (`unrecognized arguments: --dns postgresql://u:pw@db`): masked."""

    def error(self, message: str):
        super().error(redact(message))


def build_parser() -> argparse.ArgumentParser:
    parser = RedactingParser(prog="ocp-assets", description="koku OCP daily usage summary without Trino")
    parser.add_argument("-v", "--verbose", action="store_true", help="show an error's traceback")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _command_registrars():
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


# Tables, columns or the schema missing or of another version: configuration, fixed by --schema or `db init`.
SCHEMA_MISMATCH_SQLSTATES = {"42P01", "42703", "3F000", "42704", "42883"}
INVALID_NAME_SQLSTATE = "42602"  # e.g. a --schema PostgreSQL cannot read as a name


def describe_error(exc: BaseException) -> tuple[str, str, int]:
    """(what happened, what to do, exit code) for an error ending a command."""
    import psycopg

    if isinstance(exc, OcpAssetsError):
        hint = exc.hint or (
            "fix the named file, column or row (or the data that produced it) and run again"
            if isinstance(exc, InputDataError)
            else "see `ocp-assets COMMAND --help`"
        )
        return f"error: {exc}", hint, EXIT_INFRASTRUCTURE if isinstance(exc, DatabaseUnreachable) else EXIT_ERROR
    if isinstance(exc, psycopg.Error):
        return _describe_database_error(exc)
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


def _describe_database_error(exc) -> tuple[str, str, int]:
    """Only a lost or unready server is "run again once PostgreSQL is back"; a missing privilege or table is
    configuration (exit 2), any other refused statement a bug. PostgreSQL's messages never include the DSN."""
    import psycopg

    what = f"database error ({type(exc).__name__}): {first_line(exc)}"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        # Running again changes nothing until the privilege is granted.
        return what, privilege_hint(first_line(exc)), EXIT_ERROR
    if getattr(exc, "sqlstate", None) in SCHEMA_MISMATCH_SQLSTATES:
        return (
            what,
            "the schema lacks a table or column ocp_assets writes: check --schema, or create koku's tables with "
            "`ocp-assets db init --schema SCHEMA`, then run again" + _written_before(exc),
            EXIT_ERROR,
        )
    if getattr(exc, "sqlstate", None) == INVALID_NAME_SQLSTATE:
        return what, "a name given (--schema) is not one PostgreSQL accepts: correct it and run again", EXIT_ERROR
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        # A lost connection, a restart, a full disk: the summary being written was not committed (summarize says
        # before this what was).
        return (
            what,
            "run the same command again once PostgreSQL is back; the days not written keep their previous rows"
            + _written_before(exc),
            EXIT_INFRASTRUCTURE,
        )
    return (
        what,
        "PostgreSQL refused a statement of ocp_assets: this is a bug; run again with --verbose and report the "
        "traceback; the days not written keep their previous rows" + _written_before(exc),
        EXIT_INFRASTRUCTURE,
    )


class ResultsOutput:
    """stdout for a command's results, whose fate never decides the work's: a reader gone (`| head`) or a full
    disk loses the results from then on, the work goes on and is written; main says so at the end."""

    def __init__(self, stream):
        self.stream = stream
        self.lost: OSError | None = None

    def write(self, text: str) -> int:
        if self.lost is None:
            try:
                self.stream.write(text)
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        self.lost = exc
        # The bytes still buffered would fail again when Python flushes stdout at exit (a second error message):
        # the descriptor now points at /dev/null.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file (a test's capture): nothing is flushed at exit

    def __getattr__(self, name: str):
        return getattr(self.stream, name)  # encoding, isatty, fileno...: the real stdout's


def _lost_output_line(lost: OSError) -> str:
    """A full stdout is said (the results are gone); a reader that stopped reading (`| head`) wanted no more."""
    return (
        f"ocp-assets: error: the results could not be written to stdout ({lost.strerror or type(lost).__name__}) — "
        "the command did its work regardless (what it wrote stands, as its exit status says); give stdout room or "
        "send it elsewhere to see them"
    )


def _interrupted_line(exc: KeyboardInterrupt, args: argparse.Namespace | None) -> str:
    if args is None or not getattr(args, "writing_started", True):
        return "ocp-assets: interrupted before anything was written — run the same command again"
    said = getattr(exc, "written_before", "")
    return (
        f"ocp-assets: interrupted{f' ({said})' if said else ''} — each summary of a day (usage, GPU) and each file "
        "is written whole or not at all; run the same command again"
    )


def _report_error(exc: Exception, argv: list[str], verbose: bool) -> int:
    what, hint, code = describe_error(exc)
    dsns = known_dsns(argv)
    if verbose:
        traceback_text = "".join(traceback.format_exception(exc))
        details = getattr(exc, "details", "")
        print(redact(traceback_text + (f"{details}\n" if details else ""), dsns), file=sys.stderr, end="")
    print(redact(f"ocp-assets: {_one_line(what)} — {hint}", dsns), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    output = sys.stdout = ResultsOutput(sys.stdout)
    args = None
    try:
        args = build_parser().parse_args(argv)
        code = args.run(args)
    except SystemExit as exc:  # argparse's end: --help (its text, like results, may meet a full stdout) or usage
        code = exc.code if isinstance(exc.code, int) else EXIT_ERROR if exc.code else 0
    except KeyboardInterrupt as exc:
        # On a terminal the line starts below the ^C the terminal echoed.
        print(("\n" if sys.stderr.isatty() else "") + _interrupted_line(exc, args), file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as exc:
        code = _report_error(exc, argv, bool(getattr(args, "verbose", False)))
    finally:
        output.flush()
        sys.stdout = output.stream
    if output.lost is not None and not isinstance(output.lost, BrokenPipeError):
        print(_lost_output_line(output.lost), file=sys.stderr)
        code = code or EXIT_INFRASTRUCTURE
    return code


if __name__ == "__main__":
    sys.exit(main())
