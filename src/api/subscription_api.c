/* api subscriptions: FHIR R4 topic-based Subscriptions (the "backport" of R5 subscriptions,
 * http://hl7.org/fhir/uv/subscriptions-backport, R4 variant) on bed/place capacity changes,
 * delivered by rest-hook to the systems that ask for them.
 *
 * A Subscription is an ordinary stored resource (/fhir/Subscription: create, read, update,
 * delete, search, through the one write path); subscription_check() is what a valid one is:
 *   criteria      SUBSCRIPTION_TOPIC (the one topic: every committed capacity event)
 *   _criteria     backport-filter-criteria extensions (AND-ed): "location=a,b",
 *                 "organization=x", "departement=75" (as the SSE stream's filters; an optional
 *                 "Location?" prefix), several in one string joined by '&'
 *   channel       type rest-hook, endpoint http(s) URL, payload application/fhir+json with
 *                 backport-payload-content (empty | id-only | full-resource; default id-only),
 *                 header ("Name: value", sent with every notification), extensions
 *                 backport-heartbeat-period, backport-timeout (s, at most 60; default 10) and
 *                 backport-max-count (events per notification, at most 100)
 *   status        requested (the server sends a handshake, then sets active), active, error
 *                 (set by the server while deliveries fail), off (nothing sent)
 *
 * Delivery: one thread drives every subscription with libcurl's multi interface (a dead or slow
 * endpoint delays no other, holds no HTTP worker and never the writer). It is woken by the
 * events module after each commit (the callback only sets a flag and wakes the poll), reads the
 * capacity events after the subscription's last delivered one (store_capacity_events), keeps
 * those its filters want, and POSTs them, at most 100 at a time and in commit order, as a
 * history Bundle whose first entry is the SubscriptionStatus Parameters. Event numbers count
 * the events notified since the subscription started, with no gap. On a 2xx the new position
 * is saved through store_write (so a restart resumes where the receiver is: nothing lost,
 * nothing twice); on a failure the same events are sent again after 1, 2, 4... s (at most
 * 60 s), the Subscription's status is "error" meanwhile, "active" again after a success.
 * A notification sent but unacknowledged when the process dies may come again after restart
 * (at least once): receivers can tell by its event numbers.
 *
 * The store makes each subscription's delivery-state row in the transaction that creates it,
 * starting after the last capacity event committed before it (store.h, SubscriptionState).
 * References in notifications are relative to the FHIR base ("Location/x", "Subscription/y"):
 * the server does not know the address its clients use.
 *
 *   GET /fhir/Subscription/{id}/$status, GET /fhir/Subscription/$status[?id=&status=]
 *       the backport $status operation: a searchset Bundle of SubscriptionStatus Parameters
 *       (status, events-since-subscription-start, the last error while deliveries fail).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/api_int.h"
#include "capacity/capacity.h"
#include "events/events.h"
#include "json/json.h"

/* The one topic (its canonical URL): every committed change of a capacity indicator. */
#define SUBSCRIPTION_TOPIC "https://ror.esante.local/SubscriptionTopic/capacity"
#define BACKPORT "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
#define EXT_FILTER BACKPORT "backport-filter-criteria"
#define EXT_CONTENT BACKPORT "backport-payload-content"
#define EXT_HEARTBEAT BACKPORT "backport-heartbeat-period"
#define EXT_TIMEOUT BACKPORT "backport-timeout"
#define EXT_MAX_COUNT BACKPORT "backport-max-count"
#define PROFILE_STATUS BACKPORT "backport-subscription-status-r4"
#define PROFILE_NOTIFICATION BACKPORT "backport-subscription-notification-r4"
#define FHIR_JSON "application/fhir+json; charset=utf-8"
#define HUB_AUTHOR "ror-abonnements"

#define BATCH_MAX 100         /* events per notification */
#define SCAN_PAGE 256         /* events read per query */
#define SCAN_PAGES 4          /* queries per subscription per turn (then the others' turn) */
#define BACKOFF_FIRST_MS 1000 /* first retry; doubles up to BACKOFF_MAX_MS */
#define BACKOFF_MAX_MS 60000
#define TIMEOUT_DEFAULT_S 10 /* a notification's whole exchange */
#define TIMEOUT_MAX_S 60
#define CONNECT_TIMEOUT_MS 5000
#define STOP_GRACE_MS 2000 /* on stop, notifications in flight may finish this long */
#define IDLE_WAIT_MS 60000
#define HEADERS_MAX 16
#define HEADER_LEN_MAX 4096
#define ENDPOINT_LEN_MAX 2048
#define LOCATIONS_MAX 64
#define BODY_MAX (64u << 20)

typedef struct SubscriptionHub SubscriptionHub;
SubscriptionHub *subscription_api_routes(HttpServer *s, Store *store, Events *events,
                                         const char *base);
void subscription_hub_stop(SubscriptionHub *h);
void subscription_hub_free(SubscriptionHub *h);
int subscription_check(json_t *res, Diag *d);

/* ------------------------------------------------------------------ the resource */

enum { CONTENT_EMPTY, CONTENT_ID_ONLY, CONTENT_FULL };
static const char *const content_names[] = {"empty", "id-only", "full-resource"};

typedef struct SubConfig {
    char status[16];
    char *endpoint;
    char **headers; /* "Name: value" */
    size_t nheaders;
    int content;
    char **locations; /* filters (none: any) */
    size_t nlocations;
    char *organization, *departement;
    int64_t heartbeat_ms; /* 0: none */
    long timeout_ms;
    size_t max_count;
    int64_t end; /* epoch ms; 0: none */
} SubConfig;

static void config_cleanup(SubConfig *c)
{
    free(c->endpoint);
    for (size_t i = 0; i < c->nheaders; i++)
        free(c->headers[i]);
    free(c->headers);
    for (size_t i = 0; i < c->nlocations; i++)
        free(c->locations[i]);
    free(c->locations);
    free(c->organization);
    free(c->departement);
    memset(c, 0, sizeof *c);
}

