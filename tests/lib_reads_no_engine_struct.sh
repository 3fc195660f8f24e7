#!/bin/sh
# lib/ reaches the engine only through the functions arenas/internal.h
# declares for it, and reads no field of an engine struct: no file of lib/
# names an engine struct type (every `struct NAME {` of internal.h but the
# ones made for lib/: the tunables lib/ fills, the summaries it reads), a
# variable of one, or a function of internal.h that returns a pointer to
# one, so it never holds a pointer whose fields it could read.
. "${srcdir:-.}/tests/smoke_lib.sh"
header=$srcdir/arenas/internal.h
allowed="tunables region_stats arena_summary"

sed -n 's/^struct \([a-z_]*\) {.*/\1/p' "$header" | sort -u > "$tmp/all"
[ -s "$tmp/all" ] || fail "found no struct in $header"
printf '%s\n' $allowed | sort -u | comm -23 "$tmp/all" - > "$tmp/engine"
types=$(tr '\n' '|' < "$tmp/engine" | sed 's/|$//')
# Typedefs of engine structs, variables of them, functions returning them.
sed -n -E "s/^typedef struct ($types)\\b.* ([a-z_]+);.*/\\2/p" "$header" > "$tmp/names"
sed -n -E "s/^extern .*struct ($types) ([a-z_]+)\\b.*/\\2/p" "$header" >> "$tmp/names"
typedefs=$(tr '\n' '|' < "$tmp/names" | sed 's/|$//')
grep -E "(struct ($types)|\\b($typedefs)) \\*[a-z_]+\\(" "$header" |
    sed -E 's/.* \*([a-z_]+)\(.*/\1/' >> "$tmp/names"
names=$(sort -u "$tmp/names" | tr '\n' '|' | sed 's/|$//')
note "engine structs: $(tr '\n' ' ' < "$tmp/engine")"
note "and what leads to one: $(echo "$names" | tr '|' ' ')"

if grep -n -E "struct ($types)\\b|\\b($names)\\b" "$srcdir"/lib/*.c "$srcdir"/lib/*.h; then
    fail "lib/ reaches into an engine struct (lines above)"
fi
note "lib/ names no engine struct"
