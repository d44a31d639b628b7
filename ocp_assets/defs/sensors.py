"""The sensor that keeps Dagster in step with koku's Parquet: new clusters become partitions, new or changed files
become runs.

Each tick (1) reads the ingest's cluster records (``data/parquet/<acct>/OCP/clusters/source=<uuid>/cluster.json``),
registers them in the cluster registry and adds missing cluster partitions; (2) lists every Parquet file of the
report types the summaries read (pod, storage, node and namespace labels, GPU) of each registered cluster and
compares size and mtime with the stored file state; the days a
new, changed or removed file covers (from its footer's interval_start statistics, no data pages read; for a
removed or rewritten file also the days it covered before) are the partitions to run, so late data re-runs only
the days it touches. Contiguous days of one cluster go into one range run (at most MAX_PARTITIONS_PER_RUN days).
Days before the day dimension's start date get no partition: the tick says so, and when the start date is moved
back they are requested then. The cursor holds only what that takes: the start date of the last tick and, for a
cluster that got no run while the start moved (below), the start its days were last requested from, so those days
are requested once it gets runs again. A run's key ends with a hash of the file changes that caused it, so the same
change never launches two runs.

A file whose days cannot be read (an unreadable footer, a NULL or implausible interval_start) stands for the days
it covered before, or, new, for the cluster's days of its folder's month (that month's first day when it has none,
as the CLI's day discovery counts it): those days are requested, and as every day of its month reads the file, each
fails naming file, column and row, a red partition with a failed check rather than a log line. The tick warns once
per version (size, mtime) of such a file; fixing it re-runs those days. It is read again each tick (the cursor lists
it), so a read error that passes with the file unchanged still gets its real days requested.

A cluster's file changes are marked seen (stored in the registry) only once Dagster has stored a run of this sensor
for each of their run keys: the tick that finds them requests the runs, the next tick finds the runs and stores the
file state. A tick whose runs were never created (the daemon died in between) thus leaves the changes unseen, and
the next tick requests the same days under the same run keys (Dagster skips a run key it already has).

A cluster whose every known file vanished at once (an unmounted volume, an emptied or mistyped S3 prefix) gets no
run and keeps its file state: running those removals would empty every day it ever had. The tick warns, naming
the cluster and the number of files, and how to confirm an intended removal (forget its file state in the
registry); files that come back unchanged are not re-run. A partial removal (a rewritten month) runs as any change.

A cluster record that gives a registered source another cluster id is not registered: the tick warns, naming the
cluster id recorded for that source, and the source goes on under that id. A registered cluster whose source koku's
``reporting_ocp_clusters`` records under another id gets no run (each would be refused): the tick warns and says
so as its skip reason. So does a cluster whose tenant schema's ``reporting_ocp_clusters`` the sensor's role may not
read (its runs would fail too); the other clusters go on.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import NamedTuple

import dagster as dg
import psycopg

# Dagster's tags on a sensor's runs, by which its daemon finds the run of a run key (dagster._daemon.sensor).
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.layout import (
    GPU,
    SUMMARY_REPORT_TYPES,
    dataset_prefix,
    days_outside_folder,
    folder_month_days,
)
from ocp_assets.core.registry import ClusterRecord, FileState, cluster_contradiction
from ocp_assets.core.storage import DataRoot
from ocp_assets.defs.assets import MAX_PARTITIONS_PER_RUN
from ocp_assets.defs.jobs import summary_job
from ocp_assets.defs.partitions import (
    CLUSTERS_PARTITIONS_NAME,
    START_DATE_ENV,
    DayPartitions,
    clusters_partitions,
    partition_key,
    split_key,
)
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase

SENSOR_NAME = "koku_parquet_sensor"
INVALID_KEY_CHARACTERS = set("|,[]*\n")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Listing a cluster's files is cheap (one footer read per new or changed file): late data waits at most this long.
SENSOR_INTERVAL_SECONDS = 10


# The report types whose files feed a summary: the daily summary's four and the GPU summary's gpu_usage.
WATCHED_REPORT_TYPES = (*SUMMARY_REPORT_TYPES, GPU)


# The reader and the ingest (pyarrow.compute) are imported in the functions that use them, when the sensor ticks:
# loading the code location (the webserver, each run worker) does not need them.


def cluster_files(root: DataRoot, cluster: ClusterRecord) -> list[tuple[FileState, str]]:
    from ocp_assets.core.reader import dataset_files

    found = []
    for report_type in WATCHED_REPORT_TYPES:
        for daily in (False, True):
            prefix = dataset_prefix(cluster.account, report_type.name, cluster.source, daily=daily)
            for info in dataset_files(root, prefix):
                mtime = info.mtime_ns if info.mtime_ns is not None else 0
                found.append((FileState(root.key_of(info.path), int(info.size or 0), int(mtime)), info.path))
    return found


def contiguous_ranges(days: Iterable[dt.date], limit: int) -> list[tuple[dt.date, dt.date]]:
    ranges: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if ranges and (day - ranges[-1][1]).days == 1 and (ranges[-1][1] - ranges[-1][0]).days + 1 < limit:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(a, b) for a, b in ranges]


def run_requests_for(
    cluster_id: str, days: Iterable[dt.date], changes_hash: str, limit: int = MAX_PARTITIONS_PER_RUN
) -> list[dg.RunRequest]:
    requests = []
    for start, end in contiguous_ranges(days, limit):
        tags = {"ocp_assets/trigger": SENSOR_NAME, "ocp_assets/cluster": cluster_id}
        run_key = f"{cluster_id}:{start}:{end}:{changes_hash}"
        if start == end:
            requests.append(dg.RunRequest(run_key=run_key, partition_key=partition_key(cluster_id, start), tags=tags))
        else:
            tags[RANGE_START_TAG] = str(partition_key(cluster_id, start))
            tags[RANGE_END_TAG] = str(partition_key(cluster_id, end))
            requests.append(dg.RunRequest(run_key=run_key, tags=tags))
    return requests


def request_span(request: dg.RunRequest) -> tuple[str, str]:
    """The first and last partition key a run request covers (one partition, or a range of one cluster's days)."""
    if request.partition_key:
        return str(request.partition_key), str(request.partition_key)
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def requested_days(requests: Iterable[dg.RunRequest]) -> dict[str, set[dt.date]]:
    """cluster_id -> the days a tick's run requests cover."""
    days: dict[str, set[dt.date]] = {}
    for request in requests:
        first, last = request_span(request)
        cluster_id, start = split_key(first)
        end = split_key(last)[1]
        days.setdefault(cluster_id, set()).update(start + dt.timedelta(n) for n in range((end - start).days + 1))
    return days


def discover_clusters(context, db: SummaryDatabase, conn, root: DataRoot) -> list[ClusterRecord]:
    """Register every cluster recorded under the data root; returns the registry rows of this data root."""
    from ocp_assets.core.ingest import cluster_record_key, read_cluster_registry

    registered_by_source = {c.source: c for c in db.registry.clusters(conn)}
    for identity in read_cluster_registry(root, lambda bad: context.log.warning(f"{bad}; that cluster is skipped")):
        if INVALID_KEY_CHARACTERS & set(identity.cluster_id) or not identity.cluster_id.strip():
            context.log.warning(f"cluster id {identity.cluster_id!r} cannot be a partition key; skipped")
            continue
        known = registered_by_source.get(identity.source_uuid)
        if known is not None and known.cluster_id != identity.cluster_id:
            # Registering it would give the source a second partition writing the same koku rows under another id.
            record = root.display(cluster_record_key(identity.account, identity.source_uuid))
            context.log.warning(
                f"source {identity.source_uuid} is recorded for cluster {known.cluster_id!r}, not "
                f"{identity.cluster_id!r} ({record}); its days go on under {known.cluster_id!r}"
            )
            continue
        record = db.register_cluster(
            conn,
            cluster_id=identity.cluster_id,
            source=identity.source_uuid,
            account=identity.account,
            cluster_alias=identity.cluster_alias or identity.cluster_id,
            data_root=root.uri,
        )
        if record.source != identity.source_uuid:
            context.log.warning(
                f"cluster id {identity.cluster_id!r} of source {identity.source_uuid} is already registered for source "
                f"{record.source}; the second source is not summarised"
            )
    return [c for c in db.registry.clusters(conn) if c.data_root == root.uri]


class FileChanges(NamedTuple):
    """One cluster's files against the registry's file state."""

    days: list[dt.date]  # days touched by new, changed or removed files
    updates: list[tuple]  # file-state rows to store: (cluster_id, key, size, mtime_ns, days)
    removed: list[str]  # keys of files seen before and gone now
    known: dict[str, tuple]  # the registry's file state: key -> (size, mtime_ns, days)
    present: int  # files listed now
    unreadable: dict[str, list[int]]  # key -> [size, mtime_ns] of present files whose days cannot be read


def changed_days(
    context, db: SummaryDatabase, conn, root: DataRoot, cluster: ClusterRecord, unreadable_before: dict[str, list[int]]
) -> FileChanges:
    """Days touched by new, changed or removed files of one cluster, and the file state to store for them.

    unreadable_before: the files the last tick could not read the days of (key -> [size, mtime_ns]): read again each
    tick (a passing storage error must not leave their real days unrequested) but not warned about again.
    """
    from ocp_assets.core.reader import file_days

    known = db.registry.file_states(conn, cluster.cluster_id)
    touched: set[dt.date] = set()
    updates = []
    present = set()
    unreadable: dict[str, list[int]] = {}
    unknown_days: list[tuple[FileState, tuple | None, InputDataError]] = []
    for state, path in cluster_files(root, cluster):
        present.add(state.key)
        previous = known.get(state.key)
        version = [state.size, state.mtime_ns]
        stored = previous is not None and list(previous[:2]) == version
        if stored and unreadable_before.get(state.key) != version:
            continue
        try:
            covered = file_days(root, path)
        except InputDataError as exc:
            unreadable[state.key] = version
            if not stored:
                unknown_days.append((state, previous, exc))
            continue
        covered = days_inside_folder(context, root, state.key, covered)
        # A rewritten file may have lost days: those are re-run too.
        touched.update(covered, previous[2] if previous is not None else ())
        updates.append((cluster.cluster_id, state.key, state.size, state.mtime_ns, covered))
    cluster_days = touched.union(*(days for _, _, days in known.values()))
    for state, previous, error in unknown_days:
        days = stand_in_days(state.key, previous, cluster_days)
        if unreadable_before.get(state.key) != [state.size, state.mtime_ns]:
            context.log.warning(unreadable_warning(error, days, previous))
        touched.update(days)
        updates.append((cluster.cluster_id, state.key, state.size, state.mtime_ns, days))
    removed = sorted(set(known) - present)
    for key in removed:
        touched.update(known[key][2])
    return FileChanges(sorted(touched), updates, removed, known, len(present), unreadable)


def days_inside_folder(context, root: DataRoot, key: str, covered: list[dt.date]) -> list[dt.date]:
    """The file's days in its folder's month (koku reads a month's rows from its own folder); the others are warned
    about."""
    outside = days_outside_folder(key, covered)
    if not outside:
        return covered
    context.log.warning(
        f"{root.display(key)}: rows dated {outside[0]} .. {outside[-1]} lie outside the month "
        "of their folder and are not summarised (koku reads a month's rows from its own folder)"
    )
    return [d for d in covered if d not in outside]


def stand_in_days(key: str, previous: tuple | None, cluster_days: set[dt.date]) -> list[dt.date]:
    """The days to run for a file whose own days cannot be read (a bad footer or interval_start): those it covered
    before, else the cluster's days of its folder's month, else that month's first day, as the CLI's day discovery
    does. Each run fails naming its file, column and row (reading any day of the month reads the file), and fixing
    the file runs them again, as days it covered before."""
    if previous is not None and previous[2]:
        return sorted(previous[2])
    return folder_month_days(key, cluster_days)


def unreadable_warning(error: InputDataError, days: list[dt.date], previous: tuple | None) -> str:
    if not days:
        return f"{error}; which days it holds is unknown and it is in no month folder, so no day is run for it"
    which = "the days it covered before" if previous is not None and previous[2] else "the days of its folder's month"
    return (
        f"{error}; which days it holds is unknown, so {which} ({_span(days)}) are requested and fail naming it "
        "until it is fixed (said once for this version of the file)"
    )


def _span(days: list[dt.date]) -> str:
    return f"{len(days)} day(s), {days[0]} .. {days[-1]}"


def cluster_refusal(db: SummaryDatabase, conn, cluster: ClusterRecord) -> str | None:
    """Why the cluster's runs would be refused or fail (koku records its source under another cluster id, or the
    sensor's role may not read koku's cluster table), or None."""
    try:
        contradiction = cluster_contradiction(conn, cluster.schema, cluster.source, cluster.cluster_id)
    except psycopg.errors.InsufficientPrivilege as exc:
        # One tenant schema the sensor's role may not read does not stop the others (the failed query was rolled
        # back in its own transaction, so the connection goes on); its runs would fail the same way.
        return (
            f"{cluster.cluster_id}: cannot read {cluster.schema}.reporting_ocp_clusters "
            f"({exc.diag.message_primary or str(exc).splitlines()[0]}); no run requested for it until the "
            "sensor's database role may read that table"
        )
    if contradiction is None:
        return None
    return (
        f"{cluster.cluster_id}: {contradiction[1]}; no run requested for it until its cluster record and the "
        f"registry's row ({db.registry_schema}.cluster_registry) name {contradiction[0]!r}, or koku's row names "
        f"{cluster.cluster_id!r}"
    )


def mass_removal(db: SummaryDatabase, root: DataRoot, cluster: ClusterRecord, changes: FileChanges) -> str | None:
    """The warning for a cluster whose every known file vanished at once (an unmounted volume, an emptied or wrong
    S3 prefix), or None. Running those removals would empty every day the cluster ever had."""
    if not changes.known or changes.present:
        return None
    days = sorted({d for _, _, covered in changes.known.values() for d in covered})
    covered = f" covering {_span(days)}" if days else ""
    return (
        f"{cluster.cluster_id}: all {len(changes.known)} koku Parquet file(s) seen before{covered} are gone at once "
        f"from {root.uri} (source {cluster.source}); no run requested and the registry keeps their file state, so "
        "no summary is emptied. If the volume or S3 prefix is unmounted or wrong, restore it: files that come "
        "back unchanged are not re-run. If the cluster's Parquet was removed on purpose, confirm it with "
        f"DELETE FROM {db.registry_schema}.parquet_file_state WHERE cluster_id = '{cluster.cluster_id}'; "
        "(koku keeps the cluster's summary rows until its source is removed in koku)"
    )


def runs_stored(instance: dg.DagsterInstance, run_keys: list[str]) -> bool:
    """Whether Dagster has stored a run of this sensor for every run key (looked up as its sensor daemon does)."""
    for run_key in run_keys:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}))
        if not any(run.tags.get(SENSOR_NAME_TAG) == SENSOR_NAME for run in runs):
            return False
    return True


