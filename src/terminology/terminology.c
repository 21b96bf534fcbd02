/* terminology: the Terminology object — loading, change application, snapshot swap, queries. */
#include "terminology/terminology.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "terminology/term_int.h"

#define LOAD_PAGE "100"

typedef struct Pending {
    char *type;
    char *id;
} Pending;

struct Terminology {
    Store *store;
    const FhirRegistry *reg;
    TBindings *bindings;
    pthread_mutex_t lock;   /* guards cur and pending; held only for pointer work */
    pthread_mutex_t update; /* one snapshot rebuild at a time */
    Snapshot *cur;          /* t holds one reference */
    Pending *pending;
    size_t npending, cappending;
    atomic_bool dirty; /* pending is not empty */
};

/* ---------------------------------------------------------------- snapshots */

static Snapshot *snapshot_new(size_t ncs, size_t nvs)
{
    Snapshot *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    arena_init(&s->arena);
    term_map_init(&s->cs_by_id, ncs);
    term_map_init(&s->vs_by_id, nvs);
    return s;
}

static Snapshot *acquire(Terminology *t)
{
    if (atomic_load(&t->dirty))
        terminology_refresh(t);
    pthread_mutex_lock(&t->lock);
    Snapshot *s = t->cur;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&t->lock);
    return s;
}

static void release(Snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        term_snapshot_free(s);
}

/* One resource's new state: obj is its parsed form, or NULL when it is gone (or unusable). */
typedef struct Update {
    bool is_vs;
    char *id;
    void *obj;
} Update;

typedef struct Updates {
    Update *v;
    size_t n, cap;
} Updates;

static void updates_add(Updates *u, bool is_vs, const char *id, void *obj)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->v = xrealloc(u->v, u->cap * sizeof *u->v);
    }
    u->v[u->n++] = (Update){is_vs, xstrdup(id), obj};
}

static void updates_cleanup(Updates *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].id);
    free(u->v);
}

/* Parse a stored body into an update (NULL object, with a warning, when it is unusable). */
static void update_from_text(Updates *u, bool is_vs, const char *id, const char *body, size_t len)
{
    json_t *res = NULL;
    Diag d = {{0}, {0}};
    void *obj = NULL;
    int rc = json_parse(body, len, &res, &d);
    if (rc == 0)
        rc = is_vs ? term_valueset_parse(id, res, (TValueSet **)&obj, &d)
                   : term_codesys_parse(id, res, (TCodeSys **)&obj, &d);
    if (rc != 0)
        log_warn("terminology: %s/%s skipped: %s", is_vs ? "ValueSet" : "CodeSystem", id, d.msg);
    json_decref(res);
    updates_add(u, is_vs, id, obj);
}

/* A new snapshot: `old`'s resources, with those of `u` replaced or removed. Takes the
 * objects of u. */
static Snapshot *snapshot_apply(const Snapshot *old, Updates *u)
{
    Snapshot *s =
        snapshot_new(old ? old->cs_by_id.n + u->n : u->n, old ? old->vs_by_id.n + u->n : u->n);
    TermMap changed[2];
    term_map_init(&changed[0], u->n);
    term_map_init(&changed[1], u->n);
    for (size_t i = 0; i < u->n; i++)
        term_map_put(&changed[u->v[i].is_vs], u->v[i].id, &u->v[i]);
    for (size_t i = 0; old && i < old->cs_by_id.cap; i++) {
        TCodeSys *cs = old->cs_by_id.vals[i];
        if (old->cs_by_id.keys[i] && !term_map_get(&changed[0], cs->res_id)) {
            atomic_fetch_add(&cs->refs, 1);
            term_map_put(&s->cs_by_id, cs->res_id, cs);
        }
    }
    for (size_t i = 0; old && i < old->vs_by_id.cap; i++) {
        TValueSet *vs = old->vs_by_id.vals[i];
        if (old->vs_by_id.keys[i] && !term_map_get(&changed[1], vs->res_id)) {
            atomic_fetch_add(&vs->refs, 1);
            term_map_put(&s->vs_by_id, vs->res_id, vs);
        }
    }
    /* the last update of an id wins; earlier ones of the same id are dropped */
    for (size_t i = 0; i < u->n; i++) {
        Update *x = &u->v[i];
        bool last = term_map_get(&changed[x->is_vs], x->id) == x;
        if (x->is_vs) {
            TValueSet *vs = x->obj;
            if (vs && last)
                term_map_put(&s->vs_by_id, vs->res_id, vs);
            else
                term_valueset_unref(vs);
        } else {
            TCodeSys *cs = x->obj;
            if (cs && last)
                term_map_put(&s->cs_by_id, cs->res_id, cs);
            else
                term_codesys_unref(cs);
        }
        x->obj = NULL;
    }
    term_map_cleanup(&changed[0]);
    term_map_cleanup(&changed[1]);
    term_snapshot_index(s);
    return s;
}

