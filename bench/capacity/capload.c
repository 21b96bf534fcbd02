/* capload — durable bed-availability updates against `ror serve`, as fast as the server
 * acknowledges them (closed loop) or at a target rate, over CONNS keep-alive connections on
 * loopback, for a bounded time. One thread, epoll, raw HTTP/1.1.
 *
 * Each request is `POST /capacity/Location/{unit}` with one or two indicators of the unit (the
 * available beds, 02, and with --indicators 2 also the installed beds, 01) set to a value that
 * differs from the unit's previous one, so every acknowledged update must leave one event per
 * indicator in the history. Connection c owns the units u with u % CONNS == c and cycles over
 * them: at most one update of a unit is in flight, so a unit's values and versions follow the
 * order in which they were sent.
 *
 * Only 2xx answers are acknowledged. Each one is logged (--log) as
 *     <unit id> <version> <value 02> <value 01 or -> <ack time, epoch ms> <latency µs>
 * (the version comes from the answer {"location":…,"version":N}). On stdout, one JSON object:
 * counts, acknowledgements per second over the measured window (after --warmup), the latency of
 * acknowledgements (send -> answer) p50/p90/p99/max, per-second counts, status counts.
 *
 * Build: cc -O2 -o capload capload.c      (bench/capacity.sh builds it in its temp dir)
 * Usage: capload --port P --units N [--host 127.0.0.1] [--conns 64] [--duration 20]
 *                [--warmup 2] [--rate 0] [--indicators 1] [--log FILE]
 *                [--auth "Bearer ror_…"] [--stop-on-refused]
 *   --auth V            sent as `Authorization: V` with every request (the server wants
 *                       credentials for writes: an API key of an account allowed to set them).
 *   --rate R            R requests/s in total (0: as fast as answered). Paced by a schedule;
 *                       latency is measured from the actual send (no coordinated-omission
 *                       correction: read p99 with that in mind when the rate is not reached).
 *   --stop-on-refused   end as soon as the server is gone (connection refused/reset), for the
 *                       SIGKILL test; otherwise lost connections are re-opened.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 8192
#define MAX_SECONDS 3600

typedef struct Conn {
    int fd;
    int idx;
    bool busy;       /* a request is in flight */
    bool connecting; /* non-blocking connect pending */
    char req[1024];
    size_t req_len, req_sent;
    char rbuf[RBUF];
    size_t rlen;
    int unit; /* unit of the request in flight */
    int v_avail, v_inst;
    int64_t sent_us;
    size_t next_unit; /* position in this connection's cycle */
} Conn;

static const char *host = "127.0.0.1";
static char auth_line[320]; /* "Authorization: …\r\n", or empty */
static int port, nunits, nconns = 64, indicators = 1;
static double duration = 20, warmup = 2, rate = 0;
static bool stop_on_refused;
static FILE *logf;

static int *avail, *inst; /* last value sent per unit (acknowledged or not) */

/* latency histogram: 1 µs resolution up to 1 s in log-linear buckets (~1.5 % error) */
#define HB 4096
static uint64_t hist[HB];
static int64_t lat_max;
static uint64_t per_sec[MAX_SECONDS + 1];
static uint64_t n_sent, n_ack, n_non2xx, n_err, n_ack_measured, n_reconnect;
static uint64_t status_count[6];

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int bucket_of(int64_t us)
{
    if (us < 64)
        return (int)(us < 0 ? 0 : us);
    int msb = 63 - __builtin_clzll((unsigned long long)us); /* >= 6 */
    int sub = (int)((us >> (msb - 6)) & 63);                /* 64 steps per power of 2 */
    int b = 64 + (msb - 6) * 64 + sub;
    return b < HB ? b : HB - 1;
}

static int64_t bucket_value(int b)
{
    if (b < 64)
        return b;
    int msb = (b - 64) / 64 + 6, sub = (b - 64) % 64;
    return ((int64_t)64 + sub) << (msb - 6);
}

