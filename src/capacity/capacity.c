/* capacity.c — indicators of a Location, the version hook that records their changes, and
 * states folded from the events. */
#include "capacity/capacity.h"

#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "store/store.h"

const char *const capacity_dimensions[CAPACITY_DIMENSIONS] = {
    "capacityType",        "capacityStatus",    "temporalityCapacity", "genderCapacityAvailable",
    "capacityClosingType", "additionalBedType", "crisisType",          "temporaryAssignement",
};

/* The code of a CodeableConcept value (first coding), or NULL. */
static const char *concept_code(json_t *ext)
{
    json_t *cc = json_object_get(ext, "valueCodeableConcept");
    return json_string_value(
        json_object_get(json_array_get(json_object_get(cc, "coding"), 0), "code"));
}

static int one_indicator(json_t *ext, CapacityIndicator *ci, Diag *d)
{
    const char *dims[CAPACITY_DIMENSIONS] = {0};
    memset(ci, 0, sizeof *ci);
    size_t i;
    json_t *sub;
    json_array_foreach(json_object_get(ext, "extension"), i, sub)
    {
        const char *url = json_string_value(json_object_get(sub, "url"));
        if (!url)
            continue;
        for (int k = 0; k < CAPACITY_DIMENSIONS; k++)
            if (strcmp(url, capacity_dimensions[k]) == 0) {
                dims[k] = concept_code(sub);
                if (!dims[k] || !*dims[k] || strchr(dims[k], '|'))
                    return diag_set(d, ERR_BUSINESS, "capacité : %s sans code valide",
                                    capacity_dimensions[k]);
            }
        if (strcmp(url, "nbCapacity") == 0) {
            json_t *v = json_object_get(sub, "valueInteger");
            if (!json_is_integer(v))
                return diag_set(d, ERR_BUSINESS, "capacité : nbCapacity doit être un entier");
            ci->has_count = true;
            ci->count = json_integer_value(v);
        } else if (strcmp(url, "capacitySourceType") == 0) {
            ci->source = concept_code(sub);
        } else if (strcmp(url, "capacityUpdateDate") == 0) {
            ci->update_date = json_string_value(json_object_get(sub, "valueDateTime"));
        } else if (strcmp(url, "comment") == 0) {
            ci->comment = json_string_value(json_object_get(sub, "valueString"));
        }
    }
    size_t at = 0;
    for (int k = 0; k < CAPACITY_DIMENSIONS; k++) {
        const char *v = dims[k] ? dims[k] : "-";
        size_t len = strlen(v);
        if (at + len + 2 > sizeof ci->key)
            return diag_set(d, ERR_BUSINESS, "capacité : codes de dimension trop longs");
        if (k)
            ci->key[at++] = '|';
        memcpy(ci->key + at, v, len);
        at += len;
    }
    ci->key[at] = '\0';
    return 0;
}

