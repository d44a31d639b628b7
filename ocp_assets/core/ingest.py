"""Turn an operator or nise CSV payload into koku's OCP Parquet layout (contract 1.2-1.5, D3, D7).

Per CSV file: detect the report type from the header (pod, storage, node and namespace labels, VM, GPU),
sanitise identifiers, convert timestamps, metrics and label strings like koku's post-processor, drop anomalous
rows, add effective usage (pod) or do the GPU clean-up (vendor, model, MIG fields), split by day and roll each
day up into its daily table. Every output file is serialised in memory before the first write, so
a bad file leaves the data root untouched. Output is byte-identical for the same payload.
"""

import contextlib
import csv
import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.layout import (
    ANOMALY_THRESHOLD,
    DETECTION_ORDER,
    EFFECTIVE_USAGE_COLUMNS,
    GPU,
    GPU_MAX_SLICES_BY_MODEL,
    GPU_VENDOR_RENAMES,
    OPTIONAL_FOR_DETECTION,
    POD,
    POD_DAILY_CAPACITY,
    SANITIZED_COLUMNS,
    TIMESTAMP_COLUMNS,
    TIMESTAMP_TYPE,
    ReportType,
    account_from_schema,
    daily_schema,
    month_prefix,
    raw_schema,
)
from ocp_assets.core.scales import DEFAULT_ACCOUNT
from ocp_assets.core.storage import DataRoot

# Fixed namespace so a cluster id always maps to the same source uuid, on any machine.
SOURCE_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/project-koku/koku/ocp_assets/source")
CLUSTER_FILE_NAME = "cluster.json"
MANIFEST_NAME = "manifest.json"

# ROS files are not cost data; each is recognised by one column of its own, so it can be reported as skipped
# instead of failing as unknown.
OUT_OF_SCOPE_SIGNATURES = (
    ("container_name", "resource-optimization (ROS) report, not cost data"),
    ("cpu_usage_namespace_avg", "resource-optimization (ROS) namespace report, not cost data"),
)

NISE_FILE_NAME = re.compile(
    r"^(?:January|February|March|April|May|June|July|August|September|October|November|December)-\d{4}-"
    r"(?P<cluster_id>.+)-ocp_(?:pod_usage|storage_usage|node_label|namespace_label|vm_usage|gpu_usage"
    r"|ros_usage|ros_namespace_usage)(?:-\d+)?\.csv$"
)
UPLOAD_FILE_NAME = re.compile(r"_openshift_report\.(?P<number>\d+)\.csv$")
SAFE_KEY_PART = re.compile(r"[^A-Za-z0-9._-]")
# html.escape(quote=True) replaces exactly these, '&' first so the entities it adds are not escaped again.
HTML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))
NEEDS_SANITISING = r"[&<>\"'\x00]"
KOKU_UTC_SUFFIX = " +0000 UTC"
# koku's GPU model clean-up: every run of characters other than ASCII letters and digits becomes one space.
GPU_MODEL_SEPARATORS = r"[^a-zA-Z0-9]+"

# Pinned so re-ingesting a payload rewrites byte-identical files (koku writes snappy Parquet too).
PARQUET_WRITE_OPTIONS = {
    "compression": "snappy",
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 1_048_576,
    "store_schema": True,
}


@dataclass(frozen=True)
class ClusterIdentity:
    """One cluster as recorded in the data root: the koku source it is filed under and its account."""

    cluster_id: str
    source_uuid: str
    account: str
    cluster_alias: str | None = None

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, file: str, account: str, source: str) -> "ClusterIdentity":
        """The record of `file`, which lies in the folder of `account` and `source`: every identifier must be one key
        segment (none may lead out of the data root) and match that folder, else BadClusterRecord names the file."""

        def bad(reason: str, column: str | None = None) -> BadClusterRecord:
            return BadClusterRecord(f"not a usable cluster record: {reason}", file=file, column=column).of(
                account, source
            )

        try:
            fields = json.loads(data)
        except ValueError as exc:
            raise bad(f"not JSON ({exc})") from None
        if not isinstance(fields, dict):
            raise bad("not a JSON object")
        values = {}
        for name in ("cluster_id", "source_uuid", "account"):
            value = fields.get(name)
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise bad("missing, or not a string", name)
            problem = key_segment_problem(str(value))
            if problem:
                raise bad(f"{str(value)!r} {problem}", name)
            values[name] = str(value)
        alias = fields.get("cluster_alias")
        if alias is not None and not isinstance(alias, str):
            raise bad("not a string", "cluster_alias")
        for name, expected in (("account", account), ("source_uuid", source)):
            if values[name] != expected:
                raise bad(f"{values[name]!r} is not {expected!r}, the folder the record lies in", name)
        if _canonical_uuid(values["source_uuid"]) != values["source_uuid"]:
            raise bad(f"{values['source_uuid']!r} is not a lowercase uuid (koku's provider uuid)", "source_uuid")
        return cls(values["cluster_id"], values["source_uuid"], values["account"], alias)


