/* http: libmicrohttpd glue, routing, error mapping, security headers, TLS, rate limiting. */
#include "http/http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

typedef struct Route {
    int methods;
    char **segs;
    size_t nsegs;
    HttpHandler handler;
    void *ctx;
} Route;

struct HttpServer {
    Route *routes;
    size_t nroutes, cap;
    struct MHD_Daemon *daemon;
    size_t max_body;
    unsigned conn_limit; /* connections at once, from the open-files limit */
    int port;
    /* open event streams (see http_stream_respond) */
    pthread_mutex_t streams_lock;
    struct HttpStream *streams;
    bool closing; /* http_quiesce: streams end */
    pthread_t pump;
    bool pump_running;
    pthread_cond_t pump_cond;
    unsigned wakes; /* wake-ups the pump has not looked at */
    HttpGate gate;
    void *gate_ctx;
    bool tls;
    bool trust_proxy;
    char *tls_cert, *tls_key; /* copies handed to libmicrohttpd, kept until it stops */
    struct RateLimiter *rate; /* NULL: no limit */
};

typedef struct Header {
    const char *name, *value;
    struct Header *next;
} Header;

/* A client as the rate limiter counts it: an IPv4 address, or an IPv6 /64 prefix (one
 * subscriber commonly holds a whole /64). b[0] is 4 or 6, the address bytes follow. */
typedef struct RateKey {
    uint8_t b[16];
} RateKey;

/* Per-connection state between MHD's calls of the access handler. */
typedef struct Conn {
    HttpRequest req;
    HttpServer *server;
    Buf body;
    bool started; /* the access handler has seen this request */
    bool too_large;
    bool uri_hostile; /* too long or too many parameters: answered 414 without parsing them */
    bool throttled;   /* over the rate limit: answered 429 when the headers came */
    bool early;       /* that answer was queued at once: the body is not read */
    Header *headers;
    RateKey key;
} Conn;

/* ------------------------------------------------------------------ errors */

static const struct {
    int err;
    int status;
} status_table[] = {
    {ERR_INVALID, 400},      {ERR_NOT_FOUND, 404},    {ERR_GONE, 410},
    {ERR_CONFLICT, 409},     {ERR_PRECONDITION, 412}, {ERR_MULTIPLE, 412},
    {ERR_TOO_LARGE, 413},    {ERR_MEDIA_TYPE, 415},   {ERR_NOT_ACCEPTABLE, 406},
    {ERR_METHOD, 405},       {ERR_PROFILE, 422},      {ERR_BUSINESS, 400},
    {ERR_UNSUPPORTED, 400},  {ERR_UNAUTHORIZED, 401}, {ERR_FORBIDDEN, 403},
    {ERR_IO, 500},           {ERR_INTERNAL, 500},     {ERR_UNAVAILABLE, 503},
    {ERR_URI_TOO_LONG, 414},
};

int http_status_of(int err)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].err == err)
            return status_table[i].status;
    return 500;
}

static const char *default_message(int err)
{
    switch (err) {
    case ERR_NOT_FOUND: return "ressource introuvable";
    case ERR_METHOD: return "méthode non autorisée sur cette ressource";
    case ERR_TOO_LARGE: return "corps de requête trop volumineux";
    case ERR_IO:
    case ERR_INTERNAL: return "erreur interne du serveur";
    default: return "requête invalide";
    }
}

/* `s` cut to fit `out`, control characters replaced: a client's %0A cannot forge log lines. */
static const char *log_safe(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = 0;
    return out;
}

void http_fail(HttpRequest *r, int err, const Diag *d)
{
    const char *msg = d && d->msg[0] ? d->msg : default_message(err);
    const char *expr = d ? d->expr : NULL;
    /* no internal detail leaks on server errors (paths, SQL, library messages): the log has it */
    if (err == ERR_IO || err == ERR_INTERNAL) {
        if (d && d->msg[0]) {
            char m[16], p[256], detail[sizeof d->msg];
            log_error("%s %s: %s", log_safe(m, sizeof m, r->method_name),
                      log_safe(p, sizeof p, r->path), log_safe(detail, sizeof detail, d->msg));
        }
        msg = default_message(err);
        expr = NULL;
    }
    char *body = fhir_outcome_text(err == ERR_UNAVAILABLE ? "warning" : "error",
                                   fhir_issue_code(err), msg, expr);
    http_respond(r, http_status_of(err), "application/fhir+json; charset=utf-8", body,
                 strlen(body));
}

/* ------------------------------------------------------------------ routing */