static int64_t percentile(double p)
{
    uint64_t total = 0;
    for (int i = 0; i < HB; i++)
        total += hist[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(p * (double)total + 0.5), seen = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < HB; i++) {
        seen += hist[i];
        if (seen >= want)
            return bucket_value(i);
    }
    return lat_max;
}

static void die(const char *msg)
{
    perror(msg);
    exit(2);
}

static int conn_open(Conn *c, int ep)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "capload: bad host %s\n", host);
        exit(2);
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connecting = true;
    c->rlen = 0;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl");
    return 0;
}

static void conn_close(Conn *c, int ep)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = false;
    c->connecting = false;
    c->rlen = 0;
}

static void want_write(Conn *c, int ep, bool w)
{
    struct epoll_event ev = {.events = EPOLLIN | (w ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Next value of a figure: never the previous one (so every update is an event). */
static int next_value(int prev, int lo, int span, uint64_t seq)
{
    int v = lo + (prev - lo + 1 + (int)(seq % 7)) % span;
    return v == prev ? lo + (v - lo + 1) % span : v;
}

static void build_request(Conn *c)
{
    /* this connection's units: idx, idx + nconns, ... */
    size_t mine = (size_t)((nunits - c->idx + nconns - 1) / nconns);
    int u = c->idx + (int)(c->next_unit % mine) * nconns;
    c->next_unit++;
    c->unit = u;
    c->v_avail = avail[u] = next_value(avail[u], 0, 50, n_sent);
    c->v_inst = -1;
    char body[600];
    int blen = snprintf(body, sizeof body,
                        "{\"source\":\"01\",\"indicators\":[{\"capacityType\":\"01\","
                        "\"capacityStatus\":\"02\",\"temporalityCapacity\":\"01\","
                        "\"genderCapacityAvailable\":\"03\",\"temporaryAssignement\":\"01\","
                        "\"nbCapacity\":%d}",
                        c->v_avail);
    if (indicators > 1) {
        c->v_inst = inst[u] = next_value(inst[u], 10, 50, n_sent / 3);
        blen += snprintf(body + blen, sizeof body - (size_t)blen,
                         ",{\"capacityType\":\"01\",\"capacityStatus\":\"01\","
                         "\"temporalityCapacity\":\"01\",\"temporaryAssignement\":\"01\","
                         "\"nbCapacity\":%d}",
                         c->v_inst);
    }
    blen += snprintf(body + blen, sizeof body - (size_t)blen, "]}");
    int len = snprintf(c->req, sizeof c->req,
                       "POST /capacity/Location/bench-cap-%06d HTTP/1.1\r\n"
                       "Host: %s:%d\r\nContent-Type: application/json\r\n%s"
                       "Content-Length: %d\r\n\r\n%s",
                       u + 1, host, port, auth_line, blen, body);
    if (len < 0 || (size_t)len >= sizeof c->req) {
        fprintf(stderr, "capload: request too long\n");
        exit(2);
    }
    c->req_len = (size_t)len;
    c->req_sent = 0;
    c->busy = true;
}

static bool try_send(Conn *c, int ep)
{
    while (c->req_sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                want_write(c, ep, true);
                return true;
            }
            return false;
        }
        c->req_sent += (size_t)n;
    }
    want_write(c, ep, false);
    return true;
}

/* A complete response in rbuf? Returns its total length (0: not yet, -1: malformed). */
static long response_complete(Conn *c, int *status, long *body_at)
{
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end)
        return c->rlen >= RBUF ? -1 : 0;
    if (c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->rbuf + 9);
    long clen = 0;
    for (char *p = c->rbuf; p < end;) {
        char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            clen = atol(p + 15);
        p = eol + 2;
    }
    *body_at = end + 4 - c->rbuf;
    long total = *body_at + clen;
    if (total > RBUF)
        return -1;
    return (long)c->rlen >= total ? total : 0;
}

