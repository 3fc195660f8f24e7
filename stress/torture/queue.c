/* Hand-off queues: the lock-free ring is Vyukov's bounded MPMC queue, each
 * cell's sequence number saying whose turn it is; --handoff mutex swaps in
 * a plain ring under a mutex. */
#include <stdlib.h>

#include "torture.h"

void q_init(struct queue *q, size_t cap)
{
    size_t n = 2;
    while (n < cap)
        n <<= 1;
    q->cells = calloc(n, sizeof *q->cells);
    if (!q->cells)
        die(EXIT_USAGE, "hmm-stress: out of memory for a queue\n");
    q->mask = n - 1;
    q->locked = opt.handoff_mutex;
    pthread_mutex_init(&q->mu, NULL);
    q->lhead = q->ltail = 0;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
}

void q_destroy(struct queue *q)
{
    free(q->cells);
    q->cells = NULL;
    pthread_mutex_destroy(&q->mu);
}

/* Claims the cell at *end (head to push, tail to pop) whose sequence
 * number says it is ready: pos + ready; NULL when the ring is full (empty). */
static struct cell *claim(struct queue *q, _Atomic size_t *end, size_t ready, size_t *pos)
{
    *pos = atomic_load_explicit(end, memory_order_relaxed);
    for (;;) {
        struct cell *c = &q->cells[*pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)(*pos + ready);
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(end, pos, *pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                return c;
        } else if (d < 0) {
            return NULL;
        } else {
            *pos = atomic_load_explicit(end, memory_order_relaxed);
        }
    }
}

bool q_push(struct queue *q, const struct blk *b)
{
    if (q->locked) {
        pthread_mutex_lock(&q->mu);
        bool ok = q->lhead - q->ltail <= q->mask;
        if (ok)
            q->cells[q->lhead++ & q->mask].b = *b;
        pthread_mutex_unlock(&q->mu);
        return ok;
    }
    size_t pos;
    struct cell *c = claim(q, &q->head, 0, &pos);
    if (!c)
        return false;
    c->b = *b;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return true;
}

bool q_pop(struct queue *q, struct blk *b)
{
    if (q->locked) {
        pthread_mutex_lock(&q->mu);
        bool ok = q->lhead != q->ltail;
        if (ok)
            *b = q->cells[q->ltail++ & q->mask].b;
        pthread_mutex_unlock(&q->mu);
        return ok;
    }
    size_t pos;
    struct cell *c = claim(q, &q->tail, 1, &pos);
    if (!c)
        return false;
    *b = c->b;
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    return true;
}