/* Raise the soft open-files limit to the hard one (every connection, event stream included,
 * holds a descriptor), and keep 128 for the store, logs and outbound connections. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 512;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit up = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl.rlim_cur = want;
        }
    }
    rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
    n = n > 256 ? n - 128 : n / 2;
    return (unsigned)(n > 65536 ? 65536 : n);
}

HttpServer *http_server_new(void)
{
    HttpServer *s = xcalloc(1, sizeof(HttpServer));
    s->conn_limit = connection_limit();
    pthread_mutex_init(&s->streams_lock, NULL);
    pthread_cond_init(&s->pump_cond, NULL);
    return s;
}

/* Split a path into at most `max` segments, copied into `a` (or malloc'd when a is NULL).
 * Returns the count, or max + 1 when there are more. */
static size_t split_path(const char *path, char **out, size_t max, Arena *a)
{
    size_t n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == max)
            return max + 1;
        out[n++] = a ? arena_strndup(a, p, len) : xstrndup(p, len);
        p += len;
    }
    return n;
}

void http_route(HttpServer *s, int methods, const char *pattern, HttpHandler h, void *ctx)
{
    if (s->nroutes == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->routes = xrealloc(s->routes, s->cap * sizeof *s->routes);
    }
    Route *r = &s->routes[s->nroutes++];
    r->methods = methods;
    r->segs = xcalloc(16, sizeof(char *));
    r->nsegs = split_path(pattern, r->segs, 16, NULL);
    r->handler = h;
    r->ctx = ctx;
}

/* How many literal segments of `r` match the path, or -1 when it does not match. Fills
 * req->params. The most literal matching routes win ("/fhir/metadata" over "/fhir/{type}"). */
static int route_match(const Route *r, char **segs, size_t n, HttpRequest *req)
{
    if (n != r->nsegs)
        return -1;
    size_t np = 0;
    int literals = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->segs[i][0] == '{') {
            if (np < HTTP_MAX_PARAMS)
                req->params[np++] = segs[i];
        } else if (strcmp(r->segs[i], segs[i]) != 0) {
            return -1;
        } else {
            literals++;
        }
    }
    return literals;
}

