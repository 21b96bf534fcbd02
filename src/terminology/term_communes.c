/* terminology: the communes of the TRE_R13 CodeSystem — lookup by INSEE code, by postal code,
 * completion for address entry. A linear scan of ~37,000 communes costs well under a
 * millisecond; the best `max` are kept by insertion, so no index is worth its upkeep. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "terminology/term_int.h"

#define COMPLETE_MAX 100

typedef struct Ranked {
    const TCommune *c;
    int rank; /* 0: the whole name (or a code) starts with the query, 1: a later word does */
} Ranked;

/* Active first, then rank, then population (largest first), then name and code. */
static bool before(const Ranked *a, const Ranked *b)
{
    if (a->c->active != b->c->active)
        return a->c->active;
    if (a->rank != b->rank)
        return a->rank < b->rank;
    if (a->c->population != b->c->population)
        return a->c->population > b->c->population;
    int k = strcmp(a->c->folded, b->c->folded);
    if (k != 0)
        return k < 0;
    return strcmp(a->c->concept->code, b->c->concept->code) < 0;
}

/* Keep the best `max` in `top` (sorted). */
static void keep(Ranked *top, size_t *n, size_t max, Ranked r)
{
    if (*n == max && !before(&r, &top[max - 1]))
        return;
    size_t i = *n < max ? (*n)++ : max - 1;
    while (i > 0 && before(&r, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = r;
}

static void copy_out(Arena *a, const TCommune *c, TermCommune *o)
{
    o->code = arena_strdup(a, c->concept->code);
    o->name = arena_strdup(a, c->concept->display);
    o->departement = c->departement ? arena_strdup(a, c->departement) : NULL;
    o->region = c->region ? arena_strdup(a, c->region) : NULL;
    o->npostal = c->npostal;
    o->postal_codes = arena_alloc(a, (c->npostal + 1) * sizeof *o->postal_codes);
    for (uint32_t i = 0; i < c->npostal; i++)
        o->postal_codes[i] = arena_strdup(a, c->postal[i]);
    o->lat = c->lat;
    o->lon = c->lon;
    o->has_position = c->has_position;
    o->population = c->population;
    o->active = c->active;
}

static size_t finish(Arena *a, const Ranked *top, size_t n, TermCommune *out)
{
    for (size_t i = 0; i < n; i++)
        copy_out(a, top[i].c, &out[i]);
    return n;
}

int terminology_commune(Terminology *t, Arena *a, const char *insee, TermCommune *out)
{
    const Snapshot *s = term_acquire(t);
    const TCodeSys *cs = s->communes;
    const TConcept *c = term_codesys_find(cs, insee);
    int rc = ERR_NOT_FOUND;
    if (c && cs->communes) {
        copy_out(a, &cs->communes[c - cs->concepts], out);
        rc = 0;
    }
    term_release(s);
    return rc;
}

size_t terminology_communes_by_postal(Terminology *t, Arena *a, const char *postal,
                                      TermCommune *out, size_t max)
{
    if (!postal || max == 0)
        return 0;
    if (max > COMPLETE_MAX)
        max = COMPLETE_MAX;
    Ranked top[COMPLETE_MAX];
    size_t n = 0;
    const Snapshot *s = term_acquire(t);
    const TCodeSys *cs = s->communes;
    for (size_t i = 0; cs && i < cs->ncommunes; i++) {
        const TCommune *c = &cs->communes[i];
        for (uint32_t k = 0; k < c->npostal; k++)
            if (strcmp(c->postal[k], postal) == 0) {
                keep(top, &n, max, (Ranked){c, 0});
                break;
            }
    }
    n = finish(a, top, n, out);
    term_release(s);
    return n;
}

static bool ci_prefix(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (tolower((unsigned char)*s) != tolower((unsigned char)*p))
            return false;
    return true;
}

size_t terminology_communes_complete(Terminology *t, Arena *a, const char *q, TermCommune *out,
                                     size_t max)
{
    if (!q || max == 0)
        return 0;
    if (max > COMPLETE_MAX)
        max = COMPLETE_MAX;
    while (isspace((unsigned char)*q))
        q++;
    /* digits: a postal code or an INSEE code ("2A004" too) being typed */
    bool code = isdigit((unsigned char)q[0]);
    char *fq = code ? NULL : term_fold_words(NULL, q);
    if (!code && (!fq || !*fq)) {
        free(fq);
        return 0;
    }
    size_t qlen = code ? strlen(q) : strlen(fq);
    Ranked top[COMPLETE_MAX];
    size_t n = 0;
    const Snapshot *s = term_acquire(t);
    const TCodeSys *cs = s->communes;
    for (size_t i = 0; cs && i < cs->ncommunes; i++) {
        const TCommune *c = &cs->communes[i];
        int rank = -1;
        if (code) {
            if (ci_prefix(c->concept->code, q))
                rank = 0;
            for (uint32_t k = 0; rank < 0 && k < c->npostal; k++)
                if (strncmp(c->postal[k], q, qlen) == 0)
                    rank = 0;
        } else if (strncmp(c->folded, fq, qlen) == 0) {
            rank = 0;
        } else {
            for (const char *p = strstr(c->folded, fq); p; p = strstr(p + 1, fq))
                if (p > c->folded && p[-1] == ' ') {
                    rank = 1;
                    break;
                }
        }
        if (rank >= 0)
            keep(top, &n, max, (Ranked){c, rank});
    }
    n = finish(a, top, n, out);
    term_release(s);
    free(fq);
    return n;
}
