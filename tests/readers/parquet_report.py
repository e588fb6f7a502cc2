"""Reads Parquet the way a user's tools do, for the integration tests: pyarrow (a file, or a
Hive-partitioned directory as one dataset) and DuckDB (SQL over read_parquet).

    parquet_report.py PATH [SQL ...]

Prints one JSON object: {"pyarrow": {"rows": N, "types": {column: type}}, "duckdb": [rows of
each SQL]}. In each SQL, {src} stands for the Parquet source as DuckDB reads it. Values that
JSON has no type for (decimals, timestamps) are printed as their text.
"""

import json
import os
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def main():
    path = sys.argv[1]
    queries = sys.argv[2:]
    if os.path.isdir(path):
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
        src = f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
    else:
        table = pq.read_table(path)
        src = f"read_parquet('{path}')"
    report = {
        "pyarrow": {
            "rows": table.num_rows,
            "types": {field.name: str(field.type) for field in table.schema},
        },
        "duckdb": [],
    }
    con = duckdb.connect()
    for sql in queries:
        rows = con.execute(sql.replace("{src}", src)).fetchall()
        report["duckdb"].append([[cell if isinstance(cell, (int, float, str, bool, type(None))) else str(cell) for cell in row] for row in rows])
    print(json.dumps(report))


if __name__ == "__main__":
    main()
