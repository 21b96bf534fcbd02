/* fhir search: query parameters -> SearchPlan. */
#include "fhir/fhir.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLAUSES 64
#define MAX_VALUES 100
#define MAX_CHAIN 3
#define MAX_INCLUDES 16
#define MAX_SORTS 8

/* Internal: a parameter the server does not know or does not support. */
#define ERR_UNKNOWN_PARAM 1

typedef struct Vec {
    void *items;
    size_t n, cap, size;
} Vec;

static void *vec_push(Arena *a, Vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *items = arena_alloc(a, cap * v->size);
        if (v->n)
            memcpy(items, v->items, v->n * v->size);
        v->items = items;
        v->cap = cap;
    }
    void *slot = (char *)v->items + v->n++ * v->size;
    memset(slot, 0, v->size);
    return slot;
}

void search_plan_free(SearchPlan *p)
{
    if (!p)
        return;
    Arena a = p->arena;
    arena_cleanup(&a);
}

static SearchPlan *plan_new(const char *type)
{
    Arena a;
    arena_init(&a);
    SearchPlan *p = arena_alloc(&a, sizeof *p);
    memset(p, 0, sizeof *p);
    p->type = arena_strdup(&a, type);
    p->count = SEARCH_COUNT_DEFAULT;
    p->total = TOTAL_ACCURATE;
    p->arena = a;
    return p;
}

/* The arena struct lives inside the plan it allocated; keep p->arena current after allocs. */
#define PA(p) (&(p)->arena)

/* ---------------------------------------------------------------- values */

/* Split `s` on unescaped `sep` into at most `max` pieces, unescaping "\\x" sequences.
 * Returns the count, or -1 when there are more than `max` pieces. */
static int split_escaped(Arena *a, const char *s, char sep, char **out, int max)
{
    int n = 0;
    size_t len = strlen(s);
    char *cur = arena_alloc(a, len + 1);
    size_t k = 0;
    for (size_t i = 0;; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            cur[k++] = s[++i];
            continue;
        }
        if (s[i] == sep || s[i] == 0) {
            if (n == max)
                return -1;
            cur[k] = 0;
            out[n++] = cur;
            if (s[i] == 0)
                break;
            cur = arena_alloc(a, len + 1);
            k = 0;
            continue;
        }
        cur[k++] = s[i];
    }
    return n;
}

static bool parse_prefix(const char **s, Prefix *out)
{
    static const char *names[] = {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"};
    *out = PFX_EQ;
    if (islower((unsigned char)(*s)[0]) && islower((unsigned char)(*s)[1])) {
        for (int i = 0; i < 9; i++)
            if (strncmp(*s, names[i], 2) == 0) {
                *out = (Prefix)i;
                *s += 2;
                return true;
            }
        return false; /* two letters that are no prefix */
    }
    return true;
}

/* Number with its implicit precision range (FHIR: 100 means [99.5, 100.5)). */
static bool parse_number(const char *s, double *v, double *lo, double *hi)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || errno || !isfinite(x) || strpbrk(s, "xXpPnNiI"))
        return false;
    int decimals = 0, exp10 = 0;
    const char *dot = strchr(s, '.');
    const char *e = strpbrk(s, "eE");
    if (dot)
        decimals = (int)((e ? e : s + strlen(s)) - dot - 1);
    if (e)
        exp10 = atoi(e + 1);
    double half = 0.5 * pow(10.0, (double)(exp10 - decimals));
    *v = x;
    *lo = x - half;
    *hi = x + half;
    return true;
}

static int parse_token(SearchPlan *p, const char *raw, SearchValue *v, Diag *d)
{
    char *parts[3];
    int n = split_escaped(PA(p), raw, '|', parts, 3);
    if (n == 1) {
        v->code = parts[0];
    } else if (n == 2) {
        v->system = parts[0];
        v->code = parts[1][0] ? parts[1] : NULL;
    } else {
        return diag_set(d, ERR_INVALID, "valeur de jeton invalide : '%s'", raw);
    }
    if (!v->code && (!v->system || !*v->system))
        return diag_set(d, ERR_INVALID, "valeur de jeton vide");
    return 0;
}

