/* Statistics: hmm_stats fills a struct from the region, the huge blocks and
 * every arena's summary (read without blocking allocation); printing as
 * text or JSON without stdio; glibc's malloc_stats and mallinfo2. */
#include "lib.h"

#include <errno.h>
#include <string.h>

/* One arena's row, from its counters; blocks parked in other threads'
 * caches count as in use, since only their owners may read them. */
static void visit_arena(const struct arena_summary *a, void *ctx)
{
    struct hmm_stats *s = ctx;
    struct hmm_arena_stats row = { .id = a->id };
    size_t cached = a->own_cached_bytes, cached_blocks = a->own_cached_blocks;
    size_t overhead = cached + (a->used_blocks - cached_blocks) * BLOCK_HEADER;
    row.cached_bytes = cached - cached_blocks * BLOCK_HEADER;
    row.in_use_bytes = a->used_bytes > overhead ? a->used_bytes - overhead : 0;
    row.chunks = a->chunks;
    row.chunk_bytes = a->chunk_bytes;
    row.free_bytes = a->free_bytes;
    row.mallocs = a->mallocs;
    row.frees = a->frees;
    row.remote_frees = a->remote_frees;
    row.threads = a->threads;
    row.orphaned = row.threads == 0;
    s->purged_in_arenas += a->purged_bytes;
    s->returned_bytes += a->purged_total;
    s->in_use_bytes += row.in_use_bytes;
    s->free_bytes += row.free_bytes;
    s->cached_bytes += row.cached_bytes;
    s->slow_mallocs += row.mallocs;
    s->slow_frees += row.frees;
    s->arena_count++;
    if (s->arenas_listed < HMM_STATS_ARENAS)
        s->arenas[s->arenas_listed++] = row;
}

HMM_EXPORT int hmm_stats(struct hmm_stats *s)
{
    thread_init();
    memset(s, 0, sizeof(*s));
    struct arena_summary retired;
    engine_retired(&retired);
    s->slow_mallocs = retired.mallocs;
    s->slow_frees = retired.frees;
    s->returned_bytes = retired.purged_total;
    engine_arenas(visit_arena, s);
    struct region_stats region;
    region_stats(&region);
    size_t huge_usable;
    huge_stats(&s->huge_blocks, &s->huge_bytes, &huge_usable);
    s->in_use_bytes += huge_usable;
    s->region_bytes = region.region_bytes;
    s->region_free_bytes = region.free_bytes;
    s->region_dirty_bytes = region.free_bytes - region.purged_bytes;
    s->region_break = region.brk;
    s->mapped_chunk_bytes = region.mapped_bytes;
    s->returned_bytes += region.returned_bytes;
    s->footprint_bytes = region.region_bytes - region.purged_bytes - s->purged_in_arenas +
                         region.mapped_bytes + s->huge_bytes;
    s->mallocs = s->slow_mallocs;
    s->frees = s->slow_frees;
    return 0;
}

static void print_text(int fd, const struct hmm_stats *s)
{
    fmt_fd(fd, "hmm statistics\n"
               "  in use        %zu bytes\n  free in arenas %zu bytes\n  cached        %zu bytes\n"
               "  region        %zu bytes (%zu free, %zu of them resident), break at %p\n"
               "  mapped chunks %zu bytes\n"
               "  huge blocks   %zu (%zu bytes)\n  returned      %zu bytes\n  footprint     %zu bytes\n"
               "  slow mallocs  %llu\n  slow frees    %llu\n  arenas        %u\n",
           s->in_use_bytes, s->free_bytes, s->cached_bytes, s->region_bytes, s->region_free_bytes,
           s->region_dirty_bytes, (void *)s->region_break, s->mapped_chunk_bytes, s->huge_blocks, s->huge_bytes,
           s->returned_bytes, s->footprint_bytes, (unsigned long long)s->slow_mallocs,
           (unsigned long long)s->slow_frees, s->arena_count);
    for (unsigned i = 0; i < s->arenas_listed; i++) {
        const struct hmm_arena_stats *a = &s->arenas[i];
        fmt_fd(fd, "  arena %u: %u threads%s, %zu chunks (%zu bytes), in use %zu, free %zu, "
                   "mallocs %llu, frees %llu, remote frees %llu\n",
               a->id, a->threads, a->orphaned ? " (orphaned)" : "", a->chunks, a->chunk_bytes,
               a->in_use_bytes, a->free_bytes, (unsigned long long)a->mallocs,
               (unsigned long long)a->frees, (unsigned long long)a->remote_frees);
    }
}