static void dispatch(HttpServer *s, HttpRequest *req)
{
    char *segs[16];
    size_t n = split_path(req->path, segs, 15, &req->arena);
    int allowed = 0, best = -1;
    for (size_t i = 0; n <= 15 && i < s->nroutes; i++) {
        int m = route_match(&s->routes[i], segs, n, req);
        if (m > best)
            best = m;
    }
    for (size_t i = 0; best >= 0 && i < s->nroutes; i++) {
        const Route *r = &s->routes[i];
        if (route_match(r, segs, n, req) != best)
            continue;
        if (r->methods & req->method) {
            if (s->gate && !s->gate(req, s->gate_ctx)) {
                if (!req->suspended && !req->answered)
                    http_fail(req, ERR_INTERNAL, NULL);
                return;
            }
            r->handler(req, r->ctx);
            /* a suspended request belongs to whoever resumes it: do not touch it */
            if (!req->suspended && !req->answered)
                http_fail(req, ERR_INTERNAL, NULL);
            return;
        }
        allowed |= r->methods;
    }
    if (allowed) {
        char allow[96] = "";
        static const char *names[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
        for (int i = 0; i < 7; i++)
            if (allowed & (1 << i)) {
                if (allow[0])
                    strcat(allow, ", ");
                strcat(allow, names[i]);
            }
        http_header_set(req, "Allow", allow);
        Diag d = {{0}, {0}};
        diag_set(&d, ERR_METHOD, "méthode %s non autorisée ici (autorisées : %s)", req->method_name,
                 allow);
        http_fail(req, ERR_METHOD, &d);
        return;
    }
    Diag d = {{0}, {0}};
    diag_set(&d, ERR_NOT_FOUND, "aucune ressource à cette adresse");
    http_fail(req, ERR_NOT_FOUND, &d);
}

void http_set_gate(HttpServer *s, HttpGate g, void *ctx)
{
    s->gate = g;
    s->gate_ctx = ctx;
}

/* ------------------------------------------------------------------ rate limiting */

/*
 * A token bucket per client key: `burst` tokens at most, refilled at `rate` per second; a
 * request takes one. A bucket that has refilled is the same as no bucket, so forgetting the
 * least recently used keys when the table is full only ever forgives.
 *
 * Keys are spread over RATE_SHARDS shards by a hash with a random seed (a client cannot aim its
 * addresses at one chain), each shard with its own lock, slots and LRU list, so that requests
 * from different clients seldom wait for each other. A shard's entries live in one array and
 * link by index + 1 (0 = none).
 * Invariants (under the shard's lock): n <= max; every entry of e[0..n) is in exactly one slot
 * chain and in the LRU list; 0 <= tokens <= burst.
 */
#define RATE_SHARDS 64 /* a power of two: the hash's top bits pick the shard */
#define RATE_SHARD_BITS 6
#define RATE_RETRY_MAX 86400u

typedef struct RateEntry {
    RateKey key;
    double tokens;
    int64_t at_ns; /* when `tokens` was counted (monotonic clock) */
    uint32_t chain;
    uint32_t newer, older;
} RateEntry;

typedef struct RateShard {
    pthread_mutex_t lock;
    RateEntry *e;
    uint32_t n, cap, max;
    uint32_t *slots;
    uint32_t nslots; /* a power of two */
    uint32_t newest, oldest;
    char pad[64]; /* neighbouring shards' locks on different cache lines */
} RateShard;

typedef struct RateLimiter {
    double rate, burst;
    uint64_t seed[2];
    RateShard shards[RATE_SHARDS];
} RateLimiter;

static RateLimiter *rate_new(double rate, double burst, size_t max_keys)
{
    RateLimiter *rl = xcalloc(1, sizeof *rl);
    rl->rate = rate;
    rl->burst = burst;
    if (getrandom(rl->seed, sizeof rl->seed, 0) != (ssize_t)sizeof rl->seed) {
        /* no entropy yet: a fixed seed only weakens the spread against a chosen-address attack */
        rl->seed[0] = (uint64_t)time_mono_ns() * 0x9e3779b97f4a7c15u;
        rl->seed[1] = (uint64_t)(uintptr_t)rl ^ 0xc2b2ae3d27d4eb4fu;
    }
    uint32_t per = (uint32_t)((max_keys + RATE_SHARDS - 1) / RATE_SHARDS);
    if (per < 1)
        per = 1;
    uint32_t nslots = 1;
    while (nslots < per)
        nslots <<= 1;
    for (int i = 0; i < RATE_SHARDS; i++) {
        RateShard *sh = &rl->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->max = per;
        sh->nslots = nslots;
        sh->slots = xcalloc(nslots, sizeof *sh->slots);
    }
    return rl;
}

static void rate_free(RateLimiter *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < RATE_SHARDS; i++) {
        pthread_mutex_destroy(&rl->shards[i].lock);
        free(rl->shards[i].e);
        free(rl->shards[i].slots);
    }
    free(rl);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

static uint64_t rate_hash(const RateLimiter *rl, const RateKey *k)
{
    uint64_t a, b;
    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    return mix64(mix64(a ^ rl->seed[0]) ^ b ^ rl->seed[1]);
}

static void lru_unlink(RateShard *sh, uint32_t i)
{
    RateEntry *e = &sh->e[i - 1];
    if (e->newer)
        sh->e[e->newer - 1].older = e->older;
    else
        sh->newest = e->older;
    if (e->older)
        sh->e[e->older - 1].newer = e->newer;
    else
        sh->oldest = e->newer;
    e->newer = e->older = 0;
}

static void lru_push(RateShard *sh, uint32_t i)
{
    RateEntry *e = &sh->e[i - 1];
    e->newer = 0;
    e->older = sh->newest;
    if (sh->newest)
        sh->e[sh->newest - 1].newer = i;
    else
        sh->oldest = i;
    sh->newest = i;
}

/* A free entry of the shard (its index + 1), out of every list: a new one while under `max`,
 * else the least recently used, forgotten. */
static uint32_t rate_entry_take(const RateLimiter *rl, RateShard *sh)
{
    if (sh->n < sh->max) {
        if (sh->n == sh->cap) {
            sh->cap = sh->cap ? sh->cap * 2 : 16;
            if (sh->cap > sh->max)
                sh->cap = sh->max;
            sh->e = xrealloc(sh->e, sh->cap * sizeof *sh->e);
        }
        return ++sh->n;
    }
    uint32_t i = sh->oldest;
    lru_unlink(sh, i);
    uint32_t *link = &sh->slots[rate_hash(rl, &sh->e[i - 1].key) & (sh->nslots - 1)];
    while (*link != i)
        link = &sh->e[*link - 1].chain;
    *link = sh->e[i - 1].chain;
    return i;
}

/* Take a token from k's bucket at now_ns. True when there was one; else false with *retry_s,
 * the whole seconds until there is one (at least 1). */
static bool rate_take(RateLimiter *rl, const RateKey *k, int64_t now_ns, unsigned *retry_s)
{
    uint64_t h = rate_hash(rl, k);
    RateShard *sh = &rl->shards[h >> (64 - RATE_SHARD_BITS)];
    pthread_mutex_lock(&sh->lock);
    uint32_t *slot = &sh->slots[h & (sh->nslots - 1)];
    uint32_t i = *slot;
    while (i && memcmp(&sh->e[i - 1].key, k, sizeof *k) != 0)
        i = sh->e[i - 1].chain;
    RateEntry *e;
    if (i) {
        e = &sh->e[i - 1];
        if (now_ns > e->at_ns) { /* another thread may have counted with a later clock */
            double t = e->tokens + (double)(now_ns - e->at_ns) * 1e-9 * rl->rate;
            e->tokens = t < rl->burst ? t : rl->burst;
            e->at_ns = now_ns;
        }
        lru_unlink(sh, i);
    } else {
        i = rate_entry_take(rl, sh);
        e = &sh->e[i - 1];
        e->key = *k;
        e->tokens = rl->burst;
        e->at_ns = now_ns;
        e->chain = *slot;
        *slot = i;
    }
    lru_push(sh, i);
    bool ok = e->tokens >= 1.0;
    if (ok) {
        e->tokens -= 1.0;
    } else {
        double wait = (1.0 - e->tokens) / rl->rate;
        unsigned n = wait >= RATE_RETRY_MAX ? RATE_RETRY_MAX : (unsigned)wait;
        if ((double)n < wait && n < RATE_RETRY_MAX)
            n++;
        *retry_s = n ? n : 1;
    }
    pthread_mutex_unlock(&sh->lock);
    return ok;
}

/* ------------------------------------------------------------------ clients */

static void key_set(RateKey *k, int family, const uint8_t *addr)
{
    memset(k, 0, sizeof *k);
    k->b[0] = family == AF_INET ? 4 : 6;
    memcpy(k->b + 1, addr, family == AF_INET ? 4 : 8);
}

/* Set r->remote and c->key from an address (an IPv4-mapped IPv6 address counts as IPv4). */
static void client_set(Conn *c, int family, const uint8_t *addr)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(addr, v4mapped, sizeof v4mapped) == 0) {
        family = AF_INET;
        addr += sizeof v4mapped;
    }
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, addr, text, sizeof text);
    c->req.remote = arena_strdup(&c->req.arena, text);
    key_set(&c->key, family, addr);
}

