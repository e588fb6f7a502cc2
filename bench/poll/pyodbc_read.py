#!/usr/bin/env python3
"""The pyodbc contender of bench/poll: reads every row of one query through ODBC, the usual way
a Python sync job does it (cursor.fetchmany(10000), rows as pyodbc returns them: str, Decimal,
datetime), keeps nothing and converts nothing further. Prints the row count.

Usage: pyodbc_read.py CONNECTION_STRING SQL
"""

import sys

import pyodbc

BATCH = 10000


def main() -> int:
    connection_string, sql = sys.argv[1], sys.argv[2]
    conn = pyodbc.connect(connection_string, autocommit=True)
    cursor = conn.cursor()
    cursor.execute(sql)
    rows = 0
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            break
        rows += len(batch)
    cursor.close()
    conn.close()
    print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
