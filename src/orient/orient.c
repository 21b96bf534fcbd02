/*
 * orient — in-memory orientation index (see orient.h).
 *
 * Layout: three entity tables (Organization, Location, HealthcareService) whose slots never
 * move; per-kind id maps; codes interned ("system|code") with a posting list of entities each;
 * a grid of positioned sites; a word index (textidx) over unit documents (name, establishment
 * name, labels of the unit's codes). Links are kept both ways (site -> organisation and
 * organisation -> sites; offer -> sites and site -> offers; offer -> provider and provider ->
 * offers) so that a change of one resource updates only its own entries.
 */
#include "orient/orient.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "orient/textidx.h"

/* ------------------------------------------------------------------ small containers */

/* A vector of 32-bit items whose first two items live inline: most entities have one site or
 * one offer, and a search touches thousands of them (one cache miss fewer each). */
#define VEC_INLINE 2
typedef struct U32Vec {
    uint32_t n, cap; /* cap <= VEC_INLINE: the items are in u.inl */
    union {
        uint32_t inl[VEC_INLINE];
        uint32_t *heap;
    } u;
} U32Vec;

static inline uint32_t *vec_data(const U32Vec *a)
{
    return a->cap > VEC_INLINE ? a->u.heap : (uint32_t *)a->u.inl;
}

static void vec_add(U32Vec *a, uint32_t x)
{
    if (a->n == VEC_INLINE && a->cap <= VEC_INLINE) {
        uint32_t *h = xmalloc(8 * sizeof *h);
        memcpy(h, a->u.inl, sizeof a->u.inl);
        a->u.heap = h;
        a->cap = 8;
    } else if (a->cap > VEC_INLINE && a->n == a->cap) {
        a->cap *= 2;
        a->u.heap = xrealloc(a->u.heap, a->cap * sizeof *a->u.heap);
    }
    vec_data(a)[a->n++] = x;
}

static void vec_add_unique(U32Vec *a, uint32_t x)
{
    uint32_t *v = vec_data(a);
    for (uint32_t i = 0; i < a->n; i++)
        if (v[i] == x)
            return;
    vec_add(a, x);
}

static void vec_del(U32Vec *a, uint32_t x)
{
    uint32_t *v = vec_data(a);
    for (uint32_t i = 0; i < a->n; i++)
        if (v[i] == x) {
            v[i] = v[--a->n];
            return;
        }
}

static void vec_free(U32Vec *a)
{
    if (a->cap > VEC_INLINE)
        free(a->u.heap);
    memset(a, 0, sizeof *a);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

/* Open addressing: hash -> slot value (+1; 0 = empty). Keys are verified by the caller's
 * callback, so equal hashes of different keys are only a longer probe. */
typedef struct HMap {
    uint64_t *hash;
    uint32_t *val;
    size_t cap, n;
} HMap;

typedef bool (*HEq)(const void *ctx, uint32_t val, const void *key);

static void hmap_free(HMap *m)
{
    free(m->hash);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static bool hmap_get(const HMap *m, uint64_t h, HEq eq, const void *ctx, const void *key,
                     uint32_t *out)
{
    if (!m->cap)
        return false;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->val[i])
            return false;
        if (m->hash[i] == h && eq(ctx, m->val[i] - 1, key)) {
            *out = m->val[i] - 1;
            return true;
        }
    }
}

static void hmap_put_raw(HMap *m, uint64_t h, uint32_t v)
{
    size_t i = h & (m->cap - 1);
    while (m->val[i])
        i = (i + 1) & (m->cap - 1);
    m->hash[i] = h;
    m->val[i] = v + 1;
}

/* Insert (the key must be absent). */
static void hmap_put(HMap *m, uint64_t h, uint32_t v)
{
    if ((m->n + 1) * 2 > m->cap) {
        HMap g = {xcalloc(m->cap ? m->cap * 2 : 1024, sizeof *g.hash),
                  xcalloc(m->cap ? m->cap * 2 : 1024, sizeof *g.val), m->cap ? m->cap * 2 : 1024,
                  m->n};
        for (size_t i = 0; i < m->cap; i++)
            if (m->val[i])
                hmap_put_raw(&g, m->hash[i], m->val[i] - 1);
        hmap_free(m);
        *m = g;
    }
    hmap_put_raw(m, h, v);
    m->n++;
}

/* ------------------------------------------------------------------ entities */

enum { K_ORG, K_LOC, K_HS, K_N };
static const char *const kind_type[K_N] = {"Organization", "Location", "HealthcareService"};
static const char *const kind_source[K_N] = {"établissement", "lieu", "offre"};

/* An entity reference in a posting list: kind in the top 2 bits. */
#define EREF(k, i) (((uint32_t)(k) << 30) | (uint32_t)(i))
#define EREF_KIND(r) ((int)((r) >> 30))
#define EREF_IDX(r) ((r)&0x3fffffffu)
/* A unit (result): an establishment (org slot) or an offer (service slot). */
#define UREF(hs, i) (((uint32_t)(hs) << 31) | (uint32_t)(i))
#define UREF_HS(u) ((u) >> 31)
#define UREF_IDX(u) ((u)&0x7fffffffu)

typedef struct Coded {
    uint32_t code;  /* interned "system|code" */
    uint16_t param; /* interned parameter code */
} Coded;

typedef struct Hours {
    uint8_t days; /* bit d = day d, 0 = Monday; 0x7f when the entry names no day */
    bool all_day;
    int start_min, end_min; /* [start, end) in local minutes; end <= start spans midnight */
} Hours;

typedef struct Bed {
    int64_t count;
    int64_t declared; /* epoch ms */
    double expiry_h;
} Bed;

typedef struct Ent {
    /* hot: read for every candidate of a search (first cache line) */
    bool present;
    bool has_pos;    /* site */
    bool sensitive;  /* offer */
    bool has_beds;   /* site: an available-now indicator exists (fresh or not) */
    int32_t org;     /* site: managing org; offer: provider (slot) or -1 */
    U32Vec sites;    /* org: its sites; offer: its sites */
    double lat, lon; /* site */
    Bed *beds;       /* site: available-now indicators */
    uint32_t nbeds;
    int16_t age_lo, age_hi; /* offer: years, -1 = unbounded */
    /* cold */
    char *id;
    char *name;
    Coded *codes;
    uint32_t ncodes;
    char **labels; /* folded displays of the codes (words for the text index) */
    uint32_t nlabels;
    U32Vec services; /* org: offers it provides; site: offers delivered there */
    uint64_t cell;   /* site: grid cell when has_pos */
    char insee[8];   /* site: commune (local time zone) */
    Hours *hours;    /* offer */
    uint32_t nhours;
} Ent;