static bool departement_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 2)
        return (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
                !(s[0] == '2' && s[1] == '0')) ||
               (s[0] == '2' && (s[1] == 'A' || s[1] == 'B'));
    return n == 3 && s[0] == '9' && s[1] == '7' && s[2] >= '1' && s[2] <= '8';
}

/* An id, or a reference "<type>/<id>" to one: the id (in place), or NULL. */
static const char *ref_id(const char *v, const char *type)
{
    size_t tl = strlen(type);
    if (strncmp(v, type, tl) == 0 && v[tl] == '/')
        v += tl + 1;
    return fhir_id_valid(v, strlen(v)) ? v : NULL;
}

/* One backport-filter-criteria value: "[Location?]key=value[&key=value...]". */
static int filter_parse(const char *text, SubConfig *c, Diag *d)
{
    if (strncmp(text, "Location?", 9) == 0)
        text += 9;
    if (!*text || strlen(text) > 4096)
        return diag_set(d, ERR_INVALID, "critère de filtre vide ou trop long");
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, "&", &save); tok && rc == 0; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) {
            rc = diag_set(d, ERR_INVALID, "critère de filtre « %s » : clé=valeur attendu", tok);
            break;
        }
        *eq = 0;
        const char *key = tok, *value = eq + 1;
        if (strcmp(key, "location") == 0) {
            if (c->nlocations) {
                rc = diag_set(d, ERR_INVALID, "critère de filtre « location » répété");
                break;
            }
            char *s2 = NULL;
            for (char *l = strtok_r((char *)value, ",", &s2); l && rc == 0;
                 l = strtok_r(NULL, ",", &s2)) {
                const char *id = ref_id(l, "Location");
                if (!id)
                    rc = diag_set(d, ERR_INVALID, "location : identifiant de lieu invalide « %s »",
                                  l);
                else if (c->nlocations == LOCATIONS_MAX)
                    rc = diag_set(d, ERR_INVALID, "location : au plus %d lieux", LOCATIONS_MAX);
                else {
                    c->locations = xrealloc(c->locations, (c->nlocations + 1) * sizeof(char *));
                    c->locations[c->nlocations++] = xstrdup(id);
                }
            }
            if (rc == 0 && !c->nlocations)
                rc = diag_set(d, ERR_INVALID, "location : au moins un identifiant de lieu");
        } else if (strcmp(key, "organization") == 0) {
            const char *id = ref_id(value, "Organization");
            if (c->organization)
                rc = diag_set(d, ERR_INVALID, "critère de filtre « organization » répété");
            else if (!id)
                rc = diag_set(d, ERR_INVALID, "organization : identifiant invalide « %s »", value);
            else
                c->organization = xstrdup(id);
        } else if (strcmp(key, "departement") == 0) {
            if (c->departement)
                rc = diag_set(d, ERR_INVALID, "critère de filtre « departement » répété");
            else if (!departement_valid(value))
                rc = diag_set(d, ERR_INVALID,
                              "departement : code de département attendu (75, 2A, 971…), pas "
                              "« %s »",
                              value);
            else
                c->departement = xstrdup(value);
        } else {
            rc = diag_set(d, ERR_INVALID,
                          "critère de filtre « %s » inconnu : location, organization ou "
                          "departement",
                          key);
        }
    }
    free(copy);
    return rc;
}

static bool endpoint_valid(const char *url)
{
    size_t n = strlen(url);
    const char *host = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        host = url + 8;
    if (!host || n > ENDPOINT_LEN_MAX || !*host || *host == '/' || *host == '?' || *host == '#')
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* "Name: value": a token name, a value without control characters; not one we set. */
static int header_check(const char *h, size_t i, Diag *d)
{
    static const char *const reserved[] = {"content-type",      "content-length", "host",
                                           "transfer-encoding", "expect",         "connection"};
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strlen(h) > HEADER_LEN_MAX)
        return diag_set(d, ERR_INVALID, "channel.header[%zu] : « Nom: valeur » attendu", i);
    for (const char *p = h; p < colon; p++)
        if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            return diag_set(d, ERR_INVALID, "channel.header[%zu] : nom d'en-tête invalide", i);
    for (const unsigned char *p = (const unsigned char *)colon; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            return diag_set(d, ERR_INVALID, "channel.header[%zu] : caractère de contrôle", i);
    for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
        if (strlen(reserved[k]) == (size_t)(colon - h) &&
            strncasecmp(h, reserved[k], (size_t)(colon - h)) == 0)
            return diag_set(d, ERR_INVALID, "channel.header[%zu] : l'en-tête %.*s est réservé", i,
                            (int)(colon - h), h);
    return 0;
}

/* The extension array of `element` (or of `_<name>` for a primitive), NULL when none. */
static json_t *extensions_of(json_t *parent, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "_%s", name);
    json_t *e = json_object_get(parent, key);
    return json_is_object(e) ? json_object_get(e, "extension") : NULL;
}

static int uint_ext(json_t *ext, const char *field, const char *what, int64_t lo, int64_t hi,
                    int64_t *out, Diag *d)
{
    json_t *v = json_object_get(ext, field);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return diag_set(d, ERR_INVALID, "%s : entier de %lld à %lld attendu (%s)", what,
                        (long long)lo, (long long)hi, field);
    *out = json_integer_value(v);
    return 0;
}

