/* HMM_OPTIONS and mallopt.  The parser is strict and allocation-free: a pair
 * that is not understood is reported on one line, naming the pair and what
 * is accepted, and the default stays. */
#include "lib.h"
#include "prof.h"

#include <malloc.h>
#include <signal.h>
#include <string.h>

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

struct lib_options hmm_options;

enum kind { KIND_SIZE, KIND_COUNT, KIND_BOOL, KIND_CHECK, KIND_SWITCH, KIND_SIGNAL, KIND_TEXT };

struct option_spec {
    const char *key;
    enum kind kind;
    uint64_t min, max;
    const char *accepted;
};

#define SIGNALS_ACCEPTED \
    "expected SIGUSR1, SIGUSR2 or a real-time signal number (SIGRTMIN to SIGRTMAX, 34 to 64 with glibc)"

static const struct option_spec specs[] = {
    { "arena_max", KIND_COUNT, 1, 1024, "expected a whole number from 1 to 1024" },
    { "trim_threshold", KIND_SIZE, 0, (uint64_t)1 << 40, "expected a size up to 1T (K, M, G suffixes)" },
    { "top_pad", KIND_SIZE, 0, GIB, "expected a size up to 1G (K, M, G suffixes)" },
    { "mmap_threshold", KIND_SIZE, 64 * KIB, 4 * GIB, "expected a size from 64K to 4G (K, M, G suffixes)" },
    { "chunk_size", KIND_SIZE, MIB, GIB, "expected a multiple of 1M from 1M to 1G" },
    { "cache_size", KIND_SIZE, 0, 64 * MIB, "expected a size up to 64M (0 turns the cache off)" },
    { "background_thread", KIND_SWITCH, 0, 2, "expected true, false or auto" },
    { "decay_ms", KIND_COUNT, 0, 3600000, "expected milliseconds from 0 to 3600000" },
    { "check", KIND_CHECK, 1, UINT32_MAX, "expected basic, full, or a number N of calls between heap checks" },
    { "stats_at_exit", KIND_BOOL, 0, 1, "expected true or false" },
    { "zero_on_free", KIND_BOOL, 0, 1, "expected true or false" },
    { "purge_vector", KIND_BOOL, 0, 1, "expected true or false" },
    { "prof", KIND_BOOL, 0, 1, "expected true or false" },
    { "prof_sample", KIND_SIZE, 1, GIB, "expected a size from 1 to 1G (K, M, G suffixes)" },
    { "prof_interval", KIND_SIZE, 0, (uint64_t)1 << 40, "expected a size up to 1T (0: no interval dumps)" },
    { "prof_final", KIND_BOOL, 0, 1, "expected true or false" },
    { "prof_prefix", KIND_TEXT, 1, PROF_PREFIX_MAX - 1, "expected a path prefix of 1 to 199 characters" },
    { "prof_signal", KIND_SIGNAL, 0, 0, SIGNALS_ACCEPTED },
    { "stats_signal", KIND_SIGNAL, 0, 0, SIGNALS_ACCEPTED },
};

#define SPEC_COUNT (sizeof(specs) / sizeof(specs[0]))

static bool parse_number(const char *s, size_t len, uint64_t *out, bool suffixes)
{
    uint64_t value = 0, scale = 1;
    if (len > 0 && suffixes) {
        switch (s[len - 1]) {
        case 'k': case 'K': scale = KIB; len--; break;
        case 'm': case 'M': scale = MIB; len--; break;
        case 'g': case 'G': scale = GIB; len--; break;
        case 't': case 'T': scale = GIB * 1024; len--; break;
        }
    }
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(s[i] - '0');
    }
    if (value > UINT64_MAX / scale)
        return false;
    *out = value * scale;
    return true;
}