typedef struct Table {
    Ent *e;
    uint32_t n, cap;
    HMap ids;
} Table;

struct Orient {
    Store *store;
    const FhirRegistry *reg;
    const CapacityExpiry *expiry;
    pthread_rwlock_t lock;
    Table t[K_N];
    /* codes */
    char **code_str; /* "system|code" */
    U32Vec *postings;
    uint32_t ncodes, code_cap;
    HMap codes;       /* "system|code" -> code id */
    HMap bare;        /* "code" -> bare slot */
    U32Vec *bare_ids; /* per bare slot: code ids of that code in any system */
    char **bare_str;
    uint32_t nbare, bare_cap;
    char **params;
    uint16_t nparams;
    /* geography */
    HMap cells; /* cell key -> cell slot */
    U32Vec *cell_sites;
    uint64_t *cell_key;
    uint32_t ncells, cell_cap;
    TextIndex *text;
    /* updates */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* work queued, or stop */
    pthread_cond_t applied_cond;
    char **queue; /* "Type/id" */
    size_t nqueue, queue_cap;
    uint64_t noted, applied;
    bool stop, started, built;
    double build_ms;
};

static bool eq_ent(const void *ctx, uint32_t v, const void *key)
{
    return strcmp(((const Table *)ctx)->e[v].id, key) == 0;
}

static bool eq_code(const void *ctx, uint32_t v, const void *key)
{
    return strcmp(((const Orient *)ctx)->code_str[v], key) == 0;
}

static bool eq_bare(const void *ctx, uint32_t v, const void *key)
{
    return strcmp(((const Orient *)ctx)->bare_str[v], key) == 0;
}

static bool eq_cell(const void *ctx, uint32_t v, const void *key)
{
    return ((const Orient *)ctx)->cell_key[v] == *(const uint64_t *)key;
}

static int32_t ent_find(const Table *t, const char *id)
{
    uint32_t v;
    return hmap_get(&t->ids, hash_str(id), eq_ent, t, id, &v) ? (int32_t)v : -1;
}

/* The slot of id in t, created absent when unknown (a reference may precede its target). */
static uint32_t ent_slot(Table *t, const char *id)
{
    int32_t f = ent_find(t, id);
    if (f >= 0)
        return (uint32_t)f;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->e = xrealloc(t->e, t->cap * sizeof *t->e);
    }
    Ent *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    e->id = xstrdup(id);
    e->org = -1;
    e->age_lo = e->age_hi = -1;
    hmap_put(&t->ids, hash_str(id), t->n);
    return t->n++;
}

/* ------------------------------------------------------------------ codes */

static uint16_t param_intern(Orient *o, const char *p)
{
    for (uint16_t i = 0; i < o->nparams; i++)
        if (strcmp(o->params[i], p) == 0)
            return i;
    o->params = xrealloc(o->params, (o->nparams + 1u) * sizeof *o->params);
    o->params[o->nparams] = xstrdup(p);
    return o->nparams++;
}

static int64_t code_find(const Orient *o, const char *key)
{
    uint32_t v;
    return hmap_get(&o->codes, hash_str(key), eq_code, o, key, &v) ? (int64_t)v : -1;
}

static uint32_t code_intern(Orient *o, const char *system, const char *code)
{
    char *key = xasprintf("%s|%s", system ? system : "", code);
    int64_t f = code_find(o, key);
    if (f >= 0) {
        free(key);
        return (uint32_t)f;
    }
    if (o->ncodes == o->code_cap) {
        o->code_cap = o->code_cap ? o->code_cap * 2 : 1024;
        o->code_str = xrealloc(o->code_str, o->code_cap * sizeof *o->code_str);
        o->postings = xrealloc(o->postings, o->code_cap * sizeof *o->postings);
    }
    uint32_t id = o->ncodes++;
    o->code_str[id] = key;
    memset(&o->postings[id], 0, sizeof o->postings[id]);
    hmap_put(&o->codes, hash_str(key), id);
    uint32_t b;
    if (!hmap_get(&o->bare, hash_str(code), eq_bare, o, code, &b)) {
        if (o->nbare == o->bare_cap) {
            o->bare_cap = o->bare_cap ? o->bare_cap * 2 : 1024;
            o->bare_str = xrealloc(o->bare_str, o->bare_cap * sizeof *o->bare_str);
            o->bare_ids = xrealloc(o->bare_ids, o->bare_cap * sizeof *o->bare_ids);
        }
        b = o->nbare++;
        o->bare_str[b] = xstrdup(code);
        memset(&o->bare_ids[b], 0, sizeof o->bare_ids[b]);
        hmap_put(&o->bare, hash_str(code), b);
    }
    vec_add(&o->bare_ids[b], id);
    return id;
}

/* ------------------------------------------------------------------ geography */

#define CELL_DEG 0.2
#define KM_PER_DEGREE 111.19508 /* of latitude, on the sphere of core's haversine */

static uint64_t cell_of(double lat, double lon)
{
    int64_t y = (int64_t)floor((lat + 90.0) / CELL_DEG),
            x = (int64_t)floor((lon + 180.0) / CELL_DEG);
    return ((uint64_t)y << 32) | (uint64_t)x;
}

static U32Vec *cell_get(Orient *o, uint64_t key, bool create)
{
    uint32_t v;
    if (hmap_get(&o->cells, key * 0x9E3779B97F4A7C15ull | 1, eq_cell, o, &key, &v))
        return &o->cell_sites[v];
    if (!create)
        return NULL;
    if (o->ncells == o->cell_cap) {
        o->cell_cap = o->cell_cap ? o->cell_cap * 2 : 1024;
        o->cell_sites = xrealloc(o->cell_sites, o->cell_cap * sizeof *o->cell_sites);
        o->cell_key = xrealloc(o->cell_key, o->cell_cap * sizeof *o->cell_key);
    }
    v = o->ncells++;
    memset(&o->cell_sites[v], 0, sizeof o->cell_sites[v]);
    o->cell_key[v] = key;
    hmap_put(&o->cells, key * 0x9E3779B97F4A7C15ull | 1, v);
    return &o->cell_sites[v];
}

/* ------------------------------------------------------------------ text documents */

static uint32_t doc_of(bool hs, uint32_t idx)
{
    return idx * 2 + (hs ? 1 : 0);
}

static void doc_add_labels(Orient *o, uint32_t doc, const Ent *e)
{
    if (e->name)
        textidx_add(o->text, doc, e->name);
    for (uint32_t i = 0; i < e->nlabels; i++)
        textidx_add(o->text, doc, e->labels[i]);
}

/* Rebuild the words of a unit: its own name and labels, its establishment's name (an offer),
 * its sites' labels. */
