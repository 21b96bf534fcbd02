/* api: FHIR REST handlers. */
#include "api/api.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_int.h"
#include "json/json.h"
#include "terminology/terminology.h"

#define FHIR_JSON "application/fhir+json; charset=utf-8"
#define HISTORY_MAX 1000

struct Api {
    Store *store;
    const FhirRegistry *reg;
    char *base;
    char *capability;
    char *version;
    Terminology *term;
    struct Events *events;
    struct CapacityFeed *feed;
    const struct CapacityExpiry *expiry;
    struct Orient *orient;
    void *orient_api;
    size_t max_streams;
    struct SubscriptionHub *subs;
    AuthApi *auth;
    bool validation;
    char *web_root, *tile_url, *tile_attribution, *unit_types;
    void *web;
};

char *capability_build(const FhirRegistry *reg, const char *version); /* capability.c */
/* terminology_api.c */
void terminology_api_routes(HttpServer *s, Terminology *t, const char *base);
/* capacity_api.c */
typedef struct CapacityFeed CapacityFeed;
CapacityFeed *capacity_api_routes(HttpServer *s, Store *store, struct Events *events,
                                  const struct CapacityExpiry *expiry, struct Orient *orient,
                                  Terminology *term, size_t max_streams);
void capacity_feed_free(CapacityFeed *f);
/* orient_api.c */
void *orient_api_routes(HttpServer *s, struct Orient *orient, Terminology *term, Store *store);
/* subscription_api.c */
typedef struct SubscriptionHub SubscriptionHub;
SubscriptionHub *subscription_api_routes(HttpServer *s, Store *store, struct Events *events,
                                         const char *base);
void subscription_hub_stop(SubscriptionHub *h);
void subscription_hub_free(SubscriptionHub *h);
int subscription_check(json_t *res, Diag *d);

/* Profile checks, then the codes of bound elements against the loaded NOS value sets. */
static int resource_check(Api *a, const char *type, json_t *res, Diag *d)
{
    int rc = fhir_resource_check(type, res, d);
    if (rc == 0 && strcmp(type, "Subscription") == 0)
        rc = subscription_check(res, d);
    if (rc == 0 && a->term)
        rc = terminology_check_resource(a->term, type, res, d);
    return rc;
}

Api *api_new(const ApiOptions *o, Diag *d)
{
    AuthApiOptions ao = {.store = o->store,
                         .jwks = o->jwks,
                         .issuer = o->oidc_issuer,
                         .audience = o->oidc_audience,
                         .cookie_secure = o->cookie_secure,
                         .profile_codes_json = o->profile_codes_json};
    AuthApi *auth = auth_api_new(&ao, d);
    if (!auth)
        return NULL;
    Api *a = xcalloc(1, sizeof *a);
    a->auth = auth;
    a->validation = o->validation;
    a->web_root = o->web_root ? xstrdup(o->web_root) : NULL;
    a->tile_url = xstrdup(o->tile_url ? o->tile_url : "");
    a->tile_attribution = xstrdup(o->tile_attribution ? o->tile_attribution : "");
    a->unit_types = o->unit_types_json ? xstrdup(o->unit_types_json) : NULL;
    a->store = o->store;
    a->reg = o->reg;
    a->base = xstrdup(o->base_path ? o->base_path : "/fhir");
    a->version = xstrdup(o->software_version ? o->software_version : "0");
    a->term = o->term;
    a->events = o->events;
    a->expiry = o->capacity_expiry;
    a->orient = o->orient;
    a->max_streams = o->max_streams;
    a->capability = capability_build(o->reg, a->version);
    return a;
}

void api_free(Api *a)
{
    if (!a)
        return;
    subscription_hub_free(a->subs);
    capacity_feed_free(a->feed);
    auth_api_free(a->auth);
    web_api_free(a->web);
    free(a->web_root);
    free(a->tile_url);
    free(a->tile_attribution);
    free(a->unit_types);
    free(a->orient_api);
    free(a->base);
    free(a->capability);
    free(a->version);
    free(a);
}

void api_stop(Api *a)
{
    if (!a)
        return;
    subscription_hub_stop(a->subs);
    auth_api_stop(a->auth);
}

const char *api_capability_text(const Api *a)
{
    return a->capability;
}

/* ------------------------------------------------------------------ helpers */

static void respond_text(HttpRequest *r, int status, const char *text, size_t len)
{
    http_respond(r, status, FHIR_JSON, xstrndup(text, len), len);
}

static void respond_buf(HttpRequest *r, int status, Buf *b)
{
    size_t len;
    char *p = buf_steal(b, &len);
    http_respond(r, status, FHIR_JSON, p, len);
}

static int fail(HttpRequest *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(HttpRequest *r, int err, const char *fmt, ...)
{
    Diag d = {{0}, {0}};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.msg, sizeof d.msg, fmt, ap);
    va_end(ap);
    http_fail(r, err, &d);
    return err;
}

/* The author recorded with each version: the signed-in account, or the anonymous client. */
static const char *author_of(HttpRequest *r)
{
    return api_principal(r)->author;
}