static enum MHD_Result last_forwarded(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    if (key && value && strcasecmp(key, "X-Forwarded-For") == 0)
        *(const char **)cls = value;
    return MHD_YES;
}

/* The last entry of an X-Forwarded-For value (the one our proxy appended), if an address. */
static bool forwarded_parse(const char *xff, int *family, uint8_t addr[16])
{
    const char *p = strrchr(xff, ',');
    p = p ? p + 1 : xff;
    p += strspn(p, " \t");
    size_t n = strcspn(p, " \t");
    if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
        p++;
        n -= 2;
    }
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, p, n);
    text[n] = 0;
    if (inet_pton(AF_INET, text, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, text, addr) == 1)
        *family = AF_INET6;
    else
        return false;
    return true;
}

/* Who is asking: the peer, or behind a trusted proxy the last X-Forwarded-For entry (when a
 * client sends several such headers, the proxy's is the last one). */
static void client_identify(const HttpServer *s, struct MHD_Connection *connection, Conn *c)
{
    uint8_t addr[16] = {0};
    int family = 0;
    if (s->trust_proxy) {
        const char *xff = NULL;
        MHD_get_connection_values(connection, MHD_HEADER_KIND, last_forwarded, &xff);
        if (xff && forwarded_parse(xff, &family, addr)) {
            client_set(c, family, addr);
            return;
        }
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        client_set(c, AF_INET, addr);
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        client_set(c, AF_INET6, addr);
    } else {
        c->req.remote = "?";
        memset(&c->key, 0, sizeof c->key);
    }
}

/* ------------------------------------------------------------------ requests */

const char *http_header(HttpRequest *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_header_set(HttpRequest *r, const char *name, const char *value)
{
    Conn *c = (Conn *)r; /* req is the first member of Conn */
    Header *h = arena_alloc(&r->arena, sizeof *h);
    h->name = arena_strdup(&r->arena, name);
    h->value = arena_strdup(&r->arena, value);
    h->next = c->headers;
    c->headers = h;
}

/* Sent on every response unless the handler set a header of the same name. The policy lets
 * the web UI to come load its own scripts and styles, and map tiles over https. */
static const char *const default_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Content-Security-Policy",
     "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
     "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Cache-Control", "no-store"},
};
#define HSTS "max-age=31536000"