#define NEAR_DEFAULT_KM 50.0
#define NEAR_MAX_KM 20016.0 /* just over half the circumference (pi x 6371.0088 km): all */

/* A strict decimal: no hex, inf, nan or trailing text. */
static bool parse_decimal(const char *s, double *out)
{
    double lo, hi;
    return parse_number(s, out, &lo, &hi);
}

/* near = latitude|longitude[|distance[|units]] (FHIR R4 Location `near`, WGS84). Units are
 * UCUM: km (the default), m, [mi_i]. Without a distance the server's default radius applies. */
static int parse_near(SearchPlan *p, const char *raw, SearchValue *v, Diag *d)
{
    char *parts[5];
    int n = split_escaped(PA(p), raw, '|', parts, 5);
    if (n < 2 || n > 4)
        return diag_set(d, ERR_INVALID, "near attend latitude|longitude|distance|unité, pas '%s'",
                        raw);
    double lat, lon, dist = NEAR_DEFAULT_KM, scale = 1000.0;
    if (!parse_decimal(parts[0], &lat) || lat < -90 || lat > 90)
        return diag_set(d, ERR_INVALID, "near : latitude invalide '%s' (de -90 à 90)", parts[0]);
    if (!parse_decimal(parts[1], &lon) || lon < -180 || lon > 180)
        return diag_set(d, ERR_INVALID, "near : longitude invalide '%s' (de -180 à 180)", parts[1]);
    if (n >= 3 && *parts[2] && (!parse_decimal(parts[2], &dist) || dist < 0))
        return diag_set(d, ERR_INVALID, "near : distance invalide '%s'", parts[2]);
    if (n == 4 && *parts[3]) {
        const char *u = parts[3];
        if (strcmp(u, "km") == 0)
            scale = 1000.0;
        else if (strcmp(u, "m") == 0)
            scale = 1.0;
        else if (strcmp(u, "[mi_i]") == 0 || strcmp(u, "mi") == 0)
            scale = 1609.344;
        else
            return diag_set(d, ERR_INVALID, "near : unité '%s' non prise en charge (km, m, [mi_i])",
                            u);
    }
    v->lat = lat;
    v->lon = lon;
    v->radius_m = dist * scale;
    if (v->radius_m > NEAR_MAX_KM * 1000.0)
        v->radius_m = NEAR_MAX_KM * 1000.0;
    return 0;
}

