/* api capacity: bed and place indicators of a Location now and at any past instant, and the
 * immutable events of their changes (time series, and a feed resumable by event id).
 *
 *   GET /capacity/Location/{id}[?_at=dateTime]   indicators (now: from the Location; _at: from
 *                                                 the events, as they were at that instant)
 *   GET /capacity/Location/{id}/events[?indicator=&_since=&_until=&_count=]   time series
 *   GET /capacity/events[?after=<event id>&_count=]   every change after an event, in order
 *   GET /capacity/stale   indicators older than their expiry (data/capacity.json), oldest
 *       first: the units to remind. Everywhere, a stale figure is shown as unknown
 *       (nbCapacity null, lastKnown kept), never as available.
 *   GET /capacity/aggregate[?departement=]   current counts summed by département and
 *       indicator (fresh figures only; stale units counted apart), and over all départements.
 *   POST /capacity/Location/{id}   the mobile form: several indicators of one unit in ONE new
 *       version (all or nothing): {"source": "01", "version": 3 (optional, else If-Match),
 *       "indicators": [{"capacityType": "01", "capacityStatus": "02", "temporalityCapacity":
 *       "01", "temporaryAssignement": "01", ..., "nbCapacity": 4, "comment": "..."}]}; each is
 *       matched by its dimensions (added when the unit does not have it yet) and stamped with
 *       the time and source of the declaration.
 *   GET|POST /capacity/crisis, POST /capacity/crisis/{id}/close   crises opened and closed
 *       by the ARS (type TRE_R336, territory "national" or départements), all recorded; extra
 *       beds (status 06) and crisis indicators are accepted only during an open crisis
 *       covering the unit (checked by the capacity module on every write).
 *   GET /capacity/stream[?location=&organization=&departement=]   Server-Sent Events: each
 *       committed change as `id: <event id>` / `event: capacity` / `data: <JSON>`; a client
 *       that reconnects with Last-Event-ID (or ?after=) gets every change since, none twice.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "capacity/capacity.h"
#include "events/events.h"
#include "fhir/fhir.h"
#include "json/json.h"
#include "orient/orient.h"
#include "terminology/terminology.h"

#define JSON_TYPE "application/json; charset=utf-8"

#define MEASURE_URL "https://interop.esante.gouv.fr/ig/fhir/ror/Measure/ror-capacite-lits"
#define MEASURE_POP "http://terminology.hl7.org/CodeSystem/measure-population"
#define UNIT_TYPE_SYSTEM "urn:ror:capacity-unit-type"

/* One SSE frame, built once for every stream: the event's text with what filters need. */
typedef struct Frame {
    int64_t id;
    char *location, *organization, *departement;
    char *text; /* "id: …\nevent: capacity\ndata: {…}\n\n" */
    size_t len;
} Frame;
#define RING_MAX 4096

struct CapacityFeed {
    struct Orient *orient;
    Terminology *term;
    Store *store;
    const CapacityExpiry *expiry;
    pthread_mutex_t lock; /* the stream list */
    struct CapStream *streams;
    size_t nstreams, max_streams;
    pthread_mutex_t ring_lock; /* the recent frames, shared by every stream */
    Frame ring[RING_MAX];
    size_t ring_start, ring_n; /* oldest slot, count */
    int64_t ring_last;         /* the last event id read into the ring (0: none yet) */
    bool ring_primed;
};
#define EVENTS_MAX 1000

typedef struct CapacityFeed CapacityFeed;
CapacityFeed *capacity_api_routes(HttpServer *s, Store *store, Events *events,
                                  const CapacityExpiry *expiry, struct Orient *orient,
                                  Terminology *term, size_t max_streams);
#define NOS_TRE "https://mos.esante.gouv.fr/NOS/"
void capacity_feed_free(CapacityFeed *f);

/* A FHIR date/dateTime: the last millisecond it covers (hi) or its first (lo). */
static bool instant_or_fail(HttpRequest *r, const char *name, bool end, int64_t *out)
{
    const char *v = api_query(r, name);
    if (!v)
        return true;
    int64_t lo, hi;
    if (time_parse_range(v, strlen(v), &lo, &hi) != 0) {
        api_fail(r, ERR_INVALID,
                 "%s : date FHIR attendue (AAAA-MM-JJ ou AAAA-MM-JJThh:mm:ss+zz:zz)", name);
        return false;
    }
    *out = end ? hi : lo;
    return true;
}

