/* The arena's central lists (issue 11): blocks a full thread cache gives
 * back wait unmerged on their class's central list, count as free, not in
 * use, and satisfy the next refill without a new chunk; blocks another
 * thread frees come back to their owner the same way; hmm_check() walks
 * the lists; malloc_trim merges them all back into the bins.
 *
 * Test build (libhmm_test): reads the arena through internal.h. */
#include "config.h"

#include <pthread.h>

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define SIZE 64
#define COUNT 2000

static void *held[COUNT];

static struct arena *my_arena(void)
{
    struct arena *a = hmm_thread_cache.arena;
    CHECK(a != NULL, "the thread has no arena");
    return a;
}

static void malloc_all(void)
{
    for (size_t i = 0; i < COUNT; i++)
        CHECK((held[i] = hmm_malloc(SIZE)) != NULL, "malloc(%d)", SIZE);
}

static void free_all(void)
{
    for (size_t i = 0; i < COUNT; i++)
        hmm_free(held[i]);
}

static void *free_elsewhere(void *arg)
{
    (void)arg;
    free_all();
    return NULL;
}

int main(void)
{
    unsigned cls = size_class(SIZE);
    malloc_all();
    struct arena *a = my_arena();
    size_t used = counter_read(&a->used_bytes), chunks = counter_read(&a->chunk_bytes);
    free_all();
    struct central_list *list = &a->central[cls];
    CHECK(list->count > 0 && list->count <= list->limit, "central list of class %u holds %u (limit %u)",
          cls, list->count, list->limit);
    CHECK(block_state(block_of(list->head)) == BLOCK_CACHED, "a central block in state %#x",
          block_state(block_of(list->head)));
    CHECK(counter_read(&a->used_bytes) < used - (size_t)list->count * SIZE,
          "central blocks counted as used: %zu of %zu", counter_read(&a->used_bytes), used);
    CHECK(hmm_check() == 0, "hmm_check with blocks on the central lists");

    malloc_all();
    CHECK(counter_read(&a->chunk_bytes) == chunks, "the refill took new chunks: %zu bytes, had %zu",
          counter_read(&a->chunk_bytes), chunks);
    size_t remote = counter_read(&a->remote_frees);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_elsewhere, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    malloc_all();
    CHECK(counter_read(&a->remote_frees) == remote + COUNT,
          "blocks freed by another thread did not all come back: %zu", counter_read(&a->remote_frees));
    CHECK(counter_read(&a->chunk_bytes) == chunks, "blocks freed elsewhere not reused: %zu bytes, had %zu",
          counter_read(&a->chunk_bytes), chunks);
    CHECK(hmm_check() == 0, "hmm_check after the remote frees came back");

    free_all();
    hmm_malloc_trim(0);
    CHECK(counter_read(&a->central_bytes) == 0, "malloc_trim left %zu central bytes",
          counter_read(&a->central_bytes));
    for (unsigned c = 0; c < CLASS_COUNT; c++)
        CHECK(a->central[c].count == 0 && a->central[c].head == NULL, "central list %u not empty", c);
    CHECK(hmm_check() == 0, "hmm_check after malloc_trim");
    printf("ok\n");
    return 0;
}