static void snapshot_swap(Terminology *t, Snapshot *s)
{
    pthread_mutex_lock(&t->lock);
    Snapshot *old = t->cur;
    t->cur = s;
    pthread_mutex_unlock(&t->lock);
    release(old);
}

/* ---------------------------------------------------------------- loading */

/* Every current resource of `type`, page by page, into u. */
static int load_type(Terminology *t, const char *type, Updates *u, Diag *d)
{
    char *cursor = NULL;
    int rc = 0;
    do {
        QueryParam qp[2] = {{"_count", LOAD_PAGE}, {"_cursor", cursor}};
        SearchPlan *plan = NULL;
        Arena a;
        arena_init(&a);
        StorePage page;
        rc = fhir_search_parse(t->reg, type, qp, cursor ? 2 : 1, true, &plan, d);
        if (rc == 0)
            rc = store_search(t->store, &a, plan, &page, d);
        free(cursor);
        cursor = NULL;
        if (rc == 0) {
            for (size_t i = 0; i < page.nmatches; i++)
                update_from_text(u, strcmp(type, "ValueSet") == 0, page.matches[i].id,
                                 page.matches[i].body, page.matches[i].len);
            if (page.next_cursor)
                cursor = xstrdup(page.next_cursor);
        }
        search_plan_free(plan);
        arena_cleanup(&a);
    } while (rc == 0 && cursor);
    free(cursor);
    return rc;
}

int terminology_open(const TerminologyOptions *o, Terminology **out, Diag *d)
{
    Terminology *t = xcalloc(1, sizeof *t);
    t->store = o->store;
    t->reg = o->reg;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->update, NULL);
    atomic_init(&t->dirty, false);
    Updates u = {0};
    int rc = 0;
    if (o->bindings_path)
        rc = term_bindings_load(o->bindings_path, &t->bindings, d);
    if (rc == 0)
        rc = load_type(t, "CodeSystem", &u, d);
    if (rc == 0)
        rc = load_type(t, "ValueSet", &u, d);
    if (rc != 0) {
        for (size_t i = 0; i < u.n; i++)
            u.v[i].is_vs ? term_valueset_unref(u.v[i].obj) : term_codesys_unref(u.v[i].obj);
        updates_cleanup(&u);
        terminology_free(t);
        return rc;
    }
    t->cur = snapshot_apply(NULL, &u);
    updates_cleanup(&u);
    *out = t;
    return 0;
}

void terminology_free(Terminology *t)
{
    if (!t)
        return;
    release(t->cur);
    for (size_t i = 0; i < t->npending; i++) {
        free(t->pending[i].type);
        free(t->pending[i].id);
    }
    free(t->pending);
    term_bindings_free(t->bindings);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->update);
    free(t);
}

void terminology_note_change(Terminology *t, const char *type, const char *id)
{
    if (!t || !type || !id || (strcmp(type, "CodeSystem") != 0 && strcmp(type, "ValueSet") != 0))
        return;
    pthread_mutex_lock(&t->lock);
    if (t->npending == t->cappending) {
        t->cappending = t->cappending ? t->cappending * 2 : 16;
        t->pending = xrealloc(t->pending, t->cappending * sizeof *t->pending);
    }
    t->pending[t->npending++] = (Pending){xstrdup(type), xstrdup(id)};
    atomic_store(&t->dirty, true);
    pthread_mutex_unlock(&t->lock);
}

