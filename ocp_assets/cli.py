"""The `ocp-assets` command line: one subcommand per `_register_*` function in COMMAND_REGISTRARS.

Each registrar adds its subparser and sets `run` to a handler taking the parsed arguments and returning the
exit code. Errors raised on purpose (OcpAssetsError) become one message on stderr and exit code 2.
"""

import argparse
import sys
from collections.abc import Callable

import psycopg

from ocp_assets.core.errors import OcpAssetsError
from ocp_assets.core.generate import SCALES, generate
from ocp_assets.core.ingest import DEFAULT_ACCOUNT, describe, ingest
from ocp_assets.core.storage import open_data_root
from ocp_assets.summary_commands import register_db, register_summarize

EXIT_ERROR = 2  # bad input or configuration: fix it and run again
EXIT_INFRASTRUCTURE = 1  # the database or storage failed: run again when it is back


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


def _run_ingest(args: argparse.Namespace) -> int:
    result = ingest(
        args.payload,
        open_data_root(args.out),
        account=args.account,
        source_uuid=args.source,
        cluster_id=args.cluster_id,
        cluster_alias=args.cluster_alias,
    )
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
    result = generate(
        open_data_root(args.out),
        scale=args.scale,
        yaml_path=args.yaml,
        cluster_id=args.cluster_id,
        account=args.account,
        source_uuid=args.source,
        cluster_alias=args.cluster_alias,
        cache_dir=args.cache_dir,
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocp-assets", description="koku OCP daily usage summary without Trino")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMAND_REGISTRARS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except OcpAssetsError as exc:
        print(f"ocp-assets: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except psycopg.Error as exc:
        # Infrastructure, not input (a lost connection, a restart, a full disk): one line, exit 1; nothing of the
        # day being written was committed. The message is PostgreSQL's, which never includes the DSN.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"ocp-assets: database error ({type(exc).__name__}): {first}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except OSError as exc:
        # Storage out of reach (S3 endpoint down, a disk gone): one line, exit 1.
        print(
            f"ocp-assets: storage error ({type(exc).__name__}): "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}",
            file=sys.stderr,
        )
        return EXIT_INFRASTRUCTURE


if __name__ == "__main__":
    sys.exit(main())