static bool header_is_set(const Conn *c, const char *name)
{
    for (const Header *h = c->headers; h; h = h->next)
        if (strcasecmp(h->name, name) == 0)
            return true;
    return false;
}

/* The handler's headers, then the defaults it did not replace. */
static void headers_add(const Conn *c, struct MHD_Response *resp)
{
    for (const Header *h = c->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    for (size_t i = 0; i < sizeof default_headers / sizeof default_headers[0]; i++)
        if (!header_is_set(c, default_headers[i][0]))
            MHD_add_response_header(resp, default_headers[i][0], default_headers[i][1]);
    if (c->server->tls && !header_is_set(c, "Strict-Transport-Security"))
        MHD_add_response_header(resp, "Strict-Transport-Security", HSTS);
}

void http_respond(HttpRequest *r, int status, const char *content_type, char *body, size_t len)
{
    Conn *c = (Conn *)r;
    if (r->answered) { /* a bug: answer once */
        free(body);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    headers_add(c, resp);
    r->response = resp;
    r->status = status;
    r->answered = true;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    HttpRequest *r = cls;
    if (r->nquery == HTTP_MAX_QUERY) {
        r->query_overflow = true;
        return MHD_NO;
    }
    r->query_bytes += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 2;
    r->query[r->nquery].name = arena_strdup(&r->arena, key ? key : "");
    r->query[r->nquery].value = arena_strdup(&r->arena, value ? value : "");
    r->nquery++;
    return MHD_YES;
}

static int method_bit(const char *m)
{
    static const char *names[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (int i = 0; i < 7; i++)
        if (strcmp(m, names[i]) == 0)
            return 1 << i;
    return 0;
}

/*
 * Called by libmicrohttpd with the raw request line, BEFORE it splits the query into
 * arguments in the connection's memory pool. libmicrohttpd 0.9.75 stalls the connection (no
 * answer until the idle timeout) when the arguments exhaust that pool, so a query that is too
 * long or has too many parameters is cut here, in libmicrohttpd's own writable buffer, at the
 * '?', and the request is answered 414 by the access handler.
 */
static void *uri_seen(void *cls, const char *uri, struct MHD_Connection *connection)
{
    HttpServer *s = cls;
    (void)connection;
    Conn *c = xcalloc(1, sizeof *c);
    c->server = s;
    arena_init(&c->req.arena);
    buf_init(&c->body, s->max_body);
    const char *q = strchr(uri, '?');
    if (q) {
        size_t params = 1;
        for (const char *p = q; *p; p++)
            params += *p == '&' || *p == ';';
        if (strlen(uri) > HTTP_MAX_URI || params > HTTP_MAX_QUERY) {
            c->uri_hostile = true;
            ((char *)q)[1] = 0; /* the buffer is libmicrohttpd's, mutable, ours until parsed */
        }
    } else if (strlen(uri) > HTTP_MAX_URI) {
        c->uri_hostile = true;
    }
    return c;
}

static void respond_throttled(HttpRequest *r, unsigned retry_s)
{
    char v[16], msg[160];
    snprintf(v, sizeof v, "%u", retry_s);
    snprintf(msg, sizeof msg,
             "trop de requêtes depuis cette adresse : réessayez dans %u s (limite de débit)",
             retry_s);
    http_header_set(r, "Retry-After", v);
    char *body = fhir_outcome_text("error", "throttled", msg, NULL);
    http_respond(r, 429, "application/fhir+json; charset=utf-8", body, strlen(body));
}

/* Does the request name its caller (a bearer token or key, a session cookie)? Those are
 * accountable and checked by the gate; the per-address limit is for anonymous traffic, so that
 * a SAMU centre or a regional system behind one address is not throttled with the crowd. A
 * forged credential costs one lookup and gets 401. */
static bool has_credentials(struct MHD_Connection *conn)
{
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))
        return true;
    const char *cookie = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    return cookie && strstr(cookie, "ror_session=");
}

static bool has_body(struct MHD_Connection *connection)
{
    const char *cl =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl && strtoull(cl, NULL, 10) > 0) ||
           MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static enum MHD_Result queue(struct MHD_Connection *connection, HttpRequest *r)
{
    enum MHD_Result ret = MHD_queue_response(connection, (unsigned)r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    HttpServer *s = cls;
    Conn *c = *con_cls;
    if (!c || !c->started) { /* first call: headers only. Answer on a later call (keep-alive
                                works then). The Conn comes from uri_seen. */
        if (!c) {
            c = uri_seen(s, url, connection);
            *con_cls = c;
        }
        c->started = true;
        client_identify(s, connection, c);
        const char *cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->max_body)
            c->too_large = true;
        unsigned retry = 0;
        if (s->rate && !has_credentials(connection) &&
            !rate_take(s->rate, &c->key, time_mono_ns(), &retry)) {
            c->throttled = true;
            respond_throttled(&c->req, retry);
            /* With a body, answer now: libmicrohttpd then skips the body and closes the
             * connection, so a throttled client cannot make us read megabytes. */
            if (has_body(connection)) {
                c->early = true;
                return queue(connection, &c->req);
            }
        }
        return MHD_YES;
    }
    if (c->early) { /* answered already; whatever still comes is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!c->too_large && !c->throttled &&
            buf_add(&c->body, upload_data, *upload_data_size) != 0)
            c->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }

    HttpRequest *r = &c->req;
    if (r->dispatched) { /* called again after http_resume: the answer is ready */
        if (!r->answered)
            http_fail(r, ERR_INTERNAL, NULL);
        r->suspended = false;
        return queue(connection, r);
    }
    r->dispatched = true;
    r->conn = connection;
    r->method = method_bit(method);
    r->method_name = arena_strdup(&r->arena, method);
    r->path = arena_strdup(&r->arena, url);
    r->body = c->body.p ? c->body.p : "";
    r->body_len = c->body.len;
    if (c->throttled) /* answered when the headers came */
        return queue(connection, r);
    const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
    bool host_ok = host && *host && strlen(host) < 256 && !strpbrk(host, "\"<>\\ /@");
    const char *proto = s->trust_proxy ? MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                                     "X-Forwarded-Proto")
                                       : NULL;
    bool https = s->tls || (proto && strcasecmp(proto, "https") == 0);
    r->base_url = arena_printf(&r->arena, "%s://%s", https ? "https" : "http",
                               host_ok ? host : arena_printf(&r->arena, "localhost:%d", s->port));
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect_query, r);

    if (c->uri_hostile || strlen(url) + r->query_bytes > HTTP_MAX_URI) {
        Diag d = {{0}, {0}};
        diag_set(&d, ERR_URI_TOO_LONG,
                 "adresse de requête trop longue (au plus %d octets et %d paramètres)",
                 HTTP_MAX_URI, HTTP_MAX_QUERY);
        http_fail(r, ERR_URI_TOO_LONG, &d);
    } else if (c->too_large) {
        Diag d = {{0}, {0}};
        diag_set(&d, ERR_TOO_LARGE, "corps de requête trop volumineux (au plus %zu octets)",
                 s->max_body);
        http_fail(r, ERR_TOO_LARGE, &d);
    } else if (!r->method) {
        http_header_set(r, "Allow", "GET, POST, PUT, PATCH, DELETE");
        http_fail(r, ERR_METHOD, NULL);
    } else {
        dispatch(s, r);
        if (r->suspended)
            return MHD_YES; /* answered later, from another thread, then resumed */
    }
    return queue(connection, r);
}

