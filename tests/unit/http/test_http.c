/* http: the rate limiter with a controlled clock (token bucket, /64 keys, LRU memory bound,
 * threads), then real servers on loopback driven by libcurl: security headers on every kind of
 * answer, no leak of server-error detail, the gate, 429 + Retry-After with X-Forwarded-For,
 * and TLS (headers, suspend/resume, event streams, refused configurations).
 *
 * The limiter and the address parsing are file-local to http.c, and the clock is an argument
 * of rate_take only there: this test includes http.c itself (and is not linked with the http
 * library) to reach them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdatomic.h>

#include "http/http.c"

/* ------------------------------------------------------------------ limiter, clock injected */

#define SEC 1000000000LL

static RateKey v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    uint8_t addr[4] = {a, b, c, d};
    RateKey k;
    key_set(&k, AF_INET, addr);
    return k;
}

static RateKey v6(const char *text)
{
    uint8_t addr[16];
    assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
    RateKey k;
    key_set(&k, AF_INET6, addr);
    return k;
}

/* Every entry in exactly one chain and in the LRU list; counts agree. */
static void check_shards(const RateLimiter *rl, size_t *total)
{
    *total = 0;
    for (int s = 0; s < RATE_SHARDS; s++) {
        const RateShard *sh = &rl->shards[s];
        assert_true(sh->n <= sh->max);
        uint32_t chained = 0, listed = 0;
        for (uint32_t slot = 0; slot < sh->nslots; slot++)
            for (uint32_t i = sh->slots[slot]; i; i = sh->e[i - 1].chain) {
                assert_true(i <= sh->n);
                assert_int_equal(rate_hash(rl, &sh->e[i - 1].key) & (sh->nslots - 1), slot);
                chained++;
            }
        for (uint32_t i = sh->newest; i; i = sh->e[i - 1].older) {
            assert_true(sh->e[i - 1].tokens >= 0 && sh->e[i - 1].tokens <= rl->burst);
            listed++;
        }
        assert_int_equal(chained, sh->n);
        assert_int_equal(listed, sh->n);
        *total += sh->n;
    }
}

static void t_bucket(void **state)
{
    (void)state;
    RateLimiter *rl = rate_new(2.0, 4.0, 1000);
    RateKey a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 2);
    unsigned retry = 0;
    for (int i = 0; i < 4; i++)
        assert_true(rate_take(rl, &a, 0, &retry));
    assert_false(rate_take(rl, &a, 0, &retry));
    assert_int_equal(retry, 1);                /* one token at 2/s: 0.5 s, rounded up */
    assert_true(rate_take(rl, &b, 0, &retry)); /* another address has its own bucket */
    assert_true(rate_take(rl, &a, SEC / 2, &retry));
    assert_false(rate_take(rl, &a, SEC / 2, &retry));
    /* a long pause refills to the burst, not beyond */
    for (int i = 0; i < 4; i++)
        assert_true(rate_take(rl, &a, 100 * SEC, &retry));
    assert_false(rate_take(rl, &a, 100 * SEC, &retry));
    /* a clock seen earlier by another thread does not drain the bucket */
    assert_false(rate_take(rl, &a, 99 * SEC, &retry));
    rate_free(rl);

    rl = rate_new(0.25, 1.0, 1000); /* one request every 4 s */
    assert_true(rate_take(rl, &a, 0, &retry));
    assert_false(rate_take(rl, &a, 0, &retry));
    assert_int_equal(retry, 4);
    assert_false(rate_take(rl, &a, SEC / 2, &retry)); /* 0.125 token: 3.5 s, rounded up */
    assert_int_equal(retry, 4);
    assert_false(rate_take(rl, &a, 1 * SEC, &retry)); /* 0.25 token there: 3 s to go */
    assert_int_equal(retry, 3);
    assert_false(rate_take(rl, &a, 3900000000LL, &retry)); /* 0.975: 0.1 s, rounded up to 1 */
    assert_int_equal(retry, 1);
    assert_true(rate_take(rl, &a, 4 * SEC, &retry));
    rate_free(rl);

    rl = rate_new(1e-6, 1.0, 1000); /* the wait is capped at a day */
    assert_true(rate_take(rl, &a, 0, &retry));
    assert_false(rate_take(rl, &a, 0, &retry));
    assert_int_equal(retry, RATE_RETRY_MAX);
    rate_free(rl);
}