void terminology_refresh(Terminology *t)
{
    pthread_mutex_lock(&t->update);
    pthread_mutex_lock(&t->lock);
    Pending *p = t->pending;
    size_t n = t->npending;
    t->pending = NULL;
    t->npending = t->cappending = 0;
    atomic_store(&t->dirty, false);
    Snapshot *old = t->cur;
    atomic_fetch_add(&old->refs, 1);
    pthread_mutex_unlock(&t->lock);

    Updates u = {0};
    for (size_t i = 0; i < n; i++) {
        bool is_vs = strcmp(p[i].type, "ValueSet") == 0;
        Arena a;
        arena_init(&a);
        StoredResource r;
        Diag d = {{0}, {0}};
        int rc = store_read(t->store, &a, p[i].type, p[i].id, &r, &d);
        if (rc == 0)
            update_from_text(&u, is_vs, p[i].id, r.body, r.len);
        else if (rc == ERR_NOT_FOUND || rc == ERR_GONE)
            updates_add(&u, is_vs, p[i].id, NULL);
        else /* keep what we had: a later change of the same resource will retry */
            log_warn("terminology: cannot re-read %s/%s: %s", p[i].type, p[i].id, d.msg);
        arena_cleanup(&a);
        free(p[i].type);
        free(p[i].id);
    }
    free(p);
    if (u.n)
        snapshot_swap(t, snapshot_apply(old, &u));
    updates_cleanup(&u);
    release(old);
    pthread_mutex_unlock(&t->update);
}

void terminology_counts(Terminology *t, size_t *code_systems, size_t *value_sets, size_t *concepts)
{
    Snapshot *s = acquire(t);
    if (code_systems)
        *code_systems = s->cs_by_id.n;
    if (value_sets)
        *value_sets = s->vs_by_id.n;
    if (concepts)
        *concepts = s->nconcepts;
    release(s);
}

/* ---------------------------------------------------------------- lookup */

static const char *dup(Arena *a, const char *s)
{
    return s ? arena_strdup(a, s) : NULL;
}

int terminology_lookup(Terminology *t, Arena *a, const char *system, const char *version,
                       const char *code, TermConcept *out, Diag *d)
{
    Snapshot *s = acquire(t);
    int rc = 0;
    const TCodeSys *cs = term_snapshot_cs(s, system, version);
    const TConcept *c = term_codesys_find(cs, code);
    if (!cs) {
        rc = diag_set(d, ERR_NOT_FOUND, "système de codes inconnu : %s%s%s", system ? system : "",
                      version ? " version " : "", version ? version : "");
        goto done;
    }
    if (!c) {
        rc = diag_set(d, ERR_NOT_FOUND, "code « %s » inconnu dans le système %s", code ? code : "",
                      system);
        goto done;
    }
    TermConcept r = {.system = dup(a, cs->url),
                     .version = dup(a, cs->version),
                     .name = dup(a, cs->name),
                     .code = dup(a, c->code),
                     .display = dup(a, c->display),
                     .ndesignations = c->ndesig,
                     .nproperties = c->nprops};
    r.designations = arena_alloc(a, (c->ndesig + 1) * sizeof *r.designations);
    for (uint32_t i = 0; i < c->ndesig; i++) {
        const TermDesignation *x = &c->desig[i];
        r.designations[i] =
            (TermDesignation){dup(a, x->language), dup(a, x->use_system), dup(a, x->use_code),
                              dup(a, x->use_display), dup(a, x->value)};
    }
    r.properties = arena_alloc(a, (c->nprops + 1) * sizeof *r.properties);
    for (uint32_t i = 0; i < c->nprops; i++)
        r.properties[i] = (TermProperty){dup(a, c->props[i].code), dup(a, c->props[i].type),
                                         dup(a, c->props[i].value)};
    *out = r;
done:
    release(s);
    return rc;
}

