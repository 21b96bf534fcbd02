/*
 * http — libmicrohttpd glue: a routing table over path patterns, one Arena per request,
 * capped request bodies, response helpers, and the single mapping from ERR_* codes to an HTTP
 * status and a FHIR OperationOutcome.
 *
 * Handlers run on MHD's worker threads, synchronously; each is given a request whose memory
 * (arena, body, query) dies when the response has been sent. A handler must answer exactly
 * once (http_respond* or http_fail) before returning.
 *
 * Hardening done here for every route, so that handlers need not think of it:
 *  - every response (handlers', errors, 404/405/413/414/429, event streams) carries the security
 *    headers (nosniff, DENY framing, no referrer, a same-origin Content-Security-Policy,
 *    same-origin resource policy, HSTS when serving TLS) and Cache-Control: no-store; a header
 *    of the same name set by the handler (http_header_set) replaces the default;
 *  - server errors (ERR_IO, ERR_INTERNAL) answer a generic French message, the detail goes to
 *    the log only;
 *  - optional TLS (1.2 and 1.3, AEAD ciphers, forward secrecy only) in libmicrohttpd itself;
 *  - optional rate limiting per client address (token bucket; IPv6 clients by /64), checked
 *    when the headers have arrived, so a throttled request's body is not read;
 *  - an optional gate (authentication) run before every routed handler.
 *
 * Threading: http_route and http_set_gate must be called before http_start; the rest is
 * thread-safe. Only this module includes microhttpd.h.
 */
#ifndef ROR_HTTP_H
#define ROR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "fhir/fhir.h"

enum {
    HTTP_GET = 1 << 0,
    HTTP_POST = 1 << 1,
    HTTP_PUT = 1 << 2,
    HTTP_PATCH = 1 << 3,
    HTTP_DELETE = 1 << 4,
    HTTP_HEAD = 1 << 5,
    HTTP_OPTIONS = 1 << 6,
};

#define HTTP_MAX_PARAMS 8
#define HTTP_MAX_QUERY 128
/* Longest path + query accepted: larger gets a 414 OperationOutcome; far larger, over the
 * connection memory (request line + headers), gets libmicrohttpd's own 414 page.
 * Measured: libmicrohttpd 0.9.75 clears the pool on every request, and a pool of 192 KiB or
 * more (allocated with mmap by glibc) costs a third of the read-by-id throughput; 120 KiB costs
 * nothing measurable (bench/RESULTS.md, 2026-11-23). */
#define HTTP_MAX_URI (32 * 1024)
#define HTTP_CONN_MEMORY (120 * 1024)

typedef struct HttpRequest HttpRequest;
typedef void (*HttpHandler)(HttpRequest *req, void *ctx);
typedef bool (*HttpGate)(HttpRequest *r, void *ctx);

/** What a handler sees. */
struct HttpRequest {
    Arena arena;
    int method; /* one HTTP_* bit */
    const char *method_name;
    const char *path;                    /* decoded path, without the query */
    const char *params[HTTP_MAX_PARAMS]; /* {placeholders} of the matched route, in order */
    QueryParam query[HTTP_MAX_QUERY];
    size_t nquery;
    bool query_overflow; /* more than HTTP_MAX_QUERY parameters were sent */
    size_t query_bytes;  /* decoded size of the query */
    const char *body;    /* NUL-terminated; "" when none */
    size_t body_len;
    const char *remote;    /* client address: the peer's, or with trust_proxy the last entry of
                              X-Forwarded-For when it is an address */
    const char *base_url;  /* "http(s)://host:port" as the client addressed us */
    const void *principal; /* who is asking, set by the gate; NULL before */
    /* private */
    void *conn;
    void *response;
    int status;
    bool answered;
    bool suspended;
    bool dispatched;
};

typedef struct HttpServer HttpServer;

