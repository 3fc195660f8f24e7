#!/bin/sh
# libhmm.so exports (nm -D --defined-only) every name of issue 2 point 4 --
# the malloc family, C23 free_sized/free_aligned_sized, glibc's __libc_*
# aliases and __posix_memalign -- plus malloc_stats, mallinfo2 and mallopt,
# and the hmm_* variant of each together with hmm_check, hmm_stats and
# hmm_stats_print, hmm_prof_dump; and sbrk, brk, __sbrk and __brk, so that every movement
# of the break goes through hmm's lock; and C++ operator new and delete in
# every form (Itanium names) unless built with --disable-cxx.  A
# --disable-override build must export the hmm_* names and none of the
# standard ones.
. "${srcdir:-.}/tests/smoke_lib.sh"
command -v nm > /dev/null 2>&1 || skip "nm not found"
[ -f "$HMM_LIB" ] || fail "$HMM_LIB not found (set HMM_LIB)"

standard="malloc free calloc realloc reallocarray posix_memalign aligned_alloc
memalign valloc pvalloc malloc_usable_size malloc_trim free_sized
free_aligned_sized malloc_stats mallinfo2 mallopt"
aliases="__libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign
__libc_valloc __libc_pvalloc __posix_memalign sbrk brk __sbrk __brk"
extra="hmm_check hmm_stats hmm_stats_print hmm_prof_dump"
cxx_names="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t
_ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm
_ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t
_ZdaPvSt11align_val_tRKSt9nothrow_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t"
cxx=$cxx_names
[ "$HMM_CXX_BUILD" = yes ] || cxx=

# Defined dynamic symbols, one name a line, version suffix (@...) removed.
nm -D --defined-only "$HMM_LIB" > "$tmp/nm.out" || fail "nm -D failed on $HMM_LIB"
awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp/nm.out" | sort -u > "$tmp/names"
[ -s "$tmp/names" ] || fail "nm -D listed no defined symbol in $HMM_LIB"

missing=
for n in $extra; do
    grep -qx "$n" "$tmp/names" || missing="$missing $n"
done
for n in $standard; do
    grep -qx "hmm_$n" "$tmp/names" || missing="$missing hmm_$n"
done

if [ "$HMM_OVERRIDE_BUILD" = yes ]; then
    for n in $standard $aliases $cxx; do
        grep -qx "$n" "$tmp/names" || missing="$missing $n"
    done
    [ -z "$missing" ] || fail "not exported by $HMM_LIB:$missing"
    note "all $(echo $standard $aliases | wc -w) standard names and their hmm_* variants are exported"
    if [ -n "$cxx" ]; then
        note "$(echo $cxx | wc -w) C++ operators new and delete are exported"
    else
        for n in $cxx_names; do
            grep -qx "$n" "$tmp/names" && fail "--disable-cxx build exports $n"
        done
        note "--disable-cxx build: no C++ operator exported"
    fi
else
    [ -z "$missing" ] || fail "not exported by $HMM_LIB:$missing"
    present=
    for n in $standard $aliases $cxx_names; do
        grep -qx "$n" "$tmp/names" && present="$present $n"
    done
    [ -z "$present" ] || fail "--disable-override build exports standard names:$present"
    note "--disable-override build: hmm_* names only"
fi