static void http_date(int64_t ms, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void version_headers(HttpRequest *r, const StoredResource *s)
{
    char etag[40], date[64];
    snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)s->version);
    http_date(s->last_updated, date);
    http_header_set(r, "ETag", etag);
    http_header_set(r, "Last-Modified", date);
}

/* The served type named by the first path parameter, or a 404 already sent. */
static const FhirType *type_or_respond(HttpRequest *r, unsigned interaction)
{
    const char *name = r->params[0];
    const FhirType *t = fhir_type_find(name, strlen(name));
    if (!t) {
        fail(r, ERR_NOT_FOUND, "type de ressource non pris en charge : %s", name);
        return NULL;
    }
    if (!(t->interactions & interaction)) {
        fail(r, ERR_METHOD, "interaction non prise en charge pour %s", name);
        return NULL;
    }
    return t;
}

static bool id_or_respond(HttpRequest *r, const char *id)
{
    if (!fhir_id_valid(id, strlen(id))) {
        fail(r, ERR_INVALID, "identifiant de ressource invalide : '%s'", id);
        return false;
    }
    return true;
}

static bool accept_or_respond(HttpRequest *r)
{
    const char *fmt = NULL;
    for (size_t i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].name, "_format") == 0)
            fmt = r->query[i].value;
    if (fmt && !strstr(fmt, "json")) {
        fail(r, ERR_NOT_ACCEPTABLE, "format non disponible : %s (JSON uniquement)", fmt);
        return false;
    }
    const char *accept = http_header(r, "Accept");
    if (!fmt && accept && *accept && !strstr(accept, "json") && !strstr(accept, "*/*") &&
        !strstr(accept, "application/*")) {
        fail(r, ERR_NOT_ACCEPTABLE, "format non disponible : %s (JSON uniquement)", accept);
        return false;
    }
    return true;
}

/* Is the media type of header `h` (parameters such as charset ignored) exactly `type`? */
static bool media_type_is(const char *h, const char *type)
{
    size_t n = strlen(type);
    if (!h || strncasecmp(h, type, n) != 0)
        return false;
    return h[n] == 0 || h[n] == ';' || h[n] == ' ';
}

/* Content-Type must be FHIR JSON (or plain JSON) for a body we parse. */
static bool content_type_or_respond(HttpRequest *r)
{
    const char *ct = http_header(r, "Content-Type");
    if (!media_type_is(ct, "application/fhir+json") && !media_type_is(ct, "application/json")) {
        fail(r, ERR_MEDIA_TYPE,
             "type de contenu non pris en charge : %s (application/fhir+json attendu)",
             ct ? ct : "(absent)");
        return false;
    }
    return true;
}

static bool parse_body_or_respond(HttpRequest *r, json_t **out)
{
    if (!content_type_or_respond(r))
        return false;
    if (r->body_len == 0) {
        fail(r, ERR_INVALID, "%s", "corps de requête vide : une ressource FHIR est attendue");
        return false;
    }
    Diag d = {{0}, {0}};
    if (json_parse(r->body, r->body_len, out, &d) != 0) {
        http_fail(r, ERR_INVALID, &d);
        return false;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        fail(r, ERR_INVALID, "%s", "le corps doit être un objet JSON");
        return false;
    }
    return true;
}

/* If-Match: W/"3" or "3" -> 3; 0 when absent; -1 when malformed (answered). */
static int64_t if_match_or_respond(HttpRequest *r)
{
    const char *h = http_header(r, "If-Match");
    if (!h)
        return 0;
    const char *p = h;
    if (strncmp(p, "W/", 2) == 0)
        p += 2;
    if (*p == '"')
        p++;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v <= 0 || (*end && strcmp(end, "\"") != 0)) {
        fail(r, ERR_INVALID, "en-tête If-Match invalide : %s", h);
        return -1;
    }
    return v;
}

static bool prefer_minimal(HttpRequest *r)
{
    const char *p = http_header(r, "Prefer");
    return p && strstr(p, "return=minimal");
}

static bool prefer_strict(HttpRequest *r)
{
    const char *p = http_header(r, "Prefer");
    return p && strstr(p, "handling=strict");
}

static void respond_version(HttpRequest *r, int status, const StoredResource *s, Api *a)
{
    version_headers(r, s);
    char *loc = arena_printf(&r->arena, "%s%s/%s/%s/_history/%lld", r->base_url, a->base, s->type,
                             s->id, (long long)s->version);
    http_header_set(r, "Content-Location", loc);
    if (status == 201)
        http_header_set(r, "Location", loc);
    size_t len;
    const char *body = prefer_minimal(r) ? NULL : api_visible_body(r, a->store, s, &len);
    if (!body)
        http_respond(r, status, NULL, NULL, 0);
    else
        respond_text(r, status, body, len);
}

/* ------------------------------------------------------------------ metadata, read */

static void h_metadata(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    if (!accept_or_respond(r))
        return;
    respond_text(r, 200, a->capability, strlen(a->capability));
}

