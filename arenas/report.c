/* Formatting without malloc (no stdio inside the allocator), and the fatal
 * path: one line on stderr, then abort. */
#include "internal.h"

#include <string.h>

/* The call the thread is in ("free", "realloc", ...), set by heap.c for
 * the messages of the files below it. */
__thread const char *hmm_call __attribute__((tls_model("initial-exec")));

struct out {
    char *buf;
    size_t cap, len;
};

static void put_char(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void put_str(struct out *o, const char *s)
{
    while (*s)
        put_char(o, *s++);
}

static void put_unsigned(struct out *o, unsigned long long value, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    while (n)
        put_char(o, digits[--n]);
}

static void put_signed(struct out *o, long long value)
{
    if (value < 0) {
        put_char(o, '-');
        put_unsigned(o, 0ull - (unsigned long long)value, 10);
    } else {
        put_unsigned(o, (unsigned long long)value, 10);
    }
}

/* Right-align what was written since start in width columns. */
static void pad_left(struct out *o, size_t start, size_t width)
{
    size_t written = o->len - start;
    if (written >= width)
        return;
    size_t shift = width - written;
    for (size_t i = 0; i < shift; i++)
        put_char(o, ' ');
    for (size_t i = o->len; i-- > start + shift;)
        if (i < o->cap - 1 && i - shift < o->cap - 1)
            o->buf[i] = o->buf[i - shift];
    for (size_t i = start; i < start + shift && i < o->cap - 1; i++)
        o->buf[i] = ' ';
}

/* One conversion after '%': s c d u x p, with z l ll for the integers. */
static const char *put_conversion(struct out *o, const char *fmt, va_list *ap)
{
    int longs = 0;
    size_t width = 0;
    while (*fmt >= '0' && *fmt <= '9')
        width = width * 10 + (size_t)(*fmt++ - '0');
    size_t start = o->len;
    while (*fmt == 'l' || *fmt == 'z')
        longs += *fmt++ == 'z' ? 2 : 1;
    switch (*fmt) {
    case 's': put_str(o, va_arg(*ap, const char *)); break;
    case 'c': put_char(o, (char)va_arg(*ap, int)); break;
    case 'p': put_str(o, "0x"); put_unsigned(o, (uintptr_t)va_arg(*ap, void *), 16); break;
    case 'd': put_signed(o, longs ? va_arg(*ap, long long) : va_arg(*ap, int)); break;
    case 'u':
    case 'x': {
        unsigned base = *fmt == 'x' ? 16 : 10;
        put_unsigned(o, longs ? va_arg(*ap, unsigned long long) : va_arg(*ap, unsigned), base);
        break;
    }
    case '%': put_char(o, '%'); break;
    default: put_char(o, '?'); return *fmt ? fmt + 1 : fmt;
    }
    pad_left(o, start, width);
    return fmt + 1;
}

/* vsnprintf for the few conversions hmm uses; returns the full length. */
size_t fmt_buf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out o = { buf, cap, 0 };
    va_list args;
    va_copy(args, ap);
    while (*fmt) {
        if (*fmt != '%')
            put_char(&o, *fmt++);
        else
            fmt = put_conversion(&o, fmt + 1, &args);
    }
    va_end(args);
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

size_t fmt_str(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = fmt_buf(buf, cap, fmt, ap);
    va_end(ap);
    return len;
}

static void write_line(int fd, const char *prefix, const char *fmt, va_list ap)
{
    char line[512];
    size_t len = fmt_str(line, sizeof(line), "%s", prefix);
    len += fmt_buf(line + len, sizeof(line) - len, fmt, ap);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    os_write(fd, line, len);
}

void fmt_fd(int fd, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t len = fmt_buf(text, sizeof(text), fmt, ap);
    va_end(ap);
    os_write(fd, text, len < sizeof(text) ? len : sizeof(text) - 1);
}

void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(2, "hmm: ", fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(2, "hmm: ", fmt, ap);
    va_end(ap);
    os_abort();
}

/* HMM_ASSERT's one line: the condition, the file (without its directory),
 * the line and the function. */
void assert_failed(const char *cond, const char *file, int line, const char *func)
{
    const char *base = file;
    for (const char *p = file; *p; p++)
        if (*p == '/')
            base = p + 1;
    fatal("assertion `%s' failed at %s:%d (%s)", cond, base, line, func);
}
