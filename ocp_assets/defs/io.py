"""Parquet IO manager for the intermediate assets: one Parquet object per (asset, partition key), never pickled.

Asset values are ``dict[partition_key, pyarrow.Table]`` for every step, single-partition or range, so a range
run writes (and a downstream range step reads) one object per partition. Objects live below a local
directory or an s3://bucket/prefix (pyarrow's filesystem layer, the same DataRoot the engine reads koku's
Parquet with) and are overwritten in place; a local write goes to a temporary name and is renamed.
"""

import json

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from ocp_assets.core.storage import DataRoot, open_data_root
from ocp_assets.defs.partitions import key_path

IO_ROOT_ENV = "OCP_ASSETS_IO_ROOT"
FILES_METADATA_KEY = b"ocp_assets.files"  # the koku files a table was read from, to name them in later errors


def object_key(asset_path: list[str], partition: str) -> str:
    return "/".join(asset_path) + "/" + key_path(partition) + ".parquet"


def with_files(table: pa.Table, files: list[str], paths: list[str]) -> pa.Table:
    metadata = dict(table.schema.metadata or {})
    metadata[FILES_METADATA_KEY] = json.dumps({"files": files, "paths": paths}).encode()
    return table.replace_schema_metadata(metadata)


def files_of(table: pa.Table) -> tuple[list[str], list[str]]:
    raw = (table.schema.metadata or {}).get(FILES_METADATA_KEY)
    if not raw:
        return [], []
    parsed = json.loads(raw)
    return parsed["files"], parsed["paths"]


class ParquetPartitionIOManager(dg.ConfigurableIOManager):
    """Stores dict[partition_key, pa.Table] values as <root>/<asset key>/cluster=<id>/day=<YYYY-MM-DD>.parquet."""

    root_uri: str = Field(description="local directory or s3://bucket/prefix for intermediate tables (env OCP_ASSETS_IO_ROOT)")

    def _root(self) -> DataRoot:
        return open_data_root(self.root_uri)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected dict[partition_key, pyarrow.Table], got {type(obj).__name__}")
        root = self._root()
        expected = set(context.asset_partition_keys) if context.has_asset_partitions else set()
        missing = expected - set(obj)
        if missing:
            raise ValueError(f"{context.asset_key.to_user_string()}: no table for partitions {sorted(missing)}")
        rows = 0
        for partition, table in obj.items():
            if not isinstance(table, pa.Table):
                raise TypeError(f"{context.asset_key.to_user_string()}[{partition}]: expected pyarrow.Table, got {type(table).__name__}")
            root.write_parquet(object_key(context.asset_key.path, partition), table)
            rows += table.num_rows
        context.add_output_metadata({"io/objects": len(obj), "io/rows": rows, "io/root": self.root_uri})

    def load_input(self, context: dg.InputContext) -> dict[str, pa.Table]:
        root = self._root()
        asset_key = context.asset_key
        out: dict[str, pa.Table] = {}
        for partition in context.asset_partition_keys:
            key = object_key(asset_key.path, partition)
            path = root.path(key)
            try:
                out[partition] = pq.read_table(root.fs.open_input_file(path))
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} has no stored table for partition {partition} ({root.display(key)}); "
                    "materialize it first"
                ) from None
        return out