static void t_keys(void **state)
{
    (void)state;
    /* IPv6 clients are counted by /64; IPv4 and IPv6 keys never collide */
    RateKey x = v6("2001:db8:0:5::1"), y = v6("2001:db8:0:5:ffff:ffff:ffff:ffff");
    RateKey z = v6("2001:db8:0:6::1");
    assert_memory_equal(&x, &y, sizeof x);
    assert_memory_not_equal(&x, &z, sizeof x);
    RateKey four = v4(32, 1, 13, 184), six = v6("2001:db8::");
    assert_memory_not_equal(&four, &six, sizeof four);

    /* an IPv4-mapped IPv6 peer is the IPv4 client */
    Conn c;
    memset(&c, 0, sizeof c);
    arena_init(&c.req.arena);
    uint8_t mapped[16];
    assert_int_equal(inet_pton(AF_INET6, "::ffff:32.1.13.184", mapped), 1);
    client_set(&c, AF_INET6, mapped);
    assert_string_equal(c.req.remote, "32.1.13.184");
    assert_memory_equal(&c.key, &four, sizeof four);
    arena_cleanup(&c.req.arena);

    static const struct {
        const char *xff, *want; /* want NULL: not an address */
    } cases[] = {
        {"203.0.113.7", "203.0.113.7"},
        {"10.0.0.1, 203.0.113.7", "203.0.113.7"},
        {"10.0.0.1,203.0.113.7", "203.0.113.7"},
        {" 2001:db8::1 ", "2001:db8::1"},
        {"[2001:db8::2]", "2001:db8::2"},
        {"198.51.100.1, unknown", NULL},
        {"203.0.113.7:443", NULL},
        {"10.0.0.1, ", NULL},
        {"", NULL},
        {"2001:db8::1%eth0", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t addr[16];
        int family = 0;
        bool ok = forwarded_parse(cases[i].xff, &family, addr);
        assert_int_equal(ok, cases[i].want != NULL);
        if (ok) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(family, addr, text, sizeof text);
            assert_string_equal(text, cases[i].want);
        }
    }
}

/* A key that lands in shard `shard`, different for each n. */
static RateKey key_in_shard(const RateLimiter *rl, int shard, uint32_t *n)
{
    for (;;) {
        uint32_t v = (*n)++;
        RateKey k = v4(10, (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v);
        if ((int)(rate_hash(rl, &k) >> (64 - RATE_SHARD_BITS)) == shard)
            return k;
    }
}

static void t_memory_bound(void **state)
{
    (void)state;
    RateLimiter *rl = rate_new(1.0, 1.0, 4 * RATE_SHARDS); /* 4 per shard */
    unsigned retry;
    uint32_t n = 0;
    RateKey a = key_in_shard(rl, 7, &n);
    assert_true(rate_take(rl, &a, 0, &retry)); /* a's bucket is empty now */
    RateKey k[8];
    for (int i = 0; i < 3; i++) {
        k[i] = key_in_shard(rl, 7, &n);
        assert_true(rate_take(rl, &k[i], 0, &retry));
    }
    assert_false(rate_take(rl, &a, 0, &retry)); /* still remembered, and now the newest */
    k[3] = key_in_shard(rl, 7, &n);
    assert_true(rate_take(rl, &k[3], 0, &retry)); /* forgets k0, the least recent */
    assert_false(rate_take(rl, &a, 0, &retry));
    assert_true(rate_take(rl, &k[0], 0, &retry)); /* k0 starts again full: forgets k1 */
    for (int i = 4; i < 7; i++) {
        k[i] = key_in_shard(rl, 7, &n);
        assert_true(rate_take(rl, &k[i], 0, &retry));
    }
    /* a was not touched since: forgotten, so forgiven */
    assert_true(rate_take(rl, &a, 0, &retry));

    /* many addresses: the table stays within its bound, the structure sound */
    for (uint32_t i = 0; i < 20000; i++) {
        RateKey r = v4(100, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        rate_take(rl, &r, (int64_t)i, &retry);
    }
    size_t total;
    check_shards(rl, &total);
    assert_int_equal(total, 4 * RATE_SHARDS);
    rate_free(rl);
}

#define HAMMER_THREADS 4
#define HAMMER_TAKES 40000

typedef struct {
    RateLimiter *rl;
    uint32_t seed;
    int allowed;
} Hammer;

/* The hammer's addresses: 2048 of them (172.16.0-255.0-7), in a sequence fixed by seed. */
static RateKey hammer_key(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return v4(172, 16, (uint8_t)(*x >> 8), (uint8_t)(*x & 7));
}

static void *hammer(void *arg)
{
    Hammer *h = arg;
    unsigned retry;
    uint32_t x = h->seed;
    for (int i = 0; i < HAMMER_TAKES; i++) {
        RateKey k = hammer_key(&x);
        h->allowed += rate_take(h->rl, &k, time_mono_ns(), &retry);
    }
    return NULL;
}

/* Threads on shared buckets that never refill: exactly `burst` requests per address get
 * through, however the threads interleave. */
static void t_threads(void **state)
{
    (void)state;
    RateLimiter *rl = rate_new(1e-9, 3.0, HTTP_RATE_ADDRESSES);
    pthread_t th[HAMMER_THREADS];
    Hammer h[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (Hammer){.rl = rl, .seed = 2654435761u * (uint32_t)(i + 1)};
        pthread_create(&th[i], NULL, hammer, &h[i]);
    }
    int allowed = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
        allowed += h[i].allowed;
    }
    /* the addresses the threads asked for, and how often each */
    static uint16_t seen[1 << 16];
    memset(seen, 0, sizeof seen);
    size_t distinct = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        uint32_t x = h[i].seed;
        for (int k = 0; k < HAMMER_TAKES; k++) {
            RateKey key = hammer_key(&x);
            uint16_t id = (uint16_t)(key.b[3] << 8 | key.b[4]);
            distinct += seen[id]++ == 0;
        }
    }
    int expect = 0;
    for (size_t id = 0; id < sizeof seen / sizeof seen[0]; id++)
        expect += seen[id] < 3 ? seen[id] : 3;
    size_t total;
    check_shards(rl, &total);
    assert_int_equal(total, distinct);
    assert_int_equal(allowed, expect);
    rate_free(rl);
}

