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

import dagster as dg
import psycopg

from ocp_assets.core.errors import OcpAssetsError
from ocp_assets.core.ingest import cluster_record_key, read_cluster_registry
from ocp_assets.core.layout import (
    GPU,
    SUMMARY_REPORT_TYPES,
    dataset_prefix,
    days_outside_folder,
)
from ocp_assets.core.reader import file_days
from ocp_assets.core.registry import ClusterRecord, FileState, cluster_contradiction
from ocp_assets.core.storage import DataRoot
from ocp_assets.defs.assets import GROUP, MAX_PARTITIONS_PER_RUN
from ocp_assets.defs.partitions import (
    CLUSTERS_PARTITIONS_NAME,
    START_DATE_ENV,
    clusters_partitions,
    first_day,
    last_day,
    partition_key,
)
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase

SENSOR_NAME = "koku_parquet_sensor"
JOB_NAME = "summarize_cluster_days"
INVALID_KEY_CHARACTERS = set("|,[]*\n")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Listing a cluster's files is cheap (one footer read per new or changed file): late data waits at most this long.
SENSOR_INTERVAL_SECONDS = 10

summary_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.groups(GROUP),
    description="The cluster-day summary: read koku's Parquet, deduplicate and merge labels, write koku's PostgreSQL, "
    "run every check.",
)


# The report types whose files feed a summary: the daily summary's four and the GPU summary's gpu_usage.
WATCHED_REPORT_TYPES = (*SUMMARY_REPORT_TYPES, GPU)


def cluster_files(root: DataRoot, cluster: ClusterRecord) -> list[tuple[FileState, str]]:
    found = []
    for report_type in WATCHED_REPORT_TYPES:
        for daily in (False, True):
            for info in root.list_files(dataset_prefix(cluster.account, report_type.name, cluster.source, daily=daily)):
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


def discover_clusters(context, db: SummaryDatabase, conn, root: DataRoot) -> list[ClusterRecord]:
    """Register every cluster recorded under the data root; returns the registry rows of this data root."""
    registered_by_source = {c.source: c for c in db.registry.clusters(conn)}
    for identity in read_cluster_registry(root):
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


def changed_days(
    context, db: SummaryDatabase, conn, root: DataRoot, cluster: ClusterRecord
) -> tuple[list[dt.date], list[tuple], list[str]]:
    """Days touched by new, changed or removed files of one cluster; the file-state rows to store, the keys to "
    "forget."""
    known = db.registry.file_states(conn, cluster.cluster_id)
    touched: set[dt.date] = set()
    updates = []
    present = set()
    for state, path in cluster_files(root, cluster):
        present.add(state.key)
        previous = known.get(state.key)
        if previous is not None and previous[:2] == (state.size, state.mtime_ns):
            continue
        try:
            covered = file_days(root, path)
        except OcpAssetsError as exc:
            # Retried every tick; the run that reads it would fail the same way, naming the file.
            context.log.warning(f"{exc}; will retry")
            continue
        outside = days_outside_folder(state.key, covered)
        if outside:
            context.log.warning(
                f"{root.display(state.key)}: rows dated {outside[0]} .. {outside[-1]} lie outside the month "
                "of their folder and are not summarised (koku reads a month's rows from its own folder)"
            )
            covered = [d for d in covered if d not in outside]
        # A rewritten file may have lost days: those are re-run too.
        touched.update(covered, previous[2] if previous is not None else ())
        updates.append((cluster.cluster_id, state.key, state.size, state.mtime_ns, covered))
    removed = sorted(set(known) - present)
    for key in removed:
        touched.update(known[key][2])
    return sorted(touched), updates, removed


def _span(days: list[dt.date]) -> str:
    return f"{len(days)} day(s), {days[0]} .. {days[-1]}"


