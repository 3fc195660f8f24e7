/* The sampling heap profiler.  The engine picks the sampled mallocs (one
 * per prof_sample bytes on average, see the engine's sampling); here each is
 * recorded with its call stack (libunwind, which reads the unwind tables
 * and never calls malloc; glibc's backtrace() may) in two tables in mapped
 * memory under one lock: the live samples by address and the call stacks,
 * which keep live and total counts and bytes.  Dumps write the legacy
 * heap-profile text google-pprof reads, raw sampled counts under a
 * heap_v2/RATE header (pprof scales them), then /proc/self/maps. */
#include "lib.h"
#include "prof.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define PROF_DEPTH 64                /* frames kept per stack */
#define PROF_OWN_FRAMES 24           /* hmm's frames above the program's, at most */
#define PROF_TABLE_MIN 1024u
#define PROF_STACK_SPACE ((size_t)1 << 20)

struct prof_options prof_options = { .final = true, .sample = 512 * 1024, .prefix = "hmm" };

/* A call stack, made on its first sample and never freed (a dump lists
 * what it ever allocated too); live_* count the samples still live. */
struct prof_stack {
    struct prof_stack *next;         /* every stack, for the dump */
    uint64_t hash;
    size_t live_count, live_bytes, total_count, total_bytes;
    unsigned depth;
    uintptr_t frames[];
};

/* Open addressing, linear probing, power-of-two capacity, at most half
 * full; key 0 is an empty slot.  The samples table is keyed by address
 * (size and stack); the stacks table by hash (stack). */
struct slot {
    uintptr_t key;
    struct prof_stack *stack;
    size_t size;
};

struct table {
    struct slot *slots;
    size_t capacity, used;
};

/* All of it under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct table samples, stacks;
static struct prof_stack *stack_list;
static char *stack_space, *stack_space_end;
static size_t live_estimate, next_dump_mark, dump_seq;
static struct {
    int fd;
    size_t len;
    char buf[8192];
} out;

volatile int prof_asked;
static uintptr_t own_text_start, own_text_end;
static __thread uint64_t random_state;
static __thread bool recording;

static size_t slot_home(const struct table *t, uintptr_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (t->capacity - 1);
}

static struct slot *slot_find(const struct table *t, uintptr_t key)
{
    if (t->capacity == 0)
        return NULL;
    for (size_t i = slot_home(t, key);; i = (i + 1) & (t->capacity - 1)) {
        if (t->slots[i].key == key || t->slots[i].key == 0)
            return &t->slots[i];
    }
}

/* Double the table (make it on first use); false when no memory. */
static bool table_grow(struct table *t)
{
    struct table bigger = { .capacity = t->capacity ? 2 * t->capacity : PROF_TABLE_MIN };
    bigger.slots = os_map(bigger.capacity * sizeof(struct slot));
    if (bigger.slots == NULL)
        return false;
    for (size_t i = 0; i < t->capacity; i++) {
        struct slot *from = &t->slots[i];
        size_t j = slot_home(&bigger, from->key);
        while (from->key != 0 && bigger.slots[j].key != 0)
            j = (j + 1) & (bigger.capacity - 1);
        if (from->key != 0)
            bigger.slots[j] = *from;
    }
    bigger.used = t->used;
    if (t->slots != NULL)
        os_unmap(t->slots, t->capacity * sizeof(struct slot));
    *t = bigger;
    return true;
}

/* An empty slot for a key not in the table; NULL when no memory. */
static struct slot *slot_claim(struct table *t, uintptr_t key)
{
    if (2 * (t->used + 1) > t->capacity && !table_grow(t))
        return NULL;
    struct slot *s = slot_find(t, key);
    while (s->key != 0)
        s = &t->slots[(size_t)(s - t->slots + 1) & (t->capacity - 1)];
    t->used++;
    s->key = key;
    return s;
}

/* Empty a slot and shift back the entries after it that probed past it. */
static void slot_remove(struct table *t, struct slot *s)
{
    size_t mask = t->capacity - 1, hole = (size_t)(s - t->slots);
    for (size_t i = (hole + 1) & mask; t->slots[i].key != 0; i = (i + 1) & mask) {
        size_t home = slot_home(t, t->slots[i].key);
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            t->slots[hole] = t->slots[i];
            hole = i;
        }
    }
    t->slots[hole].key = 0;
    t->used--;
}

