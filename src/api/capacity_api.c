/* api capacity: bed and place indicators of a Location now and at any past instant, and the
 * immutable events of their changes (time series, and a feed resumable by event id).
 *
 *   GET /capacity/Location/{id}[?_at=dateTime]   indicators (now: from the Location; _at: from
 *                                                 the events, as they were at that instant)
 *   GET /capacity/Location/{id}/events[?indicator=&_since=&_until=&_count=]   time series
 *   GET /capacity/events[?after=<event id>&_count=]   every change after an event, in order
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "capacity/capacity.h"
#include "json/json.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define EVENTS_MAX 1000

void capacity_api_routes(HttpServer *s, Store *store);

__attribute__((format(printf, 3, 4))) static void fail(HttpRequest *r, int err, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    Diag d = {{0}, {0}};
    vsnprintf(d.msg, sizeof d.msg, fmt, ap);
    va_end(ap);
    http_fail(r, err, &d);
}

static void respond_json(HttpRequest *r, json_t *v)
{
    size_t len = 0;
    char *text = json_dump_compact(v, &len);
    json_decref(v);
    http_respond(r, 200, JSON_TYPE, text, len);
}

static const char *query(HttpRequest *r, const char *name)
{
    for (size_t i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].name, name) == 0)
            return r->query[i].value;
    return NULL;
}

/* A FHIR date/dateTime: the last millisecond it covers (hi) or its first (lo). */
static bool instant_or_fail(HttpRequest *r, const char *name, bool end, int64_t *out)
{
    const char *v = query(r, name);
    if (!v)
        return true;
    int64_t lo, hi;
    if (time_parse_range(v, strlen(v), &lo, &hi) != 0) {
        fail(r, ERR_INVALID, "%s : date FHIR attendue (AAAA-MM-JJ ou AAAA-MM-JJThh:mm:ss+zz:zz)",
             name);
        return false;
    }
    *out = end ? hi : lo;
    return true;
}

static bool count_or_fail(HttpRequest *r, const char *name, size_t *out)
{
    const char *v = query(r, name);
    if (!v)
        return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > EVENTS_MAX) {
        Diag d = {{0}, {0}};
        snprintf(d.msg, sizeof d.msg, "%s doit être un entier de 1 à %d", name, EVENTS_MAX);
        http_fail(r, ERR_INVALID, &d);
        return false;
    }
    *out = (size_t)n;
    return true;
}

static bool unknown_param_or_fail(HttpRequest *r, const char *const *allowed)
{
    for (size_t i = 0; i < r->nquery; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(r->query[i].name, *a) == 0;
        if (!ok) {
            fail(r, ERR_INVALID, "paramètre inconnu : %s", r->query[i].name);
            return false;
        }
    }
    return true;
}

static void h_location(HttpRequest *r, void *ctx)
{
    Store *s = ctx;
    static const char *const allowed[] = {"_at", NULL};
    const char *id = r->params[0];
    int64_t at = 0;
    if (!unknown_param_or_fail(r, allowed) || !instant_or_fail(r, "_at", true, &at))
        return;
    Diag d = {{0}, {0}};
    StoredResource loc;
    int rc = store_read(s, &r->arena, "Location", id, &loc, &d);
    if (rc != 0 && !(rc == ERR_GONE && at)) {
        http_fail(r, rc, &d);
        return;
    }
    json_t *indicators = NULL;
    if (at) { /* as it was then: folded from the events */
        rc = capacity_state_at(s, id, at, &indicators, &d);
        if (rc == ERR_NOT_FOUND) {
            indicators = json_array();
            rc = 0;
        }
    } else { /* now: the current version is the truth */
        json_t *res = NULL;
        CapacityIndicator *v = NULL;
        size_t n = 0;
        rc = json_parse(loc.body, loc.len, &res, &d);
        if (rc == 0)
            rc = capacity_indicators(res, &v, &n, &d);
        if (rc == 0) {
            indicators = json_array();
            for (size_t i = 0; i < n; i++) {
                CapacityEvent e = {.indicator = v[i].key,
                                   .has_after = v[i].has_count,
                                   .after = v[i].count,
                                   .source = v[i].source,
                                   .update_date = v[i].update_date,
                                   .comment = v[i].comment};
                json_t *ev = capacity_event_json(&e);
                json_t *o = json_pack("{s:s,s:O,s:O}", "indicator", v[i].key, "dimensions",
                                      json_object_get(ev, "dimensions"), "nbCapacity",
                                      json_object_get(ev, "after"));
                const char *keys[] = {"source", "updateDate", "comment"};
                for (size_t k = 0; k < 3; k++)
                    if (json_object_get(ev, keys[k]))
                        json_object_set(o, keys[k], json_object_get(ev, keys[k]));
                json_decref(ev);
                json_array_append_new(indicators, o);
            }
        }
        free(v);
        json_decref(res);
    }
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    char ts[32];
    json_t *out = json_pack("{s:s,s:o}", "location", id, "indicators", indicators);
    if (at) {
        time_format_instant(at, ts);
        json_object_set_new(out, "at", json_string(ts));
    } else {
        time_format_instant(loc.last_updated, ts);
        json_object_set_new(out, "version", json_integer(loc.version));
        json_object_set_new(out, "lastUpdated", json_string(ts));
    }
    respond_json(r, out);
}

static void events_respond(HttpRequest *r, Store *s, StoreCapacityQuery *q)
{
    Diag d = {{0}, {0}};
    CapacityEvent *ev = NULL;
    size_t n = 0;
    int rc = store_capacity_events(s, &r->arena, q, &ev, &n, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, capacity_event_json(&ev[i]));
    json_t *out = json_pack("{s:o}", "events", arr);
    if (n == q->max) /* there may be more: the next page starts after the last id */
        json_object_set_new(out, "next", json_integer(ev[n - 1].id));
    respond_json(r, out);
}

static void h_location_events(HttpRequest *r, void *ctx)
{
    static const char *const allowed[] = {"indicator", "_since", "_until", "_count", "after", NULL};
    StoreCapacityQuery q = {
        .location_id = r->params[0], .indicator = query(r, "indicator"), .max = 200};
    const char *after = query(r, "after");
    if (!unknown_param_or_fail(r, allowed) || !instant_or_fail(r, "_since", false, &q.from) ||
        !instant_or_fail(r, "_until", true, &q.to) || !count_or_fail(r, "_count", &q.max))
        return;
    if (after) {
        char *end;
        q.after_id = strtoll(after, &end, 10);
        if (*end || q.after_id < 0) {
            fail(r, ERR_INVALID, "after : identifiant d'événement attendu, pas « %s »", after);
            return;
        }
    }
    events_respond(r, ctx, &q);
}

static void h_events(HttpRequest *r, void *ctx)
{
    static const char *const allowed[] = {"after", "_count", NULL};
    StoreCapacityQuery q = {.max = 200};
    const char *after = query(r, "after");
    if (!unknown_param_or_fail(r, allowed) || !count_or_fail(r, "_count", &q.max))
        return;
    if (after) {
        char *end;
        q.after_id = strtoll(after, &end, 10);
        if (*end || q.after_id < 0) {
            fail(r, ERR_INVALID, "after : identifiant d'événement attendu, pas « %s »", after);
            return;
        }
    }
    events_respond(r, ctx, &q);
}

void capacity_api_routes(HttpServer *s, Store *store)
{
    http_route(s, HTTP_GET, "/capacity/Location/{id}", h_location, store);
    http_route(s, HTTP_GET, "/capacity/Location/{id}/events", h_location_events, store);
    http_route(s, HTTP_GET, "/capacity/events", h_events, store);
}