static void doc_rebuild(Orient *o, bool hs, uint32_t idx)
{
    uint32_t doc = doc_of(hs, idx);
    textidx_remove(o->text, doc);
    Ent *e = &o->t[hs ? K_HS : K_ORG].e[idx];
    if (!e->present)
        return;
    doc_add_labels(o, doc, e);
    if (hs && e->org >= 0 && o->t[K_ORG].e[e->org].name)
        textidx_add(o->text, doc, o->t[K_ORG].e[e->org].name);
}

/* ------------------------------------------------------------------ applying a resource */

static void ent_codes_clear(Orient *o, int kind, uint32_t idx)
{
    Ent *e = &o->t[kind].e[idx];
    for (uint32_t i = 0; i < e->ncodes; i++)
        vec_del(&o->postings[e->codes[i].code], EREF(kind, idx));
    free(e->codes);
    e->codes = NULL;
    e->ncodes = 0;
    for (uint32_t i = 0; i < e->nlabels; i++)
        free(e->labels[i]);
    free(e->labels);
    e->labels = NULL;
    e->nlabels = 0;
}

static void ent_codes_set(Orient *o, int kind, uint32_t idx, const IndexRows *rows)
{
    Ent *e = &o->t[kind].e[idx];
    e->codes = xcalloc(rows->n ? rows->n : 1, sizeof *e->codes);
    e->labels = xcalloc(rows->n ? rows->n : 1, sizeof *e->labels);
    for (size_t i = 0; i < rows->n; i++) {
        const IndexRow *r = &rows->rows[i];
        if (r->kind != SP_TOKEN || !r->s2 || !*r->s2 || strchr(r->param, ':') ||
            r->param[0] == '_' || strcmp(r->param, "identifier") == 0)
            continue;
        uint32_t code = code_intern(o, r->s1, r->s2);
        uint16_t param = param_intern(o, r->param);
        bool dup = false;
        for (uint32_t k = 0; k < e->ncodes && !dup; k++)
            dup = e->codes[k].code == code;
        if (dup)
            continue;
        e->codes[e->ncodes++] = (Coded){code, param};
        vec_add(&o->postings[code], EREF(kind, idx));
        if (r->s3 && *r->s3)
            e->labels[e->nlabels++] = xstrdup(r->s3);
    }
}

static const char *ref_id(json_t *ref, const char *type)
{
    const char *s = json_str(ref, "reference");
    if (!s)
        return NULL;
    size_t tl = strlen(type);
    const char *slash = strrchr(s, '/');
    if (!slash || (size_t)(slash - s) < tl || strncmp(slash - tl, type, tl) != 0 ||
        (slash - tl != s && slash[-(ptrdiff_t)tl - 1] != '/'))
        return NULL;
    return slash + 1;
}

static void set_name(Ent *e, json_t *res)
{
    free(e->name);
    const char *n = json_str(res, "name");
    e->name = n ? xstrdup(n) : NULL;
}

