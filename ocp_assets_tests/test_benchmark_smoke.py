"""scripts/benchmark.py on its smallest scale, once: its report written, the peers' rows equal ours (its own check)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# The 20k scale: 278 pods, one row per pod and hour, over the 3 days (72 hours) of ocp_assets.core.generate's scales.
SMALLEST_SCALE_HOURLY_POD_ROWS = 278 * 72


def test_benchmark_on_the_smallest_scale_writes_its_report_and_checks_the_peers(dsn, tmp_path):
    schema = f"bench_smoke_{uuid.uuid4().hex[:8]}"
    out = tmp_path / "report"
    command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--scale", "20k", "--repeat", "1"]
    command += ["--dsn", dsn, "--schema", schema, "--out-dir", str(out), "--data-dir", str(tmp_path / "data")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in (schema, f"{schema}_duckdb"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    assert done.returncode == 0, done.stderr[-4000:]

    result = json.loads((out / "latest.json").read_text())
    (scale,) = result["scales"]
    assert scale["scale"] == "20k"
    assert scale["hourly_pod_rows"] == SMALLEST_SCALE_HOURLY_POD_ROWS
    assert scale["days"] == 3
    assert set(scale["measures"]) == {"summarize", "duckdb", "koku-sql", "ingest", "help"}
    assert all(len(figures["runs"]) == 1 for figures in scale["measures"].values())
    assert scale["checks"]["duckdb_rows_equal_ours"], scale["checks"]["duckdb_differences"]
    assert scale["checks"]["koku_sql_rows_equal_ours"], scale["checks"]["koku_sql_differences"]
    assert result["machine"]["cores"] >= 1 and result["git"]["commit"]

    table = (out / "latest.md").read_text()
    assert "| `ocp-assets summarize` |" in table and "| DuckDB, then COPY |" in table
    assert "DuckDB's rows equal ours" in table
    assert (out / "latest.svg").read_text().startswith("<svg")
    assert "| `ocp-assets summarize` |" in done.stdout  # the table goes to stdout too