static uint64_t stack_hash(const uintptr_t *frames, unsigned depth)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < depth; i++)
        hash = (hash ^ frames[i]) * 0x100000001b3ull;
    return hash | 1;
}

static struct prof_stack *stack_new(const uintptr_t *frames, unsigned depth, uint64_t hash)
{
    size_t size = sizeof(struct prof_stack) + depth * sizeof(uintptr_t);
    if ((size_t)(stack_space_end - stack_space) < size) {
        stack_space = os_map(PROF_STACK_SPACE);
        stack_space_end = stack_space ? stack_space + PROF_STACK_SPACE : NULL;
        if (stack_space == NULL)
            return NULL;
    }
    struct prof_stack *stack = (struct prof_stack *)stack_space;
    stack_space += (size + 15) & ~(size_t)15;
    memset(stack, 0, sizeof(*stack));
    stack->hash = hash;
    stack->depth = depth;
    memcpy(stack->frames, frames, depth * sizeof(uintptr_t));
    stack->next = stack_list;
    stack_list = stack;
    return stack;
}

/* The stack of these frames if the table has it, probing past collisions. */
static struct prof_stack *stack_find(uint64_t hash, const uintptr_t *frames, unsigned depth)
{
    for (size_t i = stacks.capacity ? slot_home(&stacks, hash) : 0; stacks.capacity && stacks.slots[i].key != 0;
         i = (i + 1) & (stacks.capacity - 1)) {
        struct prof_stack *s = stacks.slots[i].stack;
        if (stacks.slots[i].key == hash && s->depth == depth && !memcmp(s->frames, frames, depth * sizeof(uintptr_t)))
            return s;
    }
    return NULL;
}

/* The stack of these frames, made if new; NULL when no memory (then
 * nothing is kept: no slot without its stack, no stack without a slot). */
static struct prof_stack *stack_get(const uintptr_t *frames, unsigned depth)
{
    uint64_t hash = stack_hash(frames, depth);
    struct prof_stack *found = stack_find(hash, frames, depth);
    if (found != NULL)
        return found;
    struct slot *s = slot_claim(&stacks, hash);
    if (s == NULL)
        return NULL;
    struct prof_stack *made = stack_new(frames, depth, hash);
    if (made == NULL)
        slot_remove(&stacks, s);
    else
        s->stack = made;
    return made;
}

/* ---- sampling intervals --------------------------------------------- */