/* Forget everything a resource contributed (deletion, or before re-applying it). */
static void unapply(Orient *o, int kind, uint32_t idx)
{
    Ent *e = &o->t[kind].e[idx];
    ent_codes_clear(o, kind, idx);
    switch (kind) {
    case K_LOC:
        if (e->has_pos) {
            U32Vec *c = cell_get(o, e->cell, false);
            if (c)
                vec_del(c, idx);
            e->has_pos = false;
        }
        if (e->org >= 0)
            vec_del(&o->t[K_ORG].e[e->org].sites, idx);
        e->org = -1;
        free(e->beds);
        e->beds = NULL;
        e->nbeds = 0;
        e->has_beds = false;
        e->insee[0] = 0;
        break;
    case K_HS:
        if (e->org >= 0)
            vec_del(&o->t[K_ORG].e[e->org].services, idx);
        e->org = -1;
        for (uint32_t i = 0; i < e->sites.n; i++)
            vec_del(&o->t[K_LOC].e[vec_data(&e->sites)[i]].services, idx);
        e->sites.n = 0;
        free(e->hours);
        e->hours = NULL;
        e->nhours = 0;
        e->age_lo = e->age_hi = -1;
        e->sensitive = false;
        textidx_remove(o->text, doc_of(true, idx));
        break;
    case K_ORG: textidx_remove(o->text, doc_of(false, idx)); break;
    }
    e->present = false;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int minutes_of(const char *t)
{
    int h, m;
    if (!t || sscanf(t, "%d:%d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 || m > 59)
        return -1;
    return h * 60 + m;
}

/* Opening hours of an offer: availableTime entries, except closing hours (TRE_R252 08). */
static void hours_parse(Ent *e, json_t *res)
{
    json_t *at = json_object_get(res, "availableTime");
    size_t n = json_array_size(at), i;
    json_t *t;
    if (!n)
        return;
    e->hours = xcalloc(n, sizeof *e->hours);
    json_array_foreach(at, i, t)
    {
        bool closing = false;
        json_t *ext;
        size_t k;
        json_array_foreach(json_object_get(t, "extension"), k, ext)
        {
            const char *url = json_str(ext, "url");
            json_t *cc = json_object_get(ext, "valueCodeableConcept");
            const char *code = json_str(json_array_get(json_object_get(cc, "coding"), 0), "code");
            if (url && strstr(url, "ror-available-time-type-of-time") && code &&
                strcmp(code, "08") == 0)
                closing = true;
        }
        if (closing)
            continue;
        Hours h = {0};
        json_t *days = json_object_get(t, "daysOfWeek"), *dv;
        json_array_foreach(days, k, dv)
        {
            for (int d = 0; d < 7; d++)
                if (json_is_string(dv) && strcmp(json_string_value(dv), day_names[d]) == 0)
                    h.days |= (uint8_t)(1u << d);
        }
        if (!json_array_size(days))
            h.days = 0x7f;
        h.all_day = json_is_true(json_object_get(t, "allDay"));
        h.start_min = minutes_of(json_str(t, "availableStartTime"));
        h.end_min = minutes_of(json_str(t, "availableEndTime"));
        if (!h.all_day && (h.start_min < 0 || h.end_min < 0))
            continue;
        e->hours[e->nhours++] = h;
    }
}

static void patient_parse(Ent *e, json_t *res)
{
    json_t *ext;
    size_t i;
    json_array_foreach(json_object_get(res, "extension"), i, ext)
    {
        const char *url = json_str(ext, "url");
        if (!url)
            continue;
        if (strstr(url, "ror-healthcareservice-sensitive-unit"))
            e->sensitive = json_is_true(json_object_get(ext, "valueBoolean"));
        if (!strstr(url, "ror-healthcareservice-patient-type"))
            continue;
        json_t *sub;
        size_t k;
        json_array_foreach(json_object_get(ext, "extension"), k, sub)
        {
            const char *su = json_str(sub, "url");
            json_t *range = json_object_get(sub, "valueRange");
            if (!su || strcmp(su, "ageRange") != 0 || !range)
                continue;
            json_t *lo = json_object_get(json_object_get(range, "low"), "value");
            json_t *hi = json_object_get(json_object_get(range, "high"), "value");
            if (json_is_number(lo))
                e->age_lo = (int16_t)fmin(floor(json_number_value(lo)), 200);
            if (json_is_number(hi))
                e->age_hi = (int16_t)fmin(floor(json_number_value(hi)), 200);
        }
    }
}

static const char *insee_of(json_t *res)
{
    json_t *addr = json_object_get(res, "address"), *ext;
    size_t i;
    json_array_foreach(json_object_get(addr, "extension"), i, ext)
    {
        const char *url = json_str(ext, "url");
        if (url && strstr(url, "insee-code"))
            return json_str(ext, "valueCode") ? json_str(ext, "valueCode")
                                              : json_str(ext, "valueString");
    }
    return NULL;
}

static void beds_parse(Orient *o, Ent *e, json_t *res, int64_t changed_at)
{
    CapacityIndicator *ind = NULL;
    size_t n = 0;
    if (capacity_indicators(res, &ind, &n, NULL) != 0)
        return;
    e->beds = xcalloc(n ? n : 1, sizeof *e->beds);
    for (size_t i = 0; i < n; i++) {
        /* key: type|status|temporality|...: available (02) now (01) */
        const char *k = ind[i].key;
        const char *s = strchr(k, '|');
        if (!s || strncmp(s + 1, "02|01|", 6) != 0 || !ind[i].has_count)
            continue;
        e->has_beds = true;
        e->beds[e->nbeds++] =
            (Bed){ind[i].count, capacity_declared_at(ind[i].update_date, changed_at),
                  capacity_expiry_hours(o->expiry, k)};
    }
    free(ind);
}

/* Apply the current version of a resource (res NULL: it is absent). Write lock held. */
static void apply(Orient *o, int kind, const char *id, json_t *res, int64_t last_updated,
                  const FhirRegistry *reg)
{
    Table *t = &o->t[kind];
    if (!res && ent_find(t, id) < 0)
        return;
    uint32_t idx = ent_slot(t, id);
    if (t->e[idx].present)
        unapply(o, kind, idx);
    if (!res) {
        if (kind == K_ORG)
            for (uint32_t i = 0; i < t->e[idx].services.n; i++)
                doc_rebuild(o, true, vec_data(&t->e[idx].services)[i]);
        return;
    }
    Ent *e = &t->e[idx];
    e->present = true;
    set_name(e, res);
    IndexRows rows;
    index_rows_init(&rows);
    if (fhir_index_extract_types(reg, kind_type[kind], res, 1u << SP_TOKEN, &rows, NULL) == 0)
        ent_codes_set(o, kind, idx, &rows);
    index_rows_cleanup(&rows);
    e = &t->e[idx]; /* (no reallocation of t above, but keep the habit) */
    switch (kind) {
    case K_ORG:
        doc_rebuild(o, false, idx);
        for (uint32_t i = 0; i < e->services.n; i++) /* their documents hold our name */
            doc_rebuild(o, true, vec_data(&e->services)[i]);
        break;
    case K_LOC: {
        json_t *pos = json_object_get(res, "position");
        json_t *la = json_object_get(pos, "latitude"), *lo = json_object_get(pos, "longitude");
        if (json_is_number(la) && json_is_number(lo) && fabs(json_number_value(la)) <= 90 &&
            fabs(json_number_value(lo)) <= 180) {
            e->lat = json_number_value(la);
            e->lon = json_number_value(lo);
            e->has_pos = true;
            e->cell = cell_of(e->lat, e->lon);
            vec_add(cell_get(o, e->cell, true), idx);
        }
        const char *org = ref_id(json_object_get(res, "managingOrganization"), "Organization");
        if (org) {
            uint32_t oi = ent_slot(&o->t[K_ORG], org);
            e = &t->e[idx];
            e->org = (int32_t)oi;
            vec_add_unique(&o->t[K_ORG].e[oi].sites, idx);
        }
        const char *insee = insee_of(res);
        if (insee)
            snprintf(e->insee, sizeof e->insee, "%s", insee);
        beds_parse(o, e, res, last_updated);
        break;
    }
    case K_HS: {
        const char *org = ref_id(json_object_get(res, "providedBy"), "Organization");
        if (org) {
            uint32_t oi = ent_slot(&o->t[K_ORG], org);
            e->org = (int32_t)oi;
            vec_add_unique(&o->t[K_ORG].e[oi].services, idx);
        }
        json_t *l;
        size_t i;
        json_array_foreach(json_object_get(res, "location"), i, l)
        {
            const char *lid = ref_id(l, "Location");
            if (!lid)
                continue;
            uint32_t li = ent_slot(&o->t[K_LOC], lid);
            vec_add_unique(&e->sites, li);
            vec_add_unique(&o->t[K_LOC].e[li].services, idx);
        }
        hours_parse(e, res);
        patient_parse(e, res);
        doc_rebuild(o, true, idx);
        break;
    }
    }
}

static int kind_of(const char *type)
{
    for (int k = 0; k < K_N; k++)
        if (strcmp(type, kind_type[k]) == 0)
            return k;
    return -1;
}

/* ------------------------------------------------------------------ build and updates */

typedef struct BuildCtx {
    Orient *o;
    int kind;
} BuildCtx;

static int build_one(void *vctx, const StoredResource *r)
{
    BuildCtx *b = vctx;
    if (__atomic_load_n(&b->o->stop, __ATOMIC_RELAXED))
        return ERR_UNAVAILABLE; /* stopping: abandon the build */
    json_t *res = NULL;
    if (json_parse(r->body, r->len, &res, NULL) == 0)
        apply(b->o, b->kind, r->id, res, r->last_updated, b->o->reg);
    json_decref(res);
    return 0;
}

typedef struct Pending {
    char *ref; /* "Type/id" */
    json_t *res;
    int64_t last_updated;
} Pending;

static void stats_fill(Orient *o, OrientStats *s);

/* Load every current resource (the updater thread does it first, so that the server answers
 * other requests meanwhile; searches wait for it). */
static void build(Orient *o)
{
    int64_t t0 = time_mono_ns();
    pthread_rwlock_wrlock(&o->lock);
    for (int k = 0; k < K_N; k++) {
        BuildCtx b = {o, k};
        Diag d = {{0}, {0}};
        int rc = store_each(o->store, kind_type[k], build_one, &b, &d);
        if (rc == ERR_UNAVAILABLE)
            break;
        if (rc != 0)
            log_error("orient: reading %s failed: %s", kind_type[k], d.msg);
    }
    pthread_rwlock_unlock(&o->lock);
    pthread_mutex_lock(&o->mu);
    o->build_ms = (double)(time_mono_ns() - t0) / 1e6;
    o->built = true;
    pthread_cond_broadcast(&o->applied_cond);
    pthread_mutex_unlock(&o->mu);
    OrientStats st;
    stats_fill(o, &st);
    log_info("orient: %zu organisations, %zu locations (%zu positioned), %zu services, %zu codes, "
             "%zu words, built in %.0f ms",
             st.organizations, st.locations, st.positioned, st.services, st.codes, st.words,
             st.build_ms);
}

static void *updater(void *arg)
{
    Orient *o = arg;
    build(o);
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->nqueue && !o->stop)
            pthread_cond_wait(&o->cond, &o->mu);
        if (o->stop && !o->nqueue)
            break;
        char **batch = o->queue;
        size_t n = o->nqueue;
        o->queue = NULL;
        o->nqueue = o->queue_cap = 0;
        pthread_mutex_unlock(&o->mu);

        /* read outside the lock: searches go on meanwhile */
        Pending *p = xcalloc(n, sizeof *p);
        Arena a;
        arena_init(&a);
        for (size_t i = 0; i < n; i++) {
            p[i].ref = batch[i];
            char *slash = strchr(batch[i], '/');
            *slash = 0;
            StoredResource sr;
            if (store_read(o->store, &a, batch[i], slash + 1, &sr, NULL) == 0 &&
                json_parse(sr.body, sr.len, &p[i].res, NULL) == 0)
                p[i].last_updated = sr.last_updated;
            *slash = '/';
        }
        pthread_rwlock_wrlock(&o->lock);
        for (size_t i = 0; i < n; i++) {
            char *slash = strchr(p[i].ref, '/');
            *slash = 0;
            apply(o, kind_of(p[i].ref), slash + 1, p[i].res, p[i].last_updated, o->reg);
        }
        pthread_rwlock_unlock(&o->lock);
        for (size_t i = 0; i < n; i++) {
            json_decref(p[i].res);
            free(p[i].ref);
        }
        free(p);
        free(batch);
        arena_cleanup(&a);

        pthread_mutex_lock(&o->mu);
        o->applied += n;
        pthread_cond_broadcast(&o->applied_cond);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

int orient_open(const OrientOptions *opt, Orient **out, Diag *d)
{
    Orient *o = xcalloc(1, sizeof *o);
    o->store = opt->store;
    o->reg = opt->reg;
    o->expiry = opt->expiry;
    o->text = textidx_new();
    pthread_rwlock_init(&o->lock, NULL);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cond, NULL);
    pthread_cond_init(&o->applied_cond, NULL);
    if (pthread_create(&o->thread, NULL, updater, o) != 0) {
        orient_free(o);
        return diag_set(d, ERR_IO, "orient : impossible de démarrer le fil de mise à jour");
    }
    o->started = true;
    *out = o;
    return 0;
}

void orient_free(Orient *o)
{
    if (!o)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        __atomic_store_n(&o->stop, true, __ATOMIC_RELAXED);
        pthread_cond_signal(&o->cond);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    for (size_t i = 0; i < o->nqueue; i++)
        free(o->queue[i]);
    free(o->queue);
    for (int k = 0; k < K_N; k++) {
        Table *t = &o->t[k];
        for (uint32_t i = 0; i < t->n; i++) {
            Ent *e = &t->e[i];
            free(e->id);
            free(e->name);
            free(e->codes);
            for (uint32_t j = 0; j < e->nlabels; j++)
                free(e->labels[j]);
            free(e->labels);
            vec_free(&e->sites);
            vec_free(&e->services);
            free(e->beds);
            free(e->hours);
        }
        free(t->e);
        hmap_free(&t->ids);
    }
    for (uint32_t i = 0; i < o->ncodes; i++) {
        free(o->code_str[i]);
        vec_free(&o->postings[i]);
    }
    free(o->code_str);
    free(o->postings);
    hmap_free(&o->codes);
    for (uint32_t i = 0; i < o->nbare; i++) {
        free(o->bare_str[i]);
        vec_free(&o->bare_ids[i]);
    }
    free(o->bare_str);
    free(o->bare_ids);
    hmap_free(&o->bare);
    for (uint16_t i = 0; i < o->nparams; i++)
        free(o->params[i]);
    free(o->params);
    for (uint32_t i = 0; i < o->ncells; i++)
        vec_free(&o->cell_sites[i]);
    free(o->cell_sites);
    free(o->cell_key);
    hmap_free(&o->cells);
    textidx_free(o->text);
    pthread_rwlock_destroy(&o->lock);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cond);
    pthread_cond_destroy(&o->applied_cond);
    free(o);
}

void orient_note_change(Orient *o, const char *type, const char *id)
{
    if (kind_of(type) < 0)
        return;
    char *ref = xasprintf("%s/%s", type, id);
    pthread_mutex_lock(&o->mu);
    if (o->nqueue == o->queue_cap) {
        o->queue_cap = o->queue_cap ? o->queue_cap * 2 : 64;
        o->queue = xrealloc(o->queue, o->queue_cap * sizeof *o->queue);
    }
    o->queue[o->nqueue++] = ref;
    o->noted++;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->mu);
}