void http_suspend(HttpRequest *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

void http_resume(HttpRequest *r)
{
    MHD_resume_connection(r->conn);
}

static void streams_close(HttpServer *s);

void http_quiesce(HttpServer *s)
{
    if (s)
        streams_close(s);
    if (s && s->daemon) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    Conn *c = *con_cls;
    if (!c)
        return;
    if (c->req.response)
        MHD_destroy_response(c->req.response);
    buf_cleanup(&c->body);
    arena_cleanup(&c->req.arena);
    free(c);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------ event streams */

/*
 * A stream is a chunked response whose content reader pulls from the application. When the
 * application has nothing, the connection is suspended (no thread held, no busy loop) and a
 * later http_stream_wake resumes it.
 *
 * Locking rule: libmicrohttpd is never called while a lock is held. MHD calls the response's
 * free callback (stream_free) with its own mutex held, and MHD_resume_connection takes that
 * mutex, so resuming under streams_lock could deadlock. Wakes only set a flag; the pump thread
 * takes the sleeping streams that were woken (a suspended connection cannot be closed, so its
 * handle stays valid) and resumes them with no lock held. A resume that lands just before the
 * suspend it answers is kept by MHD (its `resuming` flag) and applied at once.
 * `asleep`, `woken`, `ended`, `heartbeat` are guarded by streams_lock; `pending` belongs to
 * the MHD thread serving the connection.
 */
struct HttpStream {
    HttpServer *server;
    struct MHD_Connection *conn;
    HttpStreamPull pull;
    HttpStreamDone done;
    void *ctx;
    Buf pending; /* pulled, not yet sent */
    size_t sent;
    bool asleep, woken, ended, heartbeat;
    struct HttpStream *prev, *next;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    HttpStream *st = cls;
    HttpServer *s = st->server;
    for (;;) {
        if (st->sent < st->pending.len) {
            size_t n = st->pending.len - st->sent;
            if (n > max)
                n = max;
            memcpy(buf, st->pending.p + st->sent, n);
            st->sent += n;
            return (ssize_t)n;
        }
        buf_reset(&st->pending);
        st->sent = 0;
        pthread_mutex_lock(&s->streams_lock);
        bool end = s->closing || st->ended, beat = st->heartbeat;
        st->woken = st->heartbeat = false;
        pthread_mutex_unlock(&s->streams_lock);
        if (end)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->pull(st->ctx, &st->pending) != 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->pending.len == 0 && beat)
            buf_adds(&st->pending, ": keep-alive\n\n"); /* finds closed clients, keeps proxies */
        if (st->pending.len > 0)
            continue;
        pthread_mutex_lock(&s->streams_lock);
        bool sleep = !st->woken && !s->closing && !st->ended;
        if (sleep)
            st->asleep = true;
        pthread_mutex_unlock(&s->streams_lock);
        if (sleep) { /* nothing to send: sleep until the pump resumes us */
            MHD_suspend_connection(st->conn);
            return 0;
        }
    }
}

static void stream_free(void *cls)
{
    HttpStream *st = cls;
    HttpServer *s = st->server;
    pthread_mutex_lock(&s->streams_lock);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&s->streams_lock);
    if (st->done)
        st->done(st->ctx);
    buf_cleanup(&st->pending);
    free(st);
}

