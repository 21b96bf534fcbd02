/* terminology: a snapshot's url indexes and value set expansions. */
#include <stdlib.h>
#include <string.h>

#include "terminology/term_int.h"

static const char *key2(Arena *a, const char *x, const char *y)
{
    return arena_printf(a, "%s|%s", x, y);
}

/* Is `a` a better default than `b` for the plain url? The highest version; on a tie (two
 * resources with the same url and version) the greater resource id, so the choice does not
 * depend on hash order. */
static bool better_cs(const TCodeSys *a, const TCodeSys *b)
{
    int c = strcmp(a->version ? a->version : "", b->version ? b->version : "");
    return c > 0 || (c == 0 && strcmp(a->res_id, b->res_id) > 0);
}

static bool better_vs(const TValueSet *a, const TValueSet *b)
{
    int c = strcmp(a->version ? a->version : "", b->version ? b->version : "");
    return c > 0 || (c == 0 && strcmp(a->res_id, b->res_id) > 0);
}

const TCodeSys *term_snapshot_cs(const Snapshot *s, const char *url, const char *version)
{
    if (!url)
        return NULL;
    if (!version)
        return term_map_get(&s->cs_by_url, url);
    char *k = xasprintf("%s|%s", url, version);
    const TCodeSys *cs = term_map_get(&s->cs_by_url, k);
    free(k);
    return cs;
}

const TExpansion *term_snapshot_vs(const Snapshot *s, const char *url, const char *version)
{
    if (!url)
        return NULL;
    if (!version)
        return term_map_get(&s->vs_by_url, url);
    char *k = xasprintf("%s|%s", url, version);
    const TExpansion *e = term_map_get(&s->vs_by_url, k);
    free(k);
    return e;
}

const TExpCode *term_expansion_find(const TExpansion *e, const char *system, const char *code)
{
    if (!e || !system || !code)
        return NULL;
    char *k = xasprintf("%s|%s", system, code);
    const TExpCode *c = term_map_get(&e->index, k);
    free(k);
    return c;
}

int term_expansion_system(const TExpansion *e, const char *system)
{
    for (size_t i = 0; system && i < e->nsystems; i++)
        if (strcmp(e->systems[i], system) == 0)
            return (int)i;
    return -1;
}

/* ---------------------------------------------------------------- expansion */

typedef struct Expander {
    const Snapshot *s;
    TExpansion *e;
    size_t cap;
    TermMap excluded;        /* "system|code" */
    const char **ex_systems; /* excluded whole */
    size_t nex_systems;
} Expander;

static int system_add(TExpansion *e, const char *system)
{
    int i = term_expansion_system(e, system);
    if (i >= 0)
        return i;
    e->systems = xrealloc(e->systems, (e->nsystems + 1) * sizeof *e->systems);
    e->undecided = xrealloc(e->undecided, (e->nsystems + 1) * sizeof *e->undecided);
    e->systems[e->nsystems] = system;
    e->undecided[e->nsystems] = false;
    return (int)e->nsystems++;
}

static void code_add(Expander *x, const char *system, const char *code, const char *display,
                     const TConcept *concept)
{
    TExpansion *e = x->e;
    const char *key = key2(&e->arena, system, code);
    if (term_map_get(&e->index, key) || term_map_get(&x->excluded, key))
        return;
    for (size_t i = 0; i < x->nex_systems; i++)
        if (strcmp(x->ex_systems[i], system) == 0)
            return;
    if (e->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 32;
        e->codes = xrealloc(e->codes, x->cap * sizeof *e->codes);
    }
    TExpCode *c = &e->codes[e->n++];
    c->system = system;
    c->code = code;
    c->display = display ? display : concept ? concept->display : "";
    c->concept = concept;
    /* the index points into e->codes, which may still move: filled once complete */
}

static const TCodeSys *include_cs(const Snapshot *s, const TInclude *in)
{
    const TCodeSys *cs = term_snapshot_cs(s, in->system, in->version);
    /* A pinned version that is not loaded: the loaded one is a better judge than none. */
    return cs ? cs : term_snapshot_cs(s, in->system, NULL);
}

static char present; /* value of a set member */

