"""What the multiprocess executor's forkserver imports once per run, so every step process it forks starts warm.

The forkserver preloads this module (``preload_modules`` in ``ocp_assets.definitions``). Besides the code
location itself (dagster, pyarrow, pandas, pandera), a step process opens the Dagster instance from its
reference (dagster-postgres: SQLAlchemy and alembic, ~1 s to import on two cores) and runs pandera models,
whose pandas backends register on the first validation. Done here, both are paid once by the forkserver
instead of once per step (docs/dagster.md, "Execution settings").

The collector is off while all this is imported (the imports allocate hundreds of thousands of long-lived
objects, and the collections they trigger find almost no garbage: ~1 s of the forkserver's ~4 s start); the
resulting heap is then frozen, so that a step process's first full collection does not walk (and, through
reference counts, copy) what it inherited.
"""

import gc

gc.disable()

# Dagster's own first preload (it guards against user modules that patch namedtuple); imported first, as Dagster does.
# Every import below comes after gc.disable() on purpose (E402).
import dagster._core.executor.multiprocess  # noqa: E402, F401, I001

import contextlib  # noqa: E402
import importlib  # noqa: E402

import ocp_assets.definitions  # noqa: E402, F401 (the code location: the step process reconstructs its job from it)
from ocp_assets.core.validation import warm_up  # noqa: E402

# Imported by DagsterInstance.from_ref in each step process (dagster_postgres for a PostgreSQL-backed instance).
INSTANCE_MODULES = (
    "dagster._core.storage.base_storage",
    "dagster._core.storage.event_log.sql_event_log",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.secrets.env_file",
    "dagster_postgres",
    "psycopg2.extras",
    "upath.core",
    "pyarrow.acero",
    "pyarrow.dataset",
)

for _name in INSTANCE_MODULES:
    with contextlib.suppress(ImportError):  # an optional storage backend that this deployment does not use
        importlib.import_module(_name)

warm_up()

gc.freeze()
gc.enable()
