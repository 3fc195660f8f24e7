#!/bin/sh
# The engine (arenas/, the convenience library libhmm_engine) stands alone:
# no symbol it uses and does not define itself is defined by an object of
# lib/, in any build of the two (normal, test, ThreadSanitizer).  Prints
# the symbols the engine takes from outside (the C library, ck, pthread).
. "${srcdir:-.}/tests/smoke_lib.sh"
. "${srcdir:-.}/tests/engine_graph.sh"
HMM_FACE_OBJDIR=${HMM_FACE_OBJDIR:-$PWD/lib}

# face_objects VARIANT: lib/'s objects of the library built like the
# engine archive libhmm_engine$VARIANT.a (PIC ones if there are).
face_objects() {
    dir=$HMM_FACE_OBJDIR/.libs
    [ -d "$dir" ] || dir=$HMM_FACE_OBJDIR
    case $1 in
    "") ls "$dir"/*.o 2>/dev/null | grep -v '_la-' ;;
    *) ls "$dir"/libhmm$1_la-*.o 2>/dev/null ;;
    esac
}

checked=0
for variant in "" _test _tsan; do
    archive=${HMM_ENGINE_ARCHIVE%.a}$variant.a
    [ -f "$archive" ] || continue
    face=$(face_objects "$variant")
    [ -n "$face" ] || fail "no object of lib/ for $(basename "$archive") in $HMM_FACE_OBJDIR (set HMM_FACE_OBJDIR)"
    nm_table $face | awk '$2 == "D" { print $3 }' | sort -u > "$tmp/face"
    nm_table "$archive" > "$tmp/engine"
    awk '$2 == "D" { print $3 }' "$tmp/engine" | sort -u > "$tmp/defined"
    awk '$2 == "U" { print $3 }' "$tmp/engine" | sort -u | comm -23 - "$tmp/defined" > "$tmp/outside"
    taken=$(comm -12 "$tmp/outside" "$tmp/face" | tr '\n' ' ')
    [ -z "$taken" ] || fail "$(basename "$archive") uses symbols defined in lib/: $taken"
    note "$(basename "$archive") takes from outside the engine only: $(grep -v '^_' "$tmp/outside" | tr '\n' ' ')"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "no engine archive checked"