/* What a Subscription asks for; ERR_INVALID (French detail) when we cannot serve it. */
static int config_parse(json_t *res, SubConfig *c, Diag *d)
{
    memset(c, 0, sizeof *c);
    c->content = CONTENT_ID_ONLY;
    c->timeout_ms = TIMEOUT_DEFAULT_S * 1000L;
    c->max_count = BATCH_MAX;
    int rc = 0;
    const char *status = json_str(res, "status");
    static const char *const statuses[] = {"requested", "active", "error", "off"};
    bool known = false;
    for (size_t i = 0; status && i < 4; i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known) {
        diag_expr(d, "Subscription.status");
        rc = diag_set(d, ERR_INVALID, "status : requested, active, error ou off attendu");
        goto fail;
    }
    snprintf(c->status, sizeof c->status, "%s", status);
    const char *reason = json_str(res, "reason");
    if (!reason || !*reason) {
        diag_expr(d, "Subscription.reason");
        rc = diag_set(d, ERR_INVALID, "reason : le motif de l'abonnement est obligatoire");
        goto fail;
    }
    const char *criteria = json_str(res, "criteria");
    if (!criteria || strcmp(criteria, SUBSCRIPTION_TOPIC) != 0) {
        diag_expr(d, "Subscription.criteria");
        rc = diag_set(d, ERR_INVALID,
                      "criteria : seul le sujet %s (changements de capacité) est pris en charge",
                      SUBSCRIPTION_TOPIC);
        goto fail;
    }
    size_t i;
    json_t *ext;
    json_array_foreach(extensions_of(res, "criteria"), i, ext)
    {
        const char *url = json_str(ext, "url");
        if (!url || strcmp(url, EXT_FILTER) != 0)
            continue;
        const char *v = json_str(ext, "valueString");
        diag_expr(d, "Subscription.criteria.extension[%zu]", i);
        if (!v) {
            rc = diag_set(d, ERR_INVALID, "backport-filter-criteria : valueString attendu");
            goto fail;
        }
        if ((rc = filter_parse(v, c, d)) != 0)
            goto fail;
    }
    json_t *end = json_object_get(res, "end");
    int64_t hi;
    if (end && (!json_is_string(end) ||
                time_parse_range(json_string_value(end), json_string_length(end), &c->end, &hi))) {
        diag_expr(d, "Subscription.end");
        rc = diag_set(d, ERR_INVALID, "end : instant FHIR attendu");
        goto fail;
    }
    json_t *ch = json_object_get(res, "channel");
    diag_expr(d, "Subscription.channel");
    if (!json_is_object(ch)) {
        rc = diag_set(d, ERR_INVALID, "channel : objet attendu");
        goto fail;
    }
    const char *type = json_str(ch, "type");
    if (!type || strcmp(type, "rest-hook") != 0) {
        rc = diag_set(d, ERR_INVALID, "channel.type : seul rest-hook est pris en charge");
        goto fail;
    }
    const char *endpoint = json_str(ch, "endpoint");
    if (!endpoint || !endpoint_valid(endpoint)) {
        rc = diag_set(d, ERR_INVALID, "channel.endpoint : URL http:// ou https:// attendue");
        goto fail;
    }
    c->endpoint = xstrdup(endpoint);
    const char *payload = json_str(ch, "payload");
    if (!payload || strcmp(payload, "application/fhir+json") != 0) {
        rc = diag_set(d, ERR_INVALID, "channel.payload : application/fhir+json attendu");
        goto fail;
    }
    json_array_foreach(extensions_of(ch, "payload"), i, ext)
    {
        const char *url = json_str(ext, "url");
        if (!url || strcmp(url, EXT_CONTENT) != 0)
            continue;
        const char *v = json_str(ext, "valueCode");
        int k = 0;
        while (k < 3 && (!v || strcmp(v, content_names[k]) != 0))
            k++;
        if (k == 3) {
            rc = diag_set(d, ERR_INVALID,
                          "backport-payload-content : empty, id-only ou full-resource attendu");
            goto fail;
        }
        c->content = k;
    }
    json_t *headers = json_object_get(ch, "header"), *h;
    if (headers && (!json_is_array(headers) || json_array_size(headers) > HEADERS_MAX)) {
        rc = diag_set(d, ERR_INVALID, "channel.header : liste d'au plus %d en-têtes attendue",
                      HEADERS_MAX);
        goto fail;
    }
    json_array_foreach(headers, i, h)
    {
        if (!json_is_string(h)) {
            rc = diag_set(d, ERR_INVALID, "channel.header[%zu] : texte attendu", i);
            goto fail;
        }
        if ((rc = header_check(json_string_value(h), i, d)) != 0)
            goto fail;
        c->headers = xrealloc(c->headers, (c->nheaders + 1) * sizeof(char *));
        c->headers[c->nheaders++] = xstrdup(json_string_value(h));
    }
    json_array_foreach(json_object_get(ch, "extension"), i, ext)
    {
        const char *url = json_str(ext, "url");
        int64_t v = 0;
        if (!url)
            continue;
        if (strcmp(url, EXT_HEARTBEAT) == 0) {
            if ((rc = uint_ext(ext, "valueUnsignedInt", "backport-heartbeat-period", 0, 86400, &v,
                               d)) != 0)
                goto fail;
            c->heartbeat_ms = v * 1000;
        } else if (strcmp(url, EXT_TIMEOUT) == 0) {
            if ((rc = uint_ext(ext, "valueUnsignedInt", "backport-timeout", 1, TIMEOUT_MAX_S, &v,
                               d)) != 0)
                goto fail;
            c->timeout_ms = (long)v * 1000;
        } else if (strcmp(url, EXT_MAX_COUNT) == 0) {
            if ((rc = uint_ext(ext, "valuePositiveInt", "backport-max-count", 1, 1000000, &v, d)) !=
                0)
                goto fail;
            c->max_count = v < BATCH_MAX ? (size_t)v : BATCH_MAX;
        }
    }
    if (d)
        d->expr[0] = 0;
    return 0;
fail:
    config_cleanup(c);
    return rc;
}

int subscription_check(json_t *res, Diag *d)
{
    SubConfig c;
    int rc = config_parse(res, &c, d);
    if (rc == 0)
        config_cleanup(&c);
    return rc;
}

/* ------------------------------------------------------------------ the hub */

enum { KIND_HANDSHAKE, KIND_HEARTBEAT, KIND_EVENTS };
static const char *const kind_names[] = {"handshake", "heartbeat", "event-notification"};

