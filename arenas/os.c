/* The only file that talks to the kernel: the break, mappings, purging and
 * stderr.  Tests build it with HMM_TEST_BUILD to make calls fail on demand. */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>                  /* rename's declaration only: no stdio here */
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Whether process_madvise takes the purges (purge_vector): 0 from the
 * first refusal on. */
static int vector_purge = 1;

#ifdef HMM_TEST_BUILD
static int fail_after[OS_CALL_COUNT];
static int fail_count[OS_CALL_COUNT];
static unsigned calls_made[OS_CALL_COUNT];

void hmm_test_os_fail(enum os_call call, int after, int count)
{
    __atomic_store_n(&fail_after[call], after, __ATOMIC_RELEASE);
    __atomic_store_n(&fail_count[call], count, __ATOMIC_RELEASE);
}

unsigned hmm_test_os_calls(enum os_call call)
{
    return __atomic_load_n(&calls_made[call], __ATOMIC_ACQUIRE);
}

static size_t bytes_purged;

size_t hmm_test_os_purged_bytes(void)
{
    return __atomic_load_n(&bytes_purged, __ATOMIC_ACQUIRE);
}

static void purge_counted(size_t size)
{
    __atomic_fetch_add(&bytes_purged, size, __ATOMIC_RELEASE);
}

static unsigned purge_calls;

unsigned hmm_test_os_purge_calls(void)
{
    return __atomic_load_n(&purge_calls, __ATOMIC_ACQUIRE);
}

static void purge_call_counted(void)
{
    __atomic_fetch_add(&purge_calls, 1u, __ATOMIC_RELEASE);
}

bool hmm_test_os_purge_vectored(void)
{
    return __atomic_load_n(&vector_purge, __ATOMIC_ACQUIRE) != 0;
}

/* Every call that may fail counts; after `after` of them, `count` fail. */
static bool injected_failure(enum os_call call)
{
    ck_pr_inc_uint(&calls_made[call]);
    if (__atomic_load_n(&fail_count[call], __ATOMIC_ACQUIRE) <= 0)
        return false;
    if (ck_pr_faa_int(&fail_after[call], -1) > 0)
        return false;
    return ck_pr_faa_int(&fail_count[call], -1) > 0;
}
#else
static inline bool injected_failure(int call)
{
    (void)call;
    return false;
}

static inline void purge_counted(size_t size)
{
    (void)size;
}

static inline void purge_call_counted(void)
{
}
#define OS_SBRK 0
#define OS_MMAP 1
#define OS_MREMAP 2
#define OS_MADVISE 3
#define OS_MAP_NODE 4
#endif

/* Set the break (NULL: only read it); returns the break afterwards, which
 * is addr on success.  Only the region moves the break, under its lock.  The
 * override build exports sbrk and brk itself, so it makes the system call;
 * otherwise glibc's sbrk (still the program's, and glibc malloc's) caches
 * the break, and only glibc's brk keeps that cache true. */
static char *brk_call(void *addr)
{
#if defined(HMM_OVERRIDE) && !defined(HMM_NO_OVERRIDE)
    return (char *)syscall(SYS_brk, addr);
#else
    if (addr != NULL && brk(addr) == 0)
        return addr;
    return (char *)syscall(SYS_brk, 0);
#endif
}

/* OS_SBRK failures refuse growth only. */
void *os_brk(void *addr)
{
#ifdef HMM_TEST_BUILD
    if (addr != NULL && (char *)addr > brk_call(NULL) && injected_failure(OS_SBRK))
        return brk_call(NULL);
#endif
    return brk_call(addr);
}

static void *map_pages(size_t size)
{
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return addr == MAP_FAILED ? NULL : addr;
}

void *os_map(size_t size)
{
    return injected_failure(OS_MMAP) ? NULL : map_pages(size);
}

/* The chunk map's own nodes: a mapping of their own kind, so that tests
 * can fail them apart from the chunks they describe. */
void *os_map_node(size_t size)
{
    return injected_failure(OS_MAP_NODE) ? NULL : map_pages(size);
}

/* A mapping whose address plus offset is a multiple of alignment (both
 * multiples of the page): over-map by the slack the kernel's page-aligned
 * choice may need, then cut the head and the tail. */
