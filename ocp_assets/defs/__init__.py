"""Dagster wiring over the pure engine in ocp_assets.core: partitions, resources, assets, checks, sensors."""
