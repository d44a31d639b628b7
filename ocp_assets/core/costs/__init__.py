"""koku's OCP cost-model files (contract section 8), computed with pyarrow from Parquet and PostgreSQL rows.

One function per koku file call: given koku's parameter dict for the call (8.3, parsed by ``params``), the line
items read from Parquet (``inputs``) and the summary rows read from PostgreSQL (``inputs.read_summary_pod_rows``),
it returns exactly the rows koku's file inserts (C3), as a pyarrow Table. Nothing here writes: the shared
commit-or-rehearse path does (phase 2). ``rates`` turns koku's cost model tables into parameter sets (8.2).
"""