void *os_map_placed(size_t size, size_t alignment, size_t offset)
{
    size_t page = os_page_size();
    size_t slack = alignment > page ? alignment - page : 0;
    if (size + slack < size)
        return NULL;
    char *raw = os_map(size + slack);
    if (raw == NULL)
        return NULL;
    uintptr_t target = ((uintptr_t)raw + offset + alignment - 1) & ~(uintptr_t)(alignment - 1);
    char *placed = (char *)(target - offset);
    size_t head = (size_t)(placed - raw), tail = slack - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap(placed + size, tail);
    return placed;
}

void *os_map_aligned(size_t size, size_t alignment)
{
    return os_map_placed(size, alignment, 0);
}

void os_unmap(void *addr, size_t size)
{
    munmap(addr, size);
}

bool os_remap_in_place(void *addr, size_t old_size, size_t new_size)
{
    if (new_size > old_size && injected_failure(OS_MREMAP))
        return false;
    return mremap(addr, old_size, new_size, 0) != MAP_FAILED;
}

/* Move a mapping onto target, a reservation of new_size bytes (from
 * os_map_aligned), so the pages move without a copy.  On failure the
 * reservation is unmapped and the mapping stays where it was. */
bool os_remap_onto(void *addr, size_t old_size, size_t new_size, void *target)
{
    if (injected_failure(OS_MREMAP) ||
        mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
        munmap(target, new_size);
        return false;
    }
    return true;
}

/* process_madvise on the process itself (named by PIDFD_SELF, so no file
 * descriptor is held, and a fork child names itself) takes a whole batch
 * of ranges in one call and one TLB shootdown on recent kernels (6.18
 * here: 4,096 ranges of 64 KiB in 7.7 ms by 1,024, 82.8 ms one by one,
 * with two threads running): madvise's shootdown for each free block was
 * a third of burst -t 2's time.  Older
 * kernels, seccomp filters that refuse the call and valgrind get madvise
 * for each range, from the first refusal on.  The caller allows it only
 * where it pays, once the process runs threads (region_vector). */
#define PIDFD_SELF_PROCESS (-10001)

static bool purge_vector(const struct os_range *ranges, unsigned count, bool vector)
{
#ifdef SYS_process_madvise
    struct iovec iov[PURGE_BATCH];
    unsigned used = 0;
    size_t total = 0;
    if (count > PURGE_BATCH)
        return false;
    for (unsigned i = 0; i < count; i++) {
        if (ranges[i].size == 0)
            continue;
        iov[used++] = (struct iovec){ .iov_base = ranges[i].addr, .iov_len = ranges[i].size };
        total += ranges[i].size;
    }
    if (used < 2 || !vector || !__atomic_load_n(&vector_purge, __ATOMIC_RELAXED))
        return false;
    purge_call_counted();
    long done = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov, used, MADV_DONTNEED, 0u);
    if (done < 0 && errno != EAGAIN && errno != EINTR)
        __atomic_store_n(&vector_purge, 0, __ATOMIC_RELAXED);
    return done == (long)total;
#else
    (void)ranges;
    (void)count;
    (void)vector;
    return false;
#endif
}

static bool purge_one(void *addr, size_t size)
{
    purge_call_counted();
    return madvise(addr, size, MADV_DONTNEED) == 0;
}

/* Drop the pages of the ranges, in one call when vector allows it and the
 * kernel takes a vector of them (PURGE_BATCH at most); a range the kernel
 * refused gets size 0 (its pages stay resident).  Returns the bytes
 * dropped.  The program's errno is left as it was. */
size_t os_purge_ranges(struct os_range *ranges, unsigned count, bool vector)
{
    int saved = errno;
    for (unsigned i = 0; i < count; i++)
        if (injected_failure(OS_MADVISE))
            ranges[i].size = 0;
    bool all = purge_vector(ranges, count, vector);
    size_t purged = 0;
    for (unsigned i = 0; i < count; i++) {
        if (ranges[i].size != 0 && !all && !purge_one(ranges[i].addr, ranges[i].size))
            ranges[i].size = 0;
        purged += ranges[i].size;
    }
    purge_counted(purged);
    errno = saved;
    return purged;
}