class BadClusterRecord(InputDataError):
    """A cluster.json that cannot be used; `account` and `source` are those of the folder it lies in."""

    account: str = ""
    source: str = ""

    def of(self, account: str, source: str) -> "BadClusterRecord":
        self.account, self.source = account, source
        return self


def key_segment_problem(value: str) -> str | None:
    """Why `value` cannot be one segment of a key below the data root (None when it can): empty, `.` or `..`, a path
    separator or a control character would name another folder, or none, possibly outside the data root."""
    if not value.strip():
        return "is empty"
    if value in (".", ".."):
        return "is a relative path segment"
    if "/" in value or "\\" in value:
        return "holds a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    return None


def _canonical_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class IngestResult:
    """What one ingest read and wrote."""

    data_root: str
    clusters: list[ClusterIdentity] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[SkippedFile] = field(default_factory=list)
    # (koku report type, day) -> hourly rows written to the raw table.
    rows: dict[tuple[str, dt.date], int] = field(default_factory=dict)
    anomalous_rows_dropped: int = 0
    keys_written: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PayloadFile:
    """One CSV of a payload and the parts of its output names: `<type>.<day>.<payload_id>.<number>`."""

    path: Path
    payload_id: str
    number: int
    cluster_id: str | None


@dataclass(frozen=True)
class Payload:
    files: tuple[PayloadFile, ...]
    skipped: tuple[SkippedFile, ...]


# (phase, done, total) after each unit of a long step; a total of 0 announces a step whose length is unknown.
ProgressCallback = Callable[[str, int, int], None]


def derive_source_uuid(cluster_id: str) -> str:
    return str(uuid.uuid5(SOURCE_UUID_NAMESPACE, cluster_id))


def cluster_record_key(account: str, source_uuid: str) -> str:
    return f"data/parquet/{account}/OCP/clusters/source={source_uuid}/{CLUSTER_FILE_NAME}"


def read_cluster_registry(
    data_root: DataRoot, on_bad_record: Callable[[BadClusterRecord], None] | None = None
) -> list[ClusterIdentity]:
    """Every cluster recorded under the data root, sorted by account, cluster id and source.

    A record that cannot be used raises BadClusterRecord naming its file; with `on_bad_record`, it is handed to it
    instead and the others are read, so one bad record affects only its own cluster.
    """
    accounts = data_root.fs.get_file_info(
        pafs.FileSelector(data_root.path("data/parquet"), recursive=False, allow_not_found=True)
    )
    clusters = []
    for account_dir in accounts:
        account = account_dir.base_name
        if account_dir.type != pafs.FileType.Directory or account == "daily" or key_segment_problem(account):
            continue
        records = data_root.list_files(
            f"data/parquet/{account}/OCP/clusters", suffix=f"/{CLUSTER_FILE_NAME}", partition_keys=("source",)
        )
        for info in records:
            key = data_root.key_of(info.path)
            source = key.split("/")[-2].removeprefix("source=")
            data = data_root.read_bytes(key) or b""
            try:
                clusters.append(
                    ClusterIdentity.from_json(data, file=data_root.display(key), account=account, source=source)
                )
            except BadClusterRecord as exc:
                if on_bad_record is None:
                    raise
                on_bad_record(exc)
    return sorted(clusters, key=lambda c: (c.account, c.cluster_id, c.source_uuid))