typedef struct Sub {
    int64_t pk;
    char *id;
    int64_t version;
    int64_t own_version; /* the last version the hub wrote itself (a status change) */
    SubConfig cfg;
    SubscriptionState st; /* as saved; st.last_error owned */
    int64_t scan;         /* events in (st.last_event, scan] are not wanted by the filters */
    uint64_t scanned_gen; /* the hub's generation at the last look */
    bool more;            /* look again without waiting for a commit */
    int64_t due;          /* monotonic ms of the next attempt after a failure */
    int64_t last_sent;    /* monotonic ms of the last acknowledged notification */
    /* the notification in flight */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    int kind;
    int64_t batch_last, batch_events;
    char errbuf[CURL_ERROR_SIZE];
} Sub;

struct SubscriptionHub {
    Store *store;
    Events *events;
    char *base; /* the FHIR base path ("/fhir") */
    int events_id;
    CURLM *multi;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock; /* the fields below */
    bool stop, reload;
    uint64_t gen; /* bumped by every commit that changed a Location */
    /* delivery thread only */
    Sub **subs;
    size_t nsubs;
};

static int64_t mono_ms(void)
{
    return time_mono_ns() / 1000000;
}

static void transfer_drop(SubscriptionHub *h, Sub *s)
{
    if (!s->easy)
        return;
    curl_multi_remove_handle(h->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->hdrs);
    free(s->body);
    s->easy = NULL;
    s->hdrs = NULL;
    s->body = NULL;
}

static void sub_free(SubscriptionHub *h, Sub *s)
{
    transfer_drop(h, s);
    config_cleanup(&s->cfg);
    free((char *)s->st.last_error);
    free(s->id);
    free(s);
}

static void state_set_error(SubscriptionState *st, const char *msg)
{
    free((char *)st->last_error);
    st->last_error = msg ? xstrdup(msg) : NULL;
}

/* The saved delivery state of s (st.last_error owned); false when it has none. */
static bool state_load(SubscriptionHub *h, Sub *s)
{
    Arena a;
    arena_init(&a);
    SubscriptionState st;
    Diag d = {{0}, {0}};
    int rc = store_subscription_state(h->store, &a, s->id, &st, &d);
    if (rc == 0 && st.res != s->pk)
        rc = ERR_NOT_FOUND; /* (re-created meanwhile: the next reload sees it) */
    if (rc == 0) {
        free((char *)s->st.last_error);
        s->st = st;
        s->st.last_error = st.last_error ? xstrdup(st.last_error) : NULL;
        s->scan = st.last_event;
    } else if (rc != ERR_NOT_FOUND) {
        log_error("abonnement %s : état illisible : %s", s->id, d.msg);
    }
    arena_cleanup(&a);
    return rc == 0;
}

typedef struct Loaded {
    int64_t pk;
    char *id;
    int64_t version;
    json_t *res;
} Loaded;

typedef struct LoadList {
    Loaded *v;
    size_t n;
} LoadList;

static int load_one(void *ctx, const StoredResource *r)
{
    LoadList *l = ctx;
    json_t *res = NULL;
    if (json_parse(r->body, r->len, &res, NULL) != 0)
        return 0;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = (Loaded){r->pk, xstrdup(r->id), r->version, res};
    return 0;
}

/* Follow the stored Subscriptions: new ones start, changed ones start over from their saved
 * state (the client may have changed the endpoint or the filters), deleted ones stop. */
static void subs_reload(SubscriptionHub *h)
{
    LoadList l = {NULL, 0};
    Diag d = {{0}, {0}};
    if (store_each(h->store, "Subscription", load_one, &l, &d) != 0) {
        log_error("abonnements : lecture impossible : %s", d.msg);
        pthread_mutex_lock(&h->lock);
        h->reload = true; /* at the next turn */
        pthread_mutex_unlock(&h->lock);
        for (size_t i = 0; i < l.n; i++) {
            free(l.v[i].id);
            json_decref(l.v[i].res);
        }
        free(l.v);
        return;
    }
    Sub **next = xcalloc(l.n ? l.n : 1, sizeof *next);
    size_t nnext = 0;
    for (size_t i = 0; i < l.n; i++) {
        Loaded *e = &l.v[i];
        Sub *s = NULL;
        for (size_t k = 0; k < h->nsubs && !s; k++)
            if (h->subs[k] && h->subs[k]->pk == e->pk) {
                s = h->subs[k];
                h->subs[k] = NULL;
            }
        SubConfig cfg;
        Diag cd = {{0}, {0}};
        if (config_parse(e->res, &cfg, &cd) != 0) { /* stored by a path that does not check */
            log_warn("abonnement %s ignoré : %s", e->id, cd.msg);
            if (s)
                sub_free(h, s);
            goto next;
        }
        if (s && s->version == e->version) {
            config_cleanup(&cfg);
        } else if (s && s->version != e->version && e->version == s->own_version) {
            config_cleanup(&s->cfg); /* our own status change */
            s->cfg = cfg;
            s->version = e->version;
        } else {
            if (!s) {
                s = xcalloc(1, sizeof *s);
                s->pk = e->pk;
                s->id = xstrdup(e->id);
                s->last_sent = mono_ms();
            }
            transfer_drop(h, s); /* made for the previous version */
            config_cleanup(&s->cfg);
            s->cfg = cfg;
            s->version = e->version;
            s->due = 0;
            s->more = true;
            if (!state_load(h, s)) {
                sub_free(h, s);
                goto next;
            }
        }
        next[nnext++] = s;
        s = NULL;
    next:
        free(e->id);
        json_decref(e->res);
    }
    for (size_t k = 0; k < h->nsubs; k++)
        if (h->subs[k])
            sub_free(h, h->subs[k]);
    free(h->subs);
    free(l.v);
    h->subs = next;
    h->nsubs = nnext;
}

/* ------------------------------------------------------------------ notifications */

/* Organization id and département of a Location, read once per batch into `cache`. */
static json_t *place_of(SubscriptionHub *h, json_t *cache, const char *loc)
{
    json_t *p = json_object_get(cache, loc);
    if (p)
        return p;
    Arena a;
    arena_init(&a);
    const char *org, *insee;
    char dep[4];
    capacity_location_where(h->store, &a, loc, &org, &insee, dep);
    p = json_pack("[s,s]", org, dep);
    arena_cleanup(&a);
    json_object_set_new(cache, loc, p);
    return p;
}