static void print_json(int fd, const struct hmm_stats *s)
{
    fmt_fd(fd, "{\"in_use_bytes\":%zu,\"free_bytes\":%zu,\"cached_bytes\":%zu,\"region_bytes\":%zu,"
               "\"region_free_bytes\":%zu,\"region_dirty_bytes\":%zu,\"region_break\":%zu,"
               "\"mapped_chunk_bytes\":%zu,"
               "\"huge_blocks\":%zu,\"huge_bytes\":%zu,\"returned_bytes\":%zu,\"footprint_bytes\":%zu,"
               "\"slow_mallocs\":%llu,\"slow_frees\":%llu,\"arena_count\":%u,\"arenas\":[",
           s->in_use_bytes, s->free_bytes, s->cached_bytes, s->region_bytes, s->region_free_bytes,
           s->region_dirty_bytes, s->region_break, s->mapped_chunk_bytes, s->huge_blocks, s->huge_bytes, s->returned_bytes,
           s->footprint_bytes, (unsigned long long)s->slow_mallocs,
           (unsigned long long)s->slow_frees, s->arena_count);
    for (unsigned i = 0; i < s->arenas_listed; i++) {
        const struct hmm_arena_stats *a = &s->arenas[i];
        fmt_fd(fd, "%s{\"id\":%u,\"threads\":%u,\"orphaned\":%s,\"chunks\":%zu,\"chunk_bytes\":%zu,"
                   "\"in_use_bytes\":%zu,\"free_bytes\":%zu,\"cached_bytes\":%zu,\"mallocs\":%llu,"
                   "\"frees\":%llu,\"remote_frees\":%llu}",
               i ? "," : "", a->id, a->threads, a->orphaned ? "true" : "false", a->chunks,
               a->chunk_bytes, a->in_use_bytes, a->free_bytes, a->cached_bytes,
               (unsigned long long)a->mallocs, (unsigned long long)a->frees,
               (unsigned long long)a->remote_frees);
    }
    fmt_fd(fd, "]}\n");
}

HMM_EXPORT int hmm_stats_print(int fd, const char *format)
{
    bool json = format != NULL && strcmp(format, "json") == 0;
    if (!json && (format == NULL || strcmp(format, "text") != 0)) {
        errno = EINVAL;
        return -1;
    }
    struct hmm_stats s;
    hmm_stats(&s);
    if (json)
        print_json(fd, &s);
    else
        print_text(fd, &s);
    return 0;
}

void stats_print_at_exit(void)
{
    hmm_stats_print(2, "text");
}

HMM_EXPORT void hmm_malloc_stats(void)
{
    struct hmm_stats s;
    hmm_stats(&s);
    fmt_fd(2, "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
              "Total (incl. mmap):\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
              "max mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
           s.region_bytes + s.mapped_chunk_bytes, s.in_use_bytes - s.huge_bytes,
           s.footprint_bytes, s.in_use_bytes, s.huge_blocks, s.huge_bytes);
}

HMM_EXPORT struct mallinfo2 hmm_mallinfo2(void)
{
    struct hmm_stats s;
    hmm_stats(&s);
    struct mallinfo2 info = {
        .arena = s.region_bytes + s.mapped_chunk_bytes,
        .hblks = s.huge_blocks,
        .hblkhd = s.huge_bytes,
        .uordblks = s.in_use_bytes,
        .fordblks = s.free_bytes + s.region_free_bytes + s.cached_bytes,
        .keepcost = s.region_free_bytes,
    };
    return info;
}

#if defined(HMM_OVERRIDE) && !defined(HMM_NO_OVERRIDE)
void malloc_stats(void) __attribute__((alias("hmm_malloc_stats"), visibility("default")));
struct mallinfo2 mallinfo2(void) __attribute__((alias("hmm_mallinfo2"), visibility("default")));
#endif
