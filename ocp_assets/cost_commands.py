"""The CLI's cost-model commands: `koku-sql` (one koku file call, for koku's accessor) and `costs` (a source's
cost model over a range, without koku's workers). Both write through core/costs/month.py."""

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from psycopg import sql

from ocp_assets.core.costs import month as cost_month
from ocp_assets.core.costs.checks import COST_CHECK_DESCRIPTIONS
from ocp_assets.core.costs.facts import month_facts, month_status
from ocp_assets.core.database import connect
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.ingest import key_segment_problem, read_cluster_registry
from ocp_assets.core.outcomes import blocks
from ocp_assets.core.pgschema import SUMMARY_TABLE, require_schema
from ocp_assets.core.storage import absence, open_data_root
from ocp_assets.summary_commands import checked_source, dsn_of

COST_COLUMNS = ("cost_model_cpu_cost", "cost_model_gpu_cost", "distributed_cost")


def _read_params(path: str) -> dict:
    where = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read --params {where}: {exc.strerror}").with_hint(
            "pass the path of a JSON file holding koku's parameter dict"
        ) from None
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"--params {where} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ).with_hint('koku\'s parameter dict as a JSON object, e.g. {"start_date": "2026-10-01", ...}') from None
    if not isinstance(params, dict):
        raise ConfigurationError(f"--params {where} is not a JSON object").with_hint("koku's parameter dict")
    return params


def _data_root(text: str):
    root = open_data_root(text)
    if not root.exists():
        raise ConfigurationError(absence(root.uri)).with_hint("check --data-root (a directory, or s3://BUCKET/PREFIX)")
    return root


def _totals(rows) -> str:
    parts = []
    for column in COST_COLUMNS:
        if column in rows.column_names:
            values = [v for v in rows[column].to_pylist() if v is not None]
            parts.append(f"{column} {sum(float(v) for v in values):,.6f}")
    return ", ".join(parts)


def run_koku_sql(args: argparse.Namespace) -> int:
    params = _read_params(args.params)
    schema = args.schema or params.get("schema")
    if not schema:
        raise ConfigurationError("no schema: the parameter dict has none and --schema is not given").with_hint(
            "pass --schema, e.g. org1234567"
        )
    account = args.account or schema
    if problem := key_segment_problem(account):
        raise ConfigurationError(f"--account {account!r} {problem}").with_hint("pass the Parquet keys' account")
    root = _data_root(args.data_root)
    with connect(dsn_of(args)) as conn:
        require_schema(conn, schema)
        args.writing_started = True
        done = cost_month.run_one_call(conn, schema, root, account, args.file, params)
    target = done.tmp_table or SUMMARY_TABLE
    line = f"{done.file}: {done.rows.num_rows} rows inserted into {schema}.{target}"
    totals = _totals(done.rows) if done.tmp_table is None else ""
    print(line + (f" ({totals})" if totals else ""))
    return 0


def _account_of(args: argparse.Namespace, root, source: str) -> str:
    if args.account:
        return args.account
    records = [c for c in read_cluster_registry(root, lambda bad: None) if c.source_uuid == source]
    if not records:
        raise ConfigurationError(f"no cluster record of source {source} under {args.data_root}").with_hint(
            "pass --account (the Parquet keys' account segment)"
        )
    return records[0].account


def _summarised_range(conn, schema: str, source: str) -> tuple[dt.date, dt.date]:
    found = conn.execute(
        sql.SQL(
            "SELECT min(usage_start), max(usage_start) FROM {}.{} WHERE source_uuid = %s::uuid"
            " AND cost_model_rate_type IS NULL"
        ).format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)),
        (source,),
    ).fetchone()
    if found is None or found[0] is None:
        raise ConfigurationError(f"source {source} has no summary rows in schema {schema}").with_hint(
            "run `ocp-assets summarize` for it first, or pass --start and --end"
        )
    return found[0], found[1]


def run_costs(args: argparse.Namespace) -> int:
    """Each cluster-month in its own transaction; a month whose checks fail keeps its previous rows (exit 2)."""
    source = checked_source(args.source)
    if args.start and args.end and args.start > args.end:
        raise ConfigurationError(f"--start {args.start} is after --end {args.end}; nothing was written").with_hint(
            "pass a --start on or before --end"
        )
    root = _data_root(args.data_root)
    account = _account_of(args, root, source)
    schema = args.schema or account
    today = args.today or dt.datetime.now(dt.UTC).date()
    failed = []
    with connect(dsn_of(args)) as conn:
        require_schema(conn, schema)
        start, end = args.start, args.end
        if start is None or end is None:
            first, last = _summarised_range(conn, schema, source)
            start, end = start or first, end or last
        args.writing_started = True
        run = cost_month.CostRun(conn, schema, root, account, source, today)
        for first, last in cost_month.month_pieces(start, end):
            replaced = run.month(first, last)
            print(_month_line(replaced))
            failed += [f"{first:%Y-%m}: {name}" for name, o in replaced.checks.items() if blocks(name, o)]
    if failed:
        for failure in failed:
            name = failure.split(": ", 1)[1]
            print(f"ocp-assets: error: {failure} failed — {COST_CHECK_DESCRIPTIONS[name]}", file=sys.stderr)
        return 2
    return 0


def _month_line(replaced) -> str:
    """One line per cluster-month: what was written, per file, and the cost per cost type, or why nothing was."""
    done = replaced.written
    span = f"{done.first}..{done.last}"
    status = month_status(done)
    if status != "costed":
        return f"{span}: {status}"
    facts = month_facts(done)
    files = ", ".join(f"{name} {values['rows']:g}" for name, values in facts.files.items()) or "no cost rows"
    costs = ", ".join(f"{kind} {cost:,.6f}" for kind, cost in sorted(facts.cost_by_type.items()))
    state = "committed" if replaced.committed else "rolled back (a check failed)"
    return f"{span}: {files}; {costs or 'no cost'}; {facts.deleted} old rows deleted; {state}"