static bool wanted(SubscriptionHub *h, const SubConfig *c, json_t *cache, const CapacityEvent *e)
{
    if (c->nlocations) {
        bool found = false;
        for (size_t i = 0; i < c->nlocations && !found; i++)
            found = strcmp(c->locations[i], e->location_id) == 0;
        if (!found)
            return false;
    }
    if (!c->organization && !c->departement)
        return true;
    json_t *p = place_of(h, cache, e->location_id);
    if (c->organization && strcmp(json_string_value(json_array_get(p, 0)), c->organization))
        return false;
    if (c->departement && strcmp(json_string_value(json_array_get(p, 1)), c->departement))
        return false;
    return true;
}

static const char *sub_status(const Sub *s, int kind)
{
    if (kind == KIND_HANDSHAKE && strcmp(s->cfg.status, "requested") == 0)
        return "requested";
    return s->st.failures > 0 ? "error" : "active";
}

/* The SubscriptionStatus (backport R4 Parameters) of s. `subscription`: its reference. */
static json_t *status_params(const char *subscription, const char *status, const char *type,
                             int64_t events, const char *error)
{
    char id[37], count[24];
    uuid_v4(id);
    snprintf(count, sizeof count, "%lld", (long long)events);
    json_t *p = json_pack(
        "{s:s,s:s,s:{s:[s]},s:[{s:s,s:{s:s}},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}",
        "resourceType", "Parameters", "id", id, "meta", "profile", PROFILE_STATUS, "parameter",
        "name", "subscription", "valueReference", "reference", subscription, "name", "topic",
        "valueCanonical", SUBSCRIPTION_TOPIC, "name", "status", "valueCode", status, "name", "type",
        "valueCode", type, "name", "events-since-subscription-start", "valueString", count);
    if (error)
        json_array_append_new(json_object_get(p, "parameter"),
                              json_pack("{s:s,s:{s:[{s:s,s:s}],s:s}}", "name", "error",
                                        "valueCodeableConcept", "coding", "system",
                                        "http://terminology.hl7.org/CodeSystem/subscription-error",
                                        "code", "delivery-failure", "text", error));
    return p;
}

/* The notification Bundle (history) for events ev[0..n) numbered from `first`: the status
 * first, then one entry per distinct Location version the events point at (id-only: its
 * address; full-resource: that version of the resource). Caller frees; *len its length. */
static char *notification_build(SubscriptionHub *h, Sub *s, int kind, const CapacityEvent *ev,
                                size_t n, int64_t first, size_t *len)
{
    char ref[128], ts[32], id[37];
    snprintf(ref, sizeof ref, "Subscription/%s", s->id);
    json_t *params =
        status_params(ref, sub_status(s, kind), kind_names[kind],
                      kind == KIND_EVENTS ? first + (int64_t)n - 1 : s->st.events, NULL);
    json_t *plist = json_object_get(params, "parameter");
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)(first + (int64_t)i));
        time_format_instant(ev[i].at, ts);
        json_t *part = json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "event-number", "valueString",
                                 num, "name", "timestamp", "valueInstant", ts);
        if (s->cfg.content != CONTENT_EMPTY) { /* empty: nothing about the resource */
            char focus[128];
            snprintf(focus, sizeof focus, "Location/%s", ev[i].location_id);
            json_array_append_new(part, json_pack("{s:s,s:{s:s}}", "name", "focus",
                                                  "valueReference", "reference", focus));
        }
        json_array_append_new(plist,
                              json_pack("{s:s,s:o}", "name", "notification-event", "part", part));
    }
    Buf b;
    buf_init(&b, BODY_MAX);
    uuid_v4(id);
    time_format_instant(time_now_ms(), ts);
    const char *pid = json_str(params, "id");
    buf_printf(&b,
               "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"profile\":[\"%s\"]},"
               "\"type\":\"history\",\"timestamp\":\"%s\",\"entry\":[{\"fullUrl\":\"urn:uuid:%s\","
               "\"resource\":",
               id, PROFILE_NOTIFICATION, ts, pid);
    size_t plen = 0;
    char *ptext = json_dump_compact(params, &plen);
    buf_add(&b, ptext, plen);
    free(ptext);
    json_decref(params);
    buf_adds(&b, ",\"request\":{\"method\":\"GET\",\"url\":");
    char *self = xasprintf("Subscription/%s/$status", s->id);
    buf_add_json_string(&b, self, strlen(self));
    free(self);
    buf_adds(&b, "},\"response\":{\"status\":\"200\"}}");
    Arena a;
    arena_init(&a);
    for (size_t i = 0; s->cfg.content != CONTENT_EMPTY && i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen =
                ev[k].version == ev[i].version && strcmp(ev[k].location_id, ev[i].location_id) == 0;
        if (seen)
            continue;
        char *url = arena_printf(&a, "Location/%s", ev[i].location_id);
        buf_adds(&b, ",{\"fullUrl\":");
        buf_add_json_string(&b, url, strlen(url));
        StoredResource r;
        if (s->cfg.content == CONTENT_FULL &&
            store_vread(h->store, &a, "Location", ev[i].location_id, ev[i].version, &r, NULL) ==
                0 &&
            !r.deleted) {
            buf_adds(&b, ",\"resource\":");
            buf_add(&b, r.body, r.len);
        }
        time_format_instant(ev[i].at, ts);
        buf_adds(&b, ",\"request\":{\"method\":\"PUT\",\"url\":");
        buf_add_json_string(&b, url, strlen(url));
        buf_printf(&b,
                   "},\"response\":{\"status\":\"200\",\"etag\":\"W/\\\"%lld\\\"\","
                   "\"lastModified\":\"%s\"}}",
                   (long long)ev[i].version, ts);
    }
    arena_cleanup(&a);
    buf_adds(&b, "]}");
    if (b.overflow) {
        log_error("abonnement %s : notification de plus de %u octets", s->id, BODY_MAX);
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* POST `body` (taken) to s's endpoint, without waiting. */
static void transfer_start(SubscriptionHub *h, Sub *s, int kind, char *body, size_t len)
{
    CURL *e = curl_easy_init();
    if (!e) {
        free(body);
        s->due = mono_ms() + BACKOFF_FIRST_MS;
        return;
    }
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/fhir+json");
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < s->cfg.nheaders; i++)
        hl = curl_slist_append(hl, s->cfg.headers[i]);
    s->errbuf[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, s->cfg.endpoint);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ror-abonnements/1");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     s->cfg.timeout_ms < CONNECT_TIMEOUT_MS ? s->cfg.timeout_ms
                                                            : (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    s->easy = e;
    s->hdrs = hl;
    s->body = body;
    s->kind = kind;
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        transfer_drop(h, s);
        s->due = mono_ms() + BACKOFF_FIRST_MS;
    }
}