HttpStream *http_stream_respond(HttpRequest *r, const char *content_type, HttpStreamPull pull,
                                HttpStreamDone done, void *ctx)
{
    Conn *c = (Conn *)r;
    HttpServer *s = c->server;
    HttpStream *st = xcalloc(1, sizeof *st);
    st->server = s;
    st->conn = r->conn;
    st->pull = pull;
    st->done = done;
    st->ctx = ctx;
    buf_init(&st->pending, 16u << 20);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
    headers_add(c, resp);
    pthread_mutex_lock(&s->streams_lock);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->streams_lock);
    r->response = resp;
    r->status = 200;
    r->answered = true;
    return st;
}

void http_stream_wake(HttpStream *st)
{
    HttpServer *s = st->server;
    pthread_mutex_lock(&s->streams_lock);
    st->woken = true;
    s->wakes++;
    pthread_cond_signal(&s->pump_cond);
    pthread_mutex_unlock(&s->streams_lock);
}

void http_stream_end(HttpStream *st)
{
    HttpServer *s = st->server;
    pthread_mutex_lock(&s->streams_lock);
    st->ended = st->woken = true;
    s->wakes++;
    pthread_cond_signal(&s->pump_cond);
    pthread_mutex_unlock(&s->streams_lock);
}

#define HEARTBEAT_S 15
#define PUMP_BATCH 256

/* The pump: resumes the sleeping streams that were woken, and every HEARTBEAT_S seconds wakes
 * all of them for a keep-alive comment. Exits once closing and no stream sleeps. */
static void *pump_main(void *arg)
{
    HttpServer *s = arg;
    struct timespec beat;
    clock_gettime(CLOCK_REALTIME, &beat);
    beat.tv_sec += HEARTBEAT_S;
    pthread_mutex_lock(&s->streams_lock);
    for (;;) {
        if (!s->wakes && !s->closing &&
            pthread_cond_timedwait(&s->pump_cond, &s->streams_lock, &beat) != 0) {
            for (HttpStream *st = s->streams; st; st = st->next)
                st->heartbeat = st->woken = true;
            clock_gettime(CLOCK_REALTIME, &beat);
            beat.tv_sec += HEARTBEAT_S;
        }
        s->wakes = 0;
        struct MHD_Connection *conns[PUMP_BATCH];
        size_t n = 0;
        bool more = false;
        for (HttpStream *st = s->streams; st; st = st->next) {
            if (st->asleep && (st->woken || s->closing)) {
                if (n == PUMP_BATCH) {
                    more = true;
                    break;
                }
                st->asleep = false;
                conns[n++] = st->conn;
            }
        }
        bool stop = s->closing && n == 0 && !more;
        pthread_mutex_unlock(&s->streams_lock);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(conns[i]); /* suspended, hence still open */
        pthread_mutex_lock(&s->streams_lock);
        if (more)
            s->wakes++;
        if (stop)
            break;
    }
    pthread_mutex_unlock(&s->streams_lock);
    return NULL;
}