class ClusterTick(NamedTuple):
    """What one tick decided for one cluster."""

    requests: list[dg.RunRequest]  # runs to request; their file changes wait in the cursor until the runs exist
    changes: FileChanges | None  # None: refused before its files were listed
    early: list[dt.date]  # days of its files before the day partitions start
    warning: str | None  # why it gets no run (refused, or every file vanished); its changes are not stored


def cluster_tick(
    context,
    db: SummaryDatabase,
    conn,
    root: DataRoot,
    cluster: ClusterRecord,
    cluster_start: dt.date | None,
    unreadable_before: dict[str, list[int]],
    days_window: DayPartitions,
) -> ClusterTick:
    """The runs one cluster needs this tick.

    cluster_start: the start date this cluster's seen days were last requested from (the last tick's, or an older
    one the cursor held while the cluster got no run or its runs were not stored). unreadable_before: the files whose
    days the last tick could not read (``changed_days``).
    """
    refusal = cluster_refusal(db, conn, cluster)
    if refusal is not None:
        # Its runs would be refused or fail: none is requested, and its files are not marked seen, so its days are
        # requested once the registry, koku's cluster table or the privilege is corrected.
        return ClusterTick([], None, [], refusal)
    changes = changed_days(context, db, conn, root, cluster, unreadable_before)
    vanished = mass_removal(db, root, cluster, changes)
    if vanished is not None:
        return ClusterTick([], changes, [], vanished)
    start, end = days_window.first_day(), days_window.last_day()
    days = changes.days
    known = db.registry.known_days(conn, cluster.cluster_id)
    if cluster_start is not None and start < cluster_start:
        # The start date moved back since this cluster's days were last requested: the days it now admits were seen
        # before but never requested.
        days = sorted(set(days) | {d for d in known if start <= d < cluster_start})
    early = sorted({d for d in [*known, *days] if d < start})
    days = [d for d in days if start <= d <= end]
    if not days:
        return ClusterTick([], changes, early, None)
    described = sorted(
        [(u[1], u[2], u[3]) for u in changes.updates]
        + [(key, -1, -1) for key in changes.removed]
        + [("start", str(start), 0)]
    )
    changes_hash = hashlib.sha1(json.dumps(described, default=str).encode()).hexdigest()[:12]
    context.log.info(f"{cluster.cluster_id}: new or changed koku Parquet for {_span(days)}")
    return ClusterTick(run_requests_for(cluster.cluster_id, days, changes_hash), changes, early, None)


