"""The arguments of `ocp-assets koku-sql` and `ocp-assets costs`, without their work's imports."""

import argparse

from ocp_assets.summary_arguments import DSN_ENV, deferred_command, iso_date


def register_koku_sql(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "koku-sql",
        help="run one of koku's OCP cost-model SQL files from Parquet (the call koku's accessor would send to Trino)",
        description="Insert exactly the rows koku's file FILE inserts for the parameter dict PARAMS.json (koku's "
        "jinjasql parameters as JSON), computed from koku's Parquet and the summary rows in PostgreSQL. Nothing is "
        "deleted: koku runs its deletes before the call.",
    )
    parser.add_argument("file", metavar="FILE", help="koku's file name, e.g. hourly_cost_virtual_machine.sql")
    parser.add_argument(
        "--params", required=True, metavar="PARAMS.json", help="koku's parameter dict as JSON ('-': stdin)"
    )
    parser.add_argument(
        "--data-root", required=True, help="local directory or s3://bucket/prefix holding koku's Parquet"
    )
    parser.add_argument("--account", help="account segment of the Parquet keys (default: the schema)")
    parser.add_argument("--dsn", help=f"PostgreSQL URL (default: ${DSN_ENV})")
    parser.add_argument("--schema", help="koku tenant schema (default: the parameter dict's schema)")
    parser.set_defaults(run=deferred_command("ocp_assets.cost_commands", "run_koku_sql"), writing_started=False)


def register_costs(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "costs",
        help="apply a source's cost model (VM, GPU, project tag costs) to its summary, without koku's workers",
        description="For every month piece of the range: koku's deletes, then koku's VM, GPU and project cost files "
        "in koku's order, then the month's GPU distribution, in one transaction per cluster-month. The cost model "
        "is read from koku's tables (cost_model, cost_model_map, price_list, ...). Run it after `summarize`.",
    )
    parser.add_argument(
        "--data-root", required=True, help="local directory or s3://bucket/prefix holding koku's Parquet"
    )
    parser.add_argument("--source", required=True, help="koku source (provider) uuid of the cluster")
    parser.add_argument("--account", help="account segment of the Parquet keys (default: the source's cluster record)")
    parser.add_argument("--start", type=iso_date, help="first day, YYYY-MM-DD (default: first summarised day)")
    parser.add_argument("--end", type=iso_date, help="last day, inclusive (default: last summarised day)")
    parser.add_argument(
        "--today", type=iso_date, help="the date koku's GPU distribution rule treats as today (default: today, UTC)"
    )
    parser.add_argument("--dsn", help=f"PostgreSQL URL (default: ${DSN_ENV})")
    parser.add_argument("--schema", help="koku tenant schema (default: the account)")
    parser.set_defaults(run=deferred_command("ocp_assets.cost_commands", "run_costs"), writing_started=False)
