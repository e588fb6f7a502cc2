# shellcheck shell=bash
# Shared by the bench/*/run.sh scripts (sourced, not run).

# bench_update_readme NAME RESULTS_FILE README: replaces only the text between the
# `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers of README with RESULTS_FILE, so each
# benchmark keeps to its own section; adds the file and an empty `## NAME` section when missing.
bench_update_readme() {
    local name=$1 results=$2 readme=$3 tmp
    if [[ ! -f $readme ]]; then
        # shellcheck disable=SC2016  # the backquotes are Markdown
        printf '# millrace benchmarks\n\nEach benchmark is `bench/<name>/run.sh`; it rewrites its own section below.\n' >"$readme"
    fi
    if ! grep -q "^<!-- $name:begin -->\$" "$readme" || ! grep -q "^<!-- $name:end -->\$" "$readme"; then
        printf '\n## %s\n\n<!-- %s:begin -->\n<!-- %s:end -->\n' "$name" "$name" "$name" >>"$readme"
    fi
    tmp=$(mktemp "$readme.XXXXXX")
    awk -v results="$results" -v begin="<!-- $name:begin -->" -v end="<!-- $name:end -->" '
        $0 == begin { print; while ((getline line < results) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }
    ' "$readme" >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$readme"
}

# bench_percentiles FILE P...: the nearest-rank percentiles P (0 < P <= 100) of the numbers in
# FILE (one a line), on one line separated by spaces; nothing when FILE holds no number.
bench_percentiles() {
    local file=$1
    shift
    sort -g -- "$file" | awk -v ps="$*" '
        NF { v[++n] = $1 }
        END {
            if (!n) exit
            k = split(ps, p, " ")
            for (i = 1; i <= k; i++) {
                r = p[i] * n / 100
                r = (r > int(r)) ? int(r) + 1 : int(r)
                printf "%s%s", (i > 1 ? " " : ""), v[r < 1 ? 1 : r]
            }
            print ""
        }'
}

# bench_median NUMBER...: the median (the mean of the middle two for an even count).
bench_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[++n] = $1 } END { if (n) print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

# bench_sql_open COMMAND...: starts COMMAND, a SQL client reading statements on its standard
# input and printing each result unbuffered without headers (`mariadb --batch --skip-column-names
# --unbuffered`), as a coprocess for bench_sql: a query then costs about a millisecond instead of
# a client's start (fine-grained polling without loading the machine). One at a time.
bench_sql_open() {
    coproc BENCH_SQL { "$@"; }
    # Plain descriptors (a coprocess's own are closed in subshells such as $(bench_sql …)).
    exec {BENCH_SQL_IN}>&"${BENCH_SQL[1]}" {BENCH_SQL_OUT}<&"${BENCH_SQL[0]}"
    BENCH_SQL_CLIENT=$BENCH_SQL_PID
}

# bench_sql SQL: runs SQL (one or more statements; the last without its `;`) on bench_sql_open's
# client and prints the result rows; fails when the client has gone (a batch client exits on
# an error).
bench_sql() {
    local line
    printf '%s;\nSELECT '\''--bench-sql-end--'\'';\n' "$1" >&"$BENCH_SQL_IN" || return 1
    while IFS= read -r -u "$BENCH_SQL_OUT" line; do
        [[ $line == --bench-sql-end-- ]] && return 0
        printf '%s\n' "$line"
    done
    return 1
}

# bench_sql_close: ends bench_sql_open's client (closes its input) and waits for it.
bench_sql_close() {
    [[ -n ${BENCH_SQL_CLIENT:-} ]] || return 0
    local fd
    # The client sees the end of its input only once every copy of the pipe's write end is closed,
    # the coprocess's own included.
    for fd in "$BENCH_SQL_IN" "$BENCH_SQL_OUT" "${BENCH_SQL[@]}"; do
        eval "exec $fd>&-"
    done
    wait "$BENCH_SQL_CLIENT" 2>/dev/null || true
    BENCH_SQL_CLIENT=""
}