/* ---------------------------------------------------------------- validation */

/* Does `display` name concept c (or, when c is unknown, equal `fallback`), accents, case and
 * spacing aside? */
static bool display_matches(const char *display, const TConcept *c, const char *fallback)
{
    char *f = text_fold(display, strlen(display));
    bool ok = false;
    if (!f)
        return false;
    if (c) {
        ok = strcmp(f, c->folded) == 0;
        for (uint32_t i = 0; !ok && i < c->ndesig; i++)
            ok = strcmp(f, c->desig_folded[i]) == 0;
    }
    if (!ok && fallback) {
        char *g = text_fold(fallback, strlen(fallback));
        ok = g && strcmp(f, g) == 0;
        free(g);
    }
    free(f);
    return ok;
}

static void check_display(Arena *a, const char *display, const TConcept *c, const char *expected,
                          const char *code, TermValidation *out)
{
    if (!display || display_matches(display, c, expected))
        return;
    out->result = false;
    out->message = arena_printf(a,
                                "le libellé « %s » ne correspond pas au code %s (libellé "
                                "attendu : « %s »)",
                                display, code, expected ? expected : "");
}

int terminology_validate_vs(Terminology *t, Arena *a, const char *url, const char *version,
                            const char *system, const char *code, const char *display,
                            TermValidation *out, Diag *d)
{
    Snapshot *s = acquire(t);
    int rc = 0;
    const TExpansion *e = term_snapshot_vs(s, url, version);
    if (!e) {
        rc = diag_set(d, ERR_NOT_FOUND, "jeu de valeurs inconnu : %s%s%s", url ? url : "",
                      version ? " version " : "", version ? version : "");
        goto done;
    }
    if (!code) {
        rc = diag_set(d, ERR_INVALID, "code manquant");
        goto done;
    }
    const TExpCode *hit = NULL;
    bool undecided = false;
    for (size_t i = 0; !hit && i < e->nsystems; i++) {
        if (system && strcmp(system, e->systems[i]) != 0)
            continue;
        hit = term_expansion_find(e, e->systems[i], code);
        undecided |= e->undecided[i];
    }
    TermValidation r = {0};
    if (hit) {
        r.result = true;
        r.display = dup(a, hit->display);
        check_display(a, display, hit->concept, hit->display, code, &r);
    } else if (undecided) {
        rc = diag_set(d, ERR_UNSUPPORTED,
                      "impossible de valider le code « %s » : le jeu de valeurs %s inclut un "
                      "système de codes qui n'est pas chargé",
                      code, e->vs->name);
        goto done;
    } else if (system && term_expansion_system(e, system) < 0) {
        r.message = arena_printf(a, "le système %s n'appartient pas au jeu de valeurs %s", system,
                                 e->vs->name);
    } else {
        r.message =
            arena_printf(a, "le code « %s »%s%s n'appartient pas au jeu de valeurs %s", code,
                         system ? " du système " : "", system ? system : "", e->vs->name);
    }
    *out = r;
done:
    release(s);
    return rc;
}

int terminology_validate_cs(Terminology *t, Arena *a, const char *url, const char *version,
                            const char *code, const char *display, TermValidation *out, Diag *d)
{
    Snapshot *s = acquire(t);
    int rc = 0;
    const TCodeSys *cs = term_snapshot_cs(s, url, version);
    if (!cs) {
        rc = diag_set(d, ERR_NOT_FOUND, "système de codes inconnu : %s%s%s", url ? url : "",
                      version ? " version " : "", version ? version : "");
        goto done;
    }
    if (!code) {
        rc = diag_set(d, ERR_INVALID, "code manquant");
        goto done;
    }
    const TConcept *c = term_codesys_find(cs, code);
    TermValidation r = {0};
    if (c) {
        r.result = true;
        r.display = dup(a, c->display);
        check_display(a, display, c, c->display, code, &r);
    } else {
        r.message =
            arena_printf(a, "le code « %s » n'existe pas dans le système %s", code, cs->url);
    }
    *out = r;
done:
    release(s);
    return rc;
}

