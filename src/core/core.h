/*
 * core — the foundation every other module stands on.
 *
 * Owns: checked allocation (x*alloc abort on OOM), request arenas, string views (Str) and
 * capped growable buffers (Buf), error codes (ERR_*) with a human diagnostic (Diag), logging,
 * time (ISO-8601 FHIR dates <-> epoch milliseconds), random UUIDs, text folding for search
 * (accent- and case-insensitive, via utf8proc) and geodesy helpers.
 *
 * Invariants: every fallible function returns 0 or a negative ERR_* and leaves its out-params
 * untouched on failure. A Buf never grows beyond its cap. Arena memory is released only as a
 * whole (arena_cleanup).
 *
 * Threading: everything here is thread-safe except a given Arena/Buf, which belongs to one
 * thread at a time.
 */
#ifndef ROR_CORE_H
#define ROR_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */

/** Error codes: 0 is success; failures are negative. http maps them to a status, once. */
enum {
    ERR_OK = 0,
    ERR_INVALID = -1,        /* malformed input (400, invalid) */
    ERR_NOT_FOUND = -2,      /* no such resource (404) */
    ERR_GONE = -3,           /* deleted resource (410) */
    ERR_CONFLICT = -4,       /* state conflict (409) */
    ERR_PRECONDITION = -5,   /* If-Match / version mismatch (412) */
    ERR_MULTIPLE = -6,       /* conditional target not unique (412, multiple-matches) */
    ERR_TOO_LARGE = -7,      /* body or result over a limit (413) */
    ERR_MEDIA_TYPE = -8,     /* unsupported Content-Type (415) */
    ERR_NOT_ACCEPTABLE = -9, /* cannot produce the Accept'ed format (406) */
    ERR_METHOD = -10,        /* method not allowed on that path (405) */
    ERR_PROFILE = -11,       /* well-formed but violates a profile (422) */
    ERR_BUSINESS = -12,      /* business rule (400, business-rule) */
    ERR_UNSUPPORTED = -13,   /* recognised but not implemented (400/501, not-supported) */
    ERR_UNAUTHORIZED = -14,  /* no or bad credentials (401) */
    ERR_FORBIDDEN = -15,     /* authenticated but not allowed (403) */
    ERR_IO = -16,            /* storage or system failure (500) */
    ERR_INTERNAL = -17,      /* bug or unexpected state (500) */
    ERR_UNAVAILABLE = -18,   /* shutting down / overloaded (503) */
    ERR_URI_TOO_LONG = -19,  /* request line over the limit (414) */
};

/** Short stable English name of an ERR_* code ("invalid", "not-found"...). Static string. */
const char *err_name(int err);

/**
 * Human detail of a failure. `msg` is French (it reaches users in OperationOutcome.diagnostics);
 * `expr` is the FHIRPath of the faulty element when known. Callers may pass NULL for Diag *.
 */
typedef struct Diag {
    char msg[512];
    char expr[256];
} Diag;

/** Set d->msg from a printf format (no-op when d is NULL). Returns `err` for tail calls. */
int diag_set(Diag *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Set d->expr (no-op when d is NULL). */
void diag_expr(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- allocation */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/** Formatted allocation (asprintf that aborts on OOM). Caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** A bump allocator whose memory dies as a whole: one per request. */
typedef struct Arena {
    struct ArenaBlock *head;
} Arena;

void arena_init(Arena *a);
void arena_cleanup(Arena *a);
/** Forget everything allocated but keep the first block for reuse (no free/malloc traffic when
 *  an arena serves one small job after another). */
void arena_reset(Arena *a);
void *arena_alloc(Arena *a, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- strings */

/** A borrowed view: not NUL-terminated in general. */
typedef struct Str {
    const char *p;
    size_t len;
} Str;

#define STR_LIT(s) ((Str){(s), sizeof(s) - 1})
static inline Str str_c(const char *s)
{
    Str r = {s, 0};
    while (s && s[r.len])
        r.len++;
    return r;
}
bool str_eq(Str a, const char *b);
bool str_starts(Str a, const char *prefix);

/** A growable byte buffer that refuses to grow past `cap` (then `overflow` is set). */
typedef struct Buf {
    char *p;
    size_t len;
    size_t alloc;
    size_t cap;
    bool overflow;
} Buf;

void buf_init(Buf *b, size_t cap);
void buf_cleanup(Buf *b);
/** Empty the buffer, keeping its memory. */
void buf_reset(Buf *b);
/** Append; returns ERR_TOO_LARGE (and sets overflow) if it would exceed the cap. */
int buf_add(Buf *b, const void *p, size_t n);
int buf_adds(Buf *b, const char *s);
int buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append `s` as a JSON string literal, quotes included. */
int buf_add_json_string(Buf *b, const char *s, size_t n);
/** NUL-terminate and hand the memory to the caller (Buf is left empty). */
char *buf_steal(Buf *b, size_t *len);

/* ---------------------------------------------------------------- logging */

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------- time */

/** Milliseconds since the Unix epoch, wall clock. */
int64_t time_now_ms(void);
/** Monotonic nanoseconds, for durations. */
int64_t time_mono_ns(void);
/** Format epoch ms as FHIR instant "YYYY-MM-DDThh:mm:ss.sssZ" into out (>= 25 bytes). */
void time_format_instant(int64_t ms, char out[32]);

/**
 * Parse a FHIR date, dateTime or instant ("2021", "2021-03", "2021-03-04",
 * "2021-03-04T10:00[:00[.123]](Z|+hh:mm)") into the closed range of epoch ms it denotes:
 * [*low, *high]. A value without a time zone is taken as UTC. ERR_INVALID on bad syntax.
 */
int time_parse_range(const char *s, size_t len, int64_t *low, int64_t *high);

/* ---------------------------------------------------------------- ids */

/** A random (v4) UUID in canonical lower-case form; out must hold 37 bytes. */
void uuid_v4(char out[37]);
/** True when s is a valid FHIR id: [A-Za-z0-9\-\.]{1,64}. */
bool fhir_id_valid(const char *s, size_t len);

/* ---------------------------------------------------------------- text */

/**
 * Fold text for search: Unicode NFKD, case fold, strip combining marks, expand ligatures
 * (œ -> oe, æ -> ae), collapse runs of white space. Returns a malloc'd NUL-terminated string,
 * or NULL when `s` is not valid UTF-8.
 */
char *text_fold(const char *s, size_t len);

/* ---------------------------------------------------------------- geo */

/** Great-circle distance in metres between two WGS84 points (degrees), haversine. */
double geo_distance_m(double lat1, double lon1, double lat2, double lon2);

#endif