/* ------------------------------------------------------------------ real servers */

typedef struct Resp {
    long status;
    Buf body;
    Buf head;
    char error[CURL_ERROR_SIZE];
    CURLcode rc;
} Resp;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf_add(ud, p, size * n);
    return size * n;
}

typedef struct Req {
    const char *method;
    const char *body;
    size_t body_len;
    const char *headers[4];
    const char *cafile; /* TLS: trust this certificate */
} Req;

static void fetch(const char *url, const Req *q, Resp *out)
{
    memset(out, 0, sizeof *out);
    buf_init(&out->body, 4u << 20);
    buf_init(&out->head, 1u << 16);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    for (int i = 0; q && i < 4 && q->headers[i]; i++)
        hl = curl_slist_append(hl, q->headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->head);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->error);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (q && q->method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q && q->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    }
    if (q && q->cafile) {
        curl_easy_setopt(h, CURLOPT_CAINFO, q->cafile);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    out->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    buf_adds(&out->body, ""); /* allocated and NUL-terminated, for string checks */
    buf_adds(&out->head, "");
}

static void resp_cleanup(Resp *r)
{
    buf_cleanup(&r->body);
    buf_cleanup(&r->head);
}

/* How many times header `name` came, and the first value (copied into val). */
static int header_count(const Resp *r, const char *name, char *val, size_t vlen)
{
    int n = 0;
    size_t len = strlen(name);
    const char *p = r->head.p;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - p) > len && strncasecmp(p, name, len) == 0 && p[len] == ':') {
            if (n == 0 && val) {
                const char *v = p + len + 1;
                v += strspn(v, " ");
                snprintf(val, vlen, "%.*s", (int)(eol - v), v);
            }
            n++;
        }
        p = eol + 2;
    }
    return n;
}

static const char CSP[] = "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
                          "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                          "form-action 'self'";

/* The security headers every answer carries, each exactly once. */
static void check_security(const Resp *r, bool tls)
{
    char v[512];
    assert_int_equal(header_count(r, "X-Content-Type-Options", v, sizeof v), 1);
    assert_string_equal(v, "nosniff");
    assert_int_equal(header_count(r, "X-Frame-Options", v, sizeof v), 1);
    assert_string_equal(v, "DENY");
    assert_int_equal(header_count(r, "Referrer-Policy", v, sizeof v), 1);
    assert_string_equal(v, "no-referrer");
    assert_int_equal(header_count(r, "Content-Security-Policy", v, sizeof v), 1);
    assert_string_equal(v, CSP);
    assert_int_equal(header_count(r, "Cross-Origin-Resource-Policy", v, sizeof v), 1);
    assert_string_equal(v, "same-origin");
    assert_int_equal(header_count(r, "Strict-Transport-Security", v, sizeof v), tls ? 1 : 0);
    if (tls)
        assert_string_equal(v, "max-age=31536000");
}