static int parse_value(SearchPlan *p, const SearchClause *c, const char *raw, SearchValue *v,
                       Diag *d)
{
    if (c->mod == MOD_MISSING) {
        if (strcmp(raw, "true") == 0)
            v->missing = true;
        else if (strcmp(raw, "false") != 0)
            return diag_set(d, ERR_INVALID, ":missing attend true ou false, pas '%s'", raw);
        return 0;
    }
    if (c->mod == MOD_IDENTIFIER)
        return parse_token(p, raw, v, d);
    if (c->mod == MOD_OF_TYPE) {
        char *parts[3];
        if (split_escaped(PA(p), raw, '|', parts, 3) != 3 || !*parts[1] || !*parts[2])
            return diag_set(d, ERR_INVALID, ":of-type attend système|code|valeur");
        v->system = parts[0];
        v->code = arena_printf(PA(p), "%s|%s", parts[1], parts[2]);
        return 0;
    }
    switch (c->sp->type) {
    case SP_TOKEN:
        if (c->mod == MOD_TEXT) {
            char *f = text_fold(raw, strlen(raw));
            if (!f || !*f) {
                free(f);
                return diag_set(d, ERR_INVALID, "texte de recherche invalide");
            }
            v->str = arena_strdup(PA(p), f);
            free(f);
            return 0;
        }
        return parse_token(p, raw, v, d);
    case SP_STRING: {
        if (!*raw)
            return diag_set(d, ERR_INVALID, "chaîne de recherche vide");
        if (c->mod == MOD_EXACT) {
            v->str = arena_strdup(PA(p), raw);
            return 0;
        }
        char *f = text_fold(raw, strlen(raw));
        if (!f || !*f) {
            free(f);
            return diag_set(d, ERR_INVALID, "chaîne de recherche invalide (UTF-8 attendu)");
        }
        v->str = arena_strdup(PA(p), f);
        free(f);
        return 0;
    }
    case SP_REFERENCE: {
        if (!*raw)
            return diag_set(d, ERR_INVALID, "référence vide");
        const char *slash = strrchr(raw, '/');
        const char *id = slash ? slash + 1 : raw;
        if (!fhir_id_valid(id, strlen(id)))
            return diag_set(d, ERR_INVALID, "référence invalide : '%s'", raw);
        v->str = arena_strdup(PA(p), id);
        if (slash) {
            const char *ts = slash;
            while (ts > raw && ts[-1] != '/')
                ts--;
            if (!fhir_type_find(ts, (size_t)(slash - ts)))
                return diag_set(d, ERR_INVALID, "type de ressource inconnu dans '%s'", raw);
            v->ref_type = arena_strndup(PA(p), ts, (size_t)(slash - ts));
        }
        if (c->mod_type)
            v->ref_type = c->mod_type;
        return 0;
    }
    case SP_DATE: {
        const char *s = raw;
        if (!parse_prefix(&s, &v->prefix))
            return diag_set(d, ERR_INVALID, "préfixe de comparaison inconnu dans '%s'", raw);
        if (time_parse_range(s, strlen(s), &v->lo, &v->hi) != 0)
            return diag_set(d, ERR_INVALID, "date invalide : '%s'", raw);
        return 0;
    }
    case SP_NUMBER:
    case SP_QUANTITY: {
        const char *s = raw;
        if (!parse_prefix(&s, &v->prefix))
            return diag_set(d, ERR_INVALID, "préfixe de comparaison inconnu dans '%s'", raw);
        char *parts[3];
        int n = split_escaped(PA(p), s, '|', parts, 3);
        if (n < 0 || (c->sp->type == SP_NUMBER && n != 1) || n == 2)
            return diag_set(d, ERR_INVALID, "valeur numérique invalide : '%s'", raw);
        if (!parse_number(parts[0], &v->num, &v->num_lo, &v->num_hi))
            return diag_set(d, ERR_INVALID, "nombre invalide : '%s'", raw);
        if (n == 3) {
            v->system = *parts[1] ? parts[1] : NULL;
            v->code = *parts[2] ? parts[2] : NULL;
        }
        return 0;
    }
    case SP_URI:
        if (!*raw)
            return diag_set(d, ERR_INVALID, "URI vide");
        v->str = arena_strdup(PA(p), raw);
        return 0;
    case SP_SPECIAL:
        if (sp_is_geo(c->sp))
            return parse_near(p, raw, v, d);
        return diag_set(d, ERR_UNSUPPORTED, "type de paramètre non pris en charge");
    default: return diag_set(d, ERR_UNSUPPORTED, "type de paramètre non pris en charge");
    }
}

/* ---------------------------------------------------------------- clauses */

static bool modifier_parse(const char *m, SpType t, Modifier *out)
{
    static const struct {
        const char *name;
        Modifier mod;
        unsigned types; /* bit per SpType */
    } table[] = {
        {"exact", MOD_EXACT, 1u << SP_STRING},
        {"contains", MOD_CONTAINS, 1u << SP_STRING},
        {"not", MOD_NOT, 1u << SP_TOKEN},
        {"text", MOD_TEXT, 1u << SP_TOKEN},
        {"missing", MOD_MISSING, 0x1ffu},
        {"identifier", MOD_IDENTIFIER, 1u << SP_REFERENCE},
        {"of-type", MOD_OF_TYPE, 1u << SP_TOKEN},
        {"below", MOD_BELOW, 1u << SP_URI},
        {"above", MOD_ABOVE, 1u << SP_URI},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, m) == 0 && (table[i].types & (1u << t))) {
            *out = table[i].mod;
            return true;
        }
    return false;
}

static int parse_clause(const FhirRegistry *reg, SearchPlan *p, const char *type, const char *name,
                        const char *value, int depth, SearchClause *c, Diag *d);