static bool count_or_fail(HttpRequest *r, const char *name, size_t *out)
{
    const char *v = api_query(r, name);
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

/* An event id (`after`, Last-Event-ID): a non-negative integer. NULL value: 0. */
static bool event_id_or_fail(HttpRequest *r, const char *name, const char *value, int64_t *out)
{
    *out = 0;
    if (!value)
        return true;
    char *end;
    long long v = strtoll(value, &end, 10);
    if (!*value || *end || v < 0) {
        api_fail(r, ERR_INVALID, "%s : identifiant d'événement attendu, pas « %s »", name, value);
        return false;
    }
    *out = v;
    return true;
}

static bool unknown_param_or_fail(HttpRequest *r, const char *const *allowed)
{
    for (size_t i = 0; i < r->nquery; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(r->query[i].name, *a) == 0;
        if (!ok) {
            api_fail(r, ERR_INVALID, "paramètre inconnu : %s", r->query[i].name);
            return false;
        }
    }
    return true;
}

/* Mark an indicator stale at `now` (o: {indicator, nbCapacity, updateDate?, changedAt?}):
 * a stale figure is shown as unknown — nbCapacity null, the last known one kept apart. */
static void mark_freshness(const CapacityExpiry *x, json_t *o, int64_t changed_at, int64_t now)
{
    const char *key = json_string_value(json_object_get(o, "indicator"));
    int64_t declared =
        capacity_declared_at(json_string_value(json_object_get(o, "updateDate")), changed_at);
    double hours = capacity_expiry_hours(x, key);
    double age = (double)(now - declared) / 3.6e6;
    bool stale = age > hours;
    json_object_set_new(o, "ageHours", json_real((double)(int64_t)(age * 10) / 10));
    json_object_set_new(o, "expiryHours", json_real(hours));
    json_object_set_new(o, "stale", json_boolean(stale));
    if (stale) {
        json_object_set(o, "lastKnown", json_object_get(o, "nbCapacity"));
        json_object_set_new(o, "nbCapacity", json_null());
    }
}

static json_t *place_lookup(CapacityFeed *f, json_t *cache, const char *loc, bool unit_type);

static int64_t instant_of(json_t *o, const char *key, int64_t dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    int64_t lo, hi;
    return v && time_parse_range(v, strlen(v), &lo, &hi) == 0 ? lo : dflt;
}

static void h_location(HttpRequest *r, void *ctx)
{
    CapacityFeed *f = ctx;
    if (!api_capacity_unit_reader_or_respond(r, f->store, r->params[0]))
        return;
    Store *s = f->store;
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
    int64_t now = at ? at : time_now_ms();
    size_t k;
    json_t *ind;
    json_array_foreach(indicators, k, ind)
        mark_freshness(f->expiry, ind, instant_of(ind, "changedAt", loc.last_updated), now);
    Crisis *crises = NULL;
    size_t nc = 0;
    if (!at && store_crises(s, &r->arena, &crises, &nc, NULL) == 0) {
        /* extra beds and crisis indicators of a closed crisis: history, not current capacity */
        json_t *cache = json_object();
        const char *dep = json_string_value(json_array_get(place_lookup(f, cache, id, false), 1));
        json_array_foreach(indicators, k, ind)
        {
            if (capacity_indicator_live(json_string_value(json_object_get(ind, "indicator")), dep,
                                        crises, nc))
                continue;
            json_object_set_new(ind, "crisisClosed", json_true());
            if (!json_is_null(json_object_get(ind, "nbCapacity")))
                json_object_set(ind, "lastKnown", json_object_get(ind, "nbCapacity"));
            json_object_set_new(ind, "nbCapacity", json_null());
        }
        json_decref(cache);
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
    api_respond_json(r, out);
}

/* GET /capacity/stale: every current indicator older than its expiry, oldest first. */
static void h_stale(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    CapacityFeed *f = ctx;
    static const char *const allowed[] = {NULL};
    if (!unknown_param_or_fail(r, allowed))
        return;
    Diag d = {{0}, {0}};
    CapacityEvent *ev = NULL;
    size_t n = 0;
    int rc = store_capacity_current(f->store, &r->arena, &ev, &n, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    int64_t now = time_now_ms();
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = capacity_event_json(&ev[i]);
        json_t *o = json_pack(
            "{s:O,s:O,s:O,s:O,s:O,s:O}", "location", json_object_get(e, "location"), "indicator",
            json_object_get(e, "indicator"), "dimensions", json_object_get(e, "dimensions"),
            "nbCapacity", json_object_get(e, "after"), "changedAt", json_object_get(e, "at"),
            "author", json_object_get(e, "author"));
        if (json_object_get(e, "updateDate"))
            json_object_set(o, "updateDate", json_object_get(e, "updateDate"));
        json_decref(e);
        mark_freshness(f->expiry, o, ev[i].at, now);
        if (json_is_true(json_object_get(o, "stale")))
            json_array_append_new(list, o);
        else
            json_decref(o);
    }
    /* oldest first: the units to call first */
    size_t cnt = json_array_size(list);
    for (size_t i = 1; i < cnt; i++)
        for (size_t j = i; j > 0; j--) {
            double a = json_real_value(json_object_get(json_array_get(list, j - 1), "ageHours"));
            double b = json_real_value(json_object_get(json_array_get(list, j), "ageHours"));
            if (a >= b)
                break;
            json_t *tmp = json_incref(json_array_get(list, j));
            json_array_set(list, j, json_array_get(list, j - 1));
            json_array_set_new(list, j - 1, tmp);
        }
    char ts[32];
    time_format_instant(now, ts);
    api_respond_json(r,
                     json_pack("{s:s,s:I,s:o}", "at", ts, "total", (json_int_t)cnt, "stale", list));
}

/* Where a Location is and what it is, read once into `cache`: [organization id, département,
 * région (from the communes table; "" when unknown), unit type ("" when none or not asked)]. */
static json_t *place_lookup(CapacityFeed *f, json_t *cache, const char *loc, bool unit_type)
{
    json_t *p = json_object_get(cache, loc);
    if (p)
        return p;
    Arena a;
    arena_init(&a);
    const char *org, *insee, *region = "", *unit = "";
    char dep[4];
    capacity_location_where(f->store, &a, loc, &org, &insee, dep);
    TermCommune c;
    if (f->term && insee && terminology_commune(f->term, &a, insee, &c) == 0 && c.region)
        region = c.region;
    /* the unit type, from the activités opérationnelles of the offers delivered there */
    const char *codes[16];
    size_t nc = unit_type && f->orient
                    ? orient_site_offer_codes(f->orient, &a, loc, "specialty", codes, 16)
                    : 0;
    for (size_t i = 0; i < nc && !*unit; i++) {
        const char *bar = strrchr(codes[i], '|');
        const char *t = capacity_unit_type(f->expiry, bar ? bar + 1 : codes[i], NULL);
        if (t && bar && strstr(codes[i], "TRE_R211"))
            unit = t;
    }
    p = json_pack("[s,s,s,s]", org, dep, region, unit);
    arena_cleanup(&a);
    if (json_object_size(cache) > 10000)
        json_object_clear(cache);
    json_object_set_new(cache, loc, p);
    return p;
}

enum { LEVEL_DEPARTEMENT, LEVEL_REGION, LEVEL_NATIONAL };

static const char *const dimension_tre[CAPACITY_DIMENSIONS]; /* below, with the mobile form */

/* The current figures summed by territory (at `level`), unit type and indicator, over fresh
 * live indicators; stale ones are counted apart (their figures are unknown); extra-bed and
 * crisis indicators whose crisis is closed are left out. Also by département and indicator
 * (`byDep`) and over everything (`total`). Filters: département, région, unit type (NULL: all).
 * Returns the groups as a JSON array; ERR_* with the reason in d. */
typedef struct AggFilter {
    int level;
    const char *dep, *region, *unit;
} AggFilter;

static void agg_add(json_t *map, const char *k, const CapacityEvent *e, bool stale,
                    const char *const *fields, const char *const *values)
{
    json_t *g = json_object_get(map, k);
    if (!g) {
        json_t *ej = capacity_event_json(e);
        g = json_pack("{s:s,s:O,s:I,s:I,s:I}", "indicator", e->indicator, "dimensions",
                      json_object_get(ej, "dimensions"), "nbCapacity", (json_int_t)0, "units",
                      (json_int_t)0, "staleUnits", (json_int_t)0);
        for (size_t i = 0; fields[i]; i++)
            json_object_set_new(g, fields[i], json_string(values[i]));
        json_decref(ej);
        json_object_set_new(map, k, g);
    }
    const char *field = stale ? "staleUnits" : "units";
    json_object_set_new(g, field, json_integer(json_integer_value(json_object_get(g, field)) + 1));
    if (!stale)
        json_object_set_new(
            g, "nbCapacity",
            json_integer(json_integer_value(json_object_get(g, "nbCapacity")) + e->after));
}

static json_t *values_of(json_t *map)
{
    json_t *list = json_array(), *v;
    const char *k;
    json_object_foreach(map, k, v) json_array_append(list, v);
    json_decref(map);
    return list;
}

static int aggregate(CapacityFeed *f, Arena *a, const AggFilter *flt, int64_t now, json_t **groups,
                     json_t **by_dep, json_t **total, Diag *d)
{
    CapacityEvent *ev = NULL;
    Crisis *crises = NULL;
    size_t n = 0, nc = 0;
    int rc = store_capacity_current(f->store, a, &ev, &n, d);
    if (rc == 0)
        rc = store_crises(f->store, a, &crises, &nc, d);
    if (rc != 0)
        return rc;
    json_t *places = json_object(), *gmap = json_object(), *dmap = json_object(),
           *tmap = json_object();
    static const char *const level_names[] = {"departement", "region", "national"};
    for (size_t i = 0; i < n; i++) {
        json_t *pl = place_lookup(f, places, ev[i].location_id, true);
        const char *dep = json_string_value(json_array_get(pl, 1));
        const char *reg = json_string_value(json_array_get(pl, 2));
        const char *unit = json_string_value(json_array_get(pl, 3));
        if ((flt->dep && strcmp(dep, flt->dep) != 0) ||
            (flt->region && strcmp(reg, flt->region) != 0) ||
            (flt->unit && strcmp(unit, flt->unit) != 0) ||
            !capacity_indicator_live(ev[i].indicator, dep, crises, nc))
            continue;
        int64_t declared = capacity_declared_at(ev[i].update_date, ev[i].at);
        bool stale =
            (double)(now - declared) / 3.6e6 > capacity_expiry_hours(f->expiry, ev[i].indicator);
        const char *territory = flt->level == LEVEL_DEPARTEMENT ? dep
                                : flt->level == LEVEL_REGION    ? reg
                                                                : "national";
        char key[CAPACITY_KEY_MAX + 64];
        snprintf(key, sizeof key, "%s/%s/%s", territory, unit, ev[i].indicator);
        const char *gf[] = {"level", "territory", "unitType", NULL};
        const char *gv[] = {level_names[flt->level], territory, unit};
        agg_add(gmap, key, &ev[i], stale, gf, gv);
        snprintf(key, sizeof key, "%s/%s", dep, ev[i].indicator);
        const char *df[] = {"departement", NULL};
        agg_add(dmap, key, &ev[i], stale, df, &dep);
        const char *nf[] = {NULL};
        agg_add(tmap, ev[i].indicator, &ev[i], stale, nf, NULL);
    }
    json_decref(places);
    *groups = values_of(gmap);
    *by_dep = values_of(dmap);
    *total = values_of(tmap);
    return 0;
}

static bool agg_filter_or_fail(HttpRequest *r, CapacityFeed *f, AggFilter *flt)
{
    static const char *const allowed[] = {"departement", "region", "level", "unitType", NULL};
    if (!unknown_param_or_fail(r, allowed))
        return false;
    memset(flt, 0, sizeof *flt);
    flt->dep = api_query(r, "departement");
    flt->region = api_query(r, "region");
    flt->unit = api_query(r, "unitType");
    const char *level = api_query(r, "level");
    if (!level || strcmp(level, "departement") == 0)
        flt->level = LEVEL_DEPARTEMENT;
    else if (strcmp(level, "region") == 0)
        flt->level = LEVEL_REGION;
    else if (strcmp(level, "national") == 0)
        flt->level = LEVEL_NATIONAL;
    else {
        api_fail(r, ERR_INVALID, "%s", "level : departement, region ou national");
        return false;
    }
    if (flt->unit && *flt->unit && !capacity_unit_type_known(f->expiry, flt->unit)) {
        api_fail(r, ERR_INVALID, "unitType '%s' inconnu (voir unitTypes dans capacity.json)",
                 flt->unit);
        return false;
    }
    return true;
}

/* GET /capacity/aggregate[?level=departement|region|national&departement=&region=&unitType=]:
 * current counts summed by territory, unit type (réanimation, soins intensifs, surveillance
 * continue — from the activités of the offers at the unit) and indicator; also by département
 * and over everything, as before. */
static void h_aggregate(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    CapacityFeed *f = ctx;
    AggFilter flt;
    if (!agg_filter_or_fail(r, f, &flt))
        return;
    Diag d = {{0}, {0}};
    int64_t now = time_now_ms();
    json_t *groups, *by_dep, *total;
    int rc = aggregate(f, &r->arena, &flt, now, &groups, &by_dep, &total, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    char ts[32];
    time_format_instant(now, ts);
    api_respond_json(r, json_pack("{s:s,s:o,s:o,s:o}", "at", ts, "groups", groups, "byDepartement",
                                  by_dep, "total", total));
}

/* GET /capacity/MeasureReport[?same filters]: the aggregate as FHIR MeasureReports (the
 * guide's RORMeasureReport: identifier, date, group.code, group.measureScore), one per
 * territory, in a collection Bundle, for national aggregation. Each group is one (unit type,
 * indicator): its code carries the unit type and the indicator's dimension codes; its score
 * the sum of the fresh figures; its populations the units counted and the stale ones. */
static void h_measure_report(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    CapacityFeed *f = ctx;
    AggFilter flt;
    if (!agg_filter_or_fail(r, f, &flt))
        return;
    Diag d = {{0}, {0}};
    int64_t now = time_now_ms();
    json_t *groups, *by_dep, *total;
    int rc = aggregate(f, &r->arena, &flt, now, &groups, &by_dep, &total, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    json_decref(by_dep);
    json_decref(total);
    char ts[32];
    time_format_instant(now, ts);
    json_t *reports = json_object(), *g;
    size_t i;
    json_array_foreach(groups, i, g)
    {
        const char *territory = json_string_value(json_object_get(g, "territory"));
        const char *level = json_string_value(json_object_get(g, "level"));
        json_t *mr = json_object_get(reports, territory);
        if (!mr) {
            char *idv = arena_printf(&r->arena, "%s-%s-%lld", level, territory, (long long)now);
            mr = json_pack(
                "{s:s,s:{s:[s]},s:[{s:s,s:s}],s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:{s:s,s:s},s:s},"
                "s:[]}",
                "resourceType", "MeasureReport", "meta", "profile",
                "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-measurereport",
                "identifier", "system", "urn:ror:capacity-report", "value", idv, "status",
                "complete", "type", "summary", "measure", MEASURE_URL, "date", ts, "period",
                "start", ts, "end", ts, "subject", "identifier", "system",
                strcmp(level, "region") == 0 ? "urn:ror:region-insee" : "urn:ror:departement-insee",
                "value", territory, "display", arena_printf(&r->arena, "%s %s", level, territory),
                "group");
            if (strcmp(level, "national") == 0)
                json_object_del(mr, "subject");
            json_object_set_new(reports, territory, mr);
        }
        json_t *code = json_pack("{s:[]}", "coding"), *codings = json_object_get(code, "coding");
        const char *unit = json_string_value(json_object_get(g, "unitType"));
        const char *label = NULL;
        if (unit && *unit) {
            capacity_unit_type_label(f->expiry, unit, &label);
            json_array_append_new(codings, json_pack("{s:s,s:s,s:s?}", "system", UNIT_TYPE_SYSTEM,
                                                     "code", unit, "display", label));
        }
        json_t *dims = json_object_get(g, "dimensions");
        for (int k = 0; k < CAPACITY_DIMENSIONS; k++) {
            const char *c = json_string_value(json_object_get(dims, capacity_dimensions[k]));
            if (c)
                json_array_append_new(
                    codings, json_pack("{s:s,s:s}", "system", dimension_tre[k], "code", c));
        }
        json_object_set_new(code, "text",
                            json_sprintf("%s — %s", label ? label : "autres unités",
                                         json_string_value(json_object_get(g, "indicator"))));
        json_t *pops =
            json_pack("[{s:{s:[{s:s,s:s}]},s:I},{s:{s:[{s:s,s:s}]},s:I}]", "code", "coding",
                      "system", MEASURE_POP, "code", "initial-population", "count",
                      json_integer_value(json_object_get(g, "units")), "code", "coding", "system",
                      MEASURE_POP, "code", "measure-population-exclusion", "count",
                      json_integer_value(json_object_get(g, "staleUnits")));
        json_array_append_new(json_object_get(mr, "group"),
                              json_pack("{s:o,s:o,s:{s:I,s:s}}", "code", code, "population", pops,
                                        "measureScore", "value",
                                        json_integer_value(json_object_get(g, "nbCapacity")),
                                        "unit", "lits ou places"));
    }
    json_decref(groups);
    json_t *entries = json_array(), *v;
    const char *k;
    json_object_foreach(reports, k, v)
        json_array_append_new(entries, json_pack("{s:O}", "resource", v));
    json_decref(reports);
    char id[37];
    uuid_v4(id);
    json_t *bundle = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "resourceType", "Bundle", "id", id,
                               "type", "collection", "timestamp", ts, "total",
                               (json_int_t)json_array_size(entries), "entry", entries);
    size_t len = 0;
    char *text = json_dump_compact(bundle, &len);
    json_decref(bundle);
    http_respond(r, 200, "application/fhir+json; charset=utf-8", text, len);
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
    api_respond_json(r, out);
}

static void h_location_events(HttpRequest *r, void *ctx)
{
    if (!api_capacity_unit_reader_or_respond(r, ctx, r->params[0]))
        return;
    static const char *const allowed[] = {"indicator", "_since", "_until", "_count", "after", NULL};
    StoreCapacityQuery q = {
        .location_id = r->params[0], .indicator = api_query(r, "indicator"), .max = 200};
    if (!unknown_param_or_fail(r, allowed) || !instant_or_fail(r, "_since", false, &q.from) ||
        !instant_or_fail(r, "_until", true, &q.to) || !count_or_fail(r, "_count", &q.max) ||
        !event_id_or_fail(r, "after", api_query(r, "after"), &q.after_id))
        return;
    events_respond(r, ctx, &q);
}

static void h_events(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    static const char *const allowed[] = {"after", "_count", NULL};
    StoreCapacityQuery q = {.max = 200};
    if (!unknown_param_or_fail(r, allowed) || !count_or_fail(r, "_count", &q.max) ||
        !event_id_or_fail(r, "after", api_query(r, "after"), &q.after_id))
        return;
    events_respond(r, ctx, &q);
}

/* ------------------------------------------------------------------ the stream */

typedef struct CapStream {
    CapacityFeed *feed;
    HttpStream *hs;
    int64_t last_id; /* the last event considered (sent or filtered out) */
    bool greeted;
    char **locations; /* filters (NULL: any) */
    size_t nlocations;
    char *organization, *departement;
    struct CapStream *prev, *next;
} CapStream;

static bool wanted(const CapStream *cs, const Frame *fr)
{
    if (cs->nlocations) {
        bool found = false;
        for (size_t i = 0; i < cs->nlocations && !found; i++)
            found = strcmp(cs->locations[i], fr->location) == 0;
        if (!found)
            return false;
    }
    if (cs->organization && strcmp(fr->organization, cs->organization) != 0)
        return false;
    if (cs->departement && strcmp(fr->departement, cs->departement) != 0)
        return false;
    return true;
}

static void frame_clear(Frame *fr)
{
    free(fr->location);
    free(fr->organization);
    free(fr->departement);
    free(fr->text);
    memset(fr, 0, sizeof *fr);
}

/* Build the frame of an event: its JSON once, and where its Location is (read at the version
 * that made the change, or later: a unit rarely changes commune or organisation). */
static void frame_make(CapacityFeed *f, json_t *places, const CapacityEvent *e, Frame *fr)
{
    json_t *p = place_lookup(f, places, e->location_id, false);
    json_t *j = capacity_event_json(e);
    size_t len = 0;
    char *data = json_dump_compact(j, &len);
    json_decref(j);
    fr->id = e->id;
    fr->location = xstrdup(e->location_id);
    fr->organization = xstrdup(json_string_value(json_array_get(p, 0)));
    fr->departement = xstrdup(json_string_value(json_array_get(p, 1)));
    fr->text =
        xasprintf("id: %lld\nevent: capacity\ndata: %s\n\n", (long long)e->id, data ? data : "{}");
    fr->len = strlen(fr->text);
    free(data);
}

/* Read the events committed since the ring's last into it (ring_lock held). The first call
 * starts at the last committed event: older ones are read from the store by the streams that
 * resume from before. */
static int ring_fill(CapacityFeed *f)
{
    if (!f->ring_primed) {
        int64_t last = 0;
        if (store_capacity_last_id(f->store, &last, NULL) != 0)
            return ERR_IO;
        f->ring_last = last;
        f->ring_primed = true;
    }
    Arena a;
    arena_init(&a);
    json_t *places = json_object();
    int rc = 0;
    for (;;) {
        StoreCapacityQuery q = {.after_id = f->ring_last, .max = 256};
        CapacityEvent *ev = NULL;
        size_t n = 0;
        if ((rc = store_capacity_events(f->store, &a, &q, &ev, &n, NULL)) != 0)
            break;
        for (size_t i = 0; i < n; i++) {
            Frame *fr;
            if (f->ring_n == RING_MAX) { /* forget the oldest */
                fr = &f->ring[f->ring_start];
                frame_clear(fr);
                f->ring_start = (f->ring_start + 1) % RING_MAX;
                f->ring_n--;
            }
            fr = &f->ring[(f->ring_start + f->ring_n) % RING_MAX];
            frame_make(f, places, &ev[i], fr);
            f->ring_n++;
            f->ring_last = ev[i].id;
        }
        json_object_clear(places); /* the next versions may have moved */
        if (n < q.max)
            break;
    }
    json_decref(places);
    arena_cleanup(&a);
    return rc;
}

/* Frames of the events a stream has not seen, read from the store (a stream resuming from
 * before the ring). */
static int pull_from_store(CapStream *cs, int64_t upto, Buf *out)
{
    Arena a;
    arena_init(&a);
    json_t *places = json_object();
    int rc = 0;
    while (cs->last_id < upto && out->len <= (1u << 20)) {
        StoreCapacityQuery q = {.after_id = cs->last_id, .max = 256};
        CapacityEvent *ev = NULL;
        size_t n = 0;
        if ((rc = store_capacity_events(cs->feed->store, &a, &q, &ev, &n, NULL)) != 0 || !n)
            break;
        for (size_t i = 0; i < n && ev[i].id <= upto; i++) {
            Frame fr = {0};
            frame_make(cs->feed, places, &ev[i], &fr);
            if (wanted(cs, &fr))
                buf_add(out, fr.text, fr.len);
            cs->last_id = ev[i].id;
            frame_clear(&fr);
        }
        if (n < q.max)
            break;
    }
    json_decref(places);
    arena_cleanup(&a);
    return rc;
}

static int cap_pull(void *ctx, Buf *out)
{
    CapStream *cs = ctx;
    CapacityFeed *f = cs->feed;
    if (!cs->greeted) { /* how long a browser waits before reconnecting */
        cs->greeted = true;
        buf_adds(out, "retry: 2000\n\n");
    }
    pthread_mutex_lock(&f->ring_lock);
    int rc = ring_fill(f);
    int64_t oldest = f->ring_n ? f->ring[f->ring_start].id : f->ring_last + 1;
    if (rc == 0 && cs->last_id + 1 < oldest) {
        /* behind the ring: catch up from the store first (outside the ring lock) */
        pthread_mutex_unlock(&f->ring_lock);
        rc = pull_from_store(cs, oldest - 1, out);
        if (rc != 0 || cs->last_id + 1 < oldest)
            return rc; /* more next time (the buffer is full) */
        pthread_mutex_lock(&f->ring_lock);
    }
    for (size_t k = 0; rc == 0 && k < f->ring_n && out->len <= (1u << 20); k++) {
        const Frame *fr = &f->ring[(f->ring_start + k) % RING_MAX];
        if (fr->id <= cs->last_id)
            continue;
        if (wanted(cs, fr))
            buf_add(out, fr->text, fr->len);
        cs->last_id = fr->id;
    }
    pthread_mutex_unlock(&f->ring_lock);
    return rc;
}

static void cap_done(void *ctx)
{
    CapStream *cs = ctx;
    CapacityFeed *f = cs->feed;
    pthread_mutex_lock(&f->lock);
    f->nstreams--;
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        f->streams = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < cs->nlocations; i++)
        free(cs->locations[i]);
    free(cs->locations);
    free(cs->organization);
    free(cs->departement);
    free(cs);
}

static void h_stream(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    CapacityFeed *f = ctx;
    static const char *const allowed[] = {"location", "organization", "departement", "after", NULL};
    if (!unknown_param_or_fail(r, allowed))
        return;
    const char *last = http_header(r, "Last-Event-ID");
    int64_t from = 0;
    if (!event_id_or_fail(r, last ? "Last-Event-ID" : "after", last ? last : api_query(r, "after"),
                          &from))
        return;
    if (!last && !api_query(r, "after")) {
        Diag d = {{0}, {0}};
        if (store_capacity_last_id(f->store, &from, &d) != 0) { /* only what comes next */
            http_fail(r, ERR_IO, &d);
            return;
        }
    }
    pthread_mutex_lock(&f->lock);
    bool full = f->nstreams >= f->max_streams;
    pthread_mutex_unlock(&f->lock);
    if (full) {
        http_header_set(r, "Retry-After", "5");
        api_fail(r, ERR_UNAVAILABLE, "trop de flux ouverts (%zu) : réessayer plus tard",
                 f->max_streams);
        return;
    }
    CapStream *cs = xcalloc(1, sizeof *cs);
    cs->feed = f;
    cs->last_id = from;
    const char *locs = api_query(r, "location");
    for (const char *p = locs; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            cs->locations = xrealloc(cs->locations, (cs->nlocations + 1) * sizeof(char *));
            cs->locations[cs->nlocations++] = xstrndup(p, len);
        }
        p = comma ? comma + 1 : p + len;
    }
    if (api_query(r, "organization"))
        cs->organization = xstrdup(api_query(r, "organization"));
    if (api_query(r, "departement"))
        cs->departement = xstrdup(api_query(r, "departement"));
    pthread_mutex_lock(&f->lock);
    f->nstreams++;
    cs->next = f->streams;
    if (f->streams)
        f->streams->prev = cs;
    f->streams = cs;
    cs->hs = http_stream_respond(r, "text/event-stream; charset=utf-8", cap_pull, cap_done, cs);
    pthread_mutex_unlock(&f->lock);
}

/* ------------------------------------------------------------------ the mobile update */

/* The NOS code system of each dimension (TRE), in capacity_dimensions order, then source. */
static const char *const dimension_tre[CAPACITY_DIMENSIONS] = {
    NOS_TRE "TRE_R329-NatureCapacite/FHIR/TRE-R329-NatureCapacite",
    NOS_TRE "TRE_R330-TypeStatutCapacite/FHIR/TRE-R330-TypeStatutCapacite",
    NOS_TRE "TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite",
    NOS_TRE "TRE_R332-GenreCapacite/FHIR/TRE-R332-GenreCapacite",
    NOS_TRE "TRE_R333-TypeFermetureCapacite/FHIR/TRE-R333-TypeFermetureCapacite",
    NOS_TRE "TRE_R334-TypeLitSupplementaire/FHIR/TRE-R334-TypeLitSupplementaire",
    NOS_TRE "TRE_R336-TypeCrise/FHIR/TRE-R336-TypeCrise",
    NOS_TRE "TRE_R337-AffectationTemporaire/FHIR/TRE-R337-AffectationTemporaire",
};
#define SOURCE_TRE NOS_TRE "TRE_R335-TypeSourceCapacite/FHIR/TRE-R335-TypeSourceCapacite"
/* dimensions every indicator must have (1..1 in the guide) */
static const bool dimension_required[CAPACITY_DIMENSIONS] = {true,  true,  true,  false,
                                                             false, false, false, true};

typedef struct CapUpdate {
    CapacityFeed *feed;
    HttpRequest *req;
    json_t *body;
    const char *id;
    int64_t if_match;
    const char *author;
    Diag diag;
    StoredResource out;
    json_t *indicators; /* the result, built on the writer thread */
} CapUpdate;

static json_t *concept_ext(const char *url, const char *system, const char *code)
{
    return json_pack("{s:s,s:{s:[{s:s,s:s}]}}", "url", url, "valueCodeableConcept", "coding",
                     "system", system, "code", code);
}

/* Set (or add) the sub-extension `url` of a capacity extension to `value` (taken). */
static void sub_set(json_t *ext, const char *url, json_t *value)
{
    json_t *subs = json_object_get(ext, "extension");
    size_t i;
    json_t *sub;
    json_array_foreach(subs, i, sub)
    {
        const char *u = json_string_value(json_object_get(sub, "url"));
        if (u && strcmp(u, url) == 0) {
            json_array_set_new(subs, i, value);
            return;
        }
    }
    json_array_append_new(subs, value);
}

static void sub_remove(json_t *ext, const char *url)
{
    json_t *subs = json_object_get(ext, "extension");
    for (size_t i = json_array_size(subs); i-- > 0;) {
        const char *u = json_string_value(json_object_get(json_array_get(subs, i), "url"));
        if (u && strcmp(u, url) == 0)
            json_array_remove(subs, i);
    }
}

/* Check one requested indicator and write it into `loc`. */
static int apply_one(json_t *loc, json_t *want, const char *source, const char *now, size_t n,
                     Diag *d)
{
    if (!json_is_object(want))
        return diag_set(d, ERR_INVALID, "indicators[%zu] : objet attendu", n);
    const char *code[CAPACITY_DIMENSIONS];
    for (int k = 0; k < CAPACITY_DIMENSIONS; k++) {
        json_t *v = json_object_get(want, capacity_dimensions[k]);
        code[k] = json_string_value(v);
        if ((v && (!code[k] || !*code[k] || strchr(code[k], '|') || strlen(code[k]) > 8)) ||
            (!v && dimension_required[k]))
            return diag_set(d, ERR_INVALID, "indicators[%zu] : %s %s", n, capacity_dimensions[k],
                            v ? "doit être un code" : "manquant");
    }
    json_t *nb = json_object_get(want, "nbCapacity");
    if (!json_is_integer(nb) || json_integer_value(nb) < 0 || json_integer_value(nb) > 100000)
        return diag_set(d, ERR_INVALID,
                        "indicators[%zu] : nbCapacity doit être un entier de 0 "
                        "à 100000",
                        n);
    json_t *comment = json_object_get(want, "comment");
    if (comment && (!json_is_string(comment) || json_string_length(comment) > 1000))
        return diag_set(d, ERR_INVALID, "indicators[%zu] : comment doit être un texte court", n);
    const char *key_known[CAPACITY_DIMENSIONS];
    char key[CAPACITY_KEY_MAX] = "";
    for (int k = 0; k < CAPACITY_DIMENSIONS; k++) {
        key_known[k] = code[k] ? code[k] : "-";
        strncat(key, key_known[k], sizeof key - strlen(key) - 2);
        if (k + 1 < CAPACITY_DIMENSIONS)
            strcat(key, "|");
    }
    /* the unit's extension with these dimensions, or a new one */
    CapacityIndicator *have = NULL;
    size_t nh = 0;
    int rc = capacity_indicators(loc, &have, &nh, d);
    if (rc != 0)
        return rc;
    json_t *exts = json_object_get(loc, "extension");
    if (!json_is_array(exts)) {
        exts = json_array();
        json_object_set_new(loc, "extension", exts);
    }
    json_t *target = NULL;
    size_t seen = 0, i;
    json_t *ext;
    json_array_foreach(exts, i, ext)
    {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (!url || strcmp(url, CAPACITY_EXT_URL) != 0)
            continue;
        if (strcmp(have[seen++].key, key) == 0)
            target = ext;
    }
    free(have);
    if (!target) {
        target = json_pack("{s:s,s:[]}", "url", CAPACITY_EXT_URL, "extension");
        for (int k = 0; k < CAPACITY_DIMENSIONS; k++)
            if (code[k])
                json_array_append_new(
                    json_object_get(target, "extension"),
                    concept_ext(capacity_dimensions[k], dimension_tre[k], code[k]));
        json_array_append_new(exts, target);
    }
    sub_set(target, "nbCapacity",
            json_pack("{s:s,s:I}", "url", "nbCapacity", "valueInteger", json_integer_value(nb)));
    sub_set(target, "capacitySourceType", concept_ext("capacitySourceType", SOURCE_TRE, source));
    sub_set(target, "capacityUpdateDate",
            json_pack("{s:s,s:s}", "url", "capacityUpdateDate", "valueDateTime", now));
    if (comment && json_string_length(comment))
        sub_set(target, "comment",
                json_pack("{s:s,s:O}", "url", "comment", "valueString", comment));
    else if (comment)
        sub_remove(target, "comment");
    return 0;
}

static int txn_update(StoreTxn *t, void *vctx, Diag *d)
{
    CapUpdate *u = vctx;
    StoredResource cur;
    int rc = store_txn_read(t, &u->req->arena, "Location", u->id, &cur, d);
    if (rc != 0)
        return rc;
    if (u->if_match > 0 && cur.version != u->if_match)
        return diag_set(d, ERR_PRECONDITION,
                        "conflit de version : version attendue %lld, version actuelle %lld",
                        (long long)u->if_match, (long long)cur.version);
    json_t *loc = NULL;
    if ((rc = json_parse(cur.body, cur.len, &loc, d)) != 0)
        return rc;
    /* the unit must be the caller's before anything about the declaration is answered */
    if ((rc = api_write_check(u->req, t, "Location", AUTH_WRITE_UPDATE, loc, loc, d)) != 0) {
        json_decref(loc);
        return rc;
    }
    json_t *source = json_object_get(u->body, "source");
    const char *src = source ? json_string_value(source) : "01"; /* saisie manuelle */
    json_t *list = json_object_get(u->body, "indicators");
    char now[32];
    time_format_instant(time_now_ms(), now);
    if (source && (!src || !*src || strlen(src) > 8))
        rc = diag_set(d, ERR_INVALID, "source : code TRE_R335 attendu");
    else if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 64)
        rc = diag_set(d, ERR_INVALID, "indicators : liste de 1 à 64 indicateurs attendue");
    for (size_t i = 0; rc == 0 && i < json_array_size(list); i++)
        rc = apply_one(loc, json_array_get(list, i), src, now, i, d);
    if (rc == 0)
        rc = fhir_resource_check("Location", loc, d);
    if (rc == 0) {
        json_t *before = NULL;
        rc = json_parse(cur.body, cur.len, &before, d) != 0
                 ? ERR_INTERNAL
                 : api_write_check(u->req, t, "Location", AUTH_WRITE_UPDATE, before, loc, d);
        json_decref(before);
    }
    if (rc == 0) {
        StorePut p = {.type = "Location",
                      .id = u->id,
                      .res = loc,
                      .if_match = cur.version,
                      .author = u->author};
        rc = store_txn_put(t, &u->req->arena, &p, &u->out, d);
    }
    json_decref(loc);
    return rc;
}