static TExpansion *expand(const Snapshot *s, const TValueSet *vs)
{
    TExpansion *e = xcalloc(1, sizeof *e);
    arena_init(&e->arena);
    e->vs = vs;
    e->complete = true;
    Expander x = {.s = s, .e = e};
    term_map_init(&x.excluded, 16);
    for (size_t i = 0; i < vs->nexc; i++) {
        const TInclude *in = &vs->exc[i];
        if (in->unsupported) {
            e->complete = false;
        } else if (in->whole) {
            x.ex_systems = xrealloc(x.ex_systems, (x.nex_systems + 1) * sizeof *x.ex_systems);
            x.ex_systems[x.nex_systems++] = in->system;
        } else {
            for (size_t k = 0; k < in->ncodes; k++)
                term_map_put(&x.excluded, key2(&e->arena, in->system, in->codes[k]), &present);
        }
    }
    for (size_t i = 0; i < vs->ninc; i++) {
        const TInclude *in = &vs->inc[i];
        if (in->unsupported) {
            e->complete = false;
            if (in->system)
                e->undecided[system_add(e, in->system)] = true;
            continue;
        }
        int si = system_add(e, in->system);
        const TCodeSys *cs = include_cs(s, in);
        if (in->whole) {
            if (!cs) {
                e->undecided[si] = true;
                e->complete = false;
                continue;
            }
            for (size_t k = 0; k < cs->n; k++)
                code_add(&x, in->system, cs->concepts[k].code, NULL, &cs->concepts[k]);
        } else {
            for (size_t k = 0; k < in->ncodes; k++)
                code_add(&x, in->system, in->codes[k], in->displays[k],
                         term_codesys_find(cs, in->codes[k]));
        }
    }
    term_map_init(&e->index, e->n);
    for (size_t i = 0; i < e->n; i++)
        term_map_put(&e->index, key2(&e->arena, e->codes[i].system, e->codes[i].code),
                     &e->codes[i]);
    term_map_cleanup(&x.excluded);
    free(x.ex_systems);
    return e;
}

static void expansion_free(TExpansion *e)
{
    if (!e)
        return;
    term_map_cleanup(&e->index);
    free(e->codes);
    free(e->systems);
    free(e->undecided);
    arena_cleanup(&e->arena);
    free(e);
}

/* ---------------------------------------------------------------- snapshot */

static int cs_cmp_url(const void *a, const void *b)
{
    return strcmp((*(const TCodeSys *const *)a)->url, (*(const TCodeSys *const *)b)->url);
}

void term_snapshot_index(Snapshot *s)
{
    term_map_init(&s->cs_by_url, s->cs_by_id.n * 2);
    term_map_init(&s->vs_by_url, s->vs_by_id.n * 3);
    s->nconcepts = 0;
    s->communes = NULL;
    for (size_t i = 0; i < s->cs_by_id.cap; i++) {
        TCodeSys *cs = s->cs_by_id.vals[i];
        if (!s->cs_by_id.keys[i] || !cs)
            continue;
        s->nconcepts += cs->n;
        const char *keys[4] = {
            cs->url, cs->alias, cs->version ? key2(&s->arena, cs->url, cs->version) : NULL,
            cs->version && cs->alias ? key2(&s->arena, cs->alias, cs->version) : NULL};
        for (int k = 0; k < 4; k++) {
            if (!keys[k])
                continue;
            const TCodeSys *cur = term_map_get(&s->cs_by_url, keys[k]);
            if (!cur || better_cs(cs, cur))
                term_map_put(&s->cs_by_url, keys[k], cs);
        }
    }
    s->communes = term_map_get(&s->cs_by_url, TERM_COMMUNES_URL);
    s->cs_list = xcalloc(s->cs_by_id.n ? s->cs_by_id.n : 1, sizeof *s->cs_list);
    s->ncs_list = 0;
    for (size_t i = 0; i < s->cs_by_id.cap; i++) {
        const TCodeSys *cs = s->cs_by_id.vals[i];
        if (s->cs_by_id.keys[i] && cs && term_map_get(&s->cs_by_url, cs->url) == cs)
            s->cs_list[s->ncs_list++] = cs;
    }
    qsort(s->cs_list, s->ncs_list, sizeof *s->cs_list, cs_cmp_url);
    s->exps = xcalloc(s->vs_by_id.n ? s->vs_by_id.n : 1, sizeof *s->exps);
    s->nexps = 0;
    for (size_t i = 0; i < s->vs_by_id.cap; i++) {
        TValueSet *vs = s->vs_by_id.vals[i];
        if (!s->vs_by_id.keys[i] || !vs)
            continue;
        TExpansion *e = expand(s, vs);
        s->exps[s->nexps++] = e;
        const char *keys[3] = {vs->url, vs->alias,
                               vs->version ? key2(&s->arena, vs->url, vs->version) : NULL};
        for (int k = 0; k < 3; k++) {
            if (!keys[k])
                continue;
            const TExpansion *cur = term_map_get(&s->vs_by_url, keys[k]);
            if (!cur || better_vs(vs, cur->vs))
                term_map_put(&s->vs_by_url, keys[k], e);
        }
    }
}

void term_snapshot_free(Snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cs_by_id.cap; i++)
        if (s->cs_by_id.keys[i])
            term_codesys_unref(s->cs_by_id.vals[i]);
    for (size_t i = 0; i < s->vs_by_id.cap; i++)
        if (s->vs_by_id.keys[i])
            term_valueset_unref(s->vs_by_id.vals[i]);
    for (size_t i = 0; i < s->nexps; i++)
        expansion_free(s->exps[i]);
    free(s->exps);
    free(s->cs_list);
    term_map_cleanup(&s->cs_by_id);
    term_map_cleanup(&s->vs_by_id);
    term_map_cleanup(&s->cs_by_url);
    term_map_cleanup(&s->vs_by_url);
    arena_cleanup(&s->arena);
    free(s);
}