class Cursor(NamedTuple):
    """What a tick leaves for the next: its start date, the older starts held for clusters whose days were not
    requested yet, per cluster the file changes whose runs it requested (stored once the runs exist), and per
    cluster the files whose days it could not read (read again, warned about once)."""

    start: dt.date | None
    held_starts: dict[str, dt.date]
    pending: dict[str, dict]  # cluster_id -> {"run_keys": [...], "updates": [[key, size, mtime_ns, [days]]], ...}
    unreadable: dict[str, dict[str, list[int]]]  # cluster_id -> {key: [size, mtime_ns]}

    @classmethod
    def read(cls, text: str | None) -> "Cursor":
        previous = json.loads(text) if text and text.startswith("{") else {}
        return cls(
            dt.date.fromisoformat(previous["start_date"]) if previous.get("start_date") else None,
            {c: dt.date.fromisoformat(d) for c, d in previous.get("held_starts", {}).items()},
            previous.get("pending", {}),
            previous.get("unreadable", {}),
        )

    def dumps(self) -> str:
        # No start: the first tick found the cluster records unreadable and keeps the empty cursor it read.
        state: dict = {"start_date": self.start.isoformat() if self.start is not None else None}
        if self.held_starts:
            state["held_starts"] = {c: d.isoformat() for c, d in sorted(self.held_starts.items())}
        for name in ("pending", "unreadable"):
            if getattr(self, name):
                state[name] = getattr(self, name)
        return json.dumps(state)