void orient_sync(Orient *o)
{
    pthread_mutex_lock(&o->mu);
    uint64_t target = o->noted;
    while ((!o->built || o->applied < target) && !o->stop)
        pthread_cond_wait(&o->applied_cond, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

static void stats_fill(Orient *o, OrientStats *s)
{
    memset(s, 0, sizeof *s);
    pthread_rwlock_rdlock(&o->lock);
    size_t *counts[K_N] = {&s->organizations, &s->locations, &s->services};
    for (int k = 0; k < K_N; k++)
        for (uint32_t i = 0; i < o->t[k].n; i++)
            if (o->t[k].e[i].present) {
                (*counts[k])++;
                if (k == K_LOC && o->t[k].e[i].has_pos)
                    s->positioned++;
            }
    s->codes = o->ncodes;
    s->words = textidx_words(o->text);
    s->build_ms = o->build_ms;
    pthread_rwlock_unlock(&o->lock);
    pthread_mutex_lock(&o->mu);
    s->applied = o->applied;
    pthread_mutex_unlock(&o->mu);
}

void orient_stats(Orient *o, OrientStats *s)
{
    orient_sync(o);
    stats_fill(o, s);
}

/* ------------------------------------------------------------------ search */

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_unique(U32Vec *v)
{
    if (v->n < 2)
        return;
    uint32_t *d = vec_data(v);
    bool sorted = true; /* postings are mostly in slot order already */
    for (uint32_t i = 1; i < v->n && sorted; i++)
        sorted = d[i - 1] <= d[i];
    if (!sorted)
        qsort(d, v->n, sizeof(uint32_t), u32_cmp);
    uint32_t k = 1;
    for (uint32_t i = 1; i < v->n; i++)
        if (vec_data(v)[i] != vec_data(v)[k - 1])
            vec_data(v)[k++] = vec_data(v)[i];
    v->n = k;
}

/* The units an entity's codes reach: an offer itself; an establishment and its offers; a site's
 * establishment and the offers delivered there. */
static void units_of_entity(const Orient *o, uint32_t eref, U32Vec *out)
{
    uint32_t idx = EREF_IDX(eref);
    const Ent *e;
    switch (EREF_KIND(eref)) {
    case K_HS: vec_add(out, UREF(1, idx)); break;
    case K_ORG:
        e = &o->t[K_ORG].e[idx];
        vec_add(out, UREF(0, idx));
        for (uint32_t i = 0; i < e->services.n; i++)
            vec_add(out, UREF(1, vec_data(&e->services)[i]));
        break;
    case K_LOC:
        e = &o->t[K_LOC].e[idx];
        if (e->org >= 0)
            vec_add(out, UREF(0, (uint32_t)e->org));
        for (uint32_t i = 0; i < e->services.n; i++) { /* the offers there, and who provides them */
            uint32_t hs = vec_data(&e->services)[i];
            vec_add(out, UREF(1, hs));
            if (o->t[K_HS].e[hs].org >= 0)
                vec_add(out, UREF(0, (uint32_t)o->t[K_HS].e[hs].org));
        }
        break;
    }
}

static void code_ids(const Orient *o, const char *c, U32Vec *ids)
{
    if (strchr(c, '|')) {
        int64_t id = code_find(o, c);
        if (id >= 0)
            vec_add(ids, (uint32_t)id);
        return;
    }
    uint32_t b;
    if (hmap_get(&o->bare, hash_str(c), eq_bare, o, c, &b))
        for (uint32_t i = 0; i < o->bare_ids[b].n; i++)
            vec_add(ids, vec_data(&o->bare_ids[b])[i]);
}

/* The units matching one need (sorted, unique). */
static void need_units(const Orient *o, const OrientNeed *n, U32Vec *out)
{
    U32Vec ids = {0};
    for (size_t i = 0; i < n->ncodes; i++)
        code_ids(o, n->codes[i], &ids);
    for (uint32_t i = 0; i < ids.n; i++) {
        const U32Vec *p = &o->postings[vec_data(&ids)[i]];
        for (uint32_t k = 0; k < p->n; k++)
            units_of_entity(o, vec_data(p)[k], out);
    }
    vec_free(&ids);
    if (n->text && *n->text) {
        TextHit *hits = NULL;
        size_t nh = textidx_query(o->text, n->text, 0, &hits);
        for (size_t i = 0; i < nh; i++)
            vec_add(out, UREF(hits[i].doc & 1, hits[i].doc >> 1));
        free(hits);
    }
    sort_unique(out);
}

static void intersect(U32Vec *a, const U32Vec *b)
{
    uint32_t i = 0, j = 0, k = 0;
    while (i < a->n && j < b->n) {
        if (vec_data(a)[i] < vec_data(b)[j])
            i++;
        else if (vec_data(a)[i] > vec_data(b)[j])
            j++;
        else {
            vec_data(a)[k++] = vec_data(a)[i];
            i++;
            j++;
        }
    }
    a->n = k;
}

/* The units with a site in the box around the point (no need given: proximity only). */
static void units_near(const Orient *o, double lat, double lon, double radius_km, U32Vec *out)
{
    double dlat = radius_km * 1000.0 / 111195.08 + 1e-6;
    double far = fabs(lat) + dlat, dlon = far < 89.0 ? dlat / cos(far * M_PI / 180.0) : 360.0;
    if (dlon > 180.0)
        dlon = 180.0;
    int64_t y0 = (int64_t)floor((lat - dlat + 90.0) / CELL_DEG),
            y1 = (int64_t)floor((lat + dlat + 90.0) / CELL_DEG);
    int64_t x0 = (int64_t)floor((lon - dlon + 180.0) / CELL_DEG),
            x1 = (int64_t)floor((lon + dlon + 180.0) / CELL_DEG);
    int64_t nx = (int64_t)llround(360.0 / CELL_DEG);
    if (x1 - x0 >= nx) {
        x0 = 0;
        x1 = nx - 1;
    }
    for (int64_t y = y0; y <= y1; y++)
        for (int64_t x = x0; x <= x1; x++) {
            int64_t xx = ((x % nx) + nx) % nx;
            uint64_t key = ((uint64_t)y << 32) | (uint64_t)xx;
            uint32_t v;
            if (!hmap_get(&o->cells, key * 0x9E3779B97F4A7C15ull | 1, eq_cell, o, &key, &v))
                continue;
            const U32Vec *c = &o->cell_sites[v];
            for (uint32_t i = 0; i < c->n; i++)
                units_of_entity(o, EREF(K_LOC, vec_data(c)[i]), out);
        }
    sort_unique(out);
}

static bool any_positioned(const Orient *o, const U32Vec *sites)
{
    for (uint32_t i = 0; i < sites->n; i++)
        if (o->t[K_LOC].e[vec_data(sites)[i]].has_pos)
            return true;
    return false;
}

/* Local time (minutes since midnight, weekday 0 = Monday) of a site's commune: metropolitan
 * France follows the EU summer-time rule; overseas départements their fixed offsets. */
static void local_time(int64_t now_ms, const char *insee, int *wday, int *minute)
{
    static const struct {
        const char *prefix;
        int offset_min;
    } overseas[] = {{"971", -240}, {"972", -240}, {"973", -180}, {"974", 240},
                    {"976", 180},  {"975", -180}, {"977", -240}, {"978", -240},
                    {"986", 720},  {"987", -600}, {"988", 660}};
    int64_t s = now_ms / 1000;
    int offset = -1;
    for (size_t i = 0; insee && i < sizeof overseas / sizeof overseas[0]; i++)
        if (strncmp(insee, overseas[i].prefix, 3) == 0)
            offset = overseas[i].offset_min;
    if (offset < 0 && !(insee && strncmp(insee, "97", 2) == 0)) {
        /* CET/CEST: summer time from the last Sunday of March 01:00 UTC to the last Sunday of
         * October 01:00 UTC */
        time_t tt = (time_t)s;
        struct tm u;
        gmtime_r(&tt, &u);
        int year = u.tm_year + 1900;
        int64_t bounds[2];
        for (int k = 0; k < 2; k++) {
            struct tm m = {
                .tm_year = year - 1900, .tm_mon = k ? 9 : 2, .tm_mday = 31, .tm_hour = 1};
            time_t last = timegm(&m);
            struct tm lm;
            gmtime_r(&last, &lm);
            bounds[k] = (int64_t)last - (int64_t)lm.tm_wday * 86400;
        }
        offset = s >= bounds[0] && s < bounds[1] ? 120 : 60;
    } else if (offset < 0) {
        offset = 0;
    }
    int64_t local = s + offset * 60;
    int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    *minute = (int)((local - days * 86400) / 60);
    *wday = (int)(((days + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
}

/* 1 open, 0 closed, -1 unknown (no opening hours). */
static int open_now(const Orient *o, uint32_t u, int64_t now_ms, const char *insee)
{
    if (!UREF_HS(u))
        return -1;
    const Ent *e = &o->t[K_HS].e[UREF_IDX(u)];
    if (!e->nhours)
        return -1;
    int wday, minute;
    local_time(now_ms, insee, &wday, &minute);
    for (uint32_t i = 0; i < e->nhours; i++) {
        const Hours *h = &e->hours[i];
        bool today = h->days & (1u << wday), yesterday = h->days & (1u << ((wday + 6) % 7));
        if (h->all_day) {
            if (today)
                return 1;
            continue;
        }
        if (h->start_min < h->end_min) {
            if (today && minute >= h->start_min && minute < h->end_min)
                return 1;
        } else { /* spans midnight */
            if ((today && minute >= h->start_min) || (yesterday && minute < h->end_min))
                return 1;
        }
    }
    return 0;
}

typedef struct Cand {
    uint32_t u;
    uint32_t site;
    double dist_km;
    int64_t beds, beds_at;
    int open;
} Cand;

static int cand_cmp(const void *a, const void *b)
{
    const Cand *x = a, *y = b;
    if (x->dist_km != y->dist_km)
        return x->dist_km < y->dist_km ? -1 : 1;
    if (x->beds != y->beds)
        return x->beds > y->beds ? -1 : 1;
    return x->u < y->u ? -1 : x->u > y->u;
}

/* Take the sites' distances (nearest kept) and, when they are the unit's, their fresh
 * available-now beds into c. */
static void sites_visit(const Orient *o, const OrientQuery *q, double max_km, const U32Vec *sites,
                        bool beds, Cand *c)
{
    for (uint32_t i = 0; i < sites->n; i++) {
        uint32_t si = vec_data(sites)[i];
        const Ent *s = &o->t[K_LOC].e[si];
        if (!s->present || !s->has_pos)
            continue;
        /* a latitude difference alone already puts it beyond the largest radius: no trig */
        if (fabs(s->lat - q->lat) * KM_PER_DEGREE > max_km && !(c->dist_km < INFINITY))
            continue;
        double km = geo_distance_m(q->lat, q->lon, s->lat, s->lon) / 1000.0;
        if (km < c->dist_km) {
            c->dist_km = km;
            c->site = si;
        }
        for (uint32_t b = 0; beds && b < s->nbeds; b++) {
            const Bed *bd = &s->beds[b];
            if ((double)(q->now_ms - bd->declared) > bd->expiry_h * 3600e3)
                continue; /* stale: unknown, never "available" */
            c->beds = (c->beds < 0 ? 0 : c->beds) + bd->count;
            if (!c->beds_at || bd->declared < c->beds_at)
                c->beds_at = bd->declared;
        }
    }
}

/* An establishment's places: its managed sites, else the sites of its offers. */
static void org_visit(const Orient *o, const OrientQuery *q, double max_km, const Ent *org,
                      bool beds, Cand *c)
{
    if (any_positioned(o, &org->sites)) {
        sites_visit(o, q, max_km, &org->sites, beds, c);
        return;
    }
    for (uint32_t i = 0; i < org->services.n; i++)
        sites_visit(o, q, max_km, &o->t[K_HS].e[vec_data(&org->services)[i]].sites, beds, c);
}

/* Fill a candidate's distance, beds and opening; false when it has no positioned site within
 * `max_km` or a filter excludes it. */
static bool cand_eval(const Orient *o, const OrientQuery *q, double max_km, uint32_t u, Cand *c)
{
    const Ent *ue = &o->t[UREF_HS(u) ? K_HS : K_ORG].e[UREF_IDX(u)];
    if (!ue->present)
        return false;
    if (UREF_HS(u)) {
        if (ue->sensitive && !q->with_sensitive)
            return false;
        if (q->age >= 0 &&
            ((ue->age_lo >= 0 && q->age < ue->age_lo) || (ue->age_hi >= 0 && q->age > ue->age_hi)))
            return false;
    }
    c->u = u;
    c->dist_km = INFINITY;
    c->beds = -1;
    c->beds_at = 0;
    /* Placed by its own sites; an offer without one by its provider's (the establishment's
     * managed sites, else its offers' sites), whose beds are not the offer's. */
    if (UREF_HS(u) && any_positioned(o, &ue->sites))
        sites_visit(o, q, max_km, &ue->sites, true, c);
    else if (UREF_HS(u) && ue->org >= 0)
        org_visit(o, q, max_km, &o->t[K_ORG].e[ue->org], false, c);
    else if (!UREF_HS(u))
        org_visit(o, q, max_km, ue, true, c);
    if (!(c->dist_km <= max_km))
        return false;
    if (q->beds_now && c->beds <= 0)
        return false;
    c->open = open_now(o, u, q->now_ms, o->t[K_LOC].e[c->site].insee);
    if (q->open_now && c->open == 0)
        return false;
    return true;
}

static bool ent_has_code(const Ent *e, uint32_t code, uint16_t *param)
{
    for (uint32_t i = 0; i < e->ncodes; i++)
        if (e->codes[i].code == code) {
            *param = e->codes[i].param;
            return true;
        }
    return false;
}

/* Why unit u matched need n: the first of its codes found on the unit (own, sites',
 * establishment's), else the name. */
static void explain(const Orient *o, Arena *a, uint32_t u, const OrientNeed *n, OrientWhy *w)
{
    const Ent *ue = &o->t[UREF_HS(u) ? K_HS : K_ORG].e[UREF_IDX(u)];
    U32Vec ids = {0};
    for (size_t i = 0; i < n->ncodes; i++)
        code_ids(o, n->codes[i], &ids);
    const Ent *owners[16];
    int kinds[16], no = 0;
    owners[no] = ue;
    kinds[no++] = UREF_HS(u) ? K_HS : K_ORG;
    const U32Vec *sites = &ue->sites;
    for (uint32_t i = 0; i < sites->n && no < 15; i++) {
        owners[no] = &o->t[K_LOC].e[vec_data(sites)[i]];
        kinds[no++] = K_LOC;
    }
    if (UREF_HS(u) && ue->org >= 0) {
        owners[no] = &o->t[K_ORG].e[ue->org];
        kinds[no++] = K_ORG;
    }
    for (uint32_t i = 0; i < ids.n; i++)
        for (int k = 0; k < no; k++) {
            uint16_t param;
            if (owners[k]->present && ent_has_code(owners[k], vec_data(&ids)[i], &param)) {
                const char *cs = o->code_str[vec_data(&ids)[i]];
                const char *bar = strrchr(cs, '|');
                w->source = kind_source[kinds[k]];
                w->param = arena_strdup(a, o->params[param]);
                w->system = bar > cs ? arena_strndup(a, cs, (size_t)(bar - cs)) : NULL;
                w->code = arena_strdup(a, bar + 1);
                vec_free(&ids);
                return;
            }
        }
    vec_free(&ids);
    w->source = kind_source[UREF_HS(u) ? K_HS : K_ORG];
    w->param = "nom";
    w->system = NULL;
    w->code = arena_strdup(a, n->text ? n->text : "");
}

int orient_search(Orient *o, Arena *a, const OrientQuery *q, OrientResult *out, Diag *d)
{
    if (!(q->radius_km > 0) || !isfinite(q->lat) || !isfinite(q->lon) || fabs(q->lat) > 90 ||
        fabs(q->lon) > 180)
        return diag_set(d, ERR_INVALID, "lieu ou rayon invalide");
    orient_sync(o);
    memset(out, 0, sizeof *out);
    double max_km = q->max_radius_km > q->radius_km ? q->max_radius_km : q->radius_km;

    pthread_rwlock_rdlock(&o->lock);
    U32Vec units = {0};
    if (q->nneeds == 0) {
        units_near(o, q->lat, q->lon, max_km, &units);
    } else {
        for (size_t i = 0; i < q->nneeds; i++) {
            U32Vec v = {0};
            need_units(o, &q->needs[i], &v);
            if (i == 0) {
                units = v;
            } else {
                intersect(&units, &v);
                vec_free(&v);
            }
        }
    }
    out->scanned_units = units.n;
    Cand *c = xcalloc(units.n ? units.n : 1, sizeof *c);
    size_t nc = 0;
    for (uint32_t i = 0; i < units.n; i++)
        if (cand_eval(o, q, max_km, vec_data(&units)[i], &c[nc]))
            nc++;
    vec_free(&units);
    qsort(c, nc, sizeof *c, cand_cmp);

    /* the radius: as asked, doubled while too few (NHS DoS "catch-all") up to max_km */
    double r = q->radius_km;
    size_t within = 0;
    for (;;) {
        while (within < nc && c[within].dist_km <= r)
            within++;
        if (within >= q->min_results || r >= max_km)
            break;
        r = r * 2 > max_km ? max_km : r * 2;
        out->widened++;
    }
    out->radius_km = r;
    out->total = within;
    size_t nh = within < q->limit ? within : q->limit;
    out->hits = arena_alloc(a, (nh ? nh : 1) * sizeof *out->hits);
    for (size_t i = 0; i < nh; i++) {
        OrientHit *h = &out->hits[i];
        uint32_t u = c[i].u;
        const Ent *ue = &o->t[UREF_HS(u) ? K_HS : K_ORG].e[UREF_IDX(u)];
        const Ent *org = UREF_HS(u) ? (ue->org >= 0 ? &o->t[K_ORG].e[ue->org] : NULL) : ue;
        const Ent *site = &o->t[K_LOC].e[c[i].site];
        memset(h, 0, sizeof *h);
        h->type = UREF_HS(u) ? "HealthcareService" : "Organization";
        h->id = arena_strdup(a, ue->id);
        h->name = ue->name ? arena_strdup(a, ue->name) : NULL;
        if (org) {
            h->org_id = arena_strdup(a, org->id);
            h->org_name = org->name ? arena_strdup(a, org->name) : NULL;
        }
        h->location_id = arena_strdup(a, site->id);
        h->lat = site->lat;
        h->lon = site->lon;
        h->distance_km = c[i].dist_km;
        h->beds = c[i].beds;
        h->beds_at = c[i].beds_at;
        h->sensitive = UREF_HS(u) && ue->sensitive;
        h->open = c[i].open;
        h->nwhy = q->nneeds;
        h->why = arena_alloc(a, (q->nneeds ? q->nneeds : 1) * sizeof *h->why);
        for (size_t k = 0; k < q->nneeds; k++)
            explain(o, a, u, &q->needs[k], &h->why[k]);
    }
    out->nhits = nh;
    pthread_rwlock_unlock(&o->lock);
    free(c);
    return 0;
}

size_t orient_names(Orient *o, Arena *a, const char *text, size_t max, OrientName *out)
{
    orient_sync(o);
    pthread_rwlock_rdlock(&o->lock);
    TextHit *hits = NULL;
    size_t nh = textidx_query(o->text, text, 0, &hits), n = 0;
    /* exact word matches first, then establishments before offers, in index order */
    for (uint32_t pass = 0; pass < 2 && n < max; pass++)
        for (size_t i = 0; i < nh && n < max; i++) {
            if ((pass == 0) != (hits[i].exact > 0))
                continue;
            bool hs = hits[i].doc & 1;
            const Ent *e = &o->t[hs ? K_HS : K_ORG].e[hits[i].doc >> 1];
            if (!e->present || !e->name || (hs && e->sensitive))
                continue;
            out[n].type = hs ? "HealthcareService" : "Organization";
            out[n].id = arena_strdup(a, e->id);
            out[n].name = arena_strdup(a, e->name);
            n++;
        }
    free(hits);
    pthread_rwlock_unlock(&o->lock);
    return n;
}

size_t orient_site_offer_codes(Orient *o, Arena *a, const char *location_id, const char *param,
                               const char **out, size_t max)
{
    orient_sync(o);
    pthread_rwlock_rdlock(&o->lock);
    size_t n = 0;
    int32_t si = ent_find(&o->t[K_LOC], location_id);
    int16_t pi = -1;
    for (uint16_t i = 0; i < o->nparams; i++)
        if (strcmp(o->params[i], param) == 0)
            pi = (int16_t)i;
    if (si >= 0 && pi >= 0) {
        const U32Vec *sv = &o->t[K_LOC].e[si].services;
        for (uint32_t k = 0; k < sv->n && n < max; k++) {
            const Ent *hs = &o->t[K_HS].e[vec_data(sv)[k]];
            for (uint32_t c = 0; hs->present && c < hs->ncodes && n < max; c++)
                if (hs->codes[c].param == (uint16_t)pi)
                    out[n++] = arena_strdup(a, o->code_str[hs->codes[c].code]);
        }
    }
    pthread_rwlock_unlock(&o->lock);
    return n;
}
