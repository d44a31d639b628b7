"""The benchmark's report: the machine and versions it ran with, a markdown table, the JSON, an SVG chart.

The chart is drawn here as plain SVG (no plotting library): whole-process seconds and peak RSS of each process
against the scales measured, one line per process. ``python scripts/benchmark_report.py NAME.json`` writes NAME.md
and NAME.svg again from the JSON (after a change to this module, without measuring again).
"""

import datetime as dt
import html
import json
import math
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The parts of each measure's process, as its runs report them (seconds), in the order shown.
PARTS = {
    "summarize": ("imports", "command"),
    "duckdb": ("imports", "query", "write"),
    "koku-sql": ("imports", "load", "sql"),
    "ingest": ("imports", "command"),
    "help": (),
}
PART_NAMES = {"command": "work", "sql": "SQL"}
SHORT_TITLES = {
    "summarize": "ocp-assets summarize",
    "duckdb": "DuckDB + COPY",
    "koku-sql": "koku's SQL (port)",
    "ingest": "ocp-assets ingest",
}
TITLES = {
    "summarize": "`ocp-assets summarize`",
    "duckdb": "DuckDB, then COPY",
    "koku-sql": "koku's SQL (port) in PostgreSQL",
    "ingest": "`ocp-assets ingest` (CSV to Parquet)",
    "help": "`ocp-assets --help`",
}
COLOURS = {"summarize": "#1f77b4", "duckdb": "#ff7f0e", "koku-sql": "#2ca02c", "ingest": "#9467bd"}
PACKAGES = ("ocp_assets", "pyarrow", "pandas", "pandera", "psycopg", "duckdb", "dagster", "koku-nise")


