/* The pattern every block carries, derived from (seed, block id, size), and
 * the checks that report a corrupted block with a hex dump. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "torture.h"

static const char *const how_names[] = {"malloc", "calloc", "memalign", "posix_memalign",
                                        "aligned_alloc", "realloc", "reallocarray"};

uint64_t pat_key(uint64_t id, size_t size)
{
    return mix64(opt.seed * 0x9e3779b97f4a7c15ULL ^ mix64(id) ^ ((uint64_t)size * 0xff51afd7ed558ccdULL));
}

static inline uint64_t pat_word(uint64_t key, size_t w)
{
    uint64_t v = key + (uint64_t)w * 0x9e3779b97f4a7c15ULL;
    return v ^ (v >> 29);
}

static inline unsigned char pat_byte(uint64_t key, size_t off)
{
    return (unsigned char)(pat_word(key, off >> 3) >> ((off & 7) * 8));
}

#define SPARSE_MIN MiB /* blocks at least this large get the sparse pattern */
#define PAGE_SPAN (4 * KiB)
#define PROBE 64

static size_t range_op(enum pat_op op, unsigned char *p, uint64_t key, size_t from, size_t to)
{
    size_t o = from;
    switch (op) {
    case OP_FILL:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; o < to && (o & 7); o++)
            p[o] = pat_byte(key, o);
        for (; o + 8 <= to; o += 8) {
            uint64_t v = pat_word(key, o >> 3);
            memcpy(p + o, &v, 8);
        }
#endif
        for (; o < to; o++)
            p[o] = pat_byte(key, o);
        return NO_MISMATCH;
    case OP_CHECK:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; o < to && (o & 7); o++)
            if (p[o] != pat_byte(key, o))
                return o;
        for (; o + 8 <= to; o += 8) {
            uint64_t v;
            memcpy(&v, p + o, 8);
            if (v != pat_word(key, o >> 3))
                break;
        }
#endif
        for (; o < to; o++)
            if (p[o] != pat_byte(key, o))
                return o;
        return NO_MISMATCH;
    case OP_ZERO:
        for (; o < to && (o & 7); o++)
            if (p[o])
                return o;
        for (; o + 8 <= to; o += 8) {
            uint64_t v;
            memcpy(&v, p + o, 8);
            if (v)
                break;
        }
        for (; o < to; o++)
            if (p[o])
                return o;
        return NO_MISMATCH;
    }
    return NO_MISMATCH;
}

size_t pattern_op(enum pat_op op, unsigned char *p, uint64_t key, size_t size, size_t limit)
{
    size_t r;
    if (limit > size)
        limit = size;
    if (size < SPARSE_MIN)
        return range_op(op, p, key, 0, limit);
    if ((r = range_op(op, p, key, 0, limit < PAGE_SPAN ? limit : PAGE_SPAN)) != NO_MISMATCH)
        return r;
    for (size_t o = PAGE_SPAN; o + PAGE_SPAN < size && o < limit; o += PAGE_SPAN) {
        size_t e = o + PROBE < limit ? o + PROBE : limit;
        if ((r = range_op(op, p, key, o, e)) != NO_MISMATCH)
            return r;
    }
    if (size - PAGE_SPAN < limit)
        return range_op(op, p, key, size - PAGE_SPAN, limit);
    return NO_MISMATCH;
}

static void hexdump(const char *label, const unsigned char *p, size_t from, size_t to, uint64_t key, bool expected)
{
    char line[16 * 3 + 64];
    for (size_t o = from; o < to; o += 16) {
        int n = snprintf(line, sizeof line, "    %s +%-8zu", label, o);
        for (size_t i = o; i < o + 16 && i < to; i++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %02x", expected ? pat_byte(key, i) : p[i]);
        err("%s\n", line);
    }
}

void corruption(const struct blk *b, const unsigned char *where, uint64_t key, size_t off, const char *when,
                bool zero)
{
    unsigned char exp = zero ? 0 : pat_byte(key, off);
    err("hmm-stress: CORRUPTION %s: block id=%#" PRIx64 " (thread tag %" PRIu64 ", serial %" PRIu64
        ") %s(size %zu, align %u) at %p: offset %zu expected 0x%02x found 0x%02x\n",
        when, b->id, b->id >> 40, b->id & ((UINT64_C(1) << 40) - 1), how_names[b->how], b->size, b->align,
        (const void *)where, off, exp, where[off]);
    size_t from = off & ~(size_t)15, to = from + 32;
    size_t lim = b->size;
    if (to > lim)
        to = lim;
    if (!zero)
        hexdump("expected", where, from, to, key, true);
    hexdump("found   ", where, from, to, key, false);
    _exit(EXIT_CORRUPT);
}

void verify_blk(const struct blk *b, const char *when)
{
    uint64_t key = pat_key(b->id, b->size);
    size_t off = pattern_op(OP_CHECK, b->p, key, b->size, b->size);
    if (off != NO_MISMATCH)
        corruption(b, b->p, key, off, when, false);
}

void check_pointer(const struct blk *b, const char *call)
{
    size_t a = b->align > 16 ? b->align : 16;
    if ((uintptr_t)b->p % a)
        die(EXIT_CORRUPT, "hmm-stress: %s(%zu) returned %p, not %zu-byte aligned\n", call, b->size, (void *)b->p, a);
    size_t u = hmm_malloc_usable_size(b->p);
    if (u < b->size)
        die(EXIT_CORRUPT, "hmm-stress: %s(%zu) returned %p with malloc_usable_size %zu\n", call, b->size,
            (void *)b->p, u);
}