/* ------------------------------------------------------------------ saving */

typedef struct SubSave {
    SubscriptionState st;
    const char *id;
    const char *status; /* the status the resource should have now (NULL: leave it) */
    int64_t version;    /* out: the version written for it (0: none) */
} SubSave;

static int txn_save(StoreTxn *t, void *ctx, Diag *d)
{
    SubSave *v = ctx;
    int rc = store_txn_subscription_state_set(t, &v->st, d);
    if (rc != 0 || !v->status)
        return rc;
    Arena a;
    arena_init(&a);
    StoredResource cur;
    json_t *res = NULL;
    rc = store_txn_read(t, &a, "Subscription", v->id, &cur, d);
    if (rc == 0)
        rc = json_parse(cur.body, cur.len, &res, d);
    const char *was = rc == 0 ? json_str(res, "status") : NULL;
    /* off is the client's word: never overridden */
    if (was && strcmp(was, "off") != 0 && strcmp(was, v->status) != 0) {
        json_object_set_new(res, "status", json_string(v->status));
        StorePut p = {.type = "Subscription",
                      .id = v->id,
                      .res = res,
                      .if_match = cur.version,
                      .author = HUB_AUTHOR};
        StoredResource out;
        rc = store_txn_put(t, &a, &p, &out, d);
        if (rc == 0)
            v->version = out.version;
    }
    json_decref(res);
    arena_cleanup(&a);
    return rc;
}

/* Save s's state (and the resource status `status`, NULL: unchanged). false when it could not
 * be saved (s stays as it was saved before). */
static bool sub_save(SubscriptionHub *h, Sub *s, const SubscriptionState *st, const char *status)
{
    SubSave v = {.st = *st, .id = s->id, .status = status};
    Diag d = {{0}, {0}};
    int rc = store_write(h->store, txn_save, &v, &d);
    if (rc != 0) {
        if (rc != ERR_NOT_FOUND && rc != ERR_UNAVAILABLE)
            log_error("abonnement %s : état non enregistré : %s", s->id, d.msg);
        return false;
    }
    if (v.version) {
        s->own_version = v.version;
        snprintf(s->cfg.status, sizeof s->cfg.status, "%s", status);
    }
    return true;
}

/* A notification's fate is known: on success move on (durably), else retry later. */
static void transfer_done(SubscriptionHub *h, Sub *s, CURLcode cc)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    int kind = s->kind;
    int64_t last = s->batch_last, events = s->batch_events;
    char err[CURL_ERROR_SIZE + 64];
    if (cc != CURLE_OK)
        snprintf(err, sizeof err, "échec de l'envoi : %s",
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
    else
        snprintf(err, sizeof err, "le destinataire a répondu %ld", code);
    transfer_drop(h, s);
    bool ok = cc == CURLE_OK && code >= 200 && code < 300;
    int64_t now = mono_ms();
    SubscriptionState st = s->st;
    if (ok) {
        bool changed = st.failures > 0 || kind != KIND_HEARTBEAT;
        st.failures = 0;
        st.delivered_at = time_now_ms();
        if (kind == KIND_HANDSHAKE)
            st.handshake = true;
        if (kind == KIND_EVENTS) {
            st.last_event = last;
            st.events += events;
        }
        const char *status = strcmp(s->cfg.status, "active") != 0 ? "active" : NULL;
        if (changed && !sub_save(h, s, &st, status)) {
            /* deleted, stopping, or the store failing: what it holds stands; not at once again */
            s->due = now + BACKOFF_MAX_MS / 4;
            return;
        }
        s->st.failures = 0;
        s->st.delivered_at = st.delivered_at;
        s->st.handshake = st.handshake;
        s->st.last_event = st.last_event;
        s->st.events = st.events;
        if (s->scan < st.last_event)
            s->scan = st.last_event;
        s->last_sent = now;
        s->due = 0;
        s->more = true;
        return;
    }
    st.failures++;
    st.error_at = time_now_ms();
    st.last_error = err;
    log_warn("abonnement %s : %s (essai %lld)", s->id, err, (long long)st.failures);
    const char *status = strcmp(s->cfg.status, "error") != 0 ? "error" : NULL;
    int64_t wait = BACKOFF_FIRST_MS;
    for (int64_t i = 1; i < st.failures && wait < BACKOFF_MAX_MS; i++)
        wait *= 2;
    s->due = now + (wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS);
    s->more = true;
    if (sub_save(h, s, &st, status)) {
        s->st.failures = st.failures;
        s->st.error_at = st.error_at;
        state_set_error(&s->st, err);
    } else {
        s->st.failures = st.failures; /* still back off */
    }
}

/* The next notification of s, started if there is one. Returns the ms until s wants another
 * look without a commit (a retry, a heartbeat), or 0 when it has more to send now. */