static atomic_int handled, gated, uploads;

static void h_echo(HttpRequest *r, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&handled, 1);
    char *body = xasprintf("%s|%s|%s", r->remote, r->base_url,
                           r->principal ? (const char *)r->principal : "-");
    http_respond(r, 200, "text/plain", body, strlen(body));
}

static void h_cached(HttpRequest *r, void *ctx)
{
    (void)ctx;
    http_header_set(r, "Cache-Control", "max-age=60");
    http_respond(r, 200, "text/plain", xstrdup("cached"), 6);
}

static void h_internal(HttpRequest *r, void *ctx)
{
    (void)ctx;
    Diag d = {{0}, {0}};
    diag_set(&d, ERR_INTERNAL, "secret-detail /var/lib/ror/ror.db: disk I/O error");
    diag_expr(&d, "Location.secret");
    http_fail(r, ERR_INTERNAL, &d);
}

static void h_upload(HttpRequest *r, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&uploads, 1);
    char *body = xasprintf("%zu", r->body_len);
    http_respond(r, 201, "text/plain", body, strlen(body));
}

/* suspend: another thread answers, then resumes */
static pthread_t late_thread;

static void *answer_late(void *arg)
{
    HttpRequest *r = arg;
    char *body = xasprintf("late %s", r->base_url);
    http_respond(r, 200, "text/plain", body, strlen(body));
    http_resume(r);
    return NULL;
}

static void h_slow(HttpRequest *r, void *ctx)
{
    (void)ctx;
    http_suspend(r);
    pthread_create(&late_thread, NULL, answer_late, r);
}

/* an event stream whose data comes from another thread after the connection went to sleep */
typedef struct Feed {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int phase; /* 0 new, 1 pulled empty (asleep), 2 data ready, 3 sent */
    HttpStream *st;
    bool done;
} Feed;

static Feed feed = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, false};