@dg.sensor(
    name=SENSOR_NAME,
    job=summary_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    description="Adds cluster partitions from the ingest's cluster records and runs the cluster-days whose koku "
    "Parquet is new or changed.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def koku_parquet_sensor(
    context: dg.SensorEvaluationContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake
) -> dg.SensorResult:
    root = koku_lake.root()
    start, end = first_day(), last_day()
    previous = json.loads(context.cursor) if context.cursor and context.cursor.startswith("{") else {}
    previous_start = dt.date.fromisoformat(previous["start_date"]) if previous.get("start_date") else None
    previous_held = {c: dt.date.fromisoformat(d) for c, d in previous.get("held_starts", {}).items()}
    with koku_db.connect() as conn:
        koku_db.registry.ensure(conn)
        try:
            clusters = discover_clusters(context, koku_db, conn, root)
        except OcpAssetsError as exc:
            return dg.SensorResult(skip_reason=f"cluster records unreadable: {exc}")
        existing = set(context.instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME))
        new_clusters = sorted(c.cluster_id for c in clusters if c.cluster_id not in existing)
        requests: list[dg.RunRequest] = []
        all_updates: list[tuple] = []
        all_removed: list[tuple[str, str]] = []
        before_start: dict[str, tuple[dt.date, dt.date, int]] = {}
        refused: list[str] = []
        held_starts: dict[str, dt.date] = {}
        for cluster in clusters:
            # The start date this cluster's seen days were last requested from: the last tick's, or an older one
            # the cursor held while the cluster got no run.
            cluster_start = previous_held.get(cluster.cluster_id, previous_start)
            message = None
            try:
                contradiction = cluster_contradiction(conn, cluster.schema, cluster.source, cluster.cluster_id)
            except psycopg.errors.InsufficientPrivilege as exc:
                # One tenant schema the sensor's role may not read does not stop the others (the failed query was
                # rolled back in its own transaction, so the connection goes on); its runs would fail the same way.
                message = (
                    f"{cluster.cluster_id}: cannot read {cluster.schema}.reporting_ocp_clusters "
                    f"({exc.diag.message_primary or str(exc).splitlines()[0]}); no run requested for it until the "
                    "sensor's database role may read that table"
                )
            else:
                if contradiction is not None:
                    message = (
                        f"{cluster.cluster_id}: {contradiction[1]}; no run requested for it until its cluster record "
                        f"and the registry's row ({koku_db.registry_schema}.cluster_registry) name "
                        f"{contradiction[0]!r}, or koku's row names {cluster.cluster_id!r}"
                    )
            if message is not None:
                # Its runs would be refused or fail: none is requested, and its files are not marked seen, so its
                # days are requested once the registry, koku's cluster table or the privilege is corrected. Days
                # seen before and admitted only by a start date moved back meanwhile are in no file change: the
                # cursor keeps this cluster's old start (rather than its file state being forgotten, which would
                # re-run every day) until a tick requests them.
                if cluster_start is not None and cluster_start != start:
                    held_starts[cluster.cluster_id] = cluster_start
                context.log.warning(message)
                refused.append(message)
                continue
            days, updates, removed = changed_days(context, koku_db, conn, root, cluster)
            known = koku_db.registry.known_days(conn, cluster.cluster_id)
            if cluster_start is not None and start < cluster_start:
                # The start date moved back since this cluster's days were last requested: the days it now admits
                # were seen before but never requested.
                days = sorted(set(days) | {d for d in known if start <= d < cluster_start})
            early = sorted({d for d in [*known, *days] if d < start})
            if early:
                before_start[cluster.cluster_id] = (early[0], early[-1], len(early))
            days = [d for d in days if start <= d <= end]
            if days:
                changes = sorted(
                    [(u[1], u[2], u[3]) for u in updates]
                    + [(key, -1, -1) for key in removed]
                    + [("start", str(start), 0)]
                )
                changes_hash = hashlib.sha1(json.dumps(changes, default=str).encode()).hexdigest()[:12]
                requests.extend(run_requests_for(cluster.cluster_id, days, changes_hash))
                context.log.info(f"{cluster.cluster_id}: new or changed koku Parquet for {_span(days)}")
            all_updates.extend(updates)
            all_removed.extend((cluster.cluster_id, key) for key in removed)
        koku_db.registry.store_file_states(conn, all_updates, all_removed)
    skip_reason = "; ".join(refused) if refused and not requests else None
    for cluster_id, (first, last, count) in before_start.items():
        message = (
            f"{cluster_id}: koku data for {count} day(s) before the day partitions start ({first} .. {last}) "
            f"gets no partition; set {START_DATE_ENV} to {first} or earlier to summarise them"
        )
        context.log.warning(message)
        if not requests:
            skip_reason = f"{skip_reason}; {message}" if skip_reason else message
    state = {"start_date": start.isoformat()}
    if held_starts:
        state["held_starts"] = {c: d.isoformat() for c, d in sorted(held_starts.items())}
    cursor = json.dumps(state)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[clusters_partitions.build_add_request(new_clusters)] if new_clusters else [],
        cursor=cursor,
        skip_reason=skip_reason if not new_clusters else None,
    )
