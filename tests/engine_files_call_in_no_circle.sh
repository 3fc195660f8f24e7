#!/bin/sh
# No circle between the engine's files: with an arrow from a file to each
# file whose symbols it uses (nm of the convenience library's objects),
# the graph sorts topologically.  Calls flow heap -> cache -> arena ->
# region -> os; the registry and engine.c (lib/'s door) call down beside
# them; map, spin, tunables and report are leaves over os, and classes
# (the size-class tables) a leaf.  Prints one line per arrow.
. "${srcdir:-.}/tests/smoke_lib.sh"
. "${srcdir:-.}/tests/engine_graph.sh"
command -v tsort > /dev/null 2>&1 || skip "tsort not found"

engine_edges > "$tmp/edges"
[ -s "$tmp/edges" ] || fail "nm found no call between the engine's files"
sed 's/ / -> /' "$tmp/edges"
tsort "$tmp/edges" > /dev/null 2> "$tmp/loop" || true
[ ! -s "$tmp/loop" ] || fail "the engine's files call in a circle: $(tr '\n' ' ' < "$tmp/loop")"
note "$(wc -l < "$tmp/edges") arrows, no circle"