int terminology_expand(Terminology *t, Arena *a, const char *url, TermCode **out, size_t *n,
                       bool *complete, Diag *d)
{
    Snapshot *s = acquire(t);
    int rc = 0;
    const TExpansion *e = term_snapshot_vs(s, url, NULL);
    if (!e) {
        rc = diag_set(d, ERR_NOT_FOUND, "jeu de valeurs inconnu : %s", url ? url : "");
    } else {
        TermCode *v = arena_alloc(a, (e->n + 1) * sizeof *v);
        for (size_t i = 0; i < e->n; i++)
            v[i] = (TermCode){dup(a, e->codes[i].system), dup(a, e->codes[i].code),
                              dup(a, e->codes[i].display)};
        *out = v;
        *n = e->n;
        if (complete)
            *complete = e->complete;
    }
    release(s);
    return rc;
}

bool terminology_has_valueset(Terminology *t, const char *url)
{
    Snapshot *s = acquire(t);
    bool r = term_snapshot_vs(s, url, NULL) != NULL;
    release(s);
    return r;
}

/* ---------------------------------------------------------------- display search */

static bool concept_matches(const TConcept *c, const char *q, size_t qlen, bool prefix)
{
    if (prefix ? strncmp(c->folded, q, qlen) == 0 : strstr(c->folded, q) != NULL)
        return true;
    for (uint32_t i = 0; i < c->ndesig; i++)
        if (prefix ? strncmp(c->desig_folded[i], q, qlen) == 0
                   : strstr(c->desig_folded[i], q) != NULL)
            return true;
    return false;
}

size_t terminology_search(Terminology *t, Arena *a, const char *system, const char *text,
                          TermMatch mode, TermCode *out, size_t max)
{
    char *q = text ? text_fold(text, strlen(text)) : NULL;
    if (!q || !*q || max == 0) {
        free(q);
        return 0;
    }
    size_t qlen = strlen(q), n = 0;
    Snapshot *s = acquire(t);
    const TCodeSys *only = system ? term_snapshot_cs(s, system, NULL) : NULL;
    const TCodeSys *const *list = only ? &only : s->cs_list;
    size_t nlist = only ? 1 : system ? 0 : s->ncs_list;
    /* pass 0: prefix matches; pass 1 (contains mode): the other matches */
    for (int pass = 0; pass < (mode == TERM_MATCH_CONTAINS ? 2 : 1); pass++) {
        for (size_t k = 0; k < nlist && n < max; k++) {
            const TCodeSys *cs = list[k];
            for (size_t i = 0; i < cs->n && n < max; i++) {
                const TConcept *c = &cs->concepts[i];
                bool pre = concept_matches(c, q, qlen, true);
                if (pass == 0 ? !pre : pre || !concept_matches(c, q, qlen, false))
                    continue;
                out[n++] = (TermCode){dup(a, cs->alias ? cs->alias : cs->url), dup(a, c->code),
                                      dup(a, c->display)};
            }
        }
    }
    release(s);
    free(q);
    return n;
}

/* ---------------------------------------------------------------- communes and checks */

const Snapshot *term_acquire(Terminology *t)
{
    return acquire(t);
}

void term_release(const Snapshot *s)
{
    release((Snapshot *)s);
}

int terminology_check_resource(Terminology *t, const char *type, json_t *res, Diag *d)
{
    if (!t || !t->bindings)
        return 0;
    Snapshot *s = acquire(t);
    int rc = 0;
    if (s->vs_by_id.n || s->cs_by_id.n) /* nothing loaded: nothing to judge by */
        rc = term_bindings_check(t->bindings, s, type, res, d);
    release(s);
    return rc;
}

size_t terminology_binding_count(const Terminology *t)
{
    return t && t->bindings ? term_bindings_count(t->bindings) : 0;
}