static void update_done(void *ctx, int rc)
{
    CapUpdate *u = ctx;
    HttpRequest *r = u->req;
    if (rc != 0) {
        http_fail(r, rc, &u->diag);
    } else {
        char etag[32];
        snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)u->out.version);
        http_header_set(r, "ETag", etag);
        json_t *out =
            json_pack("{s:s,s:I}", "location", u->id, "version", (json_int_t)u->out.version);
        api_respond_json(r, out);
    }
    json_decref(u->body);
    http_resume(r);
}

static void h_update(HttpRequest *r, void *ctx)
{
    CapacityFeed *f = ctx;
    Diag d = {{0}, {0}};
    json_t *body = NULL;
    if (json_parse(r->body, r->body_len, &body, &d) != 0 || !json_is_object(body)) {
        json_decref(body);
        http_fail(r, ERR_INVALID, &d);
        return;
    }
    int64_t if_match = 0;
    json_t *v = json_object_get(body, "version");
    const char *hdr = http_header(r, "If-Match");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1)) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "version : entier positif attendu%s", "");
        return;
    }
    if (v)
        if_match = json_integer_value(v);
    else if (hdr && sscanf(hdr, "W/\"%lld\"", (long long *)&if_match) != 1) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "If-Match : W/\"<version>\" attendu, pas « %s »", hdr);
        return;
    }
    CapUpdate *u = arena_alloc(&r->arena, sizeof *u);
    memset(u, 0, sizeof *u);
    u->feed = f;
    u->req = r;
    u->body = body;
    u->id = r->params[0];
    u->if_match = if_match;
    u->author = api_principal(r)->author;
    http_suspend(r);
    if (store_write_async(f->store, txn_update, u, &u->diag, update_done, u) != 0) {
        diag_set(&u->diag, ERR_UNAVAILABLE, "le serveur s'arrête");
        update_done(u, ERR_UNAVAILABLE);
    }
}