static bool equals(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static bool parse_bool(const char *s, size_t len, uint64_t *out)
{
    if (equals(s, len, "true") || equals(s, len, "1") || equals(s, len, "yes"))
        return *out = 1, true;
    if (equals(s, len, "false") || equals(s, len, "0") || equals(s, len, "no"))
        return *out = 0, true;
    return false;
}

/* A signal a library may be given: the two left to applications, or a
 * real-time one by number (SIGRTMIN is a call: glibc keeps the first few). */
static bool parse_signal(const char *s, size_t len, uint64_t *out)
{
    if (len > 3 && memcmp(s, "SIG", 3) == 0)
        s += 3, len -= 3;
    if (equals(s, len, "USR1"))
        return *out = SIGUSR1, true;
    if (equals(s, len, "USR2"))
        return *out = SIGUSR2, true;
    return parse_number(s, len, out, false) && *out >= (uint64_t)SIGRTMIN && *out <= (uint64_t)SIGRTMAX;
}

/* check=basic|full|N; N is stored as is, basic as 0, full as UINT64_MAX. */
static bool parse_value(const struct option_spec *spec, const char *s, size_t len, uint64_t *out)
{
    switch (spec->kind) {
    case KIND_BOOL:
        return parse_bool(s, len, out);
    case KIND_SWITCH:
        if (equals(s, len, "auto"))
            return *out = BACKGROUND_AUTO, true;
        if (!parse_bool(s, len, out))
            return false;
        *out = *out ? BACKGROUND_ON : BACKGROUND_OFF;
        return true;
    case KIND_CHECK:
        if (equals(s, len, "basic"))
            return *out = 0, true;
        if (equals(s, len, "full"))
            return *out = UINT64_MAX, true;
        return parse_number(s, len, out, false) && *out >= spec->min && *out <= spec->max;
    case KIND_SIZE:
        if (!parse_number(s, len, out, true) || *out < spec->min || *out > spec->max)
            return false;
        return strcmp(spec->key, "chunk_size") != 0 || *out % MIB == 0;
    case KIND_COUNT:
        return parse_number(s, len, out, false) && *out >= spec->min && *out <= spec->max;
    case KIND_TEXT:
        return len >= spec->min && len <= spec->max;
    case KIND_SIGNAL:
        return parse_signal(s, len, out);
    }
    return false;
}

/* prof_prefix=TEXT, checked for length. */
static void apply_text(const char *text, size_t len)
{
    memcpy(prof_options.prefix, text, len);
    prof_options.prefix[len] = '\0';
}

static void apply_prof(const char *key, uint64_t value)
{
    if (!strcmp(key, "prof")) prof_options.on = value;
    else if (!strcmp(key, "prof_sample")) prof_options.sample = value;
    else if (!strcmp(key, "prof_interval")) prof_options.interval = value;
    else if (!strcmp(key, "prof_final")) prof_options.final = value;
    else if (!strcmp(key, "prof_signal")) prof_options.signal = (int)value;
}

static void apply(const struct option_spec *spec, uint64_t value)
{
    const char *key = spec->key;
    if (!strncmp(key, "prof", 4)) {
        apply_prof(key, value);
        return;
    }
    if (!strcmp(key, "arena_max")) hmm_tunables.arena_max = (unsigned)value;
    else if (!strcmp(key, "trim_threshold")) hmm_tunables.trim_threshold = value;
    else if (!strcmp(key, "top_pad")) hmm_tunables.top_pad = value;
    else if (!strcmp(key, "mmap_threshold")) hmm_tunables.mmap_threshold = value;
    else if (!strcmp(key, "chunk_size")) hmm_tunables.chunk_size = value;
    else if (!strcmp(key, "cache_size")) hmm_tunables.cache_size = value;
    else if (!strcmp(key, "background_thread")) hmm_options.background_thread = value;
    else if (!strcmp(key, "decay_ms")) hmm_tunables.decay_ms = (unsigned)value;
    else if (!strcmp(key, "stats_at_exit")) hmm_options.stats_at_exit = value;
    else if (!strcmp(key, "zero_on_free")) hmm_tunables.zero_on_free = value;
    else if (!strcmp(key, "purge_vector")) hmm_tunables.purge_vector = value;
    else if (!strcmp(key, "stats_signal")) hmm_options.stats_signal = (int)value;
    else if (value == UINT64_MAX) hmm_tunables.check_level = CHECK_FULL;
    else hmm_options.check_every = value;
}

/* hmm-stats and the profiler each need a signal of their own: one handler
 * would answer the other's requests. */
static bool signal_taken(const struct option_spec *spec, uint64_t value)
{
    if (spec->kind != KIND_SIGNAL)
        return false;
    int other = strcmp(spec->key, "stats_signal") == 0 ? prof_options.signal : hmm_options.stats_signal;
    return other == (int)value;
}

static void warn_pair(const char *pair, size_t len, const char *why)
{
    char shown[128];
    size_t n = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;
    memcpy(shown, pair, n);
    shown[n] = '\0';
    warn("HMM_OPTIONS: ignoring '%s': %s", shown, why);
}

static void parse_pair(const char *pair, size_t len)
{
    const char *eq = memchr(pair, '=', len);
    if (eq == NULL) {
        warn_pair(pair, len, "expected key=value");
        return;
    }
    size_t key_len = (size_t)(eq - pair);
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        if (!equals(pair, key_len, specs[i].key))
            continue;
        uint64_t value = 0;
        size_t value_len = len - key_len - 1;
        if (!parse_value(&specs[i], eq + 1, value_len, &value))
            warn_pair(pair, len, specs[i].accepted);
        else if (signal_taken(&specs[i], value))
            warn_pair(pair, len, "the other of stats_signal and prof_signal already takes that signal");
        else if (specs[i].kind == KIND_TEXT)
            apply_text(eq + 1, value_len);
        else
            apply(&specs[i], value);
        return;
    }
    warn_pair(pair, len, "unknown key (known: arena_max, trim_threshold, top_pad, mmap_threshold, "
                         "chunk_size, cache_size, background_thread, decay_ms, check, stats_at_exit, "
                         "zero_on_free, purge_vector, stats_signal, prof, prof_sample, prof_interval, prof_final, "
                         "prof_prefix, prof_signal)");
}

void options_init(const char *text)
{
    tunables_init();
    while (text != NULL && *text) {
        const char *end = strchr(text, ',');
        size_t len = end ? (size_t)(end - text) : strlen(text);
        if (len > 0)
            parse_pair(text, len);
        text = end ? end + 1 : NULL;
    }
    /* Every call must reach the counter of check=N, so that runs without
     * the thread cache (check=full and zero_on_free keep it: their frees
     * take the slow path, frees_scrubbed). */
    if (hmm_options.check_every)
        hmm_tunables.cache_size = 0;
    prof_init();
}

int options_mallopt(int param, int value)
{
    if (value < 0)
        return 0;
    switch (param) {
    case M_TRIM_THRESHOLD: hmm_tunables.trim_threshold = (size_t)value; return 1;
    case M_TOP_PAD: hmm_tunables.top_pad = (size_t)value; return 1;
    case M_MMAP_THRESHOLD:
        if ((size_t)value < 64 * KIB)
            return 0;
        hmm_tunables.mmap_threshold = (size_t)value;
        return 1;
    case M_ARENA_MAX:
        if (value < 1 || value > 1024)
            return 0;
        hmm_tunables.arena_max = (unsigned)value;
        return 1;
    }
    return 0;
}