static int feed_pull(void *ctx, Buf *out)
{
    Feed *f = ctx;
    int rc = 0;
    pthread_mutex_lock(&f->lock);
    if (f->phase == 0) {
        f->phase = 1;
        pthread_cond_broadcast(&f->cond);
    } else if (f->phase == 2) {
        buf_adds(out, "data: bonjour\n\n");
        f->phase = 3;
    } else if (f->phase == 3) {
        rc = 1;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void feed_done(void *ctx)
{
    Feed *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->done = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void h_stream(HttpRequest *r, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&feed.lock);
    feed.st = http_stream_respond(r, "text/event-stream", feed_pull, feed_done, &feed);
    pthread_mutex_unlock(&feed.lock);
}

static void *feed_wake(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&feed.lock);
    while (feed.phase != 1)
        if (pthread_cond_timedwait(&feed.cond, &feed.lock, &until) != 0)
            break;
    bool asleep = feed.phase == 1;
    if (asleep)
        feed.phase = 2;
    HttpStream *st = feed.st;
    pthread_mutex_unlock(&feed.lock);
    if (asleep)
        http_stream_wake(st);
    return NULL;
}

/* The stream route answers with a stream that another thread feeds after the first, empty
 * pull; the body must be exactly what was fed. */
static void check_stream(const char *base, const char *cafile)
{
    pthread_mutex_lock(&feed.lock);
    feed.phase = 0;
    feed.done = false;
    feed.st = NULL;
    pthread_mutex_unlock(&feed.lock);
    pthread_t waker;
    pthread_create(&waker, NULL, feed_wake, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/stream", base);
    Resp r;
    fetch(url, &(Req){.cafile = cafile}, &r);
    pthread_join(waker, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "data: bonjour\n\n");
    check_security(&r, cafile != NULL);
    char v[64];
    assert_int_equal(header_count(&r, "Cache-Control", v, sizeof v), 1);
    assert_string_equal(v, "no-store");
    resp_cleanup(&r);
}

static bool gate(HttpRequest *r, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&gated, 1);
    const char *user = http_header(r, "X-User");
    if (!user) {
        Diag d = {{0}, {0}};
        diag_set(&d, ERR_UNAUTHORIZED, "authentification requise");
        http_fail(r, ERR_UNAUTHORIZED, &d);
        return false;
    }
    r->principal = arena_strdup(&r->arena, user);
    return true;
}

static HttpServer *serve(HttpOptions o, bool with_gate, char base[64])
{
    HttpServer *s = http_server_new();
    http_route(s, HTTP_GET, "/echo", h_echo, NULL);
    http_route(s, HTTP_GET, "/cached", h_cached, NULL);
    http_route(s, HTTP_GET, "/internal", h_internal, NULL);
    http_route(s, HTTP_GET, "/internal/{x}", h_internal, NULL);
    http_route(s, HTTP_POST, "/upload", h_upload, NULL);
    http_route(s, HTTP_GET, "/slow", h_slow, NULL);
    http_route(s, HTTP_GET, "/stream", h_stream, NULL);
    if (with_gate)
        http_set_gate(s, gate, NULL);
    o.port = 0;
    o.threads = 2;
    if (!o.max_body)
        o.max_body = 64 * 1024;
    Diag d = {{0}, {0}};
    int rc = http_start(s, &o, &d);
    if (rc != 0)
        fail_msg("http_start: %s", d.msg);
    snprintf(base, 64, "%s://127.0.0.1:%d", o.tls_cert_pem ? "https" : "http", http_port(s));
    return s;
}

static void stop(HttpServer *s)
{
    http_quiesce(s);
    http_stop(s);
}

static void t_headers(void **state)
{
    (void)state;
    char base[64], url[64 * 1024];
    HttpServer *s = serve((HttpOptions){.max_body = 1024}, false, base);
    static const struct {
        const char *path, *method;
        size_t body;
        long status;
    } cases[] = {
        {"/echo", NULL, 0, 200},        {"/nowhere", NULL, 0, 404},  {"/echo", "DELETE", 0, 405},
        {"/upload", "POST", 4096, 413}, {"/internal", NULL, 0, 500}, {"/echo", "BREW", 0, 405},
    };
    char big[4096];
    memset(big, 'x', sizeof big);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(url, sizeof url, "%s%s", base, cases[i].path);
        Resp r;
        fetch(url,
              &(Req){.method = cases[i].method,
                     .body = cases[i].body ? big : NULL,
                     .body_len = cases[i].body},
              &r);
        assert_int_equal(r.status, cases[i].status);
        check_security(&r, false);
        char v[64];
        assert_int_equal(header_count(&r, "Cache-Control", v, sizeof v), 1);
        assert_string_equal(v, "no-store");
        resp_cleanup(&r);
    }
    /* 414: a request line over HTTP_MAX_URI */
    int n = snprintf(url, sizeof url, "%s/echo?q=", base);
    memset(url + n, 'a', HTTP_MAX_URI);
    url[n + HTTP_MAX_URI] = 0;
    Resp r;
    fetch(url, NULL, &r);
    assert_int_equal(r.status, 414);
    check_security(&r, false);
    resp_cleanup(&r);

    /* a handler's own Cache-Control replaces the default, once */
    snprintf(url, sizeof url, "%s/cached", base);
    fetch(url, NULL, &r);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_int_equal(header_count(&r, "Cache-Control", v, sizeof v), 1);
    assert_string_equal(v, "max-age=60");
    check_security(&r, false);
    resp_cleanup(&r);

    check_stream(base, NULL);
    stop(s);
}

static void t_internal_detail(void **state)
{
    (void)state;
    char base[64], url[128];
    HttpServer *s = serve((HttpOptions){0}, false, base);
    char logpath[] = "/tmp/ror-http-log-XXXXXX";
    int fd = mkstemp(logpath);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    snprintf(url, sizeof url, "%s/internal", base);
    Resp r, forged;
    fetch(url, NULL, &r);
    /* a client cannot start a line of its own in the log */
    snprintf(url, sizeof url, "%s/internal/x%%0A2026-01-01T00:00:00Z%%20error%%20forged", base);
    fetch(url, NULL, &forged);
    assert_int_equal(forged.status, 500);
    resp_cleanup(&forged);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(r.status, 500);
    assert_null(strstr(r.body.p, "secret"));
    assert_null(strstr(r.body.p, "/var/lib"));
    assert_non_null(strstr(r.body.p, "erreur interne du serveur"));
    assert_non_null(strstr(r.body.p, "\"OperationOutcome\""));
    char logged[4096] = "";
    ssize_t got = pread(fd, logged, sizeof logged - 1, 0);
    close(fd);
    unlink(logpath);
    assert_true(got > 0);
    assert_non_null(strstr(logged, "secret-detail /var/lib/ror/ror.db"));
    assert_non_null(strstr(logged, "GET /internal:"));
    assert_non_null(strstr(logged, "GET /internal/x?2026-01-01T00:00:00Z error forged:"));
    assert_null(strstr(logged, "\n2026-01-01"));
    resp_cleanup(&r);
    stop(s);
}

