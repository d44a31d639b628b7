"""A data root (local directory or s3://bucket/prefix) seen through pyarrow's filesystem layer.

Local writes go to a temporary name and are renamed into place, so a reader never sees a half-written
file; an S3 PUT is already all-or-nothing.
"""

import os
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ocp_assets.core.errors import ConfigurationError

S3_ENDPOINT_ENV = ("OCP_ASSETS_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
S3_REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
DEFAULT_S3_REGION = "us-east-1"
# A path component starting with one of these is not data, for Hive and Trino (koku's readers) as here.
HIDDEN_PREFIXES = (".", "_")


@dataclass(frozen=True)
class S3Settings:
    """How pyarrow reaches S3: an endpoint override, the region, and credentials when the caller resolved them.

    Without credentials pyarrow uses the AWS SDK's standard chain (environment including AWS_SESSION_TOKEN,
    profiles, web identity for IRSA, instance metadata), which also refreshes temporary ones. Picklable: worker
    processes open their data roots with it.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    anonymous: bool = False  # unsigned requests (a public bucket)

    @classmethod
    def from_environment(cls) -> "S3Settings":
        """The CLI's settings: endpoint and region from the environment, credentials from the SDK's chain."""
        endpoint = next((os.environ[name] for name in S3_ENDPOINT_ENV if os.environ.get(name)), None)
        region = next((os.environ[name] for name in S3_REGION_ENV if os.environ.get(name)), None)
        return cls(endpoint_url=endpoint, region=region)


def s3_filesystem(settings: S3Settings) -> pafs.S3FileSystem:
    kwargs: dict = {"region": settings.region or DEFAULT_S3_REGION}
    if settings.endpoint_url:
        parsed = urlparse(settings.endpoint_url)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "http"
    if settings.anonymous:
        kwargs["anonymous"] = True
    elif settings.access_key and settings.secret_key:
        # All three or the SDK's chain: a key and secret without their session token would be refused by AWS.
        kwargs.update(access_key=settings.access_key, secret_key=settings.secret_key)
        if settings.session_token:
            kwargs["session_token"] = settings.session_token
    return pafs.S3FileSystem(**kwargs)


class FileCache:
    """What one run has read of its files (e.g. each Parquet footer), so the run's other days need not read it again.

    An entry stands while its file keeps the size and modification time it had when listed: a file rewritten between
    two days of the run is listed with another size or time and read afresh (a file whose listing carries no time is
    never cached). A rewrite that keeps both, to the filesystem's clock (S3: the second), is not seen within the run,
    which is why a cache lives for one run only (``DataRoot.with_file_cache``), never across runs.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int], Any]] = {}
        self._shared: dict[Hashable, Any] = {}

    @staticmethod
    def _stamp(info: pafs.FileInfo) -> tuple[int, int] | None:
        mtime = info.mtime_ns
        return None if mtime is None or info.size is None else (info.size, mtime)

    def get(self, info: pafs.FileInfo) -> Any:
        """What was stored for the file as listed now, or None (never stored, or the file changed since)."""
        entry = self._entries.get(info.path)
        return entry[1] if entry is not None and entry[0] == self._stamp(info) else None

    def put(self, info: pafs.FileInfo, value: Any) -> None:
        stamp = self._stamp(info)
        if stamp is not None:
            self._entries[info.path] = (stamp, value)

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)

    def shared(self, key: Hashable, value: Any) -> Any:
        """One object for equal values held by many entries (a month's files mostly share one schema)."""
        return self._shared.setdefault(key, value)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class DataRoot:
    """Where koku-layout objects live; keys are '/'-separated and relative to the root.

    `cache`: what this run has read of the root's files (``with_file_cache``); None: every read opens its files.
    """

    uri: str
    fs: pafs.FileSystem
    base: str
    cache: FileCache | None = field(default=None, compare=False, repr=False)

    def with_file_cache(self, cache: FileCache | None = None) -> "DataRoot":
        """The same root for one run whose reads share what they read of each file (`cache`, else a new one)."""
        return replace(self, cache=cache if cache is not None else FileCache())

    @property
    def is_s3(self) -> bool:
        return isinstance(self.fs, pafs.S3FileSystem)

    def path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def display(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    def exists(self) -> bool:
        """Whether the root is there: a local directory, or an S3 prefix holding at least one object (or a bucket)."""
        return self.fs.get_file_info(self.base).type == pafs.FileType.Directory

    def list_files(
        self,
        prefix: str,
        suffix: str = ".parquet",
        partition_keys: tuple[str, ...] = (),
        stray: Callable[[str, str], None] | None = None,
    ) -> list[pafs.FileInfo]:
        """The data files of a Hive-partitioned table below `prefix`, read as Hive and Trino (koku's readers) read
        them, sorted by path; an absent prefix gives no files.

        Without `partition_keys`, `prefix` is one partition folder: only its own files are read. With them (e.g.
        ("year", "month")), the files directly in each folder `prefix/year=…/month=…` are, one partition each.
        Nothing deeper is ever read (a copy in `backup/` would double a day; a symlink loop cannot be followed), and a
        path component below `prefix` starting with "." or "_" is not data at any level: a writer's temporary files
        (ours are ``.tmp-…``), ``_temporary/``, ``.staging/``, ``_SUCCESS`` markers are never read.

        `stray` (a callable) hears, once each, of what is not read though not hidden either: a folder inside a
        partition, a folder not named for its partition level, a data file outside a partition folder, as (key below
        the root, why).
        """
        found = []
        reported: set[tuple[str, ...]] = set()
        for parts, info in self._entries_below(prefix, partition_keys):
            if any(part.startswith(HIDDEN_PREFIXES) for part in parts):
                continue
            is_data = info.type == pafs.FileType.File and info.path.endswith(suffix)
            where = _stray_part(parts, info.type == pafs.FileType.Directory, is_data, partition_keys)
            if where is None:
                if is_data and len(parts) == len(partition_keys) + 1:
                    found.append(info)
            elif stray is not None and parts[: where[0]] not in reported:
                reported.add(parts[: where[0]])
                stray("/".join([prefix.rstrip("/"), *parts[: where[0]]]), where[1])
        return sorted(found, key=lambda i: i.path)

    def _entries_below(
        self, prefix: str, partition_keys: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], pafs.FileInfo]]:
        """(path components below prefix, info) of what a listing of the table sees. S3: one recursive listing (no
        symlinks there; one request per 1,000 keys). Local: level by level, into partition folders only, so a
        symlink loop or a large folder elsewhere is never walked."""
        top = self.path(prefix).rstrip("/")
        if self.is_s3:
            selector = pafs.FileSelector(top, recursive=True, allow_not_found=True)
            return [(tuple(i.path[len(top) + 1 :].split("/")), i) for i in self.fs.get_file_info(selector)]
        entries: list[tuple[tuple[str, ...], pafs.FileInfo]] = []
        folders: list[tuple[str, ...]] = [()]
        for level in range(len(partition_keys) + 1):
            below = []
            for folder in folders:
                selector = pafs.FileSelector("/".join([top, *folder]), recursive=False, allow_not_found=True)
                for info in self.fs.get_file_info(selector):
                    parts = (*folder, info.base_name)
                    entries.append((parts, info))
                    if (
                        level < len(partition_keys)
                        and info.type == pafs.FileType.Directory
                        and _is_partition(info.base_name, partition_keys[level])
                    ):
                        below.append(parts)
            folders = below
        return entries

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