/* `_has:Type:ref:rest` on `type`. */
static int parse_has(const FhirRegistry *reg, SearchPlan *p, const char *type, const char *name,
                     const char *value, int depth, SearchClause *c, Diag *d)
{
    const char *t = name + 5, *colon1 = strchr(t, ':');
    const char *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
    if (!colon1 || !colon2)
        return diag_set(d, ERR_INVALID, "_has attend _has:Type:référence:paramètre");
    const char *src = arena_strndup(PA(p), t, (size_t)(colon1 - t));
    const char *ref = arena_strndup(PA(p), colon1 + 1, (size_t)(colon2 - colon1 - 1));
    if (!fhir_type_find(src, strlen(src)))
        return diag_set(d, ERR_INVALID, "_has : type de ressource inconnu '%s'", src);
    const SearchParam *sp = fhir_registry_param(reg, src, ref);
    if (!sp || sp->type != SP_REFERENCE)
        return diag_set(d, ERR_INVALID, "_has : '%s' n'est pas une référence de %s", ref, src);
    c->sp = sp;
    c->param = sp->code;
    c->reverse = true;
    c->chain_type = src;
    c->chain = arena_alloc(PA(p), sizeof *c->chain);
    memset(c->chain, 0, sizeof *c->chain);
    c->nchain = 1;
    (void)type;
    return parse_clause(reg, p, src, colon2 + 1, value, depth + 1, c->chain, d);
}

static bool has_target(const SearchParam *sp, const char *type)
{
    if (sp->ntargets == 0)
        return true;
    for (size_t i = 0; i < sp->ntargets; i++)
        if (strcmp(sp->targets[i], type) == 0)
            return true;
    return false;
}