def ingest(
    payload: str | Path,
    data_root: DataRoot,
    *,
    account: str = DEFAULT_ACCOUNT,
    source_uuid: str | None = None,
    cluster_id: str | None = None,
    cluster_alias: str | None = None,
    progress: ProgressCallback | None = None,
) -> IngestResult:
    """Convert every CSV of `payload` (a payload directory, a directory of CSVs or one CSV) into the data root.

    `cluster_id` and `source_uuid` override what the manifest or nise file names say; the source defaults to
    a uuid5 of the cluster id. Raises InputDataError (file, column, row) or ConfigurationError before anything
    is written. `progress` is told ("convert", files done, files) and ("write", objects done, objects).
    """
    account = _checked_account(account)
    source_uuid = _checked_source(source_uuid)
    payloads = discover_payloads(Path(payload))
    result = IngestResult(data_root=data_root.uri)
    identities = _resolve_identities(payloads, data_root, account, source_uuid, cluster_id, cluster_alias)
    result.clusters = sorted(set(identities.values()), key=lambda c: (c.cluster_id, c.source_uuid))

    outputs: dict[str, bytes] = {}
    files_total, files_done = sum(len(p.files) for p in payloads), 0
    for payload_ in payloads:
        result.files_skipped.extend(payload_.skipped)
        for payload_file in payload_.files:
            identity = identities[payload_file.path]
            converted = convert_file(payload_file)
            files_done += 1
            if progress is not None:
                progress("convert", files_done, files_total)
            if isinstance(converted, SkippedFile):
                result.files_skipped.append(converted)
                continue
            result.files_read.append(str(payload_file.path))
            result.anomalous_rows_dropped += converted.anomalous_rows_dropped
            for day, raw, daily in converted.days:
                stem = f"{converted.report_type.name}.{day.isoformat()}.{payload_file.payload_id}.{payload_file.number}"
                raw_key, daily_key = _output_keys(identity, converted.report_type, day, stem)
                for key, table in ((raw_key, raw), (daily_key, daily)):
                    if key in outputs:
                        raise InputDataError(f"a second file maps to output key {key}", file=str(payload_file.path))
                    outputs[key] = parquet_bytes(table)
                counted = (converted.report_type.name, day)
                result.rows[counted] = result.rows.get(counted, 0) + raw.num_rows

    for key in sorted(outputs):
        data_root.write_bytes(key, outputs[key])
        result.keys_written.append(key)
        if progress is not None:
            progress("write", len(result.keys_written), len(outputs))
    # Recorded last: a cluster becomes discoverable only once its data is in place.
    for identity in result.clusters:
        key = cluster_record_key(identity.account, identity.source_uuid)
        data_root.write_bytes(key, identity.to_json())
        result.keys_written.append(key)
    return result


def _checked_account(account: str) -> str:
    # A tenant schema (acct10001) is accepted too and mapped to its key segment like koku does (1.6).
    account = account_from_schema(account.strip())
    problem = "is reserved (data/parquet/daily)" if account == "daily" else key_segment_problem(account)
    if problem:
        raise ConfigurationError(f"account {account!r} cannot be a key segment: it {problem}")
    return account


def _checked_source(source_uuid: str | None) -> str | None:
    if source_uuid is None:
        return None
    try:
        return str(uuid.UUID(source_uuid))
    except ValueError as exc:
        raise ConfigurationError(f"source {source_uuid!r} is not a uuid (koku's provider uuid)") from exc


def _resolve_identities(
    payloads: list[Payload],
    data_root: DataRoot,
    account: str,
    source_uuid: str | None,
    cluster_id: str | None,
    cluster_alias: str | None,
) -> dict[Path, ClusterIdentity]:
    identities: dict[Path, ClusterIdentity] = {}
    for payload_ in payloads:
        for payload_file in payload_.files:
            file_cluster = cluster_id or payload_file.cluster_id
            if not file_cluster:
                raise ConfigurationError(
                    f"{payload_file.path}: no manifest and no nise file name tells the cluster id; pass a cluster id"
                )
            identities[payload_file.path] = ClusterIdentity(
                cluster_id=file_cluster,
                source_uuid=source_uuid or derive_source_uuid(file_cluster),
                account=account,
                cluster_alias=cluster_alias,
            )
    by_source: dict[str, set[str]] = {}
    for identity in identities.values():
        by_source.setdefault(identity.source_uuid, set()).add(identity.cluster_id)
    for source, cluster_ids in by_source.items():
        if len(cluster_ids) > 1:
            raise ConfigurationError(f"source {source} would hold several clusters: {', '.join(sorted(cluster_ids))}")

    written = {(identity.account, identity.source_uuid) for identity in identities.values()}

    def refuse_own(record: BadClusterRecord) -> None:
        # Another cluster's bad record is not this ingest's business; one of a source written here hides what
        # was recorded for it (its cluster id), so it must be fixed or removed first.
        if (record.account, record.source) in written:
            raise record

    recorded = {(c.account, c.source_uuid): c for c in read_cluster_registry(data_root, refuse_own)}
    for path, identity in identities.items():
        known = recorded.get((identity.account, identity.source_uuid))
        if known is None:
            continue
        if known.cluster_id != identity.cluster_id:
            raise ConfigurationError(
                f"source {identity.source_uuid} is recorded for cluster {known.cluster_id!r}, not "
                f"{identity.cluster_id!r}"
            )
        if identity.cluster_alias is None and known.cluster_alias is not None:
            # An ingest without an alias keeps the one recorded earlier.
            identities[path] = ClusterIdentity(
                identity.cluster_id, identity.source_uuid, identity.account, known.cluster_alias
            )
    return identities