int capacity_indicators(json_t *location, CapacityIndicator **out, size_t *n, Diag *d)
{
    json_t *exts = json_object_get(location, "extension");
    size_t cap = json_array_size(exts), cnt = 0, i;
    CapacityIndicator *v = xcalloc(cap ? cap : 1, sizeof *v);
    json_t *ext;
    json_array_foreach(exts, i, ext)
    {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (!url || strcmp(url, CAPACITY_EXT_URL) != 0)
            continue;
        int rc = one_indicator(ext, &v[cnt], d);
        for (size_t j = 0; rc == 0 && j < cnt; j++)
            if (strcmp(v[j].key, v[cnt].key) == 0)
                rc = diag_set(d, ERR_BUSINESS,
                              "capacité : deux indicateurs ont les mêmes dimensions (%s)",
                              v[cnt].key);
        if (rc != 0) {
            free(v);
            return rc;
        }
        cnt++;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static const CapacityIndicator *find(const CapacityIndicator *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return &v[i];
    return NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Parse a stored body and take its indicators (none for NULL / a deletion). */
static int body_indicators(const StoredResource *r, json_t **doc, CapacityIndicator **v, size_t *n,
                           Diag *d)
{
    *doc = NULL;
    *v = NULL;
    *n = 0;
    if (!r || r->deleted || !r->body || !r->len ||
        !memmem(r->body, r->len, "supported-capacity", 18))
        return 0;
    int rc = 0;
    if (r->doc) /* the writer's parsed resource: its extensions are the text's */
        *doc = json_incref(r->doc);
    else
        rc = json_parse(r->body, r->len, doc, d);
    if (rc == 0 && (rc = capacity_indicators(*doc, v, n, d)) != 0) {
        json_decref(*doc);
        *doc = NULL;
    }
    return rc;
}

/* The n-th dimension code of a key (into out), "" when absent. */
static void key_dim(const char *key, int n, char out[16])
{
    const char *p = key;
    for (int k = 0; k < n && p; k++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    size_t len = p ? strcspn(p, "|") : 0;
    if (len >= 16 || (len == 1 && *p == '-'))
        len = 0;
    memcpy(out, p ? p : "", len);
    out[len] = '\0';
}

void capacity_location_place(json_t *loc, const char **org, const char **insee, char dep[4])
{
    const char *ref = json_string_value(
        json_object_get(json_object_get(loc, "managingOrganization"), "reference"));
    *org = ref && strncmp(ref, "Organization/", 13) == 0 ? ref + 13 : "";
    *insee = NULL;
    dep[0] = '\0';
    size_t i;
    json_t *ext;
    json_array_foreach(json_object_get(loc, "extension"), i, ext)
    {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (!url || !strstr(url, "ror-commune-cog"))
            continue;
        const char *code = concept_code(ext);
        if (code && strlen(code) >= 2) {
            *insee = code;
            snprintf(dep, 4, "%.*s", strncmp(code, "97", 2) == 0 ? 3 : 2, code);
        }
    }
}

void capacity_location_where(Store *s, Arena *a, const char *id, const char **org,
                             const char **insee, char dep[4])
{
    StoredResource r;
    json_t *res = NULL;
    *org = "";
    *insee = NULL;
    dep[0] = '\0';
    if (store_read(s, a, "Location", id, &r, NULL) != 0 ||
        json_parse(r.body, r.len, &res, NULL) != 0)
        return;
    const char *o, *i;
    capacity_location_place(res, &o, &i, dep);
    *org = arena_strdup(a, o);
    *insee = i ? arena_strdup(a, i) : NULL;
    json_decref(res);
}

/* The département of a Location (from its ror-commune-cog), "" when unknown. */
static void location_departement(json_t *loc, char out[4])
{
    const char *org, *insee;
    capacity_location_place(loc, &org, &insee, out);
}

static bool territory_covers(const char *territory, const char *dep)
{
    if (strcmp(territory, "national") == 0)
        return true;
    size_t len = strlen(dep);
    for (const char *p = territory; len && *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, dep, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

bool capacity_indicator_live(const char *key, const char *dep, const Crisis *open, size_t n)
{
    char status[16], crisis[16];
    key_dim(key, 1, status);
    key_dim(key, 6, crisis);
    if (strcmp(status, "06") != 0 && !crisis[0])
        return true;
    for (size_t i = 0; i < n; i++)
        if (!open[i].ended && territory_covers(open[i].territory, dep ? dep : "") &&
            (!crisis[0] || strcmp(open[i].type, crisis) == 0))
            return true;
    return false;
}

/* Extra beds (status 06) and crisis indicators exist only during a crisis the ARS opened for
 * the unit's territory (of the indicator's crisis type, when it names one). */
static int crisis_check(StoreTxn *t, json_t *loc, const CapacityIndicator *ci, Diag *d)
{
    char status[16], crisis[16];
    key_dim(ci->key, 1, status);
    key_dim(ci->key, 6, crisis);
    if (strcmp(status, "06") != 0 && !crisis[0])
        return 0;
    char dep[4];
    location_departement(loc, dep);
    Arena a;
    arena_init(&a);
    Crisis *open = NULL;
    size_t n = 0;
    int rc = store_txn_crises_open(t, &a, &open, &n, d);
    bool ok = false;
    for (size_t i = 0; rc == 0 && i < n && !ok; i++)
        ok = territory_covers(open[i].territory, dep) &&
             (!crisis[0] || strcmp(open[i].type, crisis) == 0);
    arena_cleanup(&a);
    if (rc == 0 && !ok)
        rc = diag_set(d, ERR_BUSINESS,
                      "capacité %s : lits supplémentaires et indicateurs de crise demandent une "
                      "crise ouverte par l'ARS sur ce territoire (département %s%s%s)",
                      ci->key, dep[0] ? dep : "inconnu", crisis[0] ? ", type " : "", crisis);
    return rc;
}

int capacity_version_hook(void *ctx, StoreTxn *t, const StoredResource *old,
                          const StoredResource *cur, Diag *d)
{
    (void)ctx;
    json_t *odoc, *ndoc;
    CapacityIndicator *ov, *nv;
    size_t on, nn;
    int rc = body_indicators(cur, &ndoc, &nv, &nn, d);
    if (rc != 0)
        return rc;
    /* an old version was accepted by this hook: its indicators parse */
    if ((rc = body_indicators(old, &odoc, &ov, &on, d)) != 0) {
        free(nv);
        json_decref(ndoc);
        return rc;
    }
    CapacityEvent e = {
        .loc_pk = cur->pk, .version = cur->version, .at = cur->last_updated, .author = cur->author};
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        const CapacityIndicator *o = find(ov, on, nv[i].key);
        if (o && o->has_count == nv[i].has_count && o->count == nv[i].count &&
            same_str(o->source, nv[i].source) && same_str(o->update_date, nv[i].update_date) &&
            same_str(o->comment, nv[i].comment))
            continue; /* unchanged */
        if ((rc = crisis_check(t, ndoc, &nv[i], d)) != 0)
            break;
        e.indicator = nv[i].key;
        e.has_before = o && o->has_count;
        e.before = o ? o->count : 0;
        e.has_after = nv[i].has_count;
        e.after = nv[i].count;
        e.source = nv[i].source;
        e.update_date = nv[i].update_date;
        e.comment = nv[i].comment;
        rc = store_txn_capacity_add(t, &e, d);
    }
    for (size_t i = 0; rc == 0 && i < on; i++) {
        if (find(nv, nn, ov[i].key))
            continue;
        e = (CapacityEvent){.loc_pk = cur->pk,
                            .version = cur->version,
                            .at = cur->last_updated,
                            .author = cur->author,
                            .indicator = ov[i].key,
                            .has_before = ov[i].has_count,
                            .before = ov[i].count};
        rc = store_txn_capacity_add(t, &e, d); /* removed */
    }
    free(ov);
    free(nv);
    json_decref(odoc);
    json_decref(ndoc);
    return rc;
}

void capacity_attach(Store *s)
{
    store_set_version_hook(s, "Location", capacity_version_hook, NULL);
}

json_t *capacity_event_json(const CapacityEvent *e)
{
    char ts[32];
    time_format_instant(e->at, ts);
    json_t *dims = json_object();
    const char *p = e->indicator;
    for (int k = 0; k < CAPACITY_DIMENSIONS && p; k++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (!(len == 1 && *p == '-'))
            json_object_set_new(dims, capacity_dimensions[k], json_stringn(p, len));
        p = bar ? bar + 1 : NULL;
    }
    json_t *o = json_pack("{s:I,s:s,s:s,s:o,s:I,s:s,s:s}", "id", (json_int_t)e->id, "location",
                          e->location_id ? e->location_id : "", "indicator", e->indicator,
                          "dimensions", dims, "version", (json_int_t)e->version, "at", ts, "author",
                          e->author ? e->author : "");
    json_object_set_new(o, "before", e->has_before ? json_integer(e->before) : json_null());
    json_object_set_new(o, "after", e->has_after ? json_integer(e->after) : json_null());
    if (e->source)
        json_object_set_new(o, "source", json_string(e->source));
    if (e->update_date)
        json_object_set_new(o, "updateDate", json_string(e->update_date));
    if (e->comment)
        json_object_set_new(o, "comment", json_string(e->comment));
    return o;
}

int capacity_state_at(Store *s, const char *id, int64_t at, json_t **out, Diag *d)
{
    Arena a;
    arena_init(&a);
    json_t *state = json_object(); /* key -> latest event up to `at` */
    StoreCapacityQuery q = {.location_id = id, .to = at, .max = 1000};
    int rc = 0;
    bool any = false;
    for (;;) {
        CapacityEvent *ev;
        size_t n;
        if ((rc = store_capacity_events(s, &a, &q, &ev, &n, d)) != 0)
            break;
        for (size_t i = 0; i < n; i++) {
            any = true;
            json_object_set_new(state, ev[i].indicator, capacity_event_json(&ev[i]));
            q.after_id = ev[i].id;
        }
        if (n < q.max)
            break;
    }
    arena_cleanup(&a);
    if (rc == 0 && !any)
        rc = diag_set(d, ERR_NOT_FOUND, "Location/%s : aucun indicateur de capacité", id);
    if (rc != 0) {
        json_decref(state);
        return rc;
    }
    json_t *arr = json_array();
    const char *key;
    json_t *ev;
    json_object_foreach(state, key, ev)
    {
        if (json_is_null(json_object_get(ev, "after")))
            continue; /* removed by then */
        json_t *o = json_pack("{s:s,s:O,s:O,s:O,s:O}", "indicator", key, "dimensions",
                              json_object_get(ev, "dimensions"), "nbCapacity",
                              json_object_get(ev, "after"), "changedAt", json_object_get(ev, "at"),
                              "author", json_object_get(ev, "author"));
        json_object_set(o, "version", json_object_get(ev, "version"));
        if (json_object_get(ev, "source"))
            json_object_set(o, "source", json_object_get(ev, "source"));
        if (json_object_get(ev, "updateDate"))
            json_object_set(o, "updateDate", json_object_get(ev, "updateDate"));
        if (json_object_get(ev, "comment"))
            json_object_set(o, "comment", json_object_get(ev, "comment"));
        json_array_append_new(arr, o);
    }
    json_decref(state);
    *out = arr;
    return 0;
}

/* ------------------------------------------------------------------ staleness */

#define STATUS_MAX 32

struct CapacityExpiry {
    json_t *unit_types; /* {"reanimation": {"label": ..., "activities": [codes]}} */
    double default_hours;
    char status[STATUS_MAX][9];
    double hours[STATUS_MAX];
    size_t n;
};

int capacity_expiry_load(const char *path, CapacityExpiry **out, Diag *d)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return diag_set(d, ERR_IO, "%s:%d : %s", path, je.line, je.text);
    CapacityExpiry *e = xcalloc(1, sizeof *e);
    json_t *def = json_object_get(doc, "defaultHours");
    e->default_hours = json_is_number(def) ? json_number_value(def) : 24;
    int rc = e->default_hours > 0 ? 0 : diag_set(d, ERR_INVALID, "%s : defaultHours > 0", path);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "byStatus"), k, v)
    {
        if (rc != 0)
            break;
        if (e->n == STATUS_MAX || strlen(k) >= sizeof e->status[0] || !json_is_number(v) ||
            json_number_value(v) <= 0) {
            rc = diag_set(d, ERR_INVALID, "%s : byStatus.%s doit être un nombre d'heures", path, k);
            break;
        }
        snprintf(e->status[e->n], sizeof e->status[0], "%s", k);
        e->hours[e->n++] = json_number_value(v);
    }
    json_t *ut = json_object_get(doc, "unitTypes");
    json_object_foreach(ut, k, v)
    {
        json_t *acts = json_object_get(v, "activities"), *a;
        size_t i;
        if (rc == 0 && (!json_is_string(json_object_get(v, "label")) || !json_is_array(acts)))
            rc = diag_set(d, ERR_INVALID, "%s : unitTypes.%s : label et activities attendus", path,
                          k);
        json_array_foreach(acts, i, a) if (rc == 0 && !json_is_string(a)) rc =
            diag_set(d, ERR_INVALID, "%s : unitTypes.%s.activities : codes attendus", path, k);
    }
    if (rc == 0 && ut)
        e->unit_types = json_incref(ut);
    json_decref(doc);
    if (rc != 0) {
        capacity_expiry_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void capacity_expiry_free(CapacityExpiry *e)
{
    if (!e)
        return;
    json_decref(e->unit_types);
    free(e);
}

const char *capacity_unit_type(const CapacityExpiry *e, const char *activity, const char **label)
{
    const char *k;
    json_t *v;
    if (!e || !activity)
        return NULL;
    json_object_foreach(e->unit_types, k, v)
    {
        json_t *a;
        size_t i;
        json_array_foreach(json_object_get(v, "activities"), i, a)
        {
            if (strcmp(json_string_value(a), activity) == 0) {
                if (label)
                    *label = json_string_value(json_object_get(v, "label"));
                return k;
            }
        }
    }
    return NULL;
}

double capacity_expiry_hours(const CapacityExpiry *e, const char *key)
{
    if (!e)
        return 24;
    const char *status = strchr(key, '|'); /* the second dimension */
    if (status) {
        status++;
        size_t len = strcspn(status, "|");
        for (size_t i = 0; i < e->n; i++)
            if (strlen(e->status[i]) == len && strncmp(e->status[i], status, len) == 0)
                return e->hours[i];
    }
    return e->default_hours;
}

int64_t capacity_declared_at(const char *update_date, int64_t changed_at)
{
    int64_t lo, hi;
    if (update_date && time_parse_range(update_date, strlen(update_date), &lo, &hi) == 0)
        return lo;
    return changed_at;
}

bool capacity_unit_type_known(const CapacityExpiry *e, const char *type)
{
    return e && json_object_get(e->unit_types, type) != NULL;
}

bool capacity_unit_type_label(const CapacityExpiry *e, const char *type, const char **label)
{
    json_t *t = e ? json_object_get(e->unit_types, type) : NULL;
    if (t && label)
        *label = json_string_value(json_object_get(t, "label"));
    return t != NULL;
}
