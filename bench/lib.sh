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
