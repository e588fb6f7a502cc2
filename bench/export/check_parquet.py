"""Reads back what an exporter wrote, with pyarrow: a .parquet file, or a directory of them.

Usage: python check_parquet.py PATH
Prints one line, tab-separated: rows, columns, files, bytes, compression codecs.
Reading every row (not only the footers' counts) makes sure the files are whole.
"""

import os
import sys

import pyarrow.parquet as pq


def main() -> None:
    path = sys.argv[1]
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet")
        )
    else:
        files = [path]
    if not files:
        sys.exit(f"no .parquet file in {path}")
    rows = 0
    columns = set()
    codecs = set()
    size = 0
    for f in files:
        pf = pq.ParquetFile(f)
        size += os.path.getsize(f)
        columns.add(pf.metadata.num_columns)
        for i in range(pf.metadata.num_row_groups):
            rg = pf.metadata.row_group(i)
            for j in range(rg.num_columns):
                codecs.add(rg.column(j).compression)
        n = 0
        for batch in pf.iter_batches(batch_size=65536):
            n += batch.num_rows
        if n != pf.metadata.num_rows:
            sys.exit(f"{f}: footer says {pf.metadata.num_rows} rows, read {n}")
        rows += n
    print(
        f"{rows}\t{'/'.join(str(c) for c in sorted(columns))}\t{len(files)}\t{size}\t"
        f"{','.join(sorted(codecs))}"
    )


if __name__ == "__main__":
    main()
