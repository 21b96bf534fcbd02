/* terminology: CodeSystem and ValueSet resources into their immutable in-memory forms. */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "terminology/term_int.h"

static const char *dup_or_null(Arena *a, const char *s)
{
    return s ? arena_strdup(a, s) : NULL;
}

static const char *fold_into(Arena *a, const char *s)
{
    char *f = text_fold(s, strlen(s));
    const char *r = arena_strdup(a, f ? f : "");
    free(f);
    return r;
}

/* ---------------------------------------------------------------- code systems */

typedef struct Concepts {
    TConcept *v;
    size_t n, cap;
} Concepts;

/* The one "value[x]" member of a property: its name and compact JSON text. */
static bool property_value(Arena *a, json_t *prop, TermProperty *out)
{
    const char *key;
    json_t *v;
    json_object_foreach(prop, key, v)
    {
        if (strncmp(key, "value", 5) != 0 || !key[5])
            continue;
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (!text)
            return false;
        out->type = arena_strdup(a, key);
        out->value = arena_strdup(a, text);
        free(text);
        return true;
    }
    return false;
}

static void concept_parse(TCodeSys *cs, json_t *c, TConcept *out)
{
    Arena *a = &cs->arena;
    out->code = arena_strdup(a, json_str(c, "code"));
    out->display = arena_strdup(a, json_str(c, "display") ? json_str(c, "display") : "");
    out->folded = fold_into(a, out->display);
    json_t *ds = json_object_get(c, "designation"), *e;
    size_t i, n = json_array_size(ds);
    out->desig = n ? arena_alloc(a, n * sizeof *out->desig) : NULL;
    out->desig_folded = n ? arena_alloc(a, n * sizeof *out->desig_folded) : NULL;
    out->ndesig = 0;
    json_array_foreach(ds, i, e)
    {
        const char *value = json_str(e, "value");
        if (!value)
            continue;
        json_t *use = json_object_get(e, "use");
        TermDesignation *t = &out->desig[out->ndesig];
        t->language = dup_or_null(a, json_str(e, "language"));
        t->use_system = dup_or_null(a, json_str(use, "system"));
        t->use_code = dup_or_null(a, json_str(use, "code"));
        t->use_display = dup_or_null(a, json_str(use, "display"));
        t->value = arena_strdup(a, value);
        out->desig_folded[out->ndesig++] = fold_into(a, value);
    }
    json_t *ps = json_object_get(c, "property");
    n = json_array_size(ps);
    out->props = n ? arena_alloc(a, n * sizeof *out->props) : NULL;
    out->nprops = 0;
    json_array_foreach(ps, i, e)
    {
        const char *code = json_str(e, "code");
        TermProperty *p = &out->props[out->nprops];
        if (code && property_value(a, e, p)) {
            p->code = arena_strdup(a, code);
            out->nprops++;
        }
    }
}

/* Concepts may nest (hierarchies): flatten them, parents first. */
static void concepts_collect(TCodeSys *cs, json_t *list, Concepts *acc, int depth)
{
    json_t *c;
    size_t i;
    if (depth > 32)
        return;
    json_array_foreach(list, i, c)
    {
        if (json_str(c, "code")) {
            if (acc->n == acc->cap) {
                acc->cap = acc->cap ? acc->cap * 2 : 64;
                acc->v = xrealloc(acc->v, acc->cap * sizeof *acc->v);
            }
            concept_parse(cs, c, &acc->v[acc->n++]);
        }
        concepts_collect(cs, json_object_get(c, "concept"), acc, depth + 1);
    }
}

static double number_of(const char *json_text, bool *ok)
{
    char *end;
    double v = strtod(json_text, &end);
    *ok = end != json_text && *end == 0;
    return v;
}

/* A JSON string property's text without its quotes (codes and postal codes hold no escapes
 * that matter; an escaped one is kept as is). */
static const char *unquote(Arena *a, const char *json_text)
{
    size_t n = strlen(json_text);
    if (n >= 2 && json_text[0] == '"')
        return arena_strndup(a, json_text + 1, n - 2);
    return json_text;
}

/* The communes table: what the completion and lookups need, from the concepts' properties
 * (see `ror import communes`: postalCode*, latitude, longitude, departement, region,
 * population, status=retired / inactive=true for merged communes). */
static void communes_build(TCodeSys *cs)
{
    Arena *a = &cs->arena;
    cs->communes = xcalloc(cs->n ? cs->n : 1, sizeof *cs->communes);
    cs->ncommunes = cs->n;
    for (size_t i = 0; i < cs->n; i++) {
        const TConcept *c = &cs->concepts[i];
        TCommune *m = &cs->communes[i];
        m->concept = c;
        m->folded = term_fold_words(a, c->display);
        if (!m->folded)
            m->folded = "";
        m->active = true;
        m->population = -1;
        bool has_lat = false, has_lon = false, ok;
        size_t npostal = 0;
        for (uint32_t k = 0; k < c->nprops; k++)
            npostal += strcmp(c->props[k].code, "postalCode") == 0;
        m->postal = npostal ? arena_alloc(a, npostal * sizeof *m->postal) : NULL;
        for (uint32_t k = 0; k < c->nprops; k++) {
            const TermProperty *p = &c->props[k];
            if (strcmp(p->code, "postalCode") == 0) {
                m->postal[m->npostal++] = unquote(a, p->value);
            } else if (strcmp(p->code, "latitude") == 0) {
                m->lat = number_of(p->value, &ok);
                has_lat = ok;
            } else if (strcmp(p->code, "longitude") == 0) {
                m->lon = number_of(p->value, &ok);
                has_lon = ok;
            } else if (strcmp(p->code, "departement") == 0) {
                m->departement = unquote(a, p->value);
            } else if (strcmp(p->code, "region") == 0) {
                m->region = unquote(a, p->value);
            } else if (strcmp(p->code, "population") == 0) {
                double v = number_of(p->value, &ok);
                if (ok)
                    m->population = (int64_t)v;
            } else if (strcmp(p->code, "status") == 0 && strcmp(p->value, "\"retired\"") == 0) {
                m->active = false;
            } else if (strcmp(p->code, "inactive") == 0 && strcmp(p->value, "true") == 0) {
                m->active = false;
            }
        }
        m->has_position = has_lat && has_lon;
    }
}