static int64_t sub_step(SubscriptionHub *h, Sub *s, uint64_t gen, int64_t now)
{
    if (s->easy || strcmp(s->cfg.status, "off") == 0 || (s->cfg.end && time_now_ms() >= s->cfg.end))
        return IDLE_WAIT_MS;
    if (now < s->due)
        return s->due - now;
    if (!s->st.handshake || strcmp(s->cfg.status, "requested") == 0) {
        size_t len = 0;
        char *body = notification_build(h, s, KIND_HANDSHAKE, NULL, 0, 0, &len);
        if (body)
            transfer_start(h, s, KIND_HANDSHAKE, body, len);
        return IDLE_WAIT_MS;
    }
    if (s->scanned_gen != gen || s->more) {
        s->scanned_gen = gen;
        s->more = false;
        Arena a;
        arena_init(&a);
        json_t *cache = json_object();
        CapacityEvent *batch = arena_alloc(&a, s->cfg.max_count * sizeof *batch);
        size_t n = 0;
        int64_t from = s->scan;
        bool end = false, failed = false;
        for (int page = 0; page < SCAN_PAGES && n < s->cfg.max_count && !end; page++) {
            StoreCapacityQuery q = {.after_id = from, .max = SCAN_PAGE};
            CapacityEvent *ev = NULL;
            size_t got = 0;
            Diag d = {{0}, {0}};
            if (store_capacity_events(h->store, &a, &q, &ev, &got, &d) != 0) {
                log_error("abonnement %s : lecture des événements : %s", s->id, d.msg);
                s->due = now + BACKOFF_FIRST_MS;
                s->more = true;
                failed = end = true;
                break;
            }
            end = got < q.max;
            for (size_t i = 0; i < got && n < s->cfg.max_count; i++) {
                from = ev[i].id;
                if (wanted(h, &s->cfg, cache, &ev[i]))
                    batch[n++] = ev[i];
            }
            if (n == s->cfg.max_count)
                end = false; /* (unread events may remain) */
        }
        json_decref(cache);
        int64_t wait = IDLE_WAIT_MS;
        if (n) {
            size_t len = 0;
            char *body = notification_build(h, s, KIND_EVENTS, batch, n, s->st.events + 1, &len);
            s->batch_last = from;
            s->batch_events = (int64_t)n;
            if (body) {
                transfer_start(h, s, KIND_EVENTS, body, len);
            } else { /* (too large to build: logged) */
                s->due = now + BACKOFF_MAX_MS;
                s->more = true;
            }
        } else {
            s->scan = from; /* nothing wanted up to here */
            if (!end && !failed) {
                s->more = true; /* a long run of unwanted events: the others' turn first */
                wait = 0;
            }
        }
        arena_cleanup(&a);
        if (s->easy || wait == 0)
            return wait;
    }
    if (s->cfg.heartbeat_ms > 0) {
        if (now - s->last_sent >= s->cfg.heartbeat_ms) {
            size_t len = 0;
            char *body = notification_build(h, s, KIND_HEARTBEAT, NULL, 0, 0, &len);
            if (body)
                transfer_start(h, s, KIND_HEARTBEAT, body, len);
            return IDLE_WAIT_MS;
        }
        return s->last_sent + s->cfg.heartbeat_ms - now;
    }
    return IDLE_WAIT_MS;
}

static void *hub_main(void *arg)
{
    SubscriptionHub *h = arg;
    int64_t stop_at = 0;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool stop = h->stop, reload = h->reload;
        uint64_t gen = h->gen;
        h->reload = false;
        pthread_mutex_unlock(&h->lock);
        int64_t now = mono_ms();
        size_t inflight = 0;
        for (size_t i = 0; i < h->nsubs; i++)
            inflight += h->subs[i]->easy != NULL;
        if (stop) { /* let what is in flight finish, briefly: saved, it is not sent twice */
            if (!stop_at)
                stop_at = now;
            if (!inflight || now - stop_at >= STOP_GRACE_MS)
                break;
        } else if (reload) {
            subs_reload(h);
        }
        int64_t wait = stop ? STOP_GRACE_MS - (now - stop_at) : IDLE_WAIT_MS;
        if (!h->events && wait > 1000)
            wait = 1000; /* nobody to wake us */
        for (size_t i = 0; !stop && i < h->nsubs; i++) {
            int64_t w = sub_step(h, h->subs[i], gen, now);
            if (w < wait)
                wait = w;
        }
        int still = 0;
        curl_multi_perform(h->multi, &still);
        CURLMsg *m;
        int left = 0;
        bool finished = false;
        while ((m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            transfer_done(h, (Sub *)priv, m->data.result);
            finished = true;
        }
        if (finished)
            continue; /* the next notifications may start at once */
        if (wait > 0)
            curl_multi_poll(h->multi, NULL, 0, (int)(wait < 1 ? 1 : wait), NULL);
    }
    for (size_t i = 0; i < h->nsubs; i++)
        sub_free(h, h->subs[i]);
    free(h->subs);
    h->subs = NULL;
    h->nsubs = 0;
    return NULL;
}

/* After each commit (writer thread): only note what changed and wake the delivery thread. */
static void on_commit(void *ctx, const EventChange *c, size_t n)
{
    SubscriptionHub *h = ctx;
    bool loc = false, sub = false;
    for (size_t i = 0; i < n; i++) {
        loc |= strcmp(c[i].type, "Location") == 0;
        sub |= strcmp(c[i].type, "Subscription") == 0;
    }
    if (!loc && !sub)
        return;
    pthread_mutex_lock(&h->lock);
    h->gen += loc;
    h->reload |= sub;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
}

/* ------------------------------------------------------------------ $status */

typedef struct StatusRow {
    const char *id;
    const char *status;
} StatusRow;

typedef struct StatusList {
    Arena *a;
    StatusRow *v;
    size_t n, cap;
    const char *const *ids; /* filters (NULL-terminated; NULL: any) */
    const char *const *statuses;
} StatusList;

static bool listed(const char *const *list, const char *v)
{
    if (!list || !*list)
        return true;
    for (; *list; list++)
        if (v && strcmp(*list, v) == 0)
            return true;
    return false;
}

static int status_row(void *ctx, const StoredResource *r)
{
    StatusList *l = ctx;
    json_t *res = NULL;
    if (json_parse(r->body, r->len, &res, NULL) != 0)
        return 0;
    const char *status = json_str(res, "status");
    if (listed(l->ids, r->id) && listed(l->statuses, status)) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            StatusRow *v = arena_alloc(l->a, cap * sizeof *v);
            if (l->n)
                memcpy(v, l->v, l->n * sizeof *v);
            l->v = v, l->cap = cap;
        }
        l->v[l->n++] =
            (StatusRow){arena_strdup(l->a, r->id), arena_strdup(l->a, status ? status : "")};
    }
    json_decref(res);
    return 0;
}