static void h_read(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    if (!type_or_respond(r, FHIR_READ) || !id_or_respond(r, r->params[1]) ||
        !accept_or_respond(r) || !api_type_readable_or_respond(r, r->params[0]))
        return;
    StoredResource s;
    Diag d = {{0}, {0}};
    int rc = store_read(a->store, &r->arena, r->params[0], r->params[1], &s, &d);
    if (rc != 0) {
        if (rc == ERR_GONE)
            version_headers(r, &s);
        http_fail(r, rc, &d);
        return;
    }
    size_t len;
    const char *body = api_visible_body(r, a->store, &s, &len);
    if (!body) { /* as if it did not exist: its existence is not the reader's to know */
        fail(r, ERR_NOT_FOUND, "%s/%s introuvable", s.type, s.id);
        return;
    }
    const char *inm = http_header(r, "If-None-Match");
    char etag[40];
    snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)s.version);
    version_headers(r, &s);
    if (inm && strcmp(inm, etag) == 0) {
        http_respond(r, 304, NULL, NULL, 0);
        return;
    }
    respond_text(r, 200, body, len);
}

static void h_vread(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    if (!type_or_respond(r, FHIR_VREAD) || !id_or_respond(r, r->params[1]) ||
        !accept_or_respond(r) || !api_type_readable_or_respond(r, r->params[0]))
        return;
    char *end;
    long long v = strtoll(r->params[2], &end, 10);
    if (*end || v <= 0) {
        fail(r, ERR_INVALID, "numéro de version invalide : '%s'", r->params[2]);
        return;
    }
    StoredResource s;
    Diag d = {{0}, {0}};
    int rc = store_vread(a->store, &r->arena, r->params[0], r->params[1], v, &s, &d);
    if (rc == 0 && s.deleted) {
        version_headers(r, &s);
        diag_set(&d, ERR_GONE, "%s/%s version %lld est une suppression", s.type, s.id, v);
        rc = ERR_GONE;
    }
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    size_t len;
    const char *body = api_visible_body(r, a->store, &s, &len);
    if (!body) {
        fail(r, ERR_NOT_FOUND, "%s/%s introuvable", s.type, s.id);
        return;
    }
    version_headers(r, &s);
    respond_text(r, 200, body, len);
}

/* ------------------------------------------------------------------ bundles */

static void bundle_open(Buf *b, const char *type)
{
    char id[37], ts[32];
    uuid_v4(id);
    time_format_instant(time_now_ms(), ts);
    buf_printf(b,
               "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
               "\"type\":\"%s\"",
               id, ts, type);
}

static void entry_full_url(Buf *b, HttpRequest *r, Api *a, const StoredResource *s)
{
    buf_adds(b, "{\"fullUrl\":");
    char *url = arena_printf(&r->arena, "%s%s/%s/%s", r->base_url, a->base, s->type, s->id);
    buf_add_json_string(b, url, strlen(url));
}

static void h_history(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    if (!type_or_respond(r, FHIR_HISTORY) || !id_or_respond(r, r->params[1]) ||
        !accept_or_respond(r) || !api_type_readable_or_respond(r, r->params[0]))
        return;
    StoredResource *items;
    size_t n;
    Diag d = {{0}, {0}};
    int rc =
        store_history(a->store, &r->arena, r->params[0], r->params[1], HISTORY_MAX, &items, &n, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    /* a version the reader may not see is left out (a sensitive unit was not always one) */
    const char **bodies = arena_alloc(&r->arena, (n + 1) * sizeof *bodies);
    size_t *lens = arena_alloc(&r->arena, (n + 1) * sizeof *lens), shown = 0;
    for (size_t i = 0; i < n; i++) {
        bodies[i] = api_visible_body(r, a->store, &items[i], &lens[i]);
        shown += bodies[i] != NULL;
    }
    if (n > 0 && shown == 0) {
        fail(r, ERR_NOT_FOUND, "%s/%s introuvable", r->params[0], r->params[1]);
        return;
    }
    Buf b;
    buf_init(&b, 256u << 20);
    bundle_open(&b, "history");
    buf_printf(&b, ",\"total\":%zu,\"entry\":[", shown);
    for (size_t i = 0, k = 0; i < n; i++) {
        const StoredResource *s = &items[i];
        if (!bodies[i])
            continue;
        char ts[32];
        time_format_instant(s->last_updated, ts);
        if (k++)
            buf_add(&b, ",", 1);
        entry_full_url(&b, r, a, s);
        if (!s->deleted) {
            buf_adds(&b, ",\"resource\":");
            buf_add(&b, bodies[i], lens[i]);
        }
        const char *method = s->deleted ? "DELETE" : s->version == 1 ? "POST" : "PUT";
        buf_printf(&b, ",\"request\":{\"method\":\"%s\",\"url\":\"%s/%s\"}", method, s->type,
                   s->id);
        buf_printf(&b,
                   ",\"response\":{\"status\":\"%s\",\"etag\":\"W/\\\"%lld\\\"\","
                   "\"lastModified\":\"%s\"}}",
                   s->deleted        ? "204"
                   : s->version == 1 ? "201"
                                     : "200",
                   (long long)s->version, ts);
    }
    buf_adds(&b, "]}");
    if (b.overflow) {
        buf_cleanup(&b);
        fail(r, ERR_TOO_LARGE, "%s", "historique trop volumineux");
        return;
    }
    respond_buf(r, 200, &b);
}

static void url_encode_into(Buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            buf_add(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 3);
        }
    }
}