static int parse_clause(const FhirRegistry *reg, SearchPlan *p, const char *type, const char *name,
                        const char *value, int depth, SearchClause *c, Diag *d)
{
    if (depth > MAX_CHAIN)
        return diag_set(d, ERR_INVALID, "chaînage trop profond (au plus %d niveaux)", MAX_CHAIN);
    if (strncmp(name, "_has:", 5) == 0)
        return parse_has(reg, p, type, name, value, depth, c, d);

    const char *dot = strchr(name, '.');
    size_t headlen = dot ? (size_t)(dot - name) : strlen(name);
    char *head = arena_strndup(PA(p), name, headlen);
    char *mod = strchr(head, ':');
    if (mod)
        *mod++ = 0;
    const SearchParam *sp = fhir_registry_param(reg, type, head);
    if (!sp || (!sp->path && sp->type != SP_REFERENCE)) {
        diag_set(d, ERR_UNKNOWN_PARAM,
                 "paramètre de recherche inconnu ou non pris en charge "
                 "pour %s : '%s'",
                 type, head);
        return ERR_UNKNOWN_PARAM;
    }
    c->sp = sp;
    c->param = sp->code;

    if (dot) { /* forward chain */
        if (sp->type != SP_REFERENCE)
            return diag_set(d, ERR_INVALID, "'%s' n'est pas une référence : chaînage impossible",
                            head);
        const char *target = NULL;
        if (mod) {
            if (!fhir_type_find(mod, strlen(mod)) || !has_target(sp, mod))
                return diag_set(d, ERR_INVALID, "type cible invalide '%s' pour '%s'", mod, head);
            target = mod;
        } else {
            /* the targets on which the chained parameter exists */
            char *rest = arena_strdup(PA(p), dot + 1);
            char *cut = strpbrk(rest, ".:");
            if (cut)
                *cut = 0;
            int found = 0;
            for (size_t i = 0; i < sp->ntargets; i++)
                if (fhir_type_find(sp->targets[i], strlen(sp->targets[i])) &&
                    fhir_registry_param(reg, sp->targets[i], rest)) {
                    target = sp->targets[i];
                    found++;
                }
            if (found == 0) {
                diag_set(d, ERR_UNKNOWN_PARAM,
                         "paramètre chaîné inconnu : '%s' sur les cibles de '%s'", rest, head);
                return ERR_UNKNOWN_PARAM;
            }
            if (found > 1)
                return diag_set(d, ERR_INVALID,
                                "chaînage ambigu sur '%s' : préciser le type (%s:Type.%s)", head,
                                head, rest);
        }
        c->chain_type = target;
        c->chain = arena_alloc(PA(p), sizeof *c->chain);
        memset(c->chain, 0, sizeof *c->chain);
        c->nchain = 1;
        return parse_clause(reg, p, target, dot + 1, value, depth + 1, c->chain, d);
    }

    if (mod && sp_is_geo(sp)) {
        diag_set(d, ERR_UNKNOWN_PARAM, "modificateur non pris en charge : '%s:%s'", head, mod);
        return ERR_UNKNOWN_PARAM;
    }
    if (mod) {
        if (sp->type == SP_REFERENCE && fhir_type_find(mod, strlen(mod))) {
            if (!has_target(sp, mod))
                return diag_set(d, ERR_INVALID, "'%s' ne peut pas référencer %s", head, mod);
            c->mod = MOD_TYPE;
            c->mod_type = arena_strdup(PA(p), mod);
        } else if (!modifier_parse(mod, sp->type, &c->mod)) {
            diag_set(d, ERR_UNKNOWN_PARAM, "modificateur non pris en charge : '%s:%s'", head, mod);
            return ERR_UNKNOWN_PARAM;
        }
        if (c->mod == MOD_IDENTIFIER)
            c->param = arena_printf(PA(p), "%s:identifier", sp->code);
        else if (c->mod == MOD_OF_TYPE)
            c->param = arena_printf(PA(p), "%s:of-type", sp->code);
    }

    char *raw[MAX_VALUES];
    int n = c->mod == MOD_MISSING ? 1 : split_escaped(PA(p), value, ',', raw, MAX_VALUES);
    if (c->mod == MOD_MISSING)
        raw[0] = (char *)value;
    if (n < 0)
        return diag_set(d, ERR_INVALID, "trop de valeurs pour '%s' (au plus %d)", head, MAX_VALUES);
    if (n > 1 && sp_is_geo(sp))
        return diag_set(d, ERR_INVALID, "%s : une seule position", head);
    c->values = arena_alloc(PA(p), (size_t)n * sizeof *c->values);
    memset(c->values, 0, (size_t)n * sizeof *c->values);
    c->nvalues = (size_t)n;
    for (int i = 0; i < n; i++) {
        int rc = parse_value(p, c, raw[i], &c->values[i], d);
        if (rc != 0) {
            diag_expr(d, "%s", head);
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- control parameters */

static int parse_include(const FhirRegistry *reg, SearchPlan *p, const char *name,
                         const char *value, bool rev, Vec *incs, Diag *d)
{
    const char *mod = strchr(name, ':');
    bool iterate = false;
    if (mod) {
        if (strcmp(mod + 1, "iterate") != 0 && strcmp(mod + 1, "recurse") != 0)
            return diag_set(d, ERR_INVALID, "modificateur inconnu pour %s : '%s'", name, mod);
        iterate = true;
    }
    char *parts[3];
    int n = split_escaped(PA(p), value, ':', parts, 3);
    if (n < 2)
        return diag_set(d, ERR_INVALID, "%s attend Type:paramètre[:cible], pas '%s'",
                        rev ? "_revinclude" : "_include", value);
    if (!fhir_type_find(parts[0], strlen(parts[0])))
        return diag_set(d, ERR_INVALID, "type de ressource inconnu dans '%s'", value);
    const SearchParam *sp = fhir_registry_param(reg, parts[0], parts[1]);
    if (!sp || sp->type != SP_REFERENCE)
        return diag_set(d, ERR_INVALID, "'%s' n'est pas un paramètre référence de %s", parts[1],
                        parts[0]);
    if (incs->n >= MAX_INCLUDES)
        return diag_set(d, ERR_INVALID, "trop de _include/_revinclude (au plus %d)", MAX_INCLUDES);
    SearchInclude *inc = vec_push(PA(p), incs);
    inc->src_type = arena_strdup(PA(p), parts[0]);
    inc->sp = sp;
    inc->iterate = iterate;
    inc->rev = rev;
    if (n == 3) {
        if (!fhir_type_find(parts[2], strlen(parts[2])) || !has_target(sp, parts[2]))
            return diag_set(d, ERR_INVALID, "cible invalide dans '%s'", value);
        inc->target_type = arena_strdup(PA(p), parts[2]);
    }
    return 0;
}

static int parse_sort(const FhirRegistry *reg, SearchPlan *p, const char *value, Vec *sorts,
                      bool strict, Vec *ignored, Diag *d)
{
    char *keys[MAX_SORTS];
    int n = split_escaped(PA(p), value, ',', keys, MAX_SORTS);
    if (n < 0)
        return diag_set(d, ERR_INVALID, "_sort : au plus %d critères", MAX_SORTS);
    for (int i = 0; i < n; i++) {
        bool desc = keys[i][0] == '-';
        const char *code = keys[i] + desc;
        if (strcmp(code, "near") == 0) { /* by distance; checked once the criteria are known */
            SearchSort *s = vec_push(PA(p), sorts);
            s->sp = NULL;
            s->desc = desc;
            continue;
        }
        const SearchParam *sp = fhir_registry_param(reg, p->type, code);
        if (!sp || !sp->path) {
            if (strict)
                return diag_set(d, ERR_INVALID, "_sort : paramètre inconnu '%s'", code);
            *(const char **)vec_push(PA(p), ignored) =
                arena_printf(PA(p), "_sort=%s : paramètre inconnu, critère ignoré", code);
            continue;
        }
        SearchSort *s = vec_push(PA(p), sorts);
        s->sp = sp;
        s->desc = desc;
    }
    return 0;
}

static void url_encode(Buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '|' ||
            c == ',' || c == '/') {
            buf_add(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 3);
        }
    }
}

/* Merge forward chains through the same reference (same parameter, target type): their
 * criteria then hold on one target resource, as ROR queries such as
 * `location.capacity-status=02&location.nb-capacity=gt0` mean. Recursive on the merged chains. */
static void chains_merge(SearchPlan *p, SearchClause *cs, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        SearchClause *a = &cs[i];
        if (!a->chain || a->reverse)
            continue;
        for (size_t j = i + 1; j < *n;) {
            SearchClause *b = &cs[j];
            if (b->chain && !b->reverse && b->sp == a->sp &&
                strcmp(b->chain_type, a->chain_type) == 0) {
                SearchClause *merged = arena_alloc(PA(p), (a->nchain + b->nchain) * sizeof *merged);
                memcpy(merged, a->chain, a->nchain * sizeof *merged);
                memcpy(merged + a->nchain, b->chain, b->nchain * sizeof *merged);
                a->chain = merged;
                a->nchain += b->nchain;
                memmove(b, b + 1, (*n - j - 1) * sizeof *b);
                (*n)--;
            } else {
                j++;
            }
        }
        chains_merge(p, a->chain, &a->nchain);
    }
}