static void status_respond(HttpRequest *r, SubscriptionHub *h, const StatusRow *rows, size_t n)
{
    json_t *entries = json_array();
    for (size_t i = 0; i < n; i++) {
        SubscriptionState st;
        if (store_subscription_state(h->store, &r->arena, rows[i].id, &st, NULL) != 0)
            continue;
        char *ref =
            arena_printf(&r->arena, "%s%s/Subscription/%s", r->base_url, h->base, rows[i].id);
        json_t *p = status_params(ref, rows[i].status, "query-status", st.events,
                                  st.failures > 0 ? st.last_error : NULL);
        json_t *plist = json_object_get(p, "parameter");
        char ts[32];
        if (st.delivered_at) { /* (our additions: when the receiver last acknowledged) */
            time_format_instant(st.delivered_at, ts);
            json_array_append_new(
                plist, json_pack("{s:s,s:s}", "name", "last-delivery", "valueInstant", ts));
        }
        if (st.failures > 0)
            json_array_append_new(plist, json_pack("{s:s,s:I}", "name", "failed-attempts",
                                                   "valueInteger", (json_int_t)st.failures));
        json_array_append_new(entries,
                              json_pack("{s:s,s:o,s:{s:s}}", "fullUrl",
                                        arena_printf(&r->arena, "urn:uuid:%s", json_str(p, "id")),
                                        "resource", p, "search", "mode", "match"));
    }
    char id[37], ts[32];
    uuid_v4(id);
    time_format_instant(time_now_ms(), ts);
    json_t *b = json_pack("{s:s,s:s,s:{s:s},s:s,s:I,s:o}", "resourceType", "Bundle", "id", id,
                          "meta", "lastUpdated", ts, "type", "searchset", "total",
                          (json_int_t)json_array_size(entries), "entry", entries);
    size_t len = 0;
    char *text = json_dump_compact(b, &len);
    json_decref(b);
    http_respond(r, 200, FHIR_JSON, text, len);
}

/* GET [base]/Subscription/{id}/$status */
static void h_status_one(HttpRequest *r, void *ctx)
{
    if (!api_type_readable_or_respond(r, "Subscription"))
        return;
    SubscriptionHub *h = ctx;
    const char *id = r->params[0];
    StoredResource s;
    Diag d = {{0}, {0}};
    int rc = fhir_id_valid(id, strlen(id))
                 ? store_read(h->store, &r->arena, "Subscription", id, &s, &d)
                 : diag_set(&d, ERR_NOT_FOUND, "abonnement inconnu : %s", id);
    json_t *res = NULL;
    if (rc == 0)
        rc = json_parse(s.body, s.len, &res, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    const char *status = json_str(res, "status");
    StatusRow row = {id, arena_strdup(&r->arena, status ? status : "")};
    json_decref(res);
    status_respond(r, h, &row, 1);
}

/* GET [base]/Subscription/$status[?id=a,b&status=active,error] */
static void h_status_all(HttpRequest *r, void *ctx)
{
    if (!api_type_readable_or_respond(r, "Subscription"))
        return;
    SubscriptionHub *h = ctx;
    const char *ids[33] = {NULL}, *statuses[9] = {NULL};
    size_t nids = 0, nst = 0;
    for (size_t i = 0; i < r->nquery; i++) {
        bool is_id = strcmp(r->query[i].name, "id") == 0;
        if (!is_id && strcmp(r->query[i].name, "status") != 0) {
            Diag d = {{0}, {0}};
            diag_set(&d, ERR_INVALID, "paramètre inconnu : %s (id, status)", r->query[i].name);
            http_fail(r, ERR_INVALID, &d);
            return;
        }
        char *v = arena_strdup(&r->arena, r->query[i].value ? r->query[i].value : ""), *save;
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (is_id && nids < 32)
                ids[nids++] = t;
            else if (!is_id && nst < 8)
                statuses[nst++] = t;
        }
    }
    StatusList l = {.a = &r->arena, .ids = nids ? ids : NULL, .statuses = nst ? statuses : NULL};
    Diag d = {{0}, {0}};
    int rc = store_each(h->store, "Subscription", status_row, &l, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    status_respond(r, h, l.v, l.n);
}

/* ------------------------------------------------------------------ life */

SubscriptionHub *subscription_api_routes(HttpServer *s, Store *store, Events *events,
                                         const char *base)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SubscriptionHub *h = xcalloc(1, sizeof *h);
    h->store = store;
    h->events = events;
    h->multi = curl_multi_init();
    h->reload = true; /* the Subscriptions stored before this start are resumed */
    pthread_mutex_init(&h->lock, NULL);
    if (events)
        h->events_id = events_subscribe(events, on_commit, h);
    h->base = xstrdup(base);
    char p[256];
    snprintf(p, sizeof p, "%s/Subscription/{id}/$status", base);
    http_route(s, HTTP_GET, p, h_status_one, h);
    snprintf(p, sizeof p, "%s/Subscription/$status", base);
    http_route(s, HTTP_GET, p, h_status_all, h);
    if (pthread_create(&h->thread, NULL, hub_main, h) == 0)
        h->running = true;
    else
        log_error("abonnements : fil de livraison non démarré");
    return h;
}

void subscription_hub_stop(SubscriptionHub *h)
{
    if (!h)
        return;
    if (h->events_id) { /* no callback runs past this (events holds its lock while calling) */
        events_unsubscribe(h->events, h->events_id);
        h->events_id = 0;
    }
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
    if (h->running) {
        pthread_join(h->thread, NULL);
        h->running = false;
    }
}

void subscription_hub_free(SubscriptionHub *h)
{
    if (!h)
        return;
    subscription_hub_stop(h);
    curl_multi_cleanup(h->multi);
    pthread_mutex_destroy(&h->lock);
    free(h->base);
    free(h);
    curl_global_cleanup();
}
