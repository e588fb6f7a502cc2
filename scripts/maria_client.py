"""The legacy ERP (MariaDB) for the benchmarks' Python drivers (bench/odoo/drive.py,
bench/orm/drive.py): one long-lived `mariadb` client, queries through its stdin. Standard
library only (the dev virtualenv has no MariaDB driver). Settings from the environment the
benchmarks' run.sh set: BENCH_MARIA_HOST, _PORT, _USER, _PASSWORD, _DB.
"""

import datetime
import os
import subprocess
import threading


def parse_dt(text):
    return datetime.datetime.strptime(text if "." in text else text + ".0", "%Y-%m-%d %H:%M:%S.%f")


class Maria:
    END = "__bench_maria_end__"

    def __init__(self):
        setting = os.environ.__getitem__
        cmd = [
            "mariadb", "--no-defaults", "--protocol=TCP", "--host", setting("BENCH_MARIA_HOST"),
            "--port", setting("BENCH_MARIA_PORT"), "--user", setting("BENCH_MARIA_USER"),
            "--database", setting("BENCH_MARIA_DB"), "--batch", "--skip-column-names", "--unbuffered", "--raw",
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            env=dict(os.environ, MYSQL_PWD=setting("BENCH_MARIA_PASSWORD")),
        )
        self.lock = threading.Lock()
        now, utc, zone = self.query("SELECT NOW(6), UTC_TIMESTAMP(6), @@session.time_zone")[0]
        # DATETIME(6) values are the server's wall clock in its session time zone, which a
        # connection without SET time_zone (millrace's, and this one) inherits from the server.
        delta = parse_dt(now) - parse_dt(utc)
        # Whole quarter hours: the two were read in one statement, but round anyway.
        self.offset = round(delta.total_seconds() / 900) * 900
        self.zone = zone

    def query(self, sql):
        with self.lock:
            self.proc.stdin.write(sql.rstrip().rstrip(";") + f";\nSELECT '{self.END}';\n")
            self.proc.stdin.flush()
            rows = []
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the mariadb client exited (query: {sql})")
                line = line.rstrip("\n")
                if line == self.END:
                    return rows
                rows.append(line.split("\t"))

    def epoch(self, text):
        """A DATETIME read from the server as seconds since the epoch."""
        return parse_dt(text).replace(tzinfo=datetime.timezone.utc).timestamp() - self.offset

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
