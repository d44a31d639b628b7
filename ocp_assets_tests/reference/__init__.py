"""Independent reference of koku's OCP daily summary (SQL on PostgreSQL) and Parquet fixtures for cross-checks."""

from ocp_assets_tests.reference.koku_sql import (
    DEFAULT_COST_CATEGORY_PATTERNS,
    KEY_COLUMNS,
    PLATFORM_COST_CATEGORY_ID,
    SUMMARY_COLUMNS,
    compare_summaries,
    reference_summary,
)
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

__all__ = [
    "DEFAULT_COST_CATEGORY_PATTERNS",
    "KEY_COLUMNS",
    "PLATFORM_COST_CATEGORY_ID",
    "SUMMARY_COLUMNS",
    "KokuParquetBuilder",
    "compare_summaries",
    "reference_summary",
]