/* xorshift64*, per thread, seeded from the thread's address and the clock. */
static uint64_t random_next(void)
{
    uint64_t x = random_state;
    if (x == 0)
        x = (((uintptr_t)&random_state * 0x9e3779b97f4a7c15ull) ^ (os_now_ms() << 20) ^ (uint64_t)os_pid()) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    random_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Exponential with mean prof_sample: the gaps of a Poisson process. */
/* ln(x) for x > 0, without libm (linking it costs every process that
 * loads hmm a third of a megabyte of resident pages): x = m 2^e with m in
 * [1, 2), ln(m) = 2 atanh(s) with s = (m - 1) / (m + 1) <= 1/3, whose
 * series has converged to a double's precision after 16 terms. */
static double ln(double x)
{
    union { double d; uint64_t bits; } v = { .d = x };
    int e = (int)((v.bits >> 52) & 0x7ff) - 1023;
    v.bits = (v.bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
    double s = (v.d - 1.0) / (v.d + 1.0), s2 = s * s, term = s, sum = 0.0;
    for (int k = 1; k < 34; k += 2, term *= s2)
        sum += term / k;
    return e * 0.6931471805599453 + 2.0 * sum;
}

/* 1 - e^-r for r >= 0, exact for small r (where 1 - exp(-r) cancels). */
static double one_minus_exp_neg(double r)
{
    if (r > 40.0)
        return 1.0;
    if (r < 0.5) {
        double term = r, sum = 0.0;
        for (int k = 1; k < 20; k++, term *= -r / k)
            sum += term;
        return sum;
    }
    double half = r, power = 1.0;
    int squarings = 0;
    while (half > 0.5)
        half /= 2.0, squarings++;
    double term = 1.0;
    for (int k = 1; k < 20; k++)
        power += (term *= -half / k);
    while (squarings-- > 0)
        power *= power;
    return 1.0 - power;
}

static uint64_t sample_interval(void)
{
    double u = (double)((random_next() >> 11) + 1) * 0x1p-53;
    double bytes = -ln(u) * (double)prof_options.sample;
    return bytes < 0x1p60 ? (uint64_t)bytes : (uint64_t)1 << 60;
}

/* What a sample of size bytes stands for in the heap: pprof's heap_v2
 * scale, size / (1 - e^(-size/rate)). */
static size_t sample_weight(size_t size)
{
    double ratio = (double)size / (double)prof_options.sample;
    return (size_t)((double)size / one_minus_exp_neg(ratio));
}

/* ---- recording -------------------------------------------------------- */

/* libunwind's unw_backtrace, loaded by prof_start: linked, it would load
 * with every process (and liblzma with it) to serve the few that profile. */
static int (*unwind_backtrace)(void **frames, int size);

static void unwinder_load(void)
{
    int (*walk)(void **, int) = (int (*)(void **, int))os_library_symbol("libunwind.so.8", "unw_backtrace");
    if (walk == NULL) {
        warn("prof: cannot load libunwind.so.8 (Debian package libunwind8): samples have no stacks");
        return;
    }
    /* libunwind's first walk builds its caches, and mallocs: here, not in a sample */
    void *frame[1];
    recording = true;
    walk(frame, 1);
    recording = false;
    __atomic_store_n(&unwind_backtrace, walk, __ATOMIC_RELEASE);
}

/* The program's frames, innermost first, without hmm's. */
static unsigned backtrace_program(uintptr_t *frames)
{
    void *raw[PROF_DEPTH + PROF_OWN_FRAMES];
    int (*walk)(void **, int) = __atomic_load_n(&unwind_backtrace, __ATOMIC_ACQUIRE);
    int n = walk != NULL ? walk(raw, PROF_DEPTH + PROF_OWN_FRAMES) : 0;
    int first = 0;
    while (first < n && (uintptr_t)raw[first] - own_text_start < own_text_end - own_text_start)
        first++;
    unsigned depth = 0;
    for (int i = first; i < n && depth < PROF_DEPTH; i++)
        frames[depth++] = (uintptr_t)raw[i];
    return depth;
}

/* Under lock: a live heap past a new multiple of prof_interval asks for a dump. */
static void live_add(size_t weight)
{
    live_estimate += weight;
    if (prof_options.interval && live_estimate >= next_dump_mark) {
        prof_asked = 1;
        next_dump_mark = (live_estimate / prof_options.interval + 1) * prof_options.interval;
    }
}

static void sample_add(void *ptr, size_t size, const uintptr_t *frames, unsigned depth)
{
    struct prof_stack *stack = stack_get(frames, depth);
    struct slot *s = stack ? slot_claim(&samples, (uintptr_t)ptr) : NULL;
    if (s == NULL)
        return;
    s->stack = stack;
    s->size = size;
    stack->live_count++;
    stack->live_bytes += size;
    stack->total_count++;
    stack->total_bytes += size;
    live_add(sample_weight(size));
}

/* A malloc inside the recording (libunwind's) is not recorded. */
void prof_record(void *ptr)
{
    size_t size = cache_take_sampled();
    if (recording || ptr == NULL)
        return;
    recording = true;
    uintptr_t frames[PROF_DEPTH];
    unsigned depth = backtrace_program(frames);
    pthread_mutex_lock(&lock);
    sample_add(ptr, size, frames, depth);
    pthread_mutex_unlock(&lock);
    prof_poll();
    recording = false;
}

static void record_forget(void *ptr)
{
    pthread_mutex_lock(&lock);
    struct slot *s = slot_find(&samples, (uintptr_t)ptr);
    if (s != NULL && s->key != 0) {
        s->stack->live_count--;
        s->stack->live_bytes -= s->size;
        live_estimate -= sample_weight(s->size);
        slot_remove(&samples, s);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- dumps ------------------------------------------------------------ */

static void out_flush(void)
{
    os_write(out.fd, out.buf, out.len);
    out.len = 0;
}

/* One line, at most a stack's worth. */
static void out_line(const char *fmt, ...)
{
    if (sizeof(out.buf) - out.len < 2048)
        out_flush();
    va_list ap;
    va_start(ap, fmt);
    size_t len = fmt_buf(out.buf + out.len, sizeof(out.buf) - out.len, fmt, ap);
    va_end(ap);
    out.len += len < sizeof(out.buf) - out.len ? len : sizeof(out.buf) - out.len - 1;
}

static void dump_stack(const struct prof_stack *s)
{
    out_line("%zu: %zu [%zu: %zu] @", s->live_count, s->live_bytes, s->total_count, s->total_bytes);
    for (unsigned i = 0; i < s->depth; i++)
        out_line(" %p", (void *)s->frames[i]);
    out_line("\n");
}

/* The mappings, copied through the buffer as they are read. */
static void dump_maps(void)
{
    out_line("\nMAPPED_LIBRARIES:\n");
    int maps = os_open_read("/proc/self/maps");
    if (maps < 0)
        return;
    size_t got;
    do {
        if (out.len == sizeof(out.buf))
            out_flush();
        got = os_read(maps, out.buf + out.len, sizeof(out.buf) - out.len);
        out.len += got;
    } while (got > 0);
    os_close(maps);
}

/* Under lock. */
static int dump_to(const char *path)
{
    out.fd = os_open_write(path);
    if (out.fd < 0)
        return -1;
    size_t live_count = 0, live_bytes = 0, total_count = 0, total_bytes = 0;
    for (const struct prof_stack *s = stack_list; s != NULL; s = s->next) {
        live_count += s->live_count;
        live_bytes += s->live_bytes;
        total_count += s->total_count;
        total_bytes += s->total_bytes;
    }
    out.len = 0;
    out_line("heap profile: %zu: %zu [%zu: %zu] @ heap_v2/%zu\n", live_count, live_bytes, total_count,
             total_bytes, prof_options.sample);
    for (const struct prof_stack *s = stack_list; s != NULL; s = s->next)
        dump_stack(s);
    dump_maps();
    out_flush();
    os_close(out.fd);
    return 0;
}

/* To path, or to the next PREFIX.PID.SEQ.heap. */
static int dump(const char *path)
{
    char name[PROF_PREFIX_MAX + 48];
    pthread_mutex_lock(&lock);
    if (path == NULL) {
        fmt_str(name, sizeof(name), "%s.%d.%zu.heap", prof_options.prefix, os_pid(), dump_seq++);
        path = name;
    }
    int result = dump_to(path);
    int saved = errno;
    pthread_mutex_unlock(&lock);
    errno = saved;
    if (result != 0)
        warn("prof: cannot write the heap profile %s", path);
    return result;
}

HMM_EXPORT int hmm_prof_dump(const char *path)
{
    thread_init();
    if (!prof_options.on) {
        errno = ENOENT;
        return -1;
    }
    return dump(path);
}

/* One dump for however many asked since the last: the first thread to
 * take the request writes it. */
void prof_dump_asked(void)
{
    if (__atomic_exchange_n(&prof_asked, 0, __ATOMIC_ACQUIRE))
        dump(NULL);
}

/* A volatile int store and a write(2): async-signal-safe.  The maintenance
 * thread (prof_signal starts it) dumps at once; else the next slow call. */
static void on_signal(int sig)
{
    (void)sig;
    prof_asked = 1;
    live_stats_poke(REQUEST_PROF);
}

static void dump_at_exit(void)
{
    dump(NULL);
}

void prof_init(void)
{
    if (!prof_options.on)
        return;
    next_dump_mark = prof_options.interval;
    cache_sampling_start(sample_interval, record_forget);
}

/* From hmm's constructor, once, before the program's own threads. */
void prof_start(void)
{
    if (!prof_options.on)
        return;
    /* hmm's own frames are left out of the stacks (none when linked in) */
    os_library_text((void *)prof_start, &own_text_start, &own_text_end);
    unwinder_load();
    if (prof_options.signal && !os_catch_signal(prof_options.signal, on_signal))
        warn("prof_signal: cannot handle signal %d", prof_options.signal);
    if (prof_options.final)
        atexit(dump_at_exit);
}

/* A fork child gets the tables whole, never in the middle of a dump. */
void prof_fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

void prof_fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

void prof_fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}
