/* Proves that hmm is the malloc of this process: run under LD_PRELOAD of
 * libhmm.so, it finds hmm_stats() with dlsym and checks that a block
 * obtained from the standard malloc shows up in hmm's in-use bytes and
 * leaves them when freed, and that hmm_check() finds the heap sound.
 * Not linked with libhmm: without the preload it exits 1.
 *
 * Exit 0: malloc is hmm's.  Exit 1: it is not (message on stderr). */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmm.h"

#define SIZE ((size_t)8 << 20)

int main(void)
{
    int (*stats)(struct hmm_stats *) = (int (*)(struct hmm_stats *))dlsym(RTLD_DEFAULT, "hmm_stats");
    int (*check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "hmm_check");
    static struct hmm_stats s;
    size_t before, during, after;
    volatile char *p;

    if (!stats || !check) {
        fprintf(stderr, "preload_probe: hmm_stats/hmm_check not found: libhmm is not loaded\n");
        return 1;
    }
    stats(&s);
    before = s.in_use_bytes;
    p = malloc(SIZE);
    if (!p) {
        fprintf(stderr, "preload_probe: malloc failed\n");
        return 1;
    }
    memset((char *)p, 1, SIZE);
    stats(&s);
    during = s.in_use_bytes;
    free((void *)p);
    stats(&s);
    after = s.in_use_bytes;
    if (during < before + SIZE || after + SIZE > during) {
        fprintf(stderr, "preload_probe: hmm's in-use bytes went %zu -> %zu -> %zu around "
                "malloc/free of %zu bytes: malloc is not hmm's\n", before, during, after, SIZE);
        return 1;
    }
    if (check() != 0) {
        fprintf(stderr, "preload_probe: hmm_check() failed\n");
        return 1;
    }
    printf("preload_probe: malloc and free are hmm's\n");
    return 0;
}