def _output_keys(identity: ClusterIdentity, report_type: ReportType, day: dt.date, stem: str) -> tuple[str, str]:
    # koku: raw `<csv stem>_<chunk>.parquet`, daily `<csv stem>_daily_<chunk>.parquet`; one chunk per day here.
    raw_prefix = month_prefix(
        identity.account, report_type.name, identity.source_uuid, day.year, day.month, daily=False
    )
    daily_prefix = month_prefix(
        identity.account, report_type.name, identity.source_uuid, day.year, day.month, daily=True
    )
    return f"{raw_prefix}/{stem}_0.parquet", f"{daily_prefix}/{stem}_daily_0.parquet"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # One chunk per column, so page boundaries do not depend on how the CSV reader happened to split blocks.
    pq.write_table(table.combine_chunks(), sink, **PARQUET_WRITE_OPTIONS)
    return sink.getvalue().to_pybytes()


# --- payload discovery -------------------------------------------------------------------------------------


def discover_payloads(path: Path) -> list[Payload]:
    """The payloads below `path`: one per manifest.json, else one for the CSVs of the directory, or the file."""
    if path.is_file():
        if path.name == MANIFEST_NAME:
            return [_manifest_payload(path)]
        return [Payload(files=(_bare_file(path),), skipped=())]
    if not path.is_dir():
        raise InputDataError("payload does not exist", file=str(path))
    manifests = sorted(path.rglob(MANIFEST_NAME))
    if manifests:
        return [_manifest_payload(manifest) for manifest in manifests]
    csv_files = sorted(p for p in path.glob("*.csv") if p.is_file())
    if not csv_files:
        raise InputDataError("payload directory holds no manifest.json and no CSV file", file=str(path))
    return [Payload(files=tuple(_bare_file(p) for p in csv_files), skipped=())]


def _manifest_payload(manifest_path: Path) -> Payload:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"unreadable manifest: {exc}", file=str(manifest_path)) from exc
    if not isinstance(manifest, dict):
        raise InputDataError("manifest is not a JSON object", file=str(manifest_path))
    for required in ("uuid", "cluster_id", "files"):
        if not manifest.get(required):
            raise InputDataError("manifest field missing or empty", file=str(manifest_path), column=required)
    if not isinstance(manifest["files"], list):
        raise InputDataError("manifest field is not a list", file=str(manifest_path), column="files")
    payload_id = _key_part(str(manifest["uuid"]))
    files = []
    for position, name in enumerate(manifest["files"]):
        csv_path = manifest_path.parent / Path(str(name)).name
        if not csv_path.is_file():
            raise InputDataError(f"file {name!r} listed in the manifest is missing", file=str(manifest_path))
        number = UPLOAD_FILE_NAME.search(csv_path.name)
        file_number = int(number["number"]) if number else position
        files.append(PayloadFile(csv_path, payload_id, file_number, str(manifest["cluster_id"])))
    skipped = tuple(
        SkippedFile(
            str(manifest_path.parent / Path(str(name)).name), "resource-optimization (ROS) report, not cost data"
        )
        for name in manifest.get("resource_optimization_files") or ()
    )
    return Payload(files=tuple(files), skipped=skipped)


def _bare_file(path: Path) -> PayloadFile:
    nise_name = NISE_FILE_NAME.match(path.name)
    # Without a manifest the file name is the payload identity: re-ingesting the same file overwrites its keys.
    return PayloadFile(path, _key_part(path.stem), 0, nise_name["cluster_id"] if nise_name else None)


def _key_part(text: str) -> str:
    return SAFE_KEY_PART.sub("_", text)


# --- one file ----------------------------------------------------------------------------------------------