static void on_answer(Conn *c, int status, const char *body, size_t blen, int64_t t_start)
{
    int64_t t = now_us(), lat = t - c->sent_us;
    c->busy = false;
    status_count[status / 100 < 6 ? status / 100 : 0]++;
    if (status / 100 != 2) {
        n_non2xx++;
        if (n_non2xx <= 5)
            fprintf(stderr, "capload: HTTP %d: %.*s\n", status, (int)(blen > 300 ? 300 : blen),
                    body);
        return;
    }
    n_ack++;
    const char *v = memmem(body, blen, "\"version\":", 10);
    long long version = v ? atoll(v + 10) : -1;
    int64_t ms = wall_ms();
    if (logf) {
        if (c->v_inst >= 0)
            fprintf(logf, "bench-cap-%06d %lld %d %d %lld %lld\n", c->unit + 1, version, c->v_avail,
                    c->v_inst, (long long)ms, (long long)lat);
        else
            fprintf(logf, "bench-cap-%06d %lld %d - %lld %lld\n", c->unit + 1, version, c->v_avail,
                    (long long)ms, (long long)lat);
    }
    double since = (double)(t - t_start) / 1e6;
    long sec = (long)since;
    if (sec >= 0 && sec <= MAX_SECONDS)
        per_sec[sec]++;
    if (since >= warmup) {
        n_ack_measured++;
        hist[bucket_of(lat)]++;
        if (lat > lat_max)
            lat_max = lat;
    }
}

