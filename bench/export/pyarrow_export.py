"""Baseline (b) of bench/export: a PostgreSQL table to zstd Parquet the usual Python way.

psycopg 3 runs `COPY (SELECT * FROM table) TO STDOUT (FORMAT csv, HEADER)` and the CSV is
collected in memory, then `pyarrow.csv.read_csv` parses it (column types inferred by pyarrow:
`numeric` becomes float64 or int64; PostgreSQL's t/f booleans and its NULL-versus-"" distinction
are told to the reader) and `pyarrow.parquet.write_table(compression="zstd")` writes the file.

Usage: python pyarrow_export.py URL TABLE OUT.parquet
Prints one line: rows, columns, CSV bytes and the time of each step.
"""

import io
import sys
import time

import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql


def main() -> None:
    url, table, out = sys.argv[1:4]
    t0 = time.monotonic()
    buf = io.BytesIO()
    query = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT csv, HEADER)").format(
        sql.Identifier(*table.split("."))
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(query) as copy:
            for chunk in copy:
                buf.write(chunk)
    csv_bytes = buf.tell()
    buf.seek(0)
    t1 = time.monotonic()
    tbl = pacsv.read_csv(
        buf,
        convert_options=pacsv.ConvertOptions(
            true_values=["t"],
            false_values=["f"],
            # PostgreSQL writes NULL as an empty unquoted field, '' as "".
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    buf = None  # the CSV is no longer needed
    t2 = time.monotonic()
    pq.write_table(tbl, out, compression="zstd")
    t3 = time.monotonic()
    print(
        f"{tbl.num_rows} rows, {tbl.num_columns} columns; COPY {csv_bytes / 1048576:.0f} MB of CSV "
        f"{t1 - t0:.2f} s, read_csv {t2 - t1:.2f} s, write_table {t3 - t2:.2f} s"
    )


if __name__ == "__main__":
    main()
