"""The benchmark's scales: which nise data each one is, and the static YAML of those `ocp-assets generate` lacks.

A scale is either one of `ocp-assets generate --scale`'s built-in ones (3 days) or a cluster of
ocp_assets.core.generate's Scale shape over another number of days; the YAML of the latter is the built-in
machinery's own text (``generate.scale_yaml``) with its dates moved, so nise draws nothing at random and the
payload is cached like any other. ``python scripts/benchmark_scales.py NAME`` prints a scale's YAML.
"""

import datetime as dt
import sys
from dataclasses import dataclass

from ocp_assets.core import generate as G

DAY_100K_PODS = G.Scale(pods=100_000, masters=3, infra=9, workers=467)  # about 214 pods a worker, like generate's 10m


@dataclass(frozen=True)
class BenchScale:
    name: str
    what: str  # one line for the table
    builtin: bool  # `ocp-assets generate --scale NAME`; otherwise --yaml with scale_yaml_text(NAME)
    days: int = 3
    cluster: G.Scale | None = None  # the cluster of a YAML scale

    @property
    def hourly_pod_rows(self) -> int:
        return (self.cluster or G.SCALES[self.name]).pods * 24 * self.days


SCALES = {
    "20k": BenchScale("20k", "278 pods x 3 days (CI smoke)", builtin=True),
    "100k": BenchScale("100k", "1,389 pods x 3 days", builtin=True),
    "1m": BenchScale("1m", "13,889 pods on 66 nodes x 3 days", builtin=True),
    "day100k": BenchScale(
        "day100k", "100,000 pods on 479 nodes, 1 day (the per-day peak)", builtin=False, days=1, cluster=DAY_100K_PODS
    ),
    "10m": BenchScale(
        "10m", "the 1m cluster over 30 days (a koku month)", builtin=False, days=30, cluster=G.SCALES["1m"]
    ),
}  # fmt: skip  (in order of hourly pod rows: the report's and the chart's order)
DEFAULT_SCALES = ("100k", "1m")


def scale_yaml_text(name: str) -> str:
    """The nise static YAML of a non-built-in scale: generate.scale_yaml's nodes and pods, dates and header moved."""
    scale = SCALES[name]
    if scale.builtin or scale.cluster is None:
        raise ValueError(f"{name} is a built-in scale of ocp-assets generate")
    registered = G.SCALES.get(name)
    G.SCALES[name] = scale.cluster  # scale_yaml reads its spec from this table; put back below
    try:
        text = G.scale_yaml(name)
    finally:
        if registered is None:
            del G.SCALES[name]
        else:
            G.SCALES[name] = registered
    end = dt.date.fromisoformat(G.START_DATE) + dt.timedelta(days=scale.days)  # nise's end date is exclusive
    text = text.replace(f"end_date: '{G.END_DATE}'", f"end_date: '{end.isoformat()}'")
    body = text.split("\nprofiles:", 1)[1]  # generate's header says 72 hours: replaced
    pods = scale.cluster.pods
    own_header = (
        f"# benchmark scale {name}: {pods} pods x {scale.days * 24} hours = {pods * scale.days * 24} hourly pod rows; "
        f"{scale.cluster.masters} masters,\n# {scale.cluster.infra} infra and {scale.cluster.workers} worker nodes. "
        "Built by scripts/benchmark_scales.py from ocp_assets.core.generate.scale_yaml."
    )
    return own_header + "\nprofiles:" + body


if __name__ == "__main__":
    sys.stdout.write(scale_yaml_text(sys.argv[1]))
