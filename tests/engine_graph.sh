# Sourced by the engine_*.sh tests: the engine's objects, and the call graph
# between its files as nm sees it (a file calls another when it uses a
# symbol the other defines).  Set by AM_TESTS_ENVIRONMENT (or run from the
# top build directory): HMM_ENGINE_ARCHIVE, the convenience library's
# archive of PIC objects.
HMM_ENGINE_ARCHIVE=${HMM_ENGINE_ARCHIVE:-$PWD/.libs/libhmm_engine.a}
command -v nm > /dev/null 2>&1 || skip "nm not found"
[ -f "$HMM_ENGINE_ARCHIVE" ] || fail "$HMM_ENGINE_ARCHIVE not found (set HMM_ENGINE_ARCHIVE)"

# nm_table ARCHIVE-OR-OBJECTS...: "file kind symbol" lines, kind U
# (undefined) or D (defined, global); file is the source's base name
# (libhmm_engine_la-arena.o -> arena).
nm_table() {
    nm -A -g "$@" | awk '
        { file = $1; sub(/:[^:]*$/, "", file); sub(/.*[:\/]/, "", file)
          sub(/\.o$/, "", file); sub(/^.*_la-/, "", file)
          print file, ($2 == "U" ? "U" : "D"), $NF }'
}

# engine_edges: "caller callee" lines, one per arrow between engine files.
engine_edges() {
    nm_table "$HMM_ENGINE_ARCHIVE" | awk '
        $2 == "D" { owner[$3] = $1 }
        $2 == "U" { uses[++n] = $1 " " $3 }
        END { for (i = 1; i <= n; i++) { split(uses[i], u, " ")
                  if (u[2] in owner && owner[u[2]] != u[1]) print u[1], owner[u[2]] } }' | sort -u
}