def pending_entry(requests: list[dg.RunRequest], changes: FileChanges) -> dict:
    return {
        "run_keys": [r.run_key for r in requests],
        "updates": [[key, size, mtime, [d.isoformat() for d in days]] for _, key, size, mtime, days in changes.updates],
        "removed": changes.removed,
    }


def store_requested_changes(context, db: SummaryDatabase, conn, cursor: Cursor) -> None:
    """Mark seen the file changes of the last tick's requests whose runs Dagster has stored; a cluster whose runs
    are missing (the daemon died before creating them) keeps its files unseen and its start held, so this tick
    requests the same days again, under the same run keys when nothing else changed."""
    for cluster_id, entry in cursor.pending.items():
        if not runs_stored(context.instance, entry["run_keys"]):
            context.log.warning(
                f"{cluster_id}: the runs the last tick requested were not created; its file changes stay unseen and "
                "are requested again"
            )
            continue
        updates = [
            (cluster_id, k, size, mtime, [dt.date.fromisoformat(d) for d in days])
            for k, size, mtime, days in entry["updates"]
        ]
        db.registry.store_file_states(conn, updates, [(cluster_id, key) for key in entry["removed"]])
        cursor.held_starts.pop(cluster_id, None)


def before_start_warning(cluster_id: str, early: list[dt.date]) -> str:
    return (
        f"{cluster_id}: koku data for {len(early)} day(s) before the day partitions start ({early[0]} .. "
        f"{early[-1]}) gets no partition; set {START_DATE_ENV} to {early[0]} or earlier to summarise them"
    )