static void add_link(Buf *b, HttpRequest *r, Api *a, const SearchPlan *p, const char *rel,
                     const char *cursor, bool first)
{
    Buf url;
    buf_init(&url, 1 << 20);
    buf_printf(&url, "%s%s/%s?%s", r->base_url, a->base, p->type, p->self_query);
    if (cursor) {
        buf_adds(&url, p->self_query[0] ? "&_cursor=" : "_cursor=");
        url_encode_into(&url, cursor);
    }
    buf_printf(b, "%s{\"relation\":\"%s\",\"url\":", first ? "" : ",", rel);
    buf_add_json_string(b, url.p ? url.p : "", url.len);
    buf_adds(b, "}");
    buf_cleanup(&url);
}

/* Can access profile `profile` be denied whole resources of `type` (so that a count of
 * matches would tell what it may not see)? */
static bool profile_may_hide(int profile, const char *type)
{
    if (profile == 1)
        return false;
    if (strcmp(type, "Task") == 0)
        return profile == 0;
    return profile != 4 &&
           (strcmp(type, "HealthcareService") == 0 || strcmp(type, "Location") == 0 ||
            strcmp(type, "PractitionerRole") == 0 || strcmp(type, "Practitioner") == 0);
}

static void entries_add(Buf *b, HttpRequest *r, Api *a, const SearchPlan *p,
                        const StoredResource *items, size_t n, bool match, bool *first)
{
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *body = api_visible_body(r, a->store, &items[i], &len);
        if (!body)
            continue;
        if (!*first)
            buf_add(b, ",", 1);
        *first = false;
        entry_full_url(b, r, a, &items[i]);
        buf_adds(b, ",\"resource\":");
        buf_add(b, body, len);
        if (!match) {
            buf_adds(b, ",\"search\":{\"mode\":\"include\"}}");
            continue;
        }
        buf_adds(b, ",\"search\":{\"mode\":\"match\"");
        if (p->near && !isnan(items[i].distance)) /* FHIR R4 location-distance */
            buf_printf(b,
                       ",\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/"
                       "location-distance\",\"valueDistance\":{\"value\":%.6f,\"unit\":\"km\","
                       "\"system\":\"http://unitsofmeasure.org\",\"code\":\"km\"}}]",
                       items[i].distance / 1000.0);
        buf_adds(b, "}}");
    }
}

static void search_respond(HttpRequest *r, Api *a, const SearchPlan *p, const StorePage *pg)
{
    Buf b;
    buf_init(&b, 256u << 20);
    bundle_open(&b, "searchset");
    if (pg->total >= 0 && !profile_may_hide(api_principal(r)->profile, p->type))
        buf_printf(&b, ",\"total\":%lld", (long long)pg->total);
    buf_adds(&b, ",\"link\":[");
    add_link(&b, r, a, p, "self", p->cursor, true);
    if (pg->next_cursor)
        add_link(&b, r, a, p, "next", pg->next_cursor, false);
    buf_adds(&b, "],\"entry\":[");
    bool first = true;
    entries_add(&b, r, a, p, pg->matches, pg->nmatches, true, &first);
    entries_add(&b, r, a, p, pg->included, pg->nincluded, false, &first);
    if (p->nignored) {
        /* lenient handling: say what was ignored, as FHIR asks (search.mode = outcome) */
        if (!first)
            buf_add(&b, ",", 1);
        buf_adds(&b, "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[");
        for (size_t i = 0; i < p->nignored; i++) {
            buf_adds(&b, i ? ",{" : "{");
            buf_adds(&b, "\"severity\":\"warning\",\"code\":\"not-supported\",\"diagnostics\":");
            buf_add_json_string(&b, p->ignored[i], strlen(p->ignored[i]));
            buf_adds(&b, "}");
        }
        buf_adds(&b, "]},\"search\":{\"mode\":\"outcome\"}}");
    }
    buf_adds(&b, "]}");
    if (b.overflow) {
        buf_cleanup(&b);
        fail(r, ERR_TOO_LARGE, "%s", "résultat trop volumineux : réduire _count ou _include");
        return;
    }
    respond_buf(r, 200, &b);
}

