/* terminology: the bindings table (data/bindings.json) and the check of written resources. */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "terminology/term_int.h"

struct TBinding {
    const char *value_set;   /* NULL when the guide binds to a code system only */
    const char *code_system; /* checked when the value set is not loaded; may be NULL */
    bool required;
};

/* The bindings of one element (several value sets may share an element, told apart by their
 * code systems: the guide's slices on coding.system). */
typedef struct TGroup {
    const char *type;
    const char *path;
    FhirPath *fp;
    TBinding *b;
    size_t n;
} TGroup;

struct TBindings {
    TGroup *g;
    size_t n;
    size_t nbindings;
    Arena arena;
};

static const char *opt_str(Arena *a, json_t *o, const char *key)
{
    const char *s = json_str(o, key);
    return s && *s ? arena_strdup(a, s) : NULL;
}

int term_bindings_load(const char *path, TBindings **out, Diag *d)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return diag_set(d, ERR_INVALID, "%s:%d : %s", path, je.line, je.text);
    TBindings *b = xcalloc(1, sizeof *b);
    arena_init(&b->arena);
    json_t *list = json_object_get(root, "bindings"), *e;
    size_t i;
    int rc = 0;
    if (!json_is_array(list)) {
        rc = diag_set(d, ERR_INVALID, "%s : tableau \"bindings\" attendu", path);
        goto fail;
    }
    b->g = xcalloc(json_array_size(list) + 1, sizeof *b->g);
    json_array_foreach(list, i, e)
    {
        const char *type = json_str(e, "type"), *fp = json_str(e, "path");
        const char *strength = json_str(e, "strength");
        TBinding x = {opt_str(&b->arena, e, "valueSet"), opt_str(&b->arena, e, "codeSystem"),
                      strength && strcmp(strength, "required") == 0};
        if (!type || !fp || !strength || (!x.value_set && !x.code_system)) {
            rc = diag_set(d, ERR_INVALID,
                          "%s : liaison %zu incomplète (type, path, strength et valueSet ou "
                          "codeSystem sont attendus)",
                          path, i);
            goto fail;
        }
        TGroup *g = NULL;
        for (size_t k = 0; k < b->n && !g; k++)
            if (strcmp(b->g[k].type, type) == 0 && strcmp(b->g[k].path, fp) == 0)
                g = &b->g[k];
        if (!g) {
            g = &b->g[b->n];
            g->type = arena_strdup(&b->arena, type);
            g->path = arena_strdup(&b->arena, fp);
            Diag cd = {{0}, {0}};
            if ((rc = fhirpath_compile(fp, &g->fp, &cd)) != 0) {
                diag_set(d, rc, "%s : liaison %zu : %s", path, i, cd.msg);
                goto fail;
            }
            b->n++;
        }
        g->b = xrealloc(g->b, (g->n + 1) * sizeof *g->b);
        g->b[g->n++] = x;
        b->nbindings++;
    }
    json_decref(root);
    *out = b;
    return 0;
fail:
    json_decref(root);
    term_bindings_free(b);
    return rc;
}

void term_bindings_free(TBindings *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        fhirpath_free(b->g[i].fp);
        free(b->g[i].b);
    }
    free(b->g);
    arena_cleanup(&b->arena);
    free(b);
}

size_t term_bindings_count(const TBindings *b)
{
    return b->nbindings;
}

/* What the loaded terminology says of system|code for one binding. */
typedef enum { NOT_CONCERNED, VALID, INVALID } Verdict;

static Verdict judge(const Snapshot *s, const TBinding *b, const char *system, const char *code,
                     const char **against)
{
    const TExpansion *e = b->value_set ? term_snapshot_vs(s, b->value_set, NULL) : NULL;
    if (e) {
        int si = term_expansion_system(e, system);
        if (si < 0)
            return NOT_CONCERNED;
        if (term_expansion_find(e, system, code))
            return VALID;
        if (e->undecided[si]) /* included whole, code system not loaded: cannot tell */
            return NOT_CONCERNED;
        *against = e->vs->name;
        return INVALID;
    }
    if (!b->code_system || strcmp(b->code_system, system) != 0)
        return NOT_CONCERNED;
    const TCodeSys *cs = term_snapshot_cs(s, system, NULL);
    if (!cs)
        return NOT_CONCERNED;
    if (term_codesys_find(cs, code))
        return VALID;
    *against = cs->name;
    return INVALID;
}

/* Every Coding of an element: the element itself (Coding) or its coding[] (CodeableConcept). */
static int check_coding(const TGroup *g, const Snapshot *s, json_t *coding, Diag *d)
{
    const char *system = json_str(coding, "system"), *code = json_str(coding, "code");
    if (!system || !code) /* nothing to judge: a text-only or system-less coding */
        return 0;
    bool concerned = false;
    const char *against = NULL;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->b[i].required)
            continue;
        Verdict v = judge(s, &g->b[i], system, code, &against);
        if (v == VALID)
            return 0;
        concerned |= v == INVALID;
    }
    if (!concerned)
        return 0;
    diag_expr(d, "%s", g->path);
    return diag_set(d, ERR_BUSINESS,
                    "%s : le code « %s » du système %s n'appartient pas au jeu de valeurs %s",
                    g->path, code, system, against ? against : "");
}

/* Is any binding of the group able to judge (its value set or code system loaded)? */
static bool group_live(const TGroup *g, const Snapshot *s)
{
    for (size_t i = 0; i < g->n; i++) {
        if (!g->b[i].required)
            continue;
        if (g->b[i].value_set && term_snapshot_vs(s, g->b[i].value_set, NULL))
            return true;
        if (g->b[i].code_system && term_snapshot_cs(s, g->b[i].code_system, NULL))
            return true;
    }
    return false;
}

int term_bindings_check(const TBindings *b, const Snapshot *s, const char *type, json_t *res,
                        Diag *d)
{
    for (size_t i = 0; i < b->n; i++) {
        const TGroup *g = &b->g[i];
        if (strcmp(g->type, type) != 0 || !group_live(g, s))
            continue;
        FpResult r = {0};
        int rc = fhirpath_eval(g->fp, res, &r, d);
        for (size_t k = 0; rc == 0 && k < r.n; k++) {
            json_t *node = r.items[k].node, *c;
            size_t j;
            if (!json_is_object(node))
                continue;
            if (json_is_array(json_object_get(node, "coding"))) {
                json_array_foreach(json_object_get(node, "coding"), j, c)
                {
                    if ((rc = check_coding(g, s, c, d)) != 0)
                        break;
                }
            } else {
                rc = check_coding(g, s, node, d);
            }
        }
        fp_result_cleanup(&r);
        if (rc != 0)
            return rc;
    }
    return 0;
}