/* ------------------------------------------------------------------ crises */

typedef struct CrisisWrite {
    Crisis c;
    int64_t id;
    bool close;
} CrisisWrite;

static int txn_crisis(StoreTxn *t, void *ctx, Diag *d)
{
    CrisisWrite *w = ctx;
    if (w->close)
        return store_txn_crisis_close(t, w->id, time_now_ms(), w->c.closed_by, d);
    return store_txn_crisis_open(t, &w->c, &w->id, d);
}

static bool departement_code(const char *s, size_t n)
{
    if (n == 2)
        return (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
                !(s[0] == '2' && s[1] == '0')) ||
               (s[0] == '2' && (s[1] == 'A' || s[1] == 'B'));
    return n == 3 && s[0] == '9' && s[1] == '7' && s[2] >= '1' && s[2] <= '8';
}

static json_t *crisis_json(const Crisis *c)
{
    char ts[32];
    time_format_instant(c->started, ts);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:b}", "id", (json_int_t)c->id, "type", c->type,
                          "territory", c->territory, "started", ts, "openedBy", c->opened_by,
                          "open", c->ended == 0);
    if (c->ended) {
        time_format_instant(c->ended, ts);
        json_object_set_new(o, "ended", json_string(ts));
        json_object_set_new(o, "closedBy", json_string(c->closed_by ? c->closed_by : ""));
    }
    if (c->comment)
        json_object_set_new(o, "comment", json_string(c->comment));
    return o;
}