/* Percent-decode in place ("+" is a space in form bodies only). */
static void pct_decode(char *s, bool plus_space)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+' && plus_space) {
            *o++ = ' ';
        } else if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hx[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hx, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* Decode application/x-www-form-urlencoded pairs of a POST _search body into req->query. */
static int form_decode(HttpRequest *r)
{
    char *body = arena_strndup(&r->arena, r->body, r->body_len);
    for (char *tok = body, *next; tok && *tok; tok = next) {
        next = strchr(tok, '&');
        if (next)
            *next++ = 0;
        if (r->nquery == HTTP_MAX_QUERY)
            return ERR_TOO_LARGE;
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = 0;
        char *parts[2] = {tok, eq ? eq : (char *)""};
        pct_decode(parts[0], true);
        pct_decode(parts[1], true);
        r->query[r->nquery].name = parts[0];
        r->query[r->nquery].value = parts[1];
        r->nquery++;
    }
    return 0;
}

/* `near-insee-code=code|distance|unit` (also chained: `location.near-insee-code=`) means a
 * radius around the commune's centre: rewritten as `near=lat|lon|distance|unit` from the
 * communes table. Without a distance the parameter keeps its token meaning (that commune). */
static bool near_insee_rewrite_or_respond(HttpRequest *r, Api *a)
{
    static const char suffix[] = "near-insee-code";
    const size_t sl = sizeof suffix - 1;
    for (size_t i = 0; i < r->nquery; i++) {
        const char *name = r->query[i].name, *value = r->query[i].value;
        size_t len = strlen(name);
        if (len < sl || strcmp(name + len - sl, suffix) != 0 ||
            (len > sl && name[len - sl - 1] != '.'))
            continue;
        const char *bar = value ? strchr(value, '|') : NULL;
        if (!bar)
            continue;
        char *code = arena_strndup(&r->arena, value, (size_t)(bar - value));
        TermCommune c;
        if (!a->term || terminology_commune(a->term, &r->arena, code, &c) != 0 || !c.has_position) {
            fail(r, ERR_INVALID, "near-insee-code : commune '%s' inconnue ou sans position", code);
            return false;
        }
        r->query[i].name = arena_printf(&r->arena, "%.*snear", (int)(len - sl), name);
        r->query[i].value = arena_printf(&r->arena, "%.7f|%.7f%s", c.lat, c.lon, bar);
    }
    return true;
}

static void h_search(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    if (!type_or_respond(r, FHIR_SEARCH) || !accept_or_respond(r) ||
        !api_type_readable_or_respond(r, r->params[0]))
        return;
    if (r->method == HTTP_POST) {
        const char *ct = http_header(r, "Content-Type");
        if (!media_type_is(ct, "application/x-www-form-urlencoded")) {
            fail(r, ERR_MEDIA_TYPE, "%s", "_search attend application/x-www-form-urlencoded");
            return;
        }
        if (form_decode(r) != 0)
            r->query_overflow = true;
    }
    if (r->query_overflow) {
        fail(r, ERR_INVALID, "trop de paramètres de recherche (au plus %s)", "128");
        return;
    }
    if (!near_insee_rewrite_or_respond(r, a))
        return;
    SearchPlan *plan = NULL;
    Diag d = {{0}, {0}};
    int rc =
        fhir_search_parse(a->reg, r->params[0], r->query, r->nquery, prefer_strict(r), &plan, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    StorePage page;
    rc = store_search(a->store, &r->arena, plan, &page, &d);
    if (rc != 0)
        http_fail(r, rc, &d);
    else
        search_respond(r, a, plan, &page);
    search_plan_free(plan);
}

/* ------------------------------------------------------------------ writes */

typedef struct WriteCtx {
    Api *api;
    HttpRequest *req;
    const char *type;
    const char *id; /* update/patch/delete target; NULL for create */
    json_t *res;    /* create/update: the resource; patch: the Parameters */
    int64_t if_match;
    SearchPlan *cond; /* conditional create (If-None-Exist) or conditional patch */
    StoredResource out;
    int status;
    int64_t pending; /* the change waits for the ARS's validation: its number */
    Diag diag;
} WriteCtx;

/* Hold the write for validation when it must wait (then w->status is 202). */
static int held(WriteCtx *w, StoreTxn *t, const char *id, int64_t base, const json_t *before,
                const json_t *after, bool *is_held, Diag *d)
{
    *is_held = api_needs_validation(w->req, w->api->validation, w->type, before, after);
    if (!*is_held)
        return 0;
    w->status = 202;
    return api_pending_add(w->req, t, w->type, id, base, after, &w->pending, d);
}

static int txn_create(StoreTxn *t, void *vctx, Diag *d)
{
    WriteCtx *w = vctx;
    if (w->cond) { /* If-None-Exist */
        StorePage pg;
        int rc = store_txn_search(t, &w->req->arena, w->cond, &pg, d);
        if (rc != 0)
            return rc;
        if (pg.nmatches > 1)
            return diag_set(d, ERR_MULTIPLE, "If-None-Exist : %zu ressources correspondent",
                            pg.nmatches);
        if (pg.nmatches == 1) {
            w->out = pg.matches[0];
            w->status = 200;
            return 0;
        }
    }
    int rc = api_write_check(w->req, t, w->type, AUTH_WRITE_CREATE, NULL, w->res, d);
    bool is_held = false, task = strcmp(w->type, "Task") == 0;
    if (rc == 0 && task)
        rc = api_task_prepare(w->req, t, w->res, true, d);
    if (rc == 0)
        rc = held(w, t, NULL, 0, NULL, w->res, &is_held, d);
    if (rc != 0 || is_held)
        return rc;
    StorePut p = {.type = w->type,
                  .res = w->res,
                  .text = task ? NULL : w->req->body,
                  .len = w->req->body_len,
                  .author = author_of(w->req)};
    w->status = 201;
    return store_txn_put(t, &w->req->arena, &p, &w->out, d);
}

static int txn_update(StoreTxn *t, void *vctx, Diag *d)
{
    WriteCtx *w = vctx;
    StoredResource cur;
    int rc = store_txn_read(t, &w->req->arena, w->type, w->id, &cur, NULL);
    json_t *before = NULL;
    if (rc == 0 && json_parse(cur.body, cur.len, &before, d) != 0)
        return ERR_INTERNAL;
    int arc = api_write_check(w->req, t, w->type, before ? AUTH_WRITE_UPDATE : AUTH_WRITE_CREATE,
                              before, w->res, d);
    /* A body that says which version it was edited from (meta.versionId) must be edited from
     * the current one: otherwise it would silently overwrite a change it never saw. */
    const char *from = json_str(json_object_get(w->res, "meta"), "versionId");
    if (arc == 0 && from && rc == 0 && strtoll(from, NULL, 10) != cur.version)
        arc = diag_set(d, ERR_CONFLICT,
                       "conflit de version : la ressource envoyée part de la version %s, la "
                       "version actuelle est %lld (relire puis réappliquer la modification)",
                       from, (long long)cur.version);
    bool is_held = false, task = strcmp(w->type, "Task") == 0;
    if (arc == 0 && task)
        arc = api_task_prepare(w->req, t, w->res, before == NULL, d);
    if (arc == 0)
        arc = held(w, t, w->id, before ? cur.version : 0, before, w->res, &is_held, d);
    json_decref(before);
    if (arc != 0 || is_held)
        return arc;
    StorePut p = {.type = w->type,
                  .id = w->id,
                  .res = w->res,
                  .text = task ? NULL : w->req->body,
                  .len = w->req->body_len,
                  .if_match = w->if_match,
                  .author = author_of(w->req)};
    w->status = rc == ERR_NOT_FOUND ? 201 : 200;
    return store_txn_put(t, &w->req->arena, &p, &w->out, d);
}

static int txn_patch(StoreTxn *t, void *vctx, Diag *d)
{
    WriteCtx *w = vctx;
    const char *id = w->id;
    if (w->cond) { /* conditional patch: exactly one target */
        StorePage pg;
        int rc = store_txn_search(t, &w->req->arena, w->cond, &pg, d);
        if (rc != 0)
            return rc;
        if (pg.nmatches == 0) {
            diag_expr(d, "%s", w->type);
            return diag_set(d, ERR_NOT_FOUND, "aucune ressource %s ne correspond", w->type);
        }
        if (pg.nmatches > 1)
            return diag_set(d, ERR_MULTIPLE, "%s résultats : la cible du patch n'est pas unique",
                            pg.total >= 0
                                ? arena_printf(&w->req->arena, "%lld", (long long)pg.total)
                                : "plusieurs");
        id = pg.matches[0].id;
    }
    StoredResource cur;
    int rc = store_txn_read(t, &w->req->arena, w->type, id, &cur, d);
    if (rc != 0)
        return rc;
    json_t *before = NULL;
    if (json_parse(cur.body, cur.len, &before, d) != 0)
        return ERR_INTERNAL;
    /* the current version must be the caller's before the patch is even tried (what the patch
     * would find tells about the resource); the result is checked again below */
    rc = api_write_check(w->req, t, w->type, AUTH_WRITE_UPDATE, before, before, d);
    if (rc != 0) {
        json_decref(before);
        return rc;
    }
    if (w->if_match > 0 && cur.version != w->if_match) {
        json_decref(before);
        return diag_set(d, ERR_PRECONDITION,
                        "conflit de version : version attendue %lld, version actuelle %lld",
                        (long long)w->if_match, (long long)cur.version);
    }
    json_t *res = json_deep_copy(before);
    rc = fhirpath_patch_apply(res, w->res, d);
    if (rc == 0) {
        const char *pid = json_str(res, "id");
        if (!json_is_string(json_object_get(res, "id")) || strcmp(pid, id) != 0 ||
            !json_str(res, "resourceType") || strcmp(json_str(res, "resourceType"), w->type))
            rc = diag_set(d, ERR_INVALID, "un patch ne peut pas modifier id ni resourceType");
    }
    if (rc == 0)
        rc = resource_check(w->api, w->type, res, d);
    if (rc == 0 && strcmp(w->type, "Task") == 0)
        rc = api_task_prepare(w->req, t, res, false, d);
    if (rc == 0) {
        rc = api_write_check(w->req, t, w->type, AUTH_WRITE_UPDATE, before, res, d);
        bool is_held = false;
        if (rc == 0)
            rc = held(w, t, id, cur.version, before, res, &is_held, d);
        if (rc == 0 && is_held) {
            json_decref(before);
            json_decref(res);
            return 0;
        }
    }
    json_decref(before);
    if (rc == 0) {
        StorePut p = {.type = w->type,
                      .id = id,
                      .res = res,
                      .if_match = cur.version,
                      .author = author_of(w->req)};
        rc = store_txn_put(t, &w->req->arena, &p, &w->out, d);
    }
    json_decref(res);
    w->status = 200;
    return rc;
}

static int txn_delete(StoreTxn *t, void *vctx, Diag *d)
{
    WriteCtx *w = vctx;
    StoredResource cur;
    if (store_txn_read(t, &w->req->arena, w->type, w->id, &cur, NULL) == 0) {
        json_t *before = NULL;
        if (json_parse(cur.body, cur.len, &before, d) != 0)
            return ERR_INTERNAL;
        int rc = api_write_check(w->req, t, w->type, AUTH_WRITE_DELETE, before, NULL, d);
        bool is_held = false;
        if (rc == 0)
            rc = held(w, t, w->id, cur.version, before, NULL, &is_held, d);
        json_decref(before);
        if (rc != 0 || is_held)
            return rc;
    } else if (!api_principal(w->req)->login) {
        /* nothing to delete: the anonymous still learn nothing but that they must sign in */
        return api_write_check(w->req, t, w->type, AUTH_WRITE_DELETE, NULL, NULL, d);
    }
    return store_txn_delete(t, &w->req->arena, w->type, w->id, w->if_match, author_of(w->req),
                            &w->out, d);
}

/* The answer to a finished write (any thread: the request is ours until resumed). */
static void write_answer(HttpRequest *r, WriteCtx *w, int rc)
{
    if (rc != 0) {
        http_fail(r, rc, &w->diag);
    } else if (w->status == 202) {
        char *loc =
            arena_printf(&r->arena, "%s/validation/%lld", r->base_url, (long long)w->pending);
        http_header_set(r, "Content-Location", loc);
        char *msg = arena_printf(&r->arena,
                                 "modification n° %lld enregistrée : elle sera appliquée après "
                                 "validation par l'ARS",
                                 (long long)w->pending);
        char *body = fhir_outcome_text("information", "informational", msg, NULL);
        http_respond(r, 202, FHIR_JSON, body, strlen(body));
    } else if (w->out.deleted) {
        version_headers(r, &w->out);
        char *msg = arena_printf(&r->arena, "%s/%s supprimé (version %lld)", w->out.type, w->out.id,
                                 (long long)w->out.version);
        char *body = fhir_outcome_text("information", "informational", msg, NULL);
        http_respond(r, 200, FHIR_JSON, body, strlen(body));
    } else {
        respond_version(r, w->status, &w->out, w->api);
    }
    json_decref(w->res);
    w->res = NULL;
    search_plan_free(w->cond);
    w->cond = NULL;
}

/* Writer thread, after the durable commit: answer, then give the request back to the server. */
static void write_done(void *vctx, int rc)
{
    WriteCtx *w = vctx;
    write_answer(w->req, w, rc);
    http_resume(w->req);
}

/*
 * Run a write through the one write path without holding a worker thread during the commit:
 * the request is suspended, the writer answers it after the fsync and resumes it. `w` (in the
 * request arena) takes ownership of w->res and w->cond.
 */
static void run_write(HttpRequest *r, const WriteCtx *proto, StoreTxnFn fn)
{
    WriteCtx *w = arena_alloc(&r->arena, sizeof *w);
    *w = *proto;
    memset(&w->diag, 0, sizeof w->diag);
    http_suspend(r);
    if (store_write_async(w->api->store, fn, w, &w->diag, write_done, w) != 0) {
        write_answer(r, w, ERR_UNAVAILABLE); /* not queued: answer here */
        http_resume(r);
    }
}

/* Parse "?a=b&c=d" (the If-None-Exist header, already URL-encoded) into a plan on `type`. */
static int cond_plan_from_header(HttpRequest *r, Api *a, const char *type, const char *hdr,
                                 SearchPlan **out, Diag *d)
{
    QueryParam qp[32];
    size_t n = 0;
    char *s = arena_strdup(&r->arena, hdr[0] == '?' ? hdr + 1 : hdr);
    for (char *tok = s, *next; tok && *tok; tok = next) {
        next = strchr(tok, '&');
        if (next)
            *next++ = 0;
        if (n == 32)
            return diag_set(d, ERR_INVALID, "If-None-Exist : trop de critères");
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = 0;
        pct_decode(tok, false);
        if (eq)
            pct_decode(eq, false);
        qp[n].name = tok;
        qp[n].value = eq ? eq : "";
        n++;
    }
    if (n == 0)
        return diag_set(d, ERR_INVALID, "If-None-Exist vide");
    return fhir_search_parse(a->reg, type, qp, n, true, out, d);
}

static void h_create(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    const FhirType *t = type_or_respond(r, FHIR_CREATE);
    json_t *res = NULL;
    if (!t || !accept_or_respond(r) || !parse_body_or_respond(r, &res))
        return;
    Diag d = {{0}, {0}};
    int rc = resource_check(a, t->name, res, &d);
    SearchPlan *cond = NULL;
    const char *ine = http_header(r, "If-None-Exist");
    if (rc == 0 && ine)
        rc = cond_plan_from_header(r, a, t->name, ine, &cond, &d);
    if (rc != 0) {
        json_decref(res);
        http_fail(r, rc, &d);
        return;
    }
    if (cond)
        cond->count = 2;
    WriteCtx w = {.api = a, .req = r, .type = t->name, .res = res, .cond = cond};
    run_write(r, &w, txn_create);
}

static void h_update(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    const FhirType *t = type_or_respond(r, FHIR_UPDATE);
    json_t *res = NULL;
    if (!t || !id_or_respond(r, r->params[1]) || !accept_or_respond(r))
        return;
    int64_t if_match = if_match_or_respond(r);
    if (if_match < 0 || !parse_body_or_respond(r, &res))
        return;
    Diag d = {{0}, {0}};
    int rc = resource_check(a, t->name, res, &d);
    const char *bid = json_str(res, "id");
    if (rc == 0 && (!bid || strcmp(bid, r->params[1]) != 0)) {
        diag_expr(&d, "%s.id", t->name);
        rc = diag_set(&d, ERR_INVALID, "l'id du corps (%s) doit être celui de l'URL (%s)",
                      bid ? bid : "absent", r->params[1]);
    }
    if (rc != 0) {
        json_decref(res);
        http_fail(r, rc, &d);
        return;
    }
    WriteCtx w = {
        .api = a, .req = r, .type = t->name, .id = r->params[1], .res = res, .if_match = if_match};
    run_write(r, &w, txn_update);
}

/* Takes ownership of cond. */
static void patch_common(HttpRequest *r, Api *a, const char *id, SearchPlan *cond)
{
    const FhirType *t = fhir_type_find(r->params[0], strlen(r->params[0]));
    json_t *params = NULL;
    int64_t if_match = if_match_or_respond(r);
    if (if_match < 0 || !accept_or_respond(r) || !parse_body_or_respond(r, &params)) {
        search_plan_free(cond);
        return;
    }
    if (!json_str(params, "resourceType") ||
        strcmp(json_str(params, "resourceType"), "Parameters") != 0) {
        json_decref(params);
        search_plan_free(cond);
        fail(r, ERR_INVALID, "%s", "un patch FHIRPath (ressource Parameters) est attendu");
        return;
    }
    WriteCtx w = {.api = a,
                  .req = r,
                  .type = t->name,
                  .id = id,
                  .res = params,
                  .if_match = if_match,
                  .cond = cond};
    run_write(r, &w, txn_patch);
}

static void h_patch(HttpRequest *r, void *ctx)
{
    if (!type_or_respond(r, FHIR_PATCH) || !id_or_respond(r, r->params[1]))
        return;
    patch_common(r, ctx, r->params[1], NULL);
}

static void h_patch_conditional(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    const FhirType *t = type_or_respond(r, FHIR_PATCH);
    if (!t)
        return;
    if (r->nquery == 0 || r->query_overflow) {
        fail(r, ERR_INVALID, "%s", "patch conditionnel : critères de recherche attendus");
        return;
    }
    SearchPlan *cond = NULL;
    Diag d = {{0}, {0}};
    int rc = fhir_search_parse(a->reg, t->name, r->query, r->nquery, true, &cond, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    cond->count = 2;
    patch_common(r, a, NULL, cond);
}

static void h_units_mine(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    api_units_mine(r, a->store, a->reg);
}

static void h_delete(HttpRequest *r, void *ctx)
{
    Api *a = ctx;
    const FhirType *t = type_or_respond(r, FHIR_DELETE);
    if (!t || !id_or_respond(r, r->params[1]))
        return;
    int64_t if_match = if_match_or_respond(r);
    if (if_match < 0)
        return;
    WriteCtx w = {.api = a, .req = r, .type = t->name, .id = r->params[1], .if_match = if_match};
    run_write(r, &w, txn_delete);
}

void api_routes(Api *a, HttpServer *s)
{
    char p[256];
#define ROUTE(methods, suffix, h)                                                                  \
    do {                                                                                           \
        snprintf(p, sizeof p, "%s%s", a->base, suffix);                                            \
        http_route(s, methods, p, h, a);                                                           \
    } while (0)
    ROUTE(HTTP_GET, "/metadata", h_metadata);
    ROUTE(HTTP_GET, "/{type}", h_search);
    ROUTE(HTTP_POST, "/{type}", h_create);
    ROUTE(HTTP_PATCH, "/{type}", h_patch_conditional);
    ROUTE(HTTP_POST, "/{type}/_search", h_search);
    ROUTE(HTTP_GET, "/{type}/{id}", h_read);
    ROUTE(HTTP_PUT, "/{type}/{id}", h_update);
    ROUTE(HTTP_PATCH, "/{type}/{id}", h_patch);
    ROUTE(HTTP_DELETE, "/{type}/{id}", h_delete);
    ROUTE(HTTP_GET, "/{type}/{id}/_history", h_history);
    ROUTE(HTTP_GET, "/{type}/{id}/_history/{vid}", h_vread);
#undef ROUTE
    auth_api_routes(a->auth, s);
    http_route(s, HTTP_GET, "/capacity/mine", h_units_mine, a);
    validation_api_routes(s, a->store);
    admin_api_routes(s, a->store);
    a->web = web_api_routes(s, a->web_root, a->tile_url, a->tile_attribution, a->unit_types);
    if (a->term)
        terminology_api_routes(s, a->term, a->base);
    a->feed =
        capacity_api_routes(s, a->store, a->events, a->expiry, a->orient, a->term, a->max_streams);
    if (a->orient)
        a->orient_api = orient_api_routes(s, a->orient, a->term, a->store);
    a->subs = subscription_api_routes(s, a->store, a->events, a->base);
}
