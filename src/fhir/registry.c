/* fhir registry: served resource types and SearchParameters loaded as data. */
#include "fhir/fhir.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define ROR_SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"

/* Every served type supports every interaction below; terminology resources are not patched. */
#define ALL_BUT_PATCH                                                                              \
    (FHIR_READ | FHIR_VREAD | FHIR_SEARCH | FHIR_CREATE | FHIR_UPDATE | FHIR_DELETE | FHIR_HISTORY)
#define ALL (ALL_BUT_PATCH | FHIR_PATCH)

static const FhirType types[] = {
    {"Organization", ROR_SD "ror-organization", ALL},
    {"HealthcareService", ROR_SD "ror-healthcareservice", ALL},
    {"Location", ROR_SD "ror-location", ALL},
    {"Practitioner", ROR_SD "ror-practitioner", ALL},
    {"PractitionerRole", ROR_SD "ror-practitionerrole", ALL},
    {"Task", ROR_SD "ror-task", ALL},
    {"CodeSystem", NULL, ALL_BUT_PATCH},
    {"ValueSet", NULL, ALL_BUT_PATCH},
    {"Subscription", NULL, ALL_BUT_PATCH}, /* rest-hook notifications (subscription_api.c) */
    {NULL, NULL, 0},
};

const FhirType *fhir_types(void)
{
    return types;
}

