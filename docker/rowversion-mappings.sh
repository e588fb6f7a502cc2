#!/bin/sh
# Copies the mapping directory SRC to DST with every legacy table switched from the
# `timestamp` strategy on LAST_UPD to `rowversion` on RV, for the SQL Server demo ERP
# (sql/legacy/mssql/schema.sql): there LAST_UPD is set on INSERT only (SQL Server has no
# ON UPDATE CURRENT_TIMESTAMP and the schema has no trigger for it), so a timestamp poll would
# miss every update, while RV ROWVERSION changes with every write.
#
#   docker/rowversion-mappings.sh SRC DST
#
# The Dockerfile runs it at build time (mappings/ -> /app/mappings-mssql), so the copies always
# match the shipped mappings. Only the [legacy] section is touched: `strategy = "timestamp"`
# (or no strategy, which means timestamp) becomes `strategy = "rowversion"`, its `column`
# becomes "RV" and `safety_window` (meaningless for rowversion) is dropped; `hashdiff` and
# the SQL Server strategies are left as they are. Everything else, comments included, is copied.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 SRC DST" >&2
    exit 2
fi
src=$1
dst=$2
mkdir -p "$dst"
found=0
for file in "$src"/*.toml; do
    [ -e "$file" ] || continue
    found=1
    awk -v file="$file" '
        function flush(    i, ts) {
            # The buffered [legacy] section: rewrite it unless it names another strategy.
            ts = (strategy == "" || strategy == "timestamp")
            for (i = 1; i <= n; i++) {
                line = buf[i]
                if (ts && line ~ /^[ \t]*strategy[ \t]*=/) { print "strategy = \"rowversion\""; continue }
                if (ts && line ~ /^[ \t]*column[ \t]*=/) { print "column = \"RV\""; continue }
                if (ts && line ~ /^[ \t]*safety_window[ \t]*=/) continue
                print line
                if (ts && strategy == "" && i == 1) { print "strategy = \"rowversion\""; print "column = \"RV\"" }
            }
            n = 0; inlegacy = 0; strategy = ""
        }
        /^[ \t]*\[/ {
            if (inlegacy) flush()
            if ($0 ~ /^[ \t]*\[legacy\][ \t]*(#.*)?$/) { inlegacy = 1; strategy = ""; buf[++n] = $0; next }
        }
        inlegacy {
            if ($0 ~ /^[ \t]*strategy[ \t]*=/) {
                s = $0; sub(/^[^=]*=[ \t]*"/, "", s); sub(/".*/, "", s); strategy = s
            }
            buf[++n] = $0
            next
        }
        { print }
        END { if (inlegacy) flush() }
    ' "$file" >"$dst/$(basename "$file")"
done
if [ "$found" -eq 0 ]; then
    echo "$0: no *.toml in $src" >&2
    exit 1
fi