/* POST /capacity/crisis {"type": "02", "territory": "national" | ["75", "94"], "comment"} */
static void h_crisis_open(HttpRequest *r, void *ctx)
{
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "ouvrir ou clore une crise"))
        return;
    CapacityFeed *f = ctx;
    Diag d = {{0}, {0}};
    json_t *body = NULL;
    if (json_parse(r->body, r->body_len, &body, &d) != 0 || !json_is_object(body)) {
        json_decref(body);
        http_fail(r, ERR_INVALID, &d);
        return;
    }
    const char *type = json_string_value(json_object_get(body, "type"));
    json_t *terr = json_object_get(body, "territory");
    json_t *comment = json_object_get(body, "comment");
    Buf t;
    buf_init(&t, 1024);
    int rc = 0;
    if (!type || strlen(type) != 2 || type[0] < '0' || type[0] > '9' || type[1] < '0' ||
        type[1] > '9')
        rc = diag_set(&d, ERR_INVALID, "type : code de crise TRE_R336 attendu (01, 02…)");
    else if (comment && (!json_is_string(comment) || json_string_length(comment) > 1000))
        rc = diag_set(&d, ERR_INVALID, "comment : texte court attendu");
    else if (json_is_string(terr) && strcmp(json_string_value(terr), "national") == 0)
        buf_adds(&t, "national");
    else if (json_is_array(terr) && json_array_size(terr) > 0 && json_array_size(terr) <= 110) {
        size_t i;
        json_t *dep;
        json_array_foreach(terr, i, dep)
        {
            const char *code = json_string_value(dep);
            if (!code || !departement_code(code, strlen(code))) {
                rc = diag_set(&d, ERR_INVALID, "territory[%zu] : code de département attendu", i);
                break;
            }
            if (i)
                buf_adds(&t, ",");
            buf_adds(&t, code);
        }
    } else {
        rc = diag_set(&d, ERR_INVALID,
                      "territory : \"national\" ou liste de codes de département attendue");
    }
    CrisisWrite w = {.c = {.type = type,
                           .territory = t.p ? t.p : "",
                           .started = time_now_ms(),
                           .opened_by = api_principal(r)->author,
                           .comment = json_string_value(comment)}};
    if (rc == 0)
        rc = store_write(f->store, txn_crisis, &w, &d);
    if (rc == 0) {
        w.c.id = w.id;
        char loc[64];
        snprintf(loc, sizeof loc, "/capacity/crisis/%lld", (long long)w.id);
        http_header_set(r, "Location", loc);
        json_t *o = crisis_json(&w.c);
        size_t len = 0;
        char *text = json_dump_compact(o, &len);
        json_decref(o);
        http_respond(r, 201, JSON_TYPE, text, len);
    } else {
        http_fail(r, rc, &d);
    }
    buf_cleanup(&t);
    json_decref(body);
}

