"""The shipped nise scales and the default account: plain values, so the command line's parser (`--help`) names them
without importing the ingest's Arrow machinery."""

from dataclasses import dataclass

DEFAULT_ACCOUNT = "10001"  # the account segment of the Parquet keys when none is given


@dataclass(frozen=True)
class Scale:
    pods: int
    masters: int
    infra: int
    workers: int
    # Sized so the workers' pods use about 60 % of their CPU (and 40 % of their memory): a worker holds
    # (pods - platform pods) / workers application pods at 0.31 cores and 0.79 GiB each (a full round of
    # APP_DEPLOYMENTS: 6.24 cores and 15.7 GiB for 20 pods).
    worker_cores: int = 128


# pods x 72 hours ~ the scale's name in hourly pod rows (1m: 13,889 pods on 66 nodes, like contract 7's run).
SCALES = {
    "20k": Scale(pods=278, masters=3, infra=2, workers=2, worker_cores=64),  # 128 application pods a worker
    "100k": Scale(pods=1389, masters=3, infra=2, workers=5),
    "1m": Scale(pods=13889, masters=3, infra=3, workers=60),
    "10m": Scale(pods=138889, masters=3, infra=9, workers=648),
}
