/* A block that realloc has to move to grow gets the room hmm(3) promises,
 * no more and no less: a quarter more than asked below 1 KiB and from 64K
 * to 256K, none from 1K to 64K (the size classes, a quarter apart, round
 * up by as much), twice the size asked from 256K, each rounded up to its
 * size class (16 bytes to 512, then four classes a doubling up to 64K)
 * or to 16 bytes above, and all of it usable: every byte is written and
 * the block freed without an abort.  One that moves into a chunk of its
 * own (from about 512K) shows only what it asked in malloc_usable_size,
 * while its chunk reserves eight times that (up to half of
 * mmap_threshold), untouched, and it grows into the reserve in place
 * with another thread's chunk above.  Each block grows with a neighbour
 * in use right above it, so that it must move.  Default options; calls
 * the hmm_* names, links libhmm.la. */
#include "config.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define HEADER 16
#define HELD_MAX 64

static void *held[HELD_MAX];   /* neighbours and blocks not side by side: freed at the end */
static int held_count;

static void hold(void *p)
{
    CHECK(held_count < HELD_MAX, "too many neighbours");
    held[held_count++] = p;
}

static size_t round_up(size_t size, size_t step)
{
    return (size + step - 1) / step * step;
}

/* The usable size of a fresh block of size bytes: its class up to 64K,
 * 16-byte steps above. */
static size_t class_round(size_t size)
{
    if (size <= 512 || size > 64 * KiB)
        return round_up(size, 16);
    size_t doubling = 1024;
    while (doubling < size)
        doubling *= 2;
    return round_up(size, doubling / 8);
}

/* A block of old bytes, filled, with a block in use right above it: of
 * blocks allocated one after another, the first two side by side. */
static unsigned char *block_with_neighbour(size_t old)
{
    unsigned char *last = hmm_malloc(old);
    for (int try = 0; try < 16; try++) {
        unsigned char *fresh = hmm_malloc(old);
        CHECK(last != NULL && fresh != NULL, "malloc(%zu) failed", old);
        unsigned char *p = last < fresh ? last : fresh, *next = last < fresh ? fresh : last;
        if (next == p + hmm_malloc_usable_size(p) + HEADER) {
            hold(next);
            memset(p, 0x5a, old);
            return p;
        }
        hold(last);
        last = fresh;
    }
    CHECK(0, "no two blocks of %zu bytes side by side", old);
    return NULL;
}

/* Grow a fresh block of old bytes to size, which must move it; its
 * bytes kept, every usable byte written. */
static unsigned char *moved_block(size_t old, size_t size)
{
    unsigned char *p = block_with_neighbour(old), *moved = hmm_realloc(p, size);
    CHECK(moved != NULL, "realloc(%zu -> %zu) failed", old, size);
    CHECK(moved != p, "realloc(%zu -> %zu) grew in place under its neighbour", old, size);
    for (size_t i = 0; i < old; i++)
        CHECK(moved[i] == 0x5a, "realloc(%zu -> %zu) lost byte %zu", old, size, i);
    memset(moved, 0xa5, hmm_malloc_usable_size(moved));
    return moved;
}

/* room is the room the manual gives a block grown to size, in bytes. */
static void grows_with_room(size_t old, size_t size, size_t room)
{
    unsigned char *moved = moved_block(old, size);
    size_t usable = hmm_malloc_usable_size(moved), least = class_round(size + room);
    printf("realloc(%zu -> %zu): usable %zu, room %zu\n", old, size, usable, room);
    CHECK(usable >= least && usable <= least + 16, "realloc(%zu -> %zu): usable %zu, not %zu (room %zu)", old,
          size, usable, least, room);
    hmm_free(moved);
}

static size_t chunk_bytes(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    size_t bytes = 0;
    for (unsigned i = 0; i < s.arenas_listed; i++)
        bytes += s.arenas[i].chunk_bytes;
    return bytes;
}

static void *other_thread_chunk(void *arg)
{
    (void)arg;
    unsigned char *p = hmm_malloc(2 * MiB);
    CHECK(p != NULL, "malloc(2 MiB) failed");
    p[0] = 1;
    return p;
}

/* Grown from old to size, which needs a chunk of its own, the block shows
 * size and its chunk reserves reserve past it, not resident; it then
 * grows to reserve in place, another thread's chunk lying above. */
static void moves_into_own_chunk(size_t old, size_t size, size_t reserve)
{
    unsigned char *p = block_with_neighbour(old);
    size_t chunks_before = chunk_bytes(), resident_before = resident_bytes();
    unsigned char *moved = hmm_realloc(p, size);
    size_t resident = resident_bytes() - resident_before, chunks = chunk_bytes() - chunks_before;
    CHECK(moved != NULL && moved != p, "realloc(%zu -> %zu) did not move", old, size);
    size_t usable = hmm_malloc_usable_size(moved);
    printf("realloc(%zu -> %zu): usable %zu, chunk %zu KiB, %zu KiB more resident\n", old, size, usable,
           chunks / KiB, resident / KiB);
    CHECK(usable == round_up(size, 16), "realloc(%zu -> %zu): usable %zu shows the reserve", old, size, usable);
    CHECK(chunks >= reserve && chunks <= reserve + MiB, "realloc(%zu -> %zu) took a chunk of %zu bytes for a "
          "reserve of %zu", old, size, chunks, reserve);
    CHECK(resident < 2 * size, "realloc(%zu -> %zu) made %zu bytes resident", old, size, resident);
    pthread_t thread;
    void *above;
    CHECK(pthread_create(&thread, NULL, other_thread_chunk, NULL) == 0, "pthread_create failed");
    pthread_join(thread, &above);
    CHECK((unsigned char *)above > moved, "the other thread's chunk %p lies below %p", above, (void *)moved);
    unsigned char *grown = hmm_realloc(moved, reserve);
    CHECK(grown == moved, "realloc(%zu -> %zu) left the reserve", size, reserve);
    CHECK(hmm_malloc_usable_size(grown) == round_up(reserve, 16), "usable %zu after growing to %zu",
          hmm_malloc_usable_size(grown), reserve);
    CHECK(grown[0] == 0x5a && grown[old - 1] == 0x5a, "realloc(%zu -> %zu) lost bytes", size, reserve);
    memset(grown, 0xa5, reserve);
    hmm_free(grown);
    hmm_free(above);
}

int main(void)
{
    grows_with_room(200, 300, 300 / 4);
    grows_with_room(600, 800, 800 / 4);
    grows_with_room(700, 1024, 1024 / 4);
    grows_with_room(2000, 3000, 0);
    grows_with_room(30000, 40000, 0);
    grows_with_room(50000, 64 * KiB, 0);
    grows_with_room(50000, 64 * KiB + 1, (64 * KiB + 1) / 4);
    grows_with_room(80000, 100000, 100000 / 4);
    grows_with_room(200000, 256 * KiB - 16, (256 * KiB - 16) / 4);
    grows_with_room(200000, 256 * KiB, 256 * KiB);
    grows_with_room(300000, 400000, 400000);
    grows_with_room(400000, 500000, 500000);
    moves_into_own_chunk(400000, 600000, 8 * 600000);
    size_t threshold = 4000000;
    CHECK(hmm_mallopt(M_MMAP_THRESHOLD, (int)threshold) == 1, "mallopt(M_MMAP_THRESHOLD) failed");
    moves_into_own_chunk(400000, 600000, threshold / 2);
    for (int i = 0; i < held_count; i++)
        hmm_free(held[i]);
    return 0;
}