const FhirType *fhir_type_find(const char *name, size_t len)
{
    for (const FhirType *t = types; t->name; t++)
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

const char *sp_type_name(SpType t)
{
    static const char *names[] = {"number",    "date",     "string", "token",  "reference",
                                  "composite", "quantity", "uri",    "special"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static int sp_type_parse(const char *s, SpType *out)
{
    for (SpType t = SP_NUMBER; t <= SP_SPECIAL; t++)
        if (s && strcmp(sp_type_name(t), s) == 0) {
            *out = t;
            return 0;
        }
    return ERR_INVALID;
}

/* Per served type, its parameters in load order. */
typedef struct TypeParams {
    SearchParam **items;
    size_t n, cap;
} TypeParams;

struct FhirRegistry {
    TypeParams by_type[sizeof types / sizeof types[0]];
};

FhirRegistry *fhir_registry_new(void)
{
    return xcalloc(1, sizeof(FhirRegistry));
}

static void param_free(SearchParam *p)
{
    if (!p)
        return;
    free(p->code);
    free(p->url);
    free(p->base);
    free(p->expression);
    fhirpath_free(p->path);
    fhirpath_free(p->group_path);
    fhirpath_free(p->rel_path);
    for (size_t i = 0; i < p->ntargets; i++)
        free(p->targets[i]);
    free(p->targets);
    free(p);
}

void fhir_registry_free(FhirRegistry *r)
{
    if (!r)
        return;
    for (size_t t = 0; types[t].name; t++) {
        for (size_t i = 0; i < r->by_type[t].n; i++)
            param_free(r->by_type[t].items[i]);
        free(r->by_type[t].items);
    }
    free(r);
}

static int type_index(const char *name)
{
    for (int t = 0; types[t].name; t++)
        if (strcmp(types[t].name, name) == 0)
            return t;
    return -1;
}

static void registry_put(FhirRegistry *r, int t, SearchParam *p)
{
    TypeParams *tp = &r->by_type[t];
    for (size_t i = 0; i < tp->n; i++)
        if (strcmp(tp->items[i]->code, p->code) == 0) {
            param_free(tp->items[i]);
            tp->items[i] = p;
            return;
        }
    if (tp->n == tp->cap) {
        tp->cap = tp->cap ? tp->cap * 2 : 32;
        tp->items = xrealloc(tp->items, tp->cap * sizeof *tp->items);
    }
    tp->items[tp->n++] = p;
}

static void add_one(FhirRegistry *r, int t, json_t *sp, const char *base, SpType type,
                    const char *code, const char *url, const char *expr)
{
    SearchParam *p = xcalloc(1, sizeof *p);
    p->code = xstrdup(code);
    p->url = xstrdup(url);
    p->base = xstrdup(base);
    p->type = type;
    p->expression = expr ? xstrdup(expr) : NULL;
    json_t *targets = json_object_get(sp, "target"), *tv;
    size_t k;
    p->targets = xcalloc(json_array_size(targets) + 1, sizeof(char *));
    json_array_foreach(targets, k, tv)
    {
        if (json_string_value(tv))
            p->targets[p->ntargets++] = xstrdup(json_string_value(tv));
    }
    registry_put(r, t, p);
}

/* Add one SearchParameter resource: one SearchParam per served base type. */
static int add_search_parameter(FhirRegistry *r, json_t *sp, const char *file, Diag *d)
{
    const char *code = json_str(sp, "code"), *url = json_str(sp, "url");
    const char *expr = json_str(sp, "expression");
    SpType type;
    if (!code || !url || sp_type_parse(json_str(sp, "type"), &type) != 0)
        return diag_set(d, ERR_INVALID, "%s : SearchParameter sans code, url ou type valide", file);
    json_t *bases = json_object_get(sp, "base"), *b;
    size_t i;
    json_array_foreach(bases, i, b)
    {
        const char *base = json_string_value(b);
        if (base && (strcmp(base, "Resource") == 0 || strcmp(base, "DomainResource") == 0)) {
            /* a parameter of every resource: one entry per served type */
            for (int k = 0; types[k].name; k++)
                add_one(r, k, sp, types[k].name, type, code, url, expr);
            continue;
        }
        int t = base ? type_index(base) : -1;
        if (t < 0)
            continue;
        add_one(r, t, sp, base, type, code, url, expr);
    }
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, Diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return diag_set(d, ERR_IO, "impossible d'ouvrir %s", path);
    Buf b;
    buf_init(&b, 64u << 20);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && rc == 0)
        rc = buf_add(&b, chunk, n);
    fclose(f);
    if (rc != 0) {
        buf_cleanup(&b);
        return diag_set(d, ERR_TOO_LARGE, "%s : fichier trop volumineux", path);
    }
    *out = buf_steal(&b, len);
    return 0;
}

int fhir_registry_load_file(FhirRegistry *r, const char *path, Diag *d)
{
    char *text = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = read_file(path, &text, &len, d);
    if (rc != 0)
        return rc;
    Diag pd = {{0}, {0}};
    rc = json_parse(text, len, &doc, &pd);
    if (rc != 0) {
        rc = diag_set(d, rc, "%s : %s", path, pd.msg);
        goto done;
    }
    const char *rt = json_str(doc, "resourceType");
    if (rt && strcmp(rt, "SearchParameter") == 0) {
        rc = add_search_parameter(r, doc, path, d);
    } else if (rt && strcmp(rt, "Bundle") == 0) {
        json_t *e;
        size_t i;
        json_array_foreach(json_object_get(doc, "entry"), i, e)
        {
            json_t *res = json_object_get(e, "resource");
            const char *ert = json_str(res, "resourceType");
            if (ert && strcmp(ert, "SearchParameter") == 0 &&
                (rc = add_search_parameter(r, res, path, d)) != 0)
                break;
        }
    }
    /* Other resources (CapabilityStatement...) are not search parameters: ignored. */
done:
    json_decref(doc);
    free(text);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fhir_registry_load_dir(FhirRegistry *r, const char *dir, Diag *d)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return diag_set(d, ERR_IO, "répertoire illisible : %s", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(dh);
    qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = fhir_registry_load_file(r, names[i], d);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Replace the expression (and optionally the type) of every entry with that url. */
static int correct(FhirRegistry *r, const char *url, const char *expr, const char *type)
{
    SpType st = SP_SPECIAL;
    if (type && sp_type_parse(type, &st) != 0)
        return ERR_INVALID;
    for (int t = 0; types[t].name; t++)
        for (size_t i = 0; i < r->by_type[t].n; i++) {
            SearchParam *p = r->by_type[t].items[i];
            if (strcmp(p->url, url) != 0)
                continue;
            free(p->expression);
            p->expression = xstrdup(expr);
            p->corrected = true;
            if (type)
                p->type = st;
        }
    return 0;
}

static void disable(FhirRegistry *r, int t, size_t i)
{
    TypeParams *tp = &r->by_type[t];
    param_free(tp->items[i]);
    memmove(tp->items + i, tp->items + i + 1, (tp->n - i - 1) * sizeof *tp->items);
    tp->n--;
}

/* Serve the parameter(s) with that url under a second code too (same definition). */
static int alias_add(FhirRegistry *r, const char *url, const char *code, Diag *d)
{
    if (!url || !code)
        return diag_set(d, ERR_INVALID, "alias sans url ou code");
    for (int t = 0; types[t].name; t++) {
        size_t n = r->by_type[t].n; /* the aliases added below are not revisited */
        for (size_t i = 0; i < n; i++) {
            const SearchParam *p = r->by_type[t].items[i];
            if (strcmp(p->url, url) != 0)
                continue;
            SearchParam *a = xcalloc(1, sizeof *a);
            a->code = xstrdup(code);
            a->url = xstrdup(p->url);
            a->base = xstrdup(p->base);
            a->type = p->type;
            a->expression = p->expression ? xstrdup(p->expression) : NULL;
            a->corrected = p->corrected;
            a->targets = xcalloc(p->ntargets + 1, sizeof(char *));
            for (size_t k = 0; k < p->ntargets; k++)
                a->targets[a->ntargets++] = xstrdup(p->targets[k]);
            registry_put(r, t, a);
        }
    }
    return 0;
}

/* A correlation group: each listed parameter's expression must start with the group path; the
 * rest is compiled relative to one group element. */
static int group_add(FhirRegistry *r, json_t *g, int id, Diag *d)
{
    const char *base = json_str(g, "base"), *path = json_str(g, "path");
    int t = base ? type_index(base) : -1;
    if (t < 0 || !path)
        return diag_set(d, ERR_INVALID, "groupe de corrélation sans base ou chemin valide");
    size_t plen = strlen(path);
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(g, "params"), i, c)
    {
        const char *code = json_string_value(c);
        SearchParam *p = NULL;
        for (size_t k = 0; code && k < r->by_type[t].n; k++)
            if (strcmp(r->by_type[t].items[k]->code, code) == 0)
                p = r->by_type[t].items[k];
        if (!p || !p->expression || strncmp(p->expression, path, plen) != 0 ||
            p->expression[plen] != '.')
            return diag_set(d, ERR_INVALID,
                            "groupe %s : le paramètre %s n'existe pas ou ne part pas de %s",
                            json_str(g, "name"), code ? code : "?", path);
        Diag pd = {{0}, {0}};
        if (fhirpath_compile(path, &p->group_path, &pd) != 0 ||
            fhirpath_compile(p->expression + plen + 1, &p->rel_path, &pd) != 0)
            return diag_set(d, ERR_INVALID, "groupe %s, paramètre %s : %s", json_str(g, "name"),
                            code, pd.msg);
        p->group = id;
    }
    return 0;
}

int fhir_registry_finish(FhirRegistry *r, const char *corrections_path, Diag *d)
{
    int rc = 0;
    if (corrections_path) {
        char *text = NULL;
        size_t len;
        json_t *doc = NULL;
        if ((rc = read_file(corrections_path, &text, &len, d)) != 0)
            return rc;
        rc = json_parse(text, len, &doc, d);
        free(text);
        if (rc != 0)
            return rc;
        json_t *c;
        size_t i;
        json_array_foreach(json_object_get(doc, "corrections"), i, c)
        {
            const char *url = json_str(c, "url"), *expr = json_str(c, "expression");
            if (url && expr && correct(r, url, expr, json_str(c, "type")) != 0) {
                json_decref(doc);
                return diag_set(d, ERR_INVALID, "%s : type invalide pour %s", corrections_path,
                                url);
            }
        }
        json_array_foreach(json_object_get(doc, "disabled"), i, c)
        {
            const char *url = json_str(c, "url");
            if (!url)
                continue;
            /* disable() shifts the array: repeat until no entry has that url */
            for (int t = 0; types[t].name; t++)
                for (size_t k = r->by_type[t].n; k-- > 0;)
                    if (strcmp(r->by_type[t].items[k]->url, url) == 0)
                        disable(r, t, k);
        }
        json_array_foreach(json_object_get(doc, "aliases"), i, c)
        {
            if ((rc = alias_add(r, json_str(c, "url"), json_str(c, "code"), d)) != 0)
                break;
        }
        int group = 0;
        json_array_foreach(json_object_get(doc, "groups"), i, c)
        {
            if ((rc = group_add(r, c, ++group, d)) != 0)
                break;
        }
        json_decref(doc);
        if (rc != 0)
            return rc;
    }
    for (int t = 0; types[t].name; t++)
        for (size_t i = 0; i < r->by_type[t].n; i++) {
            SearchParam *p = r->by_type[t].items[i];
            if (p->type == SP_COMPOSITE || !p->expression)
                continue;
            Diag pd = {{0}, {0}};
            if (fhirpath_compile(p->expression, &p->path, &pd) != 0)
                return diag_set(d, ERR_INVALID, "SearchParameter %s (%s) : %s", p->code, p->url,
                                pd.msg);
        }
    return 0;
}

const SearchParam *fhir_registry_param(const FhirRegistry *r, const char *type, const char *code)
{
    int t = type_index(type);
    if (t < 0)
        return NULL;
    for (size_t i = 0; i < r->by_type[t].n; i++)
        if (strcmp(r->by_type[t].items[i]->code, code) == 0)
            return r->by_type[t].items[i];
    return NULL;
}

const SearchParam *const *fhir_registry_params(const FhirRegistry *r, const char *type, size_t *n)
{
    int t = type_index(type);
    if (t < 0) {
        *n = 0;
        return NULL;
    }
    *n = r->by_type[t].n;
    return (const SearchParam *const *)r->by_type[t].items;
}

bool sp_is_geo(const SearchParam *sp)
{
    return sp && sp->type == SP_SPECIAL && sp->path;
}
