"""A data root (local directory or s3://bucket/prefix) seen through pyarrow's filesystem layer.

Local writes go to a temporary name and are renamed into place, so a reader never sees a half-written
file; an S3 PUT is already all-or-nothing.
"""

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ocp_assets.core.errors import ConfigurationError

S3_ENDPOINT_ENV = ("OCP_ASSETS_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def s3_endpoint() -> str | None:
    for name in S3_ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def s3_filesystem() -> pafs.S3FileSystem:
    endpoint = s3_endpoint()
    kwargs = {"region": os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "http"
    # Credentials come from the AWS SDK's standard chain (environment with AWS_SESSION_TOKEN, profiles, web identity
    # for IRSA, instance metadata): passing key and secret explicitly would drop a session token.
    return pafs.S3FileSystem(**kwargs)


@dataclass(frozen=True)
class DataRoot:
    """Where koku-layout objects live; keys are '/'-separated and relative to the root."""

    uri: str
    fs: pafs.FileSystem
    base: str

    @property
    def is_s3(self) -> bool:
        return isinstance(self.fs, pafs.S3FileSystem)

    def path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def display(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    def list_files(self, prefix: str, suffix: str = ".parquet") -> list[pafs.FileInfo]:
        """Files below prefix (recursively), sorted by path; an absent prefix gives no files.

        Names starting with "." or "_" are not data, as for Hive and Trino (which koku uses): temporary files of a
        writer (ours are ``.tmp-…``), ``_SUCCESS`` markers and the like are never read.
        """
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        infos = [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        return sorted(
            (i for i in infos if i.path.endswith(suffix) and not i.base_name.startswith((".", "_"))),
            key=lambda i: i.path,
        )

    def key_of(self, path: str) -> str:
        return path[len(self.base) + 1 :] if self.base else path

    def write_parquet(self, key: str, table: pa.Table) -> None:
        target = self.path(key)
        if self.is_s3:
            pq.write_table(table, target, filesystem=self.fs)
            return
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        temporary = os.path.join(directory, f".tmp-{uuid.uuid4().hex}-{os.path.basename(target)}")
        try:
            pq.write_table(table, temporary)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)

    def write_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        if self.is_s3:
            with self.fs.open_output_stream(target) as out:
                out.write(data)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, target)

    def read_bytes(self, key: str) -> bytes | None:
        info = self.fs.get_file_info(self.path(key))
        if info.type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(self.path(key)) as stream:
            return stream.read()

    def delete(self, key: str) -> None:
        info = self.fs.get_file_info(self.path(key))
        if info.type == pafs.FileType.File:
            self.fs.delete_file(self.path(key))


def open_data_root(uri: str) -> DataRoot:
    """A DataRoot for a local path or an s3://bucket/prefix URI (endpoint: OCP_ASSETS_S3_ENDPOINT or "
    "AWS_ENDPOINT_URL)."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigurationError(f"data root {uri!r} names no bucket")
        base = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return DataRoot(uri=uri, fs=s3_filesystem(), base=base)
    if parsed.scheme not in ("", "file"):
        raise ConfigurationError(f"data root {uri!r}: only local paths and s3:// URIs are supported")
    local = os.path.abspath(parsed.path if parsed.scheme == "file" else uri)
    return DataRoot(uri=local, fs=pafs.LocalFileSystem(), base=local.rstrip("/") or "/")