@dg.sensor(
    name=SENSOR_NAME,
    job=summary_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    description="Adds cluster partitions from the ingest's cluster records and runs the cluster-days whose koku "
    "Parquet is new or changed.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def koku_parquet_sensor(
    context: dg.SensorEvaluationContext,
    koku_db: SummaryDatabase,
    koku_lake: KokuDataLake,
    day_partitions: DayPartitions,
) -> dg.SensorResult:
    root = koku_lake.root()
    previous = Cursor.read(context.cursor)
    cursor = Cursor(day_partitions.first_day(), {}, {}, {})
    requests: list[dg.RunRequest] = []
    warnings: list[str] = []
    early_days: list[str] = []
    with koku_db.connect() as conn:
        koku_db.registry.ensure(conn)
        store_requested_changes(context, koku_db, conn, previous)
        try:
            clusters = discover_clusters(context, koku_db, conn, root)
        except OcpAssetsError as exc:
            return dg.SensorResult(skip_reason=f"cluster records unreadable: {exc}", cursor=previous.dumps())
        existing = set(context.instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME))
        new_clusters = sorted(c.cluster_id for c in clusters if c.cluster_id not in existing)
        updates: list[tuple] = []
        removed: list[tuple[str, str]] = []
        for cluster in clusters:
            cluster_start = previous.held_starts.get(cluster.cluster_id, previous.start)
            unreadable_before = previous.unreadable.get(cluster.cluster_id, {})
            tick = cluster_tick(context, koku_db, conn, root, cluster, cluster_start, unreadable_before, day_partitions)
            # A cluster refused before its files were listed keeps what the last tick knew of them.
            unreadable = tick.changes.unreadable if tick.changes is not None else unreadable_before
            if unreadable:
                cursor.unreadable[cluster.cluster_id] = unreadable
            if tick.warning is not None:
                context.log.warning(tick.warning)
                warnings.append(tick.warning)
            if tick.early:
                early_days.append(before_start_warning(cluster.cluster_id, tick.early))
            # changes is None only for a refused cluster, which has a warning and no requests.
            if tick.requests and tick.changes is not None:
                requests.extend(tick.requests)
                cursor.pending[cluster.cluster_id] = pending_entry(tick.requests, tick.changes)
            elif tick.warning is None and tick.changes is not None:
                updates.extend(tick.changes.updates)
                removed.extend((cluster.cluster_id, key) for key in tick.changes.removed)
                continue
            if cluster_start is not None and cluster_start != cursor.start:
                # Days seen before and admitted only by a start date moved back meanwhile are in no file change: the
                # cursor keeps this cluster's old start (rather than its file state being forgotten, which would
                # re-run every day) until its runs for them exist.
                cursor.held_starts[cluster.cluster_id] = cluster_start
        koku_db.registry.store_file_states(conn, updates, removed)
    for message in early_days:
        context.log.warning(message)
    skip_reason = "; ".join([*warnings, *early_days]) if not requests and not new_clusters else None
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[clusters_partitions.build_add_request(new_clusters)] if new_clusters else [],
        cursor=cursor.dumps(),
        skip_reason=skip_reason or None,
    )