@dataclass
class ConvertedFile:
    report_type: ReportType
    # (day, raw hourly table, daily table), by day.
    days: list[tuple[dt.date, pa.Table, pa.Table]]
    anomalous_rows_dropped: int


def convert_file(payload_file: PayloadFile) -> ConvertedFile | SkippedFile:
    """Read and convert one CSV, or say why it is skipped (a ROS report, which is not cost data)."""
    file = str(payload_file.path)
    header = read_header(payload_file.path)
    report_type = detect_report_type(header, file)
    if isinstance(report_type, str):
        return SkippedFile(file, report_type)
    text_table = read_csv_as_text(payload_file.path, header)
    raw, dropped = convert_table(text_table, report_type, file)
    days = [(day, table, daily_table(table, report_type, day)) for day, table in split_by_day(raw)]
    return ConvertedFile(report_type, days, dropped)


def read_header(path: Path) -> list[str]:
    # Only the first line is decoded: a bad byte further down is reported later with its row and column.
    try:
        with path.open("rb") as handle:
            first_line = handle.readline().decode("utf-8-sig")
        header = next(csv.reader([first_line]), None)
    except UnicodeDecodeError as exc:
        raise InputDataError(f"header is not UTF-8: {exc.reason}", file=str(path)) from exc
    except (OSError, csv.Error) as exc:
        raise InputDataError(f"unreadable CSV: {exc}", file=str(path)) from exc
    if not header or not any(header):
        raise InputDataError("empty file: no CSV header", file=str(path))
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise InputDataError("column appears twice in the header", file=str(path), column=repeated[0])
    return header


def detect_report_type(header: list[str], file: str) -> ReportType | str:
    """koku's detect_type: the first type (DETECTION_ORDER) whose required columns the header holds.

    A ROS header gives the reason it is skipped instead; any other header is an error.
    """
    columns = set(header)
    # (missing, -matched): fewest missing columns, then most matched, so a GPU header short of one column is
    # not reported as a node-label header short of one.
    closest: tuple[tuple[int, int], ReportType, list[str]] | None = None
    for report_type in DETECTION_ORDER:
        optional = OPTIONAL_FOR_DETECTION.get(report_type.name, set())
        computed = {*EFFECTIVE_USAGE_COLUMNS, *report_type.derived_columns}
        required = [c for c in report_type.raw_columns if c not in optional and c not in computed]
        missing = [c for c in required if c not in columns]
        if not missing:
            return report_type
        rank = (len(missing), len(missing) - len(required))
        if closest is None or rank < closest[0]:
            closest = (rank, report_type, missing)
    for column, reason in OUT_OF_SCOPE_SIGNATURES:
        if column in columns:
            return reason
    assert closest is not None, "DETECTION_ORDER holds every report type, so some type came closest"
    _, nearest, missing = closest
    raise InputDataError(
        f"header matches no OCP report type (nearest: {nearest.name}, missing {', '.join(missing)})",
        file=file,
        column=missing[0],
    )


def read_csv_as_text(path: Path, header: list[str]) -> pa.Table:
    """Every column as text, blanks as '' (koku reads with str converters), quoted newlines allowed."""
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    try:
        return pacsv.read_csv(path, parse_options=parse_options, convert_options=convert_options)
    except pa.ArrowInvalid as exc:
        raise _locate_csv_error(path, header, exc) from exc
    except OSError as exc:
        raise InputDataError(f"unreadable CSV: {exc}", file=str(path)) from exc


def _locate_csv_error(path: Path, header: list[str], exc: pa.ArrowInvalid) -> InputDataError:
    """Arrow's parallel reader does not say where a bad row is; find it again on the slow path."""
    message = str(exc)
    if "invalid UTF8" in message:
        column_number = re.search(r"column #(\d+)", message)
        data = path.read_bytes()
        try:
            data.decode("utf-8")
            row = None
        except UnicodeDecodeError as decode_error:
            row = data.count(b"\n", 0, decode_error.start)  # lines before the bad byte, minus the header line
        column = header[int(column_number[1])] if column_number else None
        return InputDataError("value is not UTF-8", file=str(path), column=column, row=row)
    bad_rows: list[pacsv.InvalidRow] = []

    def remember(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row)
        return "error"

    with contextlib.suppress(pa.ArrowInvalid):
        pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=remember),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in header}),
        )
    if bad_rows:
        bad = bad_rows[0]
        row = bad.number - 1 if bad.number is not None else None
        return InputDataError(
            f"corrupt CSV: expected {bad.expected_columns} fields, found {bad.actual_columns}", file=str(path), row=row
        )
    return InputDataError(f"corrupt CSV: {message}", file=str(path))


