"""Dagster wiring over the pure engine in ocp_assets.core: partitions, resources, IO manager, assets, checks, sensors."""