typedef struct HttpOptions {
    const char *bind;   /* address to listen on; NULL = 127.0.0.1 */
    int port;           /* 0 = any free port */
    int threads;        /* worker threads */
    size_t max_body;    /* bytes; larger bodies get 413 */
    unsigned timeout_s; /* idle connection timeout */
    /* TLS: both set, or neither (plain HTTP). PEM text (not file names), read by the caller;
     * copied by http_start. TLS 1.2 and 1.3 only, AEAD ciphers with (EC)DHE key exchange;
     * responses then carry Strict-Transport-Security and base_url starts with https://. */
    const char *tls_cert_pem; /* the certificate, then its chain */
    const char *tls_key_pem;  /* its private key, unencrypted */
    /* Rate limit per client address (IPv6: per /64): a token bucket of rate_burst requests,
     * refilled at rate_per_s per second, for requests without credentials (no Authorization header,
     * no session cookie: those are accountable, and checked by the gate). Over it: 429 +
     * Retry-After, the body left unread.
     * rate_per_s <= 0: no limit. rate_burst < 1: twice rate_per_s (at least 1). At most
     * HTTP_RATE_ADDRESSES addresses are remembered (about 5 MB), the least recent forgotten. */
    double rate_per_s;
    double rate_burst;
    /* Behind a reverse proxy: the client address is the LAST entry of X-Forwarded-For (the one
     * the proxy appended), and X-Forwarded-Proto: https makes base_url https://. Otherwise both
     * headers are ignored (a client could forge them). */
    bool trust_proxy;
} HttpOptions;

#define HTTP_RATE_ADDRESSES 100000

HttpServer *http_server_new(void);
/** How many connections the server takes at once (set when it is created: the open-files soft
 *  limit, raised to the hard limit, less a reserve). Event streams count. */
unsigned http_connection_limit(const HttpServer *s);
/** Add a route. `pattern` segments are literals or "{name}" placeholders. `methods` is an
 *  HTTP_* mask. A path that matches some route but not the method gets 405 + Allow. */
void http_route(HttpServer *s, int methods, const char *pattern, HttpHandler h, void *ctx);
/** Called on every routed request before its handler (after the body is read and the route
 *  matched); returns true to go on, or has answered the request (http_fail/http_respond) and
 *  returns false. Set before http_start. */
void http_set_gate(HttpServer *s, HttpGate g, void *ctx);
/** Start listening. ERR_INVALID for bad options (address, TLS half set or not PEM), ERR_IO with
 *  detail when the socket, the TLS set-up (key not matching the certificate...) or the library
 *  (built without TLS) fails. */
int http_start(HttpServer *s, const HttpOptions *o, Diag *d);
/** The port actually bound (useful with port 0). */
int http_port(const HttpServer *s);
void http_stop(HttpServer *s);

/**
 * Suspend the request: the handler returns without answering, and another thread answers later
 * (http_respond or http_fail) then calls http_resume. Until http_resume, the request and its
 * arena belong to that other thread. Lets a handler wait for a durable commit without holding
 * a worker thread.
 */
void http_suspend(HttpRequest *r);
/** Hand an answered, suspended request back to the server, which sends the response. */
void http_resume(HttpRequest *r);
/** Stop accepting connections; requests on open connections are still served. */
void http_quiesce(HttpServer *s);

/* ---------------------------------------------------------------- event streams
 * A streaming response (Server-Sent Events): the handler answers with http_stream_respond and
 * returns; from then on the server calls `pull` whenever the client can take more data. `pull`
 * appends what it has to `out` (possibly nothing) and returns 0, or non-zero to end the stream.
 * When it appends nothing, the connection sleeps (no thread held) until http_stream_wake. A
 * comment line is sent every 15 s of silence. `done` is called once the connection is gone
 * (client closed, error, server stopping); the stream handle is invalid after it. */
typedef struct HttpStream HttpStream;
typedef int (*HttpStreamPull)(void *ctx, Buf *out);
typedef void (*HttpStreamDone)(void *ctx);

/** Answer `r` with a stream. Returns its handle (valid until `done` is called). */
HttpStream *http_stream_respond(HttpRequest *r, const char *content_type, HttpStreamPull pull,
                                HttpStreamDone done, void *ctx);
/** There may be new data: pull again (thread-safe, cheap when the stream is not sleeping). */
void http_stream_wake(HttpStream *st);
/** End the stream after what was pulled is sent (thread-safe). */
void http_stream_end(HttpStream *st);

/** Request header value (case-insensitive name) or NULL. */
const char *http_header(HttpRequest *r, const char *name);
/** Add a response header (before responding). Values are copied. */
void http_header_set(HttpRequest *r, const char *name, const char *value);
/** Respond with `body` (taken: freed by http) of `len` bytes. */
void http_respond(HttpRequest *r, int status, const char *content_type, char *body, size_t len);
/** Respond with a FHIR OperationOutcome for an ERR_* code (the one mapping table). */
void http_fail(HttpRequest *r, int err, const Diag *d);
/** The HTTP status http_fail uses for an ERR_* code. */
int http_status_of(int err);

#endif