# --- conversion (contract 1.3) -----------------------------------------------------------------------------


def convert_table(text: pa.Table, report_type: ReportType, file: str) -> tuple[pa.Table, int]:
    """koku's converters, anomaly removal, effective usage (pod) and GPU clean-up; columns in raw_schema order.

    Returns (table, rows dropped as anomalies).
    """
    schema = raw_schema(report_type)
    columns: dict[str, pa.ChunkedArray] = {}
    for name in schema.names:
        if name in EFFECTIVE_USAGE_COLUMNS or name in report_type.derived_columns:
            continue
        if name not in text.column_names:
            # Only columns koku tolerates missing get here (detection checked the rest): all-null strings.
            columns[name] = pa.chunked_array([pa.nulls(text.num_rows, pa.string())])
        elif name in TIMESTAMP_COLUMNS:
            columns[name] = to_timestamps(text[name], name, file)
        elif name in report_type.numeric:
            columns[name] = to_floats(text[name])
        elif name in report_type.labels:
            columns[name] = map_distinct(text[name], labels_to_json, pa.string())
        elif name in SANITIZED_COLUMNS:
            columns[name] = sanitise(text[name])
        else:
            columns[name] = text[name]

    metrics = [name for name in report_type.anomaly_columns if name in columns]
    keep = None
    for name in metrics:
        within = pc.invert(pc.greater(columns[name], ANOMALY_THRESHOLD))
        keep = within if keep is None else pc.and_(keep, within)
    dropped = 0
    if keep is not None:
        dropped = text.num_rows - pc.sum(keep).as_py() if text.num_rows else 0
        if dropped:
            columns = {name: pc.filter(values, keep) for name, values in columns.items()}

    if report_type is POD:
        # Per hourly row, before any roll-up (1.3 step 4); NaN-skipping like pandas' max(axis=1).
        columns["pod_effective_usage_cpu_core_seconds"] = pc.max_element_wise(
            columns["pod_usage_cpu_core_seconds"], columns["pod_request_cpu_core_seconds"]
        )
        columns["pod_effective_usage_memory_byte_seconds"] = pc.max_element_wise(
            columns["pod_usage_memory_byte_seconds"], columns["pod_request_memory_byte_seconds"]
        )
    if report_type is GPU:
        columns = gpu_clean_up(columns)
    return pa.table([columns[name] for name in schema.names], schema=schema), dropped


# --- GPU clean-up (contract 1.3; koku ocp_post_processor.process_dataframe) --------------------------------


def gpu_clean_up(columns: dict[str, pa.ChunkedArray]) -> dict[str, pa.ChunkedArray]:
    """Vendor renamed, model name normalised, MIG fields derived from mig_profile and the model.

    Runs on sanitised values, as koku's does (its validator rewrites the CSV before the post-processor reads it).
    A row with a MIG profile gets slice count and memory from the profile and the slice count of its GPU model;
    when the model has none, koku clears every MIG field of the row and the GPU counts as dedicated. Rows without
    a profile keep their MIG columns as sent ('' from nise) and get null derived fields.
    """
    columns = dict(columns)
    vendor = columns["gpu_vendor_name"]
    for reported, renamed in GPU_VENDOR_RENAMES.items():
        # A whole-value replace (pandas Series.replace), so 'nvidia_com_gpu_x' stays as it is.
        vendor = pc.if_else(pc.equal(vendor, reported), renamed, vendor)
    columns["gpu_vendor_name"] = vendor
    model = pc.utf8_trim(pc.replace_substring_regex(columns["gpu_model_name"], GPU_MODEL_SEPARATORS, " "), " ")
    columns["gpu_model_name"] = model

    profile = columns["mig_profile"]
    has_mig = pc.fill_null(pc.not_equal(profile, ""), False)
    slice_count = map_distinct(profile, lambda text: parse_mig_profile(text)[0], pa.int64())
    memory_mib = map_distinct(profile, lambda text: parse_mig_profile(text)[1], pa.int64())
    max_slices = map_distinct(model, gpu_max_slices, pa.int64())
    # A MIG row whose model has no known slice count is cleared (treated as a dedicated GPU).
    cleared = pc.and_(has_mig, pc.is_null(max_slices))
    keeps_mig = pc.and_(has_mig, pc.invert(cleared))
    no_integer = pa.scalar(None, pa.int64())
    columns["mig_slice_count"] = pc.if_else(keeps_mig, slice_count, no_integer)
    columns["mig_memory_capacity_mib"] = pc.if_else(keeps_mig, memory_mib, no_integer)
    columns["gpu_max_slices"] = pc.if_else(keeps_mig, max_slices, no_integer)
    no_text = pa.scalar(None, pa.string())
    for name in ("mig_instance_id", "mig_profile", "mig_strategy"):
        columns[name] = pc.if_else(cleared, no_text, columns[name])
    return columns