def absence(uri: str) -> str:
    """How a data root that is not there is said (an S3 prefix exists only while it holds objects)."""
    return f"data root {uri} " + ("holds no object" if uri.startswith("s3://") else "does not exist")


def _is_partition(name: str, key: str) -> bool:
    return name.startswith(f"{key}=") and len(name) > len(key) + 1


def _stray_part(
    parts: tuple[str, ...], is_folder: bool, is_data: bool, partition_keys: tuple[str, ...]
) -> tuple[int, str] | None:
    """None for an entry in its place (a partition folder of its level, a file of a partition, or a file that is not
    data); else (how many of its components name the misplaced entry, why it is not read)."""
    depth = len(partition_keys)
    folders = parts if is_folder else parts[:-1]
    for level, name in enumerate(folders):
        if level >= depth:
            return level + 1, "a folder inside a partition folder: only a partition's own files are read"
        if not _is_partition(name, partition_keys[level]):
            return level + 1, f"not a {partition_keys[level]}=… partition folder"
    if is_folder or not is_data or len(parts) == depth + 1:
        return None
    return len(parts), f"a data file outside a {partition_keys[-1]}=… partition folder"


def open_data_root(uri: str, s3: S3Settings | None = None) -> DataRoot:
    """A DataRoot for a local path or an s3://bucket/prefix URI, reached with `s3` (default: the environment's
    endpoint, OCP_ASSETS_S3_ENDPOINT or AWS_ENDPOINT_URL[_S3], and the SDK's credential chain)."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigurationError(f"data root {uri!r} names no bucket").with_hint("write it as s3://BUCKET/PREFIX")
        base = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return DataRoot(uri=uri, fs=s3_filesystem(s3 or S3Settings.from_environment()), base=base)
    if parsed.scheme not in ("", "file"):
        raise ConfigurationError(f"data root {uri!r}: only local paths and s3:// URIs are supported").with_hint(
            "pass a directory or s3://BUCKET/PREFIX"
        )
    local = os.path.abspath(parsed.path if parsed.scheme == "file" else uri)
    return DataRoot(uri=local, fs=pafs.LocalFileSystem(), base=local.rstrip("/") or "/")