/* The plan's proximity criterion: on the type itself, or chained through one reference
 * (`location.near`). One at most; `_sort=near` needs one. */
static int near_find(SearchPlan *p, SearchClause *cs, size_t n, const SearchSort *sorts,
                     size_t nsorts, Diag *d)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp_is_geo(cs[i].sp) && !cs[i].chain) {
            p->near = &cs[i];
            p->near_via = NULL;
            found++;
        } else if (cs[i].chain && !cs[i].reverse) {
            for (size_t k = 0; k < cs[i].nchain; k++) {
                if (sp_is_geo(cs[i].chain[k].sp) && !cs[i].chain[k].chain) {
                    p->near = &cs[i].chain[k];
                    p->near_via = &cs[i];
                    found++;
                }
            }
        }
    }
    if (found > 1)
        return diag_set(d, ERR_INVALID, "un seul critère de proximité (near) par recherche");
    for (size_t i = 0; i < nsorts; i++)
        if (!sorts[i].sp && !found)
            return diag_set(d, ERR_INVALID, "_sort=near demande un critère near");
    return 0;
}

static bool is_ignorable(const char *name)
{
    return strcmp(name, "_format") == 0 || strcmp(name, "_pretty") == 0;
}

int fhir_search_parse(const FhirRegistry *reg, const char *type, const QueryParam *params,
                      size_t nparams, bool strict, SearchPlan **out, Diag *d)
{
    SearchPlan *p = plan_new(type);
    Vec clauses = {.size = sizeof(SearchClause)};
    Vec incs = {.size = sizeof(SearchInclude)};
    Vec sorts = {.size = sizeof(SearchSort)};
    Vec ignored = {.size = sizeof(const char *)};
    Buf self;
    buf_init(&self, 64 * 1024);
    int rc = 0;

    for (size_t i = 0; i < nparams && rc == 0; i++) {
        const char *name = params[i].name, *value = params[i].value ? params[i].value : "";
        bool echo = true;
        if (strcmp(name, "_count") == 0) {
            char *end;
            errno = 0;
            long v = strtol(value, &end, 10);
            if (!*value || *end || errno || v < 0)
                rc =
                    diag_set(d, ERR_INVALID, "_count doit être un entier positif, pas '%s'", value);
            else
                p->count = v > SEARCH_COUNT_MAX ? SEARCH_COUNT_MAX : (int)v;
        } else if (strcmp(name, "_cursor") == 0) {
            p->cursor = arena_strdup(PA(p), value);
            echo = false;
        } else if (strcmp(name, "_sort") == 0) {
            rc = parse_sort(reg, p, value, &sorts, strict, &ignored, d);
        } else if (strncmp(name, "_include", 8) == 0 && (!name[8] || name[8] == ':')) {
            rc = parse_include(reg, p, name, value, false, &incs, d);
        } else if (strncmp(name, "_revinclude", 11) == 0 && (!name[11] || name[11] == ':')) {
            rc = parse_include(reg, p, name, value, true, &incs, d);
        } else if (strcmp(name, "_total") == 0) {
            if (strcmp(value, "none") == 0)
                p->total = TOTAL_NONE;
            else if (strcmp(value, "accurate") == 0 || strcmp(value, "estimate") == 0)
                p->total = TOTAL_ACCURATE;
            else
                rc = diag_set(d, ERR_INVALID, "_total attend none, estimate ou accurate");
        } else if (strcmp(name, "_summary") == 0 && strcmp(value, "count") == 0) {
            p->summary_count = true;
        } else if (strcmp(name, "_summary") == 0 && strcmp(value, "false") == 0) {
            /* the default */
        } else if (is_ignorable(name)) {
            echo = false;
        } else {
            if (clauses.n >= MAX_CLAUSES) {
                rc = diag_set(d, ERR_INVALID, "trop de critères de recherche (au plus %d)",
                              MAX_CLAUSES);
                break;
            }
            Diag cd = {{0}, {0}};
            SearchClause *c = vec_push(PA(p), &clauses);
            int crc = strcmp(name, "_summary") == 0 || strcmp(name, "_elements") == 0
                          ? (diag_set(&cd, ERR_UNKNOWN_PARAM,
                                      "%s=%s n'est pas pris en charge par ce serveur", name, value),
                             ERR_UNKNOWN_PARAM)
                          : parse_clause(reg, p, type, name, value, 0, c, &cd);
            if (crc == ERR_UNKNOWN_PARAM) {
                clauses.n--;
                echo = false;
                if (strict) {
                    rc = diag_set(d, ERR_INVALID, "%s", cd.msg);
                    diag_expr(d, "%s", name);
                } else {
                    *(const char **)vec_push(PA(p), &ignored) = arena_strdup(PA(p), cd.msg);
                }
            } else if (crc != 0) {
                rc = crc;
                if (d)
                    *d = cd;
            }
        }
        if (rc == 0 && echo) {
            if (self.len)
                buf_add(&self, "&", 1);
            url_encode(&self, name);
            buf_add(&self, "=", 1);
            url_encode(&self, value);
        }
    }
    if (rc == 0 && self.overflow)
        rc = diag_set(d, ERR_TOO_LARGE, "requête trop longue");
    if (rc != 0) {
        buf_cleanup(&self);
        search_plan_free(p);
        return rc;
    }
    chains_merge(p, clauses.items, &clauses.n);
    if ((rc = near_find(p, clauses.items, clauses.n, sorts.items, sorts.n, d)) != 0) {
        buf_cleanup(&self);
        search_plan_free(p);
        return rc;
    }
    p->clauses = clauses.items;
    p->nclauses = clauses.n;
    p->includes = incs.items;
    p->nincludes = incs.n;
    p->sorts = sorts.items;
    p->nsorts = sorts.n;
    p->ignored = ignored.items;
    p->nignored = ignored.n;
    p->self_query = arena_strdup(PA(p), self.p ? self.p : "");
    buf_cleanup(&self);
    *out = p;
    return 0;
}