def parse_mig_profile(profile: str | None) -> tuple[int | None, int | None]:
    """koku's parse_mig_profile: '{slices}g.{memory}gb' -> (slices, memory in MiB), both None unless both parse."""
    if not profile:
        return None, None
    parts = profile.strip().lower().split(".")
    if len(parts) != 2 or not parts[0].endswith("g") or not parts[1].endswith("gb"):
        return None, None
    try:
        return int(parts[0][:-1]), int(parts[1][:-2]) * 1024
    except ValueError:
        return None, None


def gpu_max_slices(model: str | None) -> int | None:
    """koku's get_gpu_max_slices on the cleaned model name: an exact key, else the first key the name contains."""
    if not model:
        return None
    upper = model.upper().strip()
    slices_by_model = dict(GPU_MAX_SLICES_BY_MODEL)
    if upper in slices_by_model:
        return slices_by_model[upper]
    return next((slices for known, slices in GPU_MAX_SLICES_BY_MODEL if known in upper), None)


def labels_to_json(label_string: str) -> str:
    """koku's process_openshift_labels_to_json, literal: a piece with two ':' is dropped, every 'label_' removed."""
    labels = {}
    for piece in label_string.split("|") if label_string else []:
        if ":" not in piece:
            continue
        try:
            key, value = piece.split(":")
        except ValueError:
            continue
        labels[key.replace("label_", "")] = value
    return json.dumps(labels)


def safe_float(text: str) -> float:
    """koku's safe_float: blank or invalid -> 0.0."""
    try:
        return float(text)
    except (ValueError, TypeError):
        return 0.0


def map_distinct(values: pa.ChunkedArray, convert: Callable[[str], object], type_: pa.DataType) -> pa.ChunkedArray:
    """Apply a Python conversion once per distinct value and map the results back onto every row."""
    distinct = pc.unique(values)
    converted = pa.array([convert(v) for v in distinct.to_pylist()], type=type_)
    return pc.take(converted, pc.index_in(values, value_set=distinct))


def to_floats(values: pa.ChunkedArray) -> pa.ChunkedArray:
    blanks_as_zero = pc.if_else(pc.equal(values, ""), "0", values)
    try:
        return pc.cast(blanks_as_zero, pa.float64())
    except pa.ArrowInvalid:
        # Something Arrow's number parser rejects (' 1', '1_000', 'abc'): Python's float decides, like koku.
        return map_distinct(values, safe_float, pa.float64())