uint64_t os_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* 8 bytes the kernel chose at random for this process (AT_RANDOM, read
 * without a system call), mixed with where the stack lies. */
uint64_t os_random(void)
{
    const unsigned char *bytes = (const unsigned char *)getauxval(AT_RANDOM);
    uint64_t value = (uint64_t)(uintptr_t)&bytes * 0x9e3779b97f4a7c15ull;
    if (bytes != NULL) {
        uint64_t kernel;
        memcpy(&kernel, bytes + 8, sizeof(kernel));
        value ^= kernel;
    }
    return value;
}

size_t os_page_size(void)
{
    static size_t page;
    size_t size = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (size == 0) {
        size = (size_t)getauxval(AT_PAGESZ);
        __atomic_store_n(&page, size, __ATOMIC_RELAXED);
    }
    return size;
}

/* The CPUs this process may run on, from the affinity mask as a raw system
 * call: sysconf reads /sys through code that faults in 64 KiB of libc a
 * small process never needs otherwise. */
unsigned os_cpu_count(void)
{
    uint64_t mask[16] = { 0 };
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    unsigned count = 0;
    for (long i = 0; i < bytes / 8; i++)
        count += (unsigned)__builtin_popcountll(mask[i]);
    return count > 0 ? count : 1u;
}

void os_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t done = write(fd, buf, len);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return;
        buf += done;
        len -= (size_t)done;
    }
}

/* The heap profiler's dumps (lib/prof.c). */
int os_open_write(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int os_open_read(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* The pipe, the handler and the files of statistics on request
 * (lib/live_stats.c). */
bool os_pipe(int fds[2])
{
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0;
}

size_t os_read(int fd, void *buf, size_t len)
{
    ssize_t done = read(fd, buf, len);
    return done > 0 ? (size_t)done : 0;
}

/* Waits up to ms for fd to be readable; a negative fd only sleeps. */
bool os_wait_readable(int fd, unsigned ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, (int)ms) > 0 && (p.revents & POLLIN);
}

void os_close(int fd)
{
    close(fd);
}

bool os_catch_signal(int sig, void (*handler)(int))
{
    struct sigaction action = { .sa_handler = handler, .sa_flags = SA_RESTART };
    sigemptyset(&action.sa_mask);
    return sigaction(sig, &action, NULL) == 0;
}

/* A new file of the caller's only (a name left by an earlier run is
 * removed first); never through a symbolic link. */
int os_create(const char *path)
{
    unlink(path);
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

bool os_rename(const char *from, const char *to)
{
    return rename(from, to) == 0;
}

void os_unlink(const char *path)
{
    unlink(path);
}

int os_pid(void)
{
    return (int)getpid();
}

void os_yield(void)
{
    sched_yield();
}

/* A thread of the library's own, detached, named for ps -L, with every
 * signal blocked: the program's handlers must not run on it. */
int os_thread_start(void *(*main)(void *), const char *name)
{
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pthread_t thread;
    int error = pthread_create(&thread, NULL, main, NULL);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (error != 0)
        return error;
    pthread_setname_np(thread, name);
    pthread_detach(thread);
    return 0;
}

/* A library's symbol, the library loaded on the first call (dlopen
 * allocates: call it outside every allocator lock). */
void *os_library_symbol(const char *library, const char *symbol)
{
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    return handle != NULL ? dlsym(handle, symbol) : NULL;
}

struct text_search {
    const void *code;
    uintptr_t start, end;
    bool found;
};

static int text_search_visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct text_search *search = arg;
    (void)size;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (ph->p_type != PT_LOAD || (uintptr_t)search->code < start || (uintptr_t)search->code >= end)
            continue;
        search->found = info->dlpi_name != NULL && info->dlpi_name[0] != '\0';
        search->start = start;
        search->end = end;
        return 1;
    }
    return 0;
}

/* The loaded segment holding code, if code is in a shared library (false
 * for the program itself). */
bool os_library_text(const void *code, uintptr_t *start, uintptr_t *end)
{
    struct text_search search = { code, 0, 0, false };
    dl_iterate_phdr(text_search_visit, &search);
    if (search.found) {
        *start = search.start;
        *end = search.end;
    }
    return search.found;
}

void os_abort(void)
{
    abort();
}