static void h_crisis_close(HttpRequest *r, void *ctx)
{
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "ouvrir ou clore une crise"))
        return;
    CapacityFeed *f = ctx;
    char *end;
    long long id = strtoll(r->params[0], &end, 10);
    if (*end || id < 1) {
        api_fail(r, ERR_NOT_FOUND, "crise %s inconnue", r->params[0]);
        return;
    }
    CrisisWrite w = {.id = id, .close = true};
    w.c.closed_by = api_principal(r)->author;
    Diag d = {{0}, {0}};
    int rc = store_write(f->store, txn_crisis, &w, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    api_respond_json(r, json_pack("{s:I,s:b}", "id", (json_int_t)id, "open", 0));
}

static void h_crisis_list(HttpRequest *r, void *ctx)
{
    if (!api_capacity_reader_or_respond(r))
        return;
    CapacityFeed *f = ctx;
    static const char *const allowed[] = {NULL};
    if (!unknown_param_or_fail(r, allowed))
        return;
    Diag d = {{0}, {0}};
    Crisis *c = NULL;
    size_t n = 0;
    int rc = store_crises(f->store, &r->arena, &c, &n, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    json_t *list = json_array();
    size_t open = 0;
    for (size_t i = 0; i < n; i++) {
        open += c[i].ended == 0;
        json_array_append_new(list, crisis_json(&c[i]));
    }
    api_respond_json(r, json_pack("{s:I,s:o}", "open", (json_int_t)open, "crises", list));
}

/* After each commit (writer thread): a Location changed, so may its capacities. */
static void on_commit(void *ctx, const EventChange *c, size_t n)
{
    CapacityFeed *f = ctx;
    bool location = false;
    for (size_t i = 0; i < n && !location; i++)
        location = strcmp(c[i].type, "Location") == 0;
    if (!location)
        return;
    pthread_mutex_lock(&f->lock);
    for (CapStream *cs = f->streams; cs; cs = cs->next)
        http_stream_wake(cs->hs);
    pthread_mutex_unlock(&f->lock);
}

CapacityFeed *capacity_api_routes(HttpServer *s, Store *store, Events *events,
                                  const CapacityExpiry *expiry, struct Orient *orient,
                                  Terminology *term, size_t max_streams)
{
    CapacityFeed *f = xcalloc(1, sizeof *f);
    /* streams may not take the connections that updates and reads need */
    unsigned conns = http_connection_limit(s);
    f->max_streams = max_streams ? max_streams : conns > 128 ? conns - 64 : conns / 2;
    f->store = store;
    f->orient = orient;
    f->term = term;
    f->expiry = expiry;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->ring_lock, NULL);
    if (events)
        events_subscribe(events, on_commit, f);
    http_route(s, HTTP_GET, "/capacity/Location/{id}", h_location, f);
    http_route(s, HTTP_GET, "/capacity/stale", h_stale, f);
    http_route(s, HTTP_GET, "/capacity/aggregate", h_aggregate, f);
    http_route(s, HTTP_GET, "/capacity/MeasureReport", h_measure_report, f);
    http_route(s, HTTP_GET, "/capacity/crisis", h_crisis_list, f);
    http_route(s, HTTP_POST, "/capacity/crisis", h_crisis_open, f);
    http_route(s, HTTP_POST, "/capacity/crisis/{id}/close", h_crisis_close, f);
    http_route(s, HTTP_POST, "/capacity/Location/{id}", h_update, f);
    http_route(s, HTTP_GET, "/capacity/Location/{id}/events", h_location_events, store);
    http_route(s, HTTP_GET, "/capacity/events", h_events, store);
    http_route(s, HTTP_GET, "/capacity/stream", h_stream, f);
    return f;
}

void capacity_feed_free(CapacityFeed *f)
{
    if (!f)
        return;
    for (size_t k = 0; k < f->ring_n; k++)
        frame_clear(&f->ring[(f->ring_start + k) % RING_MAX]);
    pthread_mutex_destroy(&f->ring_lock);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