# ------------------------------------------------------------------ context
def context(dsn: str) -> dict:
    """Where and with what the benchmark runs: machine, versions, commit, date, load."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"python": platform.python_version(), **package_versions(), "postgresql": server_version(dsn)},
        "git": git_state(),
        "load_average_before": os.getloadavg(),
    }


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    memory_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(memory_kb / 1024**2, 1),
        "system": platform.platform(),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def package_versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def server_version(dsn: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # the report still says what it can
        return None


def git_state() -> dict:
    def git(*arguments: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *arguments], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(git("status", "--porcelain"))}


# ------------------------------------------------------------------ files
def write(result: dict, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    result["scales"].sort(key=lambda s: s.get("hourly_pod_rows", 0))
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md"]
    paths[0].write_text(json.dumps(result, indent=2) + "\n")
    chart = out_dir / f"{name}.svg" if any("measures" in s for s in result["scales"]) else None
    paths[1].write_text(markdown(result, chart=chart.name if chart else None) + "\n")
    if chart:
        chart.write_text(svg(result))
        paths.append(chart)
    return paths


def all_passed(result: dict) -> bool:
    checks = [v for s in result["scales"] for k, v in s.get("checks", {}).items() if k.endswith("equal_ours")]
    dagster = [r["all_succeeded"] and r["rows_differing_from_engine"] == 0 for s in result["scales"]
               for r in s.get("dagster", [])]  # fmt: skip
    return all(checks + dagster)


# ------------------------------------------------------------------ markdown
def _spread(figure: dict, digits: int = 2) -> str:
    return f"{figure['median']:.{digits}f} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f})"


def _rate(figure: dict) -> str:
    return f"{figure['median'] / 1000:,.0f}K"


def markdown(result: dict, chart: str | None = None) -> str:
    lines = [f"# Benchmark, {result['date'][:10]}", "", *_context_lines(result), ""]
    measured = [s for s in result["scales"] if "measures" in s]
    if measured:
        lines += [
            "| scale | process | whole process, s | of which, s (medians) | peak RSS, MB | hourly pod rows/s | "
            "time ÷ DuckDB's |",
            "|---|---|---|---|---|---|---|",
        ]
        for scale in measured:
            lines += _scale_rows(scale)
        lines += ["", *_check_lines(measured)]
    help_figures = [s["measures"]["help"] for s in measured if "help" in s["measures"]]
    if help_figures:
        figure = help_figures[0]
        lines.append(
            f"`ocp-assets --help` (the start-up every command pays): {_spread(figure['whole'])} s, "
            f"{figure['peak_rss_mb']['median']:.0f} MB."
        )
    if chart and measured:
        lines += ["", f"![time and memory against scale]({chart})"]
    lines += _dagster_lines(result)
    lines += _ui_lines(result.get("ui"))
    return "\n".join(lines)


def _context_lines(result: dict) -> list[str]:
    m, v, g = result["machine"], result["versions"], result["git"]
    load = "/".join(f"{x:.1f}" for x in result["load_average_before"])
    after = result.get("load_average_after")
    load += f" before, {'/'.join(f'{x:.1f}' for x in after)} after" if after else ""
    versions = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    commit = g["commit"][:10] + (" with uncommitted changes" if g["uncommitted_changes"] else "")
    return [
        f"Machine: {m['cpu']}, {m['usable_cores']} cores, {m['ram_gb']} GB RAM; load average (1/5/15 min) {load}.",
        f"Versions: {versions}. Commit {commit}.",
        "Each process ran the number of times its scale says, the processes alternating, each a fresh process "
        "(load: the 1-minute load average before and after the scale); figures are medians (min-max). Peak RSS: the "
        "largest process of its tree (PostgreSQL's server not counted). Time over DuckDB's: per repetition.",
    ]


def _scale_rows(scale: dict) -> list[str]:
    rows = []
    label = f"**{scale['scale']}**: {scale['what']}, {scale['hourly_pod_rows']:,} hourly pod rows"
    if "repetitions" in scale:
        load = "/".join(f"{x:.1f}" for x in scale["load_before"][:1] + scale["load_after"][:1])
        label += f" ({scale['repetitions']} runs each, load {load})"
    if scale.get("enabled_keys"):
        label += f", keys {', '.join(scale['enabled_keys'])}"
    for measure, figures in scale["measures"].items():
        if measure == "help":
            continue
        parts = ", ".join(f"{PART_NAMES.get(p, p)} {figures[p]['median']:.2f}" for p in PARTS[measure] if p in figures)
        ratio = scale["ratios_to_duckdb"].get(measure)
        ratio_text = "1" if measure == "duckdb" else (_spread(ratio) if ratio else "")
        rows.append(
            f"| {label} | {TITLES[measure]} | {_spread(figures['whole'])} | {parts} | "
            f"{figures['peak_rss_mb']['median']:.0f} | {_rate(figures['hourly_pod_rows_per_second'])} | {ratio_text} |"
        )
        label = ""
    return rows


def _check_lines(scales: list[dict]) -> list[str]:
    lines = []
    for scale in scales:
        checks = scale.get("checks", {})
        for key, peer in (("duckdb_rows_equal_ours", "DuckDB's"), ("koku_sql_rows_equal_ours", "the koku SQL port's")):
            if key in checks:
                outcome = (
                    "equal ours"
                    if checks[key]
                    else "DIFFER from ours: " + "; ".join(checks[key.replace("rows_equal_ours", "differences")][:3])
                )
                lines.append(f"- {scale['scale']}: {peer} rows {outcome} (relative 1e-9).")
    return lines + ([""] if lines else [])


def _dagster_lines(result: dict) -> list[str]:
    lines = []
    for scale in result["scales"]:
        for report in scale.get("dagster", []):
            if not lines:
                lines = ["", "## One Dagster run over the scale's days", "",
                         "| scale | variant | partitions | run wall, s | before the first step, s | largest step "
                         "process, MB | rows differing from the engine's |",
                         "|---|---|---|---|---|---|---|"]  # fmt: skip
            lines.append(
                f"| {scale['scale']} | {report['variant']} | {report['partitions']} | "
                f"{_spread(report['wall_seconds'])} | {_spread(report['before_first_step_seconds'])} | "
                f"{report['peak_step_rss_mb_median']:.0f} | {report['rows_differing_from_engine']} |"
            )
    return lines


def _ui_lines(ui: dict | None) -> list[str]:
    if not ui:
        return []
    if "failed" in ui:
        return ["", f"dagster dev timings: {ui['failed']}"]
    names = {
        "sensor": "sensor first pass, 2 clusters x 31 days",
        "backfill": "30-day backfill, launch to last check",
        "rewrite": "rewritten file to its new rows",
        "process_mb": "peak RSS of one process, MB",
        "tree_mb": "whole dagster dev tree, PSS, MB",
    }
    lines = ["", "## dagster dev (scripts/benchmark_ui.py)", "", "| what | median (min-max) |", "|---|---|"]
    for key, text in names.items():
        values = ui.get(key) or []
        if values:
            lines.append(f"| {text} | {sorted(values)[len(values) // 2]:.1f} ({min(values):.1f}-{max(values):.1f}) |")
    return lines


# ------------------------------------------------------------------ chart
WIDTH, HEIGHT, PANEL, MARGIN = 940, 360, 400, 60


def svg(result: dict) -> str:
    """Two panels: whole-process seconds and peak RSS (MB) per process against the scales, medians."""
    scales = [s for s in result["scales"] if "measures" in s]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for index, (key, title) in enumerate((("whole", "whole process, seconds"), ("peak_rss_mb", "peak RSS, MB"))):
        parts += _panel(scales, key, title, x0=MARGIN + index * (PANEL + MARGIN))
    parts += _legend(scales)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(scales: list[dict], key: str, title: str, x0: float) -> list[str]:
    top, bottom = 40, HEIGHT - 70
    series = {
        m: [(i, s["measures"][m][key]["median"]) for i, s in enumerate(scales) if m in s["measures"]] for m in COLOURS
    }
    tick, ticks = nice_ticks(max([v for points in series.values() for _, v in points] or [1.0]))
    peak = tick * ticks
    step = PANEL / max(1, len(scales))

    def x(i: float) -> float:
        return x0 + step * (i + 0.5)

    def y(v: float) -> float:
        return bottom - (bottom - top) * v / peak

    out = [f'<text x="{x0}" y="{top - 15}" font-weight="bold">{html.escape(title)}</text>']
    for index in range(ticks + 1):
        value = tick * index
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>')
        label = f"{value:,.{0 if tick >= 1 else 1}f}"
        out.append(f'<text x="{x0 - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{label}</text>')
    for i, scale in enumerate(scales):
        out.append(f'<text x="{x(i):.1f}" y="{bottom + 18}" text-anchor="middle">{html.escape(scale["scale"])}</text>')
        out.append(
            f'<text x="{x(i):.1f}" y="{bottom + 32}" text-anchor="middle" fill="#666">'
            f"{scale['hourly_pod_rows'] / 1e6:.2f}M rows</text>"
        )
    for measure, points in series.items():
        if not points:
            continue
        colour = COLOURS[measure]
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"/>' for i, v in points]
    return out


def nice_ticks(peak: float) -> tuple[float, int]:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) and how many of them reach past peak (4 to 8)."""
    magnitude = 10 ** math.floor(math.log10(peak / 4)) if peak > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if peak / step <= 7:
            return step, math.floor(peak / step) + 1
    return 10 * magnitude, math.floor(peak / (10 * magnitude)) + 1


def _legend(scales: list[dict]) -> list[str]:
    present = [m for m in COLOURS if any(m in s["measures"] for s in scales)]
    out = []
    for index, measure in enumerate(present):
        x = MARGIN + index * 200
        out.append(f'<rect x="{x}" y="{HEIGHT - 22}" width="14" height="4" fill="{COLOURS[measure]}"/>')
        label = SHORT_TITLES[measure]
        out.append(f'<text x="{x + 20}" y="{HEIGHT - 16}">{html.escape(label)}</text>')
    return out


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1])
    print("wrote", *write(json.loads(source.read_text()), source.parent, source.stem))