int term_codesys_parse(const char *res_id, json_t *res, TCodeSys **out, Diag *d)
{
    const char *url = json_str(res, "url");
    if (!url || !*url)
        return diag_set(d, ERR_INVALID, "CodeSystem/%s sans url : ignoré", res_id);
    TCodeSys *cs = xcalloc(1, sizeof *cs);
    atomic_init(&cs->refs, 1);
    arena_init(&cs->arena);
    Arena *a = &cs->arena;
    cs->res_id = arena_strdup(a, res_id);
    cs->url = arena_strdup(a, url);
    cs->alias = term_url_alias(a, url);
    cs->version = dup_or_null(a, json_str(res, "version"));
    const char *name = json_str(res, "name") ? json_str(res, "name") : json_str(res, "title");
    cs->name = arena_strdup(a, name ? name : res_id);
    Concepts acc = {0};
    concepts_collect(cs, json_object_get(res, "concept"), &acc, 0);
    cs->concepts = acc.v;
    cs->n = acc.n;
    term_map_init(&cs->by_code, cs->n);
    for (size_t i = 0; i < cs->n; i++)
        if (!term_map_get(&cs->by_code, cs->concepts[i].code)) /* first definition wins */
            term_map_put(&cs->by_code, cs->concepts[i].code, &cs->concepts[i]);
    if (strcmp(url, TERM_COMMUNES_URL) == 0)
        communes_build(cs);
    *out = cs;
    return 0;
}

void term_codesys_unref(TCodeSys *cs)
{
    if (!cs || atomic_fetch_sub(&cs->refs, 1) != 1)
        return;
    term_map_cleanup(&cs->by_code);
    free(cs->concepts);
    free(cs->communes);
    arena_cleanup(&cs->arena);
    free(cs);
}

const TConcept *term_codesys_find(const TCodeSys *cs, const char *code)
{
    return cs && code ? term_map_get(&cs->by_code, code) : NULL;
}

/* ---------------------------------------------------------------- value sets */

static void include_parse(Arena *a, json_t *j, TInclude *out)
{
    memset(out, 0, sizeof *out);
    out->system = dup_or_null(a, json_str(j, "system"));
    out->version = dup_or_null(a, json_str(j, "version"));
    /* Filters and imported value sets: not met in the NOS files; such an include is left
     * unexpanded and makes the expansion incomplete rather than wrong. */
    if (json_array_size(json_object_get(j, "filter")) ||
        json_array_size(json_object_get(j, "valueSet")) || !out->system) {
        out->unsupported = true;
        return;
    }
    json_t *cs = json_object_get(j, "concept"), *c;
    size_t i, n = json_array_size(cs);
    if (n == 0) {
        out->whole = true;
        return;
    }
    out->codes = arena_alloc(a, n * sizeof *out->codes);
    out->displays = arena_alloc(a, n * sizeof *out->displays);
    json_array_foreach(cs, i, c)
    {
        const char *code = json_str(c, "code");
        if (!code)
            continue;
        out->codes[out->ncodes] = arena_strdup(a, code);
        out->displays[out->ncodes++] = dup_or_null(a, json_str(c, "display"));
    }
}

static TInclude *includes_parse(Arena *a, json_t *list, size_t *n)
{
    *n = json_array_size(list);
    if (!*n)
        return NULL;
    TInclude *v = arena_alloc(a, *n * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        include_parse(a, json_array_get(list, i), &v[i]);
    return v;
}

const char *term_url_alias(Arena *a, const char *url)
{
    const char *p = strstr(url, ".tabs/");
    if (!p)
        return NULL;
    size_t head = (size_t)(p - url);
    char *r = arena_alloc(a, strlen(url) - 5 + 1);
    memcpy(r, url, head);
    strcpy(r + head, p + 5);
    return r;
}

int term_valueset_parse(const char *res_id, json_t *res, TValueSet **out, Diag *d)
{
    const char *url = json_str(res, "url");
    if (!url || !*url)
        return diag_set(d, ERR_INVALID, "ValueSet/%s sans url : ignoré", res_id);
    TValueSet *vs = xcalloc(1, sizeof *vs);
    atomic_init(&vs->refs, 1);
    arena_init(&vs->arena);
    Arena *a = &vs->arena;
    vs->res_id = arena_strdup(a, res_id);
    vs->url = arena_strdup(a, url);
    vs->alias = term_url_alias(a, url);
    vs->version = dup_or_null(a, json_str(res, "version"));
    const char *name = json_str(res, "name") ? json_str(res, "name") : json_str(res, "title");
    vs->name = arena_strdup(a, name ? name : res_id);
    json_t *compose = json_object_get(res, "compose");
    vs->inc = includes_parse(a, json_object_get(compose, "include"), &vs->ninc);
    vs->exc = includes_parse(a, json_object_get(compose, "exclude"), &vs->nexc);
    *out = vs;
    return 0;
}

void term_valueset_unref(TValueSet *vs)
{
    if (!vs || atomic_fetch_sub(&vs->refs, 1) != 1)
        return;
    arena_cleanup(&vs->arena);
    free(vs);
}