static void t_gate(void **state)
{
    (void)state;
    char base[64], url[128];
    HttpServer *s = serve((HttpOptions){0}, true, base);
    atomic_store(&gated, 0);
    atomic_store(&handled, 0);
    Resp r;
    snprintf(url, sizeof url, "%s/echo", base);
    fetch(url, NULL, &r); /* refused: the handler does not run */
    assert_int_equal(r.status, 401);
    check_security(&r, false);
    assert_int_equal(atomic_load(&gated), 1);
    assert_int_equal(atomic_load(&handled), 0);
    resp_cleanup(&r);

    fetch(url, &(Req){.headers = {"X-User: alice"}}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&gated), 2);
    assert_int_equal(atomic_load(&handled), 1);
    assert_non_null(strstr(r.body.p, "|alice"));
    resp_cleanup(&r);

    /* 404 and 405 are answered without asking the gate */
    snprintf(url, sizeof url, "%s/nowhere", base);
    fetch(url, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_cleanup(&r);
    snprintf(url, sizeof url, "%s/echo", base);
    fetch(url, &(Req){.method = "PUT"}, &r);
    assert_int_equal(r.status, 405);
    resp_cleanup(&r);
    assert_int_equal(atomic_load(&gated), 2);

    /* event-stream routes pass the gate too */
    snprintf(url, sizeof url, "%s/stream", base);
    fetch(url, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_int_equal(atomic_load(&gated), 3);
    resp_cleanup(&r);
    stop(s);
}

static long get_with_xff(const char *base, const char *xff, Resp *r)
{
    char url[128], h[128];
    snprintf(url, sizeof url, "%s/echo", base);
    snprintf(h, sizeof h, "X-Forwarded-For: %s", xff);
    fetch(url, &(Req){.headers = {h}}, r);
    return r->status;
}

static void t_rate_limit(void **state)
{
    (void)state;
    char base[64], url[128];
    /* 3 requests, then one every 1000 s: nothing refills while the test runs */
    HttpServer *s = serve((HttpOptions){.rate_per_s = 0.001, .rate_burst = 3, .trust_proxy = true},
                          false, base);
    Resp r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get_with_xff(base, "198.51.100.1", &r), 200);
        /* r->remote is the forwarded client */
        assert_true(strncmp(r.body.p, "198.51.100.1|http://127.0.0.1:", 30) == 0);
        resp_cleanup(&r);
    }
    atomic_store(&handled, 0);
    assert_int_equal(get_with_xff(base, "198.51.100.1", &r), 429);
    assert_int_equal(atomic_load(&handled), 0);
    check_security(&r, false);
    char v[64];
    assert_int_equal(header_count(&r, "Retry-After", v, sizeof v), 1);
    long retry = strtol(v, NULL, 10);
    assert_true(retry >= 999 && retry <= 1000); /* (1 - tokens) / 0.001, tokens ~ 0 */
    assert_non_null(strstr(r.body.p, "\"code\":\"throttled\""));
    assert_non_null(strstr(r.body.p, "\"resourceType\":\"OperationOutcome\""));
    assert_non_null(strstr(r.body.p, "trop de requêtes"));
    resp_cleanup(&r);

    /* the proxy's entry is the last one; what the client put before it does not count */
    assert_int_equal(get_with_xff(base, "198.51.100.2, 198.51.100.1", &r), 429);
    resp_cleanup(&r);
    assert_int_equal(get_with_xff(base, "198.51.100.1, 198.51.100.2", &r), 200);
    assert_true(strncmp(r.body.p, "198.51.100.2|", 13) == 0);
    resp_cleanup(&r);

    /* IPv6: one bucket per /64 */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get_with_xff(base, "2001:db8:1:2::1", &r), 200);
        resp_cleanup(&r);
    }
    assert_int_equal(get_with_xff(base, "2001:db8:1:2:aaaa::9", &r), 429);
    resp_cleanup(&r);
    assert_int_equal(get_with_xff(base, "2001:db8:1:3::1", &r), 200);
    assert_true(strncmp(r.body.p, "2001:db8:1:3::1|", 16) == 0);
    resp_cleanup(&r);

    /* a throttled upload is answered before its body is read, and never reaches the handler */
    size_t big_len = 60 * 1024;
    char *big = xmalloc(big_len);
    memset(big, 'x', big_len);
    atomic_store(&uploads, 0);
    snprintf(url, sizeof url, "%s/upload", base);
    fetch(url,
          &(Req){.method = "POST",
                 .body = big,
                 .body_len = big_len,
                 .headers = {"X-Forwarded-For: 198.51.100.1"}},
          &r);
    assert_int_equal(r.status, 429);
    assert_int_equal(atomic_load(&uploads), 0);
    assert_int_equal(header_count(&r, "Retry-After", NULL, 0), 1);
    resp_cleanup(&r);
    /* ... even when the body never comes: the answer does not wait for it */
    int port = atoi(strrchr(base, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char head[] = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n"
                               "X-Forwarded-For: 198.51.100.1\r\n\r\n";
    assert_int_equal(write(fd, head, sizeof head - 1), (ssize_t)(sizeof head - 1));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[13] = "";
    assert_int_equal(recv(fd, line, 12, MSG_WAITALL), 12);
    assert_string_equal(line, "HTTP/1.1 429");
    close(fd);
    assert_int_equal(atomic_load(&uploads), 0);

    /* the server still serves others, uploads included */
    fetch(url,
          &(Req){.method = "POST",
                 .body = big,
                 .body_len = big_len,
                 .headers = {"X-Forwarded-For: 198.51.100.77"}},
          &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(strtoul(r.body.p, NULL, 10), big_len);
    resp_cleanup(&r);
    free(big);
    stop(s);

    /* without trust_proxy, X-Forwarded-For is ignored: every request is the loopback's */
    s = serve((HttpOptions){.rate_per_s = 0.001, .rate_burst = 2}, false, base);
    assert_int_equal(get_with_xff(base, "198.51.100.1", &r), 200);
    assert_true(strncmp(r.body.p, "127.0.0.1|", 10) == 0);
    resp_cleanup(&r);
    assert_int_equal(get_with_xff(base, "198.51.100.2", &r), 200);
    resp_cleanup(&r);
    assert_int_equal(get_with_xff(base, "198.51.100.3", &r), 429);
    resp_cleanup(&r);
    stop(s);
}

static void t_forwarded_proto(void **state)
{
    (void)state;
    char base[64], url[128];
    HttpServer *s = serve((HttpOptions){.trust_proxy = true}, false, base);
    snprintf(url, sizeof url, "%s/echo", base);
    Resp r;
    fetch(url, &(Req){.headers = {"X-Forwarded-Proto: https", "Host: ror.example.fr"}}, &r);
    assert_true(strncmp(r.body.p, "127.0.0.1|https://ror.example.fr|", 33) == 0);
    check_security(&r, false); /* HSTS is the TLS end's business: the proxy sends it */
    resp_cleanup(&r);
    stop(s);
    s = serve((HttpOptions){0}, false, base);
    snprintf(url, sizeof url, "%s/echo", base);
    fetch(url, &(Req){.headers = {"X-Forwarded-Proto: https", "Host: ror.example.fr"}}, &r);
    assert_true(strncmp(r.body.p, "127.0.0.1|http://ror.example.fr|", 32) == 0);
    resp_cleanup(&r);
    stop(s);
}

/* ------------------------------------------------------------------ TLS */

typedef struct Pki {
    char dir[64];
    char cert[128], key[128], rsa_cert[128], rsa_key[128];
    char *cert_pem, *key_pem, *rsa_cert_pem, *rsa_key_pem;
} Pki;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    Buf b;
    buf_init(&b, 1u << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    return buf_steal(&b, NULL);
}

static int pki_setup(void **state)
{
    Pki *p = xcalloc(1, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/ror-http-tls-XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    snprintf(p->cert, sizeof p->cert, "%s/cert.pem", p->dir);
    snprintf(p->key, sizeof p->key, "%s/key.pem", p->dir);
    snprintf(p->rsa_cert, sizeof p->rsa_cert, "%s/rsa-cert.pem", p->dir);
    snprintf(p->rsa_key, sizeof p->rsa_key, "%s/rsa-key.pem", p->dir);
    char *cmd =
        xasprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                  "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
                  ">/dev/null 2>&1 && "
                  "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
                  "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
                  p->key, p->cert, p->rsa_key, p->rsa_cert);
    int rc = system(cmd);
    free(cmd);
    if (rc == 0) {
        p->cert_pem = slurp(p->cert);
        p->key_pem = slurp(p->key);
        p->rsa_cert_pem = slurp(p->rsa_cert);
        p->rsa_key_pem = slurp(p->rsa_key);
    }
    *state = p;
    return 0;
}

static int pki_teardown(void **state)
{
    Pki *p = *state;
    free(p->cert_pem);
    free(p->key_pem);
    free(p->rsa_cert_pem);
    free(p->rsa_key_pem);
    unlink(p->cert);
    unlink(p->key);
    unlink(p->rsa_cert);
    unlink(p->rsa_key);
    rmdir(p->dir);
    free(p);
    return 0;
}

static void t_tls(void **state)
{
    Pki *p = *state;
    if (!p->cert_pem || !p->rsa_cert_pem)
        skip(); /* no openssl command to make a certificate */
    const char *certs[2][3] = {{p->cert_pem, p->key_pem, p->cert},
                               {p->rsa_cert_pem, p->rsa_key_pem, p->rsa_cert}};
    for (int k = 0; k < 2; k++) {
        char base[64], url[128];
        HttpServer *s = serve(
            (HttpOptions){.tls_cert_pem = certs[k][0], .tls_key_pem = certs[k][1]}, false, base);
        const char *ca = certs[k][2];
        Resp r;
        snprintf(url, sizeof url, "%s/echo", base);
        fetch(url, &(Req){.cafile = ca}, &r);
        assert_int_equal(r.rc, CURLE_OK);
        assert_int_equal(r.status, 200);
        check_security(&r, true);
        char *want = xasprintf("127.0.0.1|%s|-", base);
        assert_string_equal(r.body.p, want);
        free(want);
        resp_cleanup(&r);

        /* errors over TLS carry HSTS as well */
        snprintf(url, sizeof url, "%s/nowhere", base);
        fetch(url, &(Req){.cafile = ca}, &r);
        assert_int_equal(r.status, 404);
        check_security(&r, true);
        resp_cleanup(&r);

        /* suspend, answer from another thread, resume */
        snprintf(url, sizeof url, "%s/slow", base);
        fetch(url, &(Req){.cafile = ca}, &r);
        pthread_join(late_thread, NULL);
        assert_int_equal(r.status, 200);
        want = xasprintf("late %s", base);
        assert_string_equal(r.body.p, want);
        free(want);
        check_security(&r, true);
        resp_cleanup(&r);

        check_stream(base, ca);

        /* a client that does not trust the certificate gets nothing */
        snprintf(url, sizeof url, "%s/echo", base);
        fetch(url, NULL, &r);
        assert_int_not_equal(r.rc, CURLE_OK);
        resp_cleanup(&r);
        stop(s);
    }
}

static void t_tls_refused(void **state)
{
    Pki *p = *state;
    if (!p->cert_pem || !p->rsa_key_pem)
        skip();
    static const char *not_pem = "certificate";
    const struct {
        const char *cert, *key;
        int err;
        const char *says;
    } cases[] = {
        {p->cert_pem, NULL, ERR_INVALID, "à la fois"},
        {NULL, p->key_pem, ERR_INVALID, "à la fois"},
        {not_pem, p->key_pem, ERR_INVALID, "certificat PEM"},
        {p->cert_pem, p->cert_pem, ERR_INVALID, "clé privée PEM"},
        {p->cert_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", ERR_INVALID, "chiffrée"},
        {p->cert_pem, p->rsa_key_pem, ERR_IO, "TLS"}, /* the key of another certificate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        HttpServer *s = http_server_new();
        Diag d = {{0}, {0}};
        HttpOptions o = {.port = 0, .tls_cert_pem = cases[i].cert, .tls_key_pem = cases[i].key};
        assert_int_equal(http_start(s, &o, &d), cases[i].err);
        assert_non_null(strstr(d.msg, cases[i].says));
        http_stop(s);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_bucket),
        cmocka_unit_test(t_keys),
        cmocka_unit_test(t_memory_bound),
        cmocka_unit_test(t_threads),
        cmocka_unit_test(t_headers),
        cmocka_unit_test(t_internal_detail),
        cmocka_unit_test(t_gate),
        cmocka_unit_test(t_rate_limit),
        cmocka_unit_test(t_forwarded_proto),
        cmocka_unit_test(t_tls),
        cmocka_unit_test(t_tls_refused),
    };
    int rc = cmocka_run_group_tests(tests, pki_setup, pki_teardown);
    curl_global_cleanup();
    return rc;
}