int main(int argc, char **argv)
{
    const char *log_path = NULL, *auth = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--stop-on-refused") == 0) {
            stop_on_refused = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "capload: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--units") == 0)
            nunits = atoi(v);
        else if (strcmp(a, "--conns") == 0)
            nconns = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atof(v);
        else if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--indicators") == 0)
            indicators = atoi(v);
        else if (strcmp(a, "--log") == 0)
            log_path = v;
        else if (strcmp(a, "--auth") == 0)
            auth = v;
        else {
            fprintf(stderr, "capload: unknown option %s\n", a);
            return 2;
        }
    }
    if (port <= 0 || nunits <= 0 || nconns <= 0 || nconns > nunits || duration <= 0 ||
        duration > MAX_SECONDS || warmup < 0 || warmup >= duration || indicators < 1 ||
        indicators > 2 || rate < 0) {
        fprintf(stderr, "capload: bad settings (need --port, --units >= --conns, duration in "
                        "(warmup, 3600], indicators 1 or 2)\n");
        return 2;
    }
    if (auth) {
        int n = snprintf(auth_line, sizeof auth_line, "Authorization: %s\r\n", auth);
        if (n < 0 || (size_t)n >= sizeof auth_line || strpbrk(auth, "\r\n")) {
            fprintf(stderr, "capload: --auth: too long or not one line\n");
            return 2;
        }
    }
    if (log_path && !(logf = fopen(log_path, "w")))
        die(log_path);
    if (logf)
        setvbuf(logf, NULL, _IOFBF, 1 << 20);
    avail = calloc((size_t)nunits, sizeof *avail);
    inst = calloc((size_t)nunits, sizeof *inst);
    Conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!avail || !inst || !conns)
        die("calloc");
    /* the values the units were imported with (bench/capacity/units.mjs) */
    for (int u = 0; u < nunits; u++) {
        avail[u] = u % 7;
        inst[u] = 10 + u % 31;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < nconns; i++) {
        conns[i].idx = i;
        conns[i].fd = -1;
        if (conn_open(&conns[i], ep) != 0)
            die("connect");
    }
    int64_t t_start = now_us(), t_end = t_start + (int64_t)(duration * 1e6);
    uint64_t scheduled = 0; /* requests allowed so far by the rate */
    bool gone = false;
    struct epoll_event evs[256];
    int64_t wall_start = wall_ms();
    for (;;) {
        int64_t t = now_us();
        if (t >= t_end || gone)
            break;
        /* start requests on idle connections (within the rate) */
        if (rate > 0)
            scheduled = (uint64_t)((double)(t - t_start) / 1e6 * rate) + 1;
        for (int i = 0; i < nconns; i++) {
            Conn *c = &conns[i];
            if (c->fd < 0) {
                if (stop_on_refused) {
                    gone = true;
                    break;
                }
                n_reconnect++;
                if (conn_open(c, ep) != 0)
                    continue;
            }
            if (c->busy || c->connecting || (rate > 0 && n_sent >= scheduled))
                continue;
            build_request(c);
            c->sent_us = now_us();
            n_sent++;
            if (!try_send(c, ep)) {
                n_err++;
                conn_close(c, ep);
            }
        }
        int timeout = rate > 0 ? 1 : 50;
        int n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            Conn *c = evs[k].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    n_err++;
                    conn_close(c, ep);
                    if (stop_on_refused)
                        gone = true;
                    continue;
                }
                c->connecting = false;
                want_write(c, ep, false);
                continue;
            }
            if ((evs[k].events & EPOLLOUT) && c->busy && c->req_sent < c->req_len &&
                !try_send(c, ep)) {
                n_err++;
                conn_close(c, ep);
                continue;
            }
            if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            for (;;) {
                ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
                if (r > 0) {
                    c->rlen += (size_t)r;
                    int status = 0;
                    long body_at = 0, total;
                    while ((total = response_complete(c, &status, &body_at)) > 0) {
                        if (!c->busy) { /* an answer nobody asked for */
                            total = -1;
                            break;
                        }
                        on_answer(c, status, c->rbuf + body_at, (size_t)(total - body_at), t_start);
                        memmove(c->rbuf, c->rbuf + total, c->rlen - (size_t)total);
                        c->rlen -= (size_t)total;
                    }
                    if (total < 0) {
                        fprintf(stderr, "capload: malformed answer\n");
                        n_err++;
                        conn_close(c, ep);
                        break;
                    }
                    continue;
                }
                if (r < 0 && errno == EAGAIN)
                    break;
                /* closed or reset: a request in flight is not acknowledged */
                if (c->busy)
                    n_err++;
                conn_close(c, ep);
                if (stop_on_refused)
                    gone = true;
                break;
            }
        }
    }
    int64_t t_stop = now_us();
    int64_t wall_stop = wall_ms();
    uint64_t inflight = 0;
    for (int i = 0; i < nconns; i++)
        inflight += conns[i].busy;
    if (logf && fclose(logf) != 0)
        die("log");
    double measured = (double)(t_stop - t_start) / 1e6 - warmup;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("{\"cpu_s\":%.2f,\"sent\":%llu,\"acked\":%llu,\"non2xx\":%llu,\"errors\":%llu,"
           "\"inflight_at_end\":%llu,\"reconnects\":%llu,\"server_gone\":%s,\"elapsed_s\":%.3f,"
           "\"warmup_s\":%.1f,"
           "\"measured_acked\":%llu,\"rate\":%.1f,\"lat_us\":{\"p50\":%lld,\"p90\":%lld,"
           "\"p99\":%lld,\"max\":%lld},\"status\":{\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,"
           "\"5xx\":%llu},\"wall_start_ms\":%lld,\"wall_stop_ms\":%lld,\"per_second\":[",
           cpu_s, (unsigned long long)n_sent, (unsigned long long)n_ack,
           (unsigned long long)n_non2xx, (unsigned long long)n_err, (unsigned long long)inflight,
           (unsigned long long)n_reconnect, gone ? "true" : "false",
           (double)(t_stop - t_start) / 1e6, warmup, (unsigned long long)n_ack_measured,
           measured > 0 ? (double)n_ack_measured / measured : 0.0, (long long)percentile(0.50),
           (long long)percentile(0.90), (long long)percentile(0.99), (long long)lat_max,
           (unsigned long long)status_count[2], (unsigned long long)status_count[3],
           (unsigned long long)status_count[4], (unsigned long long)status_count[5],
           (long long)wall_start, (long long)wall_stop);
    long secs = (long)((t_stop - t_start) / 1000000);
    for (long s = 0; s <= secs && s <= MAX_SECONDS; s++)
        printf("%s%llu", s ? "," : "", (unsigned long long)per_sec[s]);
    printf("]}\n");
    return 0;
}