/* End every stream (quiesce/stop): a suspended connection must be resumed before MHD stops. */
static void streams_close(HttpServer *s)
{
    pthread_mutex_lock(&s->streams_lock);
    s->closing = true;
    pthread_cond_signal(&s->pump_cond);
    pthread_mutex_unlock(&s->streams_lock);
    if (s->pump_running) {
        pthread_join(s->pump, NULL);
        s->pump_running = false;
    }
}

/* TLS 1.2 and 1.3 only; AEAD ciphers only; ephemeral (EC)DH key exchange only (forward
 * secrecy), in the server's order of preference. */
#define TLS_PRIORITIES                                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

static int tls_check(const HttpOptions *o, Diag *d)
{
    if (!o->tls_cert_pem != !o->tls_key_pem)
        return diag_set(d, ERR_INVALID, "TLS : il faut à la fois le certificat et la clé privée");
    if (!o->tls_cert_pem)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return diag_set(d, ERR_IO,
                        "TLS indisponible : cette libmicrohttpd est construite sans GnuTLS "
                        "(servir derrière un mandataire inverse, voir docs/deploy-tls.md)");
    if (!strstr(o->tls_cert_pem, "-----BEGIN CERTIFICATE-----"))
        return diag_set(d, ERR_INVALID, "TLS : le certificat n'est pas un certificat PEM");
    if (!strstr(o->tls_key_pem, "PRIVATE KEY-----"))
        return diag_set(d, ERR_INVALID, "TLS : la clé n'est pas une clé privée PEM");
    if (strstr(o->tls_key_pem, "ENCRYPTED"))
        return diag_set(d, ERR_INVALID, "TLS : la clé privée est chiffrée (non pris en charge)");
    return 0;
}

int http_start(HttpServer *s, const HttpOptions *o, Diag *d)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    const char *bind = o->bind ? o->bind : "127.0.0.1";
    if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1)
        return diag_set(d, ERR_INVALID, "adresse d'écoute invalide : %s", bind);
    int rc = tls_check(o, d);
    if (rc != 0)
        return rc;
    s->max_body = o->max_body;
    s->trust_proxy = o->trust_proxy;
    s->tls = o->tls_cert_pem != NULL;
    /* NaN and absurd rates count as no limit rather than as a stuck bucket */
    if (o->rate_per_s > 0 && o->rate_per_s < 1e9) {
        double burst =
            o->rate_burst >= 1 && o->rate_burst < 1e9 ? o->rate_burst : 2 * o->rate_per_s;
        s->rate = rate_new(o->rate_per_s, burst < 1 ? 1 : burst, HTTP_RATE_ADDRESSES);
    }
    unsigned threads = o->threads > 0 ? (unsigned)o->threads : 4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem opts[16];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        o->timeout_s ? o->timeout_s : 60u, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->conn_limit, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_seen, s};
    if (s->tls) {
        flags |= MHD_USE_TLS;
        s->tls_cert = xstrdup(o->tls_cert_pem);
        s->tls_key = xstrdup(o->tls_key_pem);
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, access_handler, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon)
        return diag_set(d, ERR_IO,
                        s->tls ? "impossible de servir en TLS sur %s:%d (adresse occupée, ou "
                                 "certificat et clé refusés ou sans rapport : voir le journal)"
                               : "impossible d'écouter sur %s:%d",
                        bind, o->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    s->pump_running = pthread_create(&s->pump, NULL, pump_main, s) == 0;
    return 0;
}

unsigned http_connection_limit(const HttpServer *s)
{
    return s->conn_limit;
}

int http_port(const HttpServer *s)
{
    return s->port;
}

void http_stop(HttpServer *s)
{
    if (!s)
        return;
    streams_close(s);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->streams_lock);
    pthread_cond_destroy(&s->pump_cond);
    rate_free(s->rate);
    free(s->tls_cert);
    free(s->tls_key);
    for (size_t i = 0; i < s->nroutes; i++) {
        for (size_t k = 0; k < s->routes[i].nsegs; k++)
            free(s->routes[i].segs[k]);
        free(s->routes[i].segs);
    }
    free(s->routes);
    free(s);
}
