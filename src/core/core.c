/* core: allocation, arenas, strings, buffers, errors, logging, ids, geo. */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---------------------------------------------------------------- errors */

const char *err_name(int err)
{
    switch (err) {
    case ERR_OK: return "ok";
    case ERR_INVALID: return "invalid";
    case ERR_NOT_FOUND: return "not-found";
    case ERR_GONE: return "gone";
    case ERR_CONFLICT: return "conflict";
    case ERR_PRECONDITION: return "precondition-failed";
    case ERR_MULTIPLE: return "multiple-matches";
    case ERR_TOO_LARGE: return "too-large";
    case ERR_MEDIA_TYPE: return "unsupported-media-type";
    case ERR_NOT_ACCEPTABLE: return "not-acceptable";
    case ERR_METHOD: return "method-not-allowed";
    case ERR_PROFILE: return "profile";
    case ERR_BUSINESS: return "business-rule";
    case ERR_UNSUPPORTED: return "not-supported";
    case ERR_UNAUTHORIZED: return "unauthorized";
    case ERR_FORBIDDEN: return "forbidden";
    case ERR_IO: return "io";
    case ERR_INTERNAL: return "internal";
    case ERR_UNAVAILABLE: return "unavailable";
    case ERR_URI_TOO_LONG: return "uri-too-long";
    default: return "unknown";
    }
}

int diag_set(Diag *d, int err, const char *fmt, ...)
{
    if (d) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof d->msg, fmt, ap);
        va_end(ap);
    }
    return err;
}

void diag_expr(Diag *d, const char *fmt, ...)
{
    if (!d)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->expr, sizeof d->expr, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- allocation */

static void oom(size_t n)
{
    fprintf(stderr, "ror: out of memory (%zu bytes)\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return p;
}

/* ---------------------------------------------------------------- arena */

struct ArenaBlock {
    struct ArenaBlock *next;
    size_t used, size;
    max_align_t data[];
};

#define ARENA_BLOCK 16384

void arena_init(Arena *a)
{
    a->head = NULL;
}

void arena_cleanup(Arena *a)
{
    struct ArenaBlock *b = a->head;
    while (b) {
        struct ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void arena_reset(Arena *a)
{
    struct ArenaBlock *b = a->head;
    if (!b)
        return;
    struct ArenaBlock *rest = b->next;
    while (rest) {
        struct ArenaBlock *next = rest->next;
        free(rest);
        rest = next;
    }
    b->next = NULL;
    b->used = 0;
}

void *arena_alloc(Arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct ArenaBlock *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = xmalloc(sizeof *b + size);
        b->used = 0;
        b->size = size;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

/* ---------------------------------------------------------------- strings */

bool str_eq(Str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.p, b, n) == 0;
}

bool str_starts(Str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.p, prefix, n) == 0;
}

void buf_init(Buf *b, size_t cap)
{
    b->p = NULL;
    b->len = b->alloc = 0;
    b->cap = cap;
    b->overflow = false;
}

void buf_cleanup(Buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(Buf *b)
{
    b->len = 0;
    b->overflow = false;
    if (b->p)
        b->p[0] = 0;
}

int buf_add(Buf *b, const void *p, size_t n)
{
    if (b->overflow || n > b->cap || b->len > b->cap - n) {
        b->overflow = true;
        return ERR_TOO_LARGE;
    }
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc * 2 : 256;
        while (want < b->len + n + 1)
            want *= 2;
        b->p = xrealloc(b->p, want);
        b->alloc = want;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int buf_adds(Buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_printf(Buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    int rc;
    if (n < 0) {
        rc = ERR_INTERNAL;
    } else if ((size_t)n < sizeof small) {
        rc = buf_add(b, small, (size_t)n);
    } else {
        char *big = xmalloc((size_t)n + 1);
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
        rc = buf_add(b, big, (size_t)n);
        free(big);
    }
    va_end(ap2);
    return rc;
}

int buf_add_json_string(Buf *b, const char *s, size_t n)
{
    int rc = buf_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_add(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': memcpy(esc, "\\\"", 3); break;
        case '\\': memcpy(esc, "\\\\", 3); break;
        case '\n': memcpy(esc, "\\n", 3); break;
        case '\r': memcpy(esc, "\\r", 3); break;
        case '\t': memcpy(esc, "\\t", 3); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        if (rc == 0)
            rc = buf_adds(b, esc);
    }
    if (rc == 0)
        rc = buf_add(b, s + run, n - run);
    if (rc == 0)
        rc = buf_add(b, "\"", 1);
    return rc;
}

char *buf_steal(Buf *b, size_t *len)
{
    if (!b->p)
        buf_add(b, "", 0);
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->alloc = 0;
    return p;
}

/* ---------------------------------------------------------------- logging */

static int log_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(int level)
{
    log_level = level;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char ts[32];
    time_format_instant(time_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s %s ", ts, names[level & 3]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

/* ---------------------------------------------------------------- ids */

void uuid_v4(char out[37])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* the kernel has no entropy source: nothing sane to do */
        }
        got += (size_t)n;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

bool fhir_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- geo */

double geo_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371008.8; /* mean Earth radius (IUGG) */
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * r * asin(sqrt(a < 1 ? a : 1));
}