def sanitise(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """ocp_data_validator: NUL bytes removed, then html.escape(quote=True)."""
    if not pc.any(pc.match_substring_regex(values, NEEDS_SANITISING)).as_py():
        return values
    values = pc.replace_substring(values, "\x00", "")
    for character, entity in HTML_ESCAPES:
        values = pc.replace_substring(values, character, entity)
    return values


def parse_koku_timestamp(text: str) -> dt.datetime | None:
    """koku strips ' +0000 UTC' and parses ISO 8601 (ciso8601); fromisoformat accepts the forms operators write.

    An explicit UTC offset (which koku would keep as an aware value) is converted to naive UTC here, because
    the Parquet columns are naive by contract (1.4).
    """
    try:
        parsed = dt.datetime.fromisoformat(text.replace(KOKU_UTC_SUFFIX, ""))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def to_timestamps(values: pa.ChunkedArray, column: str, file: str) -> pa.ChunkedArray:
    distinct = pc.unique(values)
    texts = distinct.to_pylist()
    parsed = [parse_koku_timestamp(text) for text in texts]
    invalid = [text for text, value in zip(texts, parsed) if value is None]
    if invalid:
        first_bad = pc.index(pc.is_in(values, value_set=pa.array(invalid)), True).as_py()
        bad_text = values[first_bad].as_py()
        raise InputDataError(f"not a timestamp: {bad_text!r}", file=file, column=column, row=first_bad + 1)
    # Parsed at microseconds, truncated to ms like koku's to_parquet(coerce_timestamps="ms",
    # allow_truncated_timestamps=True).
    as_micros = pa.array(parsed, type=pa.timestamp("us"))
    return pc.take(pc.cast(as_micros, TIMESTAMP_TYPE, safe=False), pc.index_in(values, value_set=distinct))


# --- daily split and roll-up (contract 1.2 step 2 and 1.5) -------------------------------------------------


def split_by_day(table: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """One table per day of interval_start, rows in file order.

    Every file is split, even a nise payload without daily_reports that koku would keep whole: the reader
    finds a day by its month folder, so a file holding two months' rows must be divided anyway.
    """
    if table.num_rows == 0:
        return []
    days = pc.cast(table["interval_start"], pa.date32())
    return [
        (day, table.filter(pc.equal(days, pa.scalar(day, pa.date32())))) for day in sorted(pc.unique(days).to_pylist())
    ]


def daily_table(day_rows: pa.Table, report_type: ReportType, day: dt.date) -> pa.Table:
    """koku's _generate_daily_data for one day: group keys, the day at midnight, max and sum columns.

    group_by without threads keeps groups in order of first appearance, so the output is reproducible.
    """
    schema = daily_schema(report_type)
    aggregations = dict.fromkeys(report_type.daily_max, "max") | dict.fromkeys(report_type.daily_sum, "sum")
    if report_type is POD:
        aggregations |= dict(POD_DAILY_CAPACITY)
    aggregations |= dict.fromkeys(report_type.added_when_missing, "max")
    # pandas' groupby sum skips NaN (and gives 0.0 for all-NaN); Arrow's propagates it, so NaN becomes null first.
    sum_inputs = {name: _nan_as_null(day_rows[name]) for name, how in aggregations.items() if how == "sum"}
    source = day_rows.select(list(report_type.daily_group_by))
    for name, how in aggregations.items():
        source = source.append_column(name, sum_inputs[name] if how == "sum" else day_rows[name])
    specs = [
        (name, how, pc.ScalarAggregateOptions(min_count=0) if how == "sum" else None)
        for name, how in aggregations.items()
    ]
    grouped = source.group_by(list(report_type.daily_group_by), use_threads=False).aggregate(specs)
    midnight = pa.scalar(dt.datetime.combine(day, dt.time()), TIMESTAMP_TYPE)
    output = []
    for output_field in schema:
        if output_field.name == "interval_start":
            output.append(pa.repeat(midnight, grouped.num_rows))
        elif output_field.name in aggregations:
            aggregated = grouped[f"{output_field.name}_{aggregations[output_field.name]}"]
            # Only the GPU's integer MIG fields change type here: their daily max is double, as in koku.
            if aggregated.type != output_field.type:
                aggregated = pc.cast(aggregated, output_field.type)
            output.append(aggregated)
        else:
            output.append(grouped[output_field.name])
    return pa.table(output, schema=schema)


def _nan_as_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    nan = pc.is_nan(values)
    if not pc.any(nan).as_py():
        return values
    return pc.if_else(nan, pa.scalar(None, pa.float64()), values)


def describe(result: IngestResult) -> list[str]:
    """Short human summary: where, which clusters, rows per report type and day, skipped files."""
    lines = [f"data root: {result.data_root}"]
    for cluster in result.clusters:
        alias = f" ({cluster.cluster_alias})" if cluster.cluster_alias else ""
        lines.append(f"cluster {cluster.cluster_id}{alias}: account {cluster.account}, source {cluster.source_uuid}")
    lines.append(f"files read: {len(result.files_read)}, objects written: {len(result.keys_written)}")
    for (report_type, day), rows in sorted(result.rows.items()):
        lines.append(f"  {report_type:<17} {day.isoformat()}  {rows:>10,} hourly rows")
    if result.anomalous_rows_dropped:
        lines.append(f"rows dropped as anomalies (a metric > {ANOMALY_THRESHOLD:g}): {result.anomalous_rows_dropped}")
    reasons = Counter(skipped.reason for skipped in result.files_skipped)
    for reason, count in sorted(reasons.items()):
        lines.append(f"skipped {count} file(s): {reason}")
    return lines
