/* fhir index extraction: the rows a resource contributes to each search index. */
#include "fhir/fhir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

void index_rows_init(IndexRows *r)
{
    r->rows = NULL;
    r->n = r->cap = 0;
    arena_init(&r->arena);
}

void index_rows_reset(IndexRows *r)
{
    r->n = 0;
    arena_reset(&r->arena);
}

void index_rows_cleanup(IndexRows *r)
{
    free(r->rows);
    r->rows = NULL;
    r->n = r->cap = 0;
    arena_cleanup(&r->arena);
}

static IndexRow *row_add(IndexRows *r, const char *param, SpType kind)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->rows = xrealloc(r->rows, r->cap * sizeof *r->rows);
    }
    IndexRow *row = &r->rows[r->n++];
    memset(row, 0, sizeof *row);
    row->param = param;
    row->kind = kind;
    return row;
}

static const char *fold(IndexRows *r, const char *s)
{
    if (!s)
        return NULL;
    char *f = text_fold(s, strlen(s));
    if (!f)
        return NULL;
    const char *out = arena_strdup(&r->arena, f);
    free(f);
    return out;
}

static const char *dup(IndexRows *r, const char *s)
{
    return s ? arena_strdup(&r->arena, s) : NULL;
}

static void token_coding(IndexRows *r, const char *param, json_t *coding, const char *text)
{
    const char *code = json_str(coding, "code");
    if (!code && !json_str(coding, "system"))
        return;
    IndexRow *row = row_add(r, param, SP_TOKEN);
    row->s1 = dup(r, json_str(coding, "system"));
    row->s2 = dup(r, code);
    const char *display = json_str(coding, "display");
    row->s3 = fold(r, display ? display : text);
}

static void token_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    char num[64];
    if (json_is_string(v)) {
        IndexRow *row = row_add(r, sp->code, SP_TOKEN);
        row->s2 = dup(r, json_string_value(v));
    } else if (json_is_boolean(v)) {
        row_add(r, sp->code, SP_TOKEN)->s2 = json_is_true(v) ? "true" : "false";
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        row_add(r, sp->code, SP_TOKEN)->s2 = dup(r, num);
    } else if (json_is_object(v)) {
        json_t *codings = json_object_get(v, "coding");
        if (codings) { /* CodeableConcept */
            json_t *c;
            size_t i;
            const char *text = json_str(v, "text");
            json_array_foreach(codings, i, c) token_coding(r, sp->code, c, text);
            if (json_array_size(codings) == 0 && text)
                row_add(r, sp->code, SP_TOKEN)->s3 = fold(r, text);
        } else if (json_object_get(v, "value")) { /* Identifier, ContactPoint */
            const char *value = json_str(v, "value");
            if (!value)
                return;
            IndexRow *row = row_add(r, sp->code, SP_TOKEN);
            row->s1 = dup(r, json_str(v, "system"));
            row->s2 = dup(r, value);
            json_t *type = json_object_get(v, "type"), *c;
            size_t i;
            row->s3 = fold(r, json_str(type, "text"));
            const char *of_type = arena_printf(&r->arena, "%s:of-type", sp->code);
            json_array_foreach(json_object_get(type, "coding"), i, c)
            {
                const char *tc = json_str(c, "code");
                if (!tc)
                    continue;
                IndexRow *t = row_add(r, of_type, SP_TOKEN);
                t->s1 = dup(r, json_str(c, "system"));
                t->s2 = arena_printf(&r->arena, "%s|%s", tc, value);
            }
        } else { /* Coding */
            token_coding(r, sp->code, v, NULL);
        }
    }
}

static void string_add(IndexRows *r, const char *param, const char *s)
{
    if (!s || !*s)
        return;
    const char *f = fold(r, s);
    if (!f)
        return;
    IndexRow *row = row_add(r, param, SP_STRING);
    row->s1 = f;
    row->s2 = dup(r, s);
}

static void string_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    if (json_is_string(v)) {
        string_add(r, sp->code, json_string_value(v));
        return;
    }
    if (!json_is_object(v))
        return;
    /* HumanName, Address...: every string part except coded or structural members. */
    const char *key;
    json_t *m;
    json_object_foreach(v, key, m)
    {
        if (key[0] == '_' || strcmp(key, "use") == 0 || strcmp(key, "type") == 0 ||
            strcmp(key, "extension") == 0 || strcmp(key, "id") == 0)
            continue;
        if (json_is_string(m)) {
            string_add(r, sp->code, json_string_value(m));
        } else if (json_is_array(m)) {
            json_t *e;
            size_t i;
            json_array_foreach(m, i, e) string_add(r, sp->code, json_string_value(e));
        }
    }
}

/* Split a literal reference into type and id: "Type/id", "Type/id/_history/n", or an absolute
 * URL ending in ".../Type/id[/_history/n]". Returns false for contained or unparseable ones. */
static bool reference_split(const char *ref, const char **type, size_t *tlen, const char **id,
                            size_t *idlen)
{
    if (!ref || ref[0] == '#')
        return false;
    const char *end = ref + strlen(ref);
    const char *h = strstr(ref, "/_history/");
    if (h)
        end = h;
    const char *slash = NULL;
    for (const char *p = end; p > ref; p--)
        if (p[-1] == '/') {
            slash = p - 1;
            break;
        }
    if (!slash)
        return false;
    const char *tstart = slash;
    while (tstart > ref && tstart[-1] != '/')
        tstart--;
    *type = tstart;
    *tlen = (size_t)(slash - tstart);
    *id = slash + 1;
    *idlen = (size_t)(end - slash - 1);
    return fhir_type_find(*type, *tlen) != NULL && fhir_id_valid(*id, *idlen);
}

static void reference_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    if (json_is_string(v)) { /* canonical */
        IndexRow *row = row_add(r, sp->code, SP_REFERENCE);
        row->s3 = dup(r, json_string_value(v));
        return;
    }
    const char *ref = json_str(v, "reference");
    const char *type, *id;
    size_t tlen, idlen;
    if (ref && reference_split(ref, &type, &tlen, &id, &idlen)) {
        IndexRow *row = row_add(r, sp->code, SP_REFERENCE);
        row->s1 = arena_strndup(&r->arena, type, tlen);
        row->s2 = arena_strndup(&r->arena, id, idlen);
        row->s3 = dup(r, ref);
    }
    json_t *ident = json_object_get(v, "identifier");
    if (json_str(ident, "value")) {
        IndexRow *row = row_add(r, arena_printf(&r->arena, "%s:identifier", sp->code), SP_TOKEN);
        row->s1 = dup(r, json_str(ident, "system"));
        row->s2 = dup(r, json_str(ident, "value"));
    }
}

static void date_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    int64_t lo, hi, x;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (time_parse_range(s, strlen(s), &lo, &hi) != 0)
            return;
    } else if (json_is_object(v)) { /* Period */
        const char *start = json_str(v, "start"), *end = json_str(v, "end");
        if (!start && !end)
            return;
        lo = INT64_MIN;
        hi = INT64_MAX;
        if (start && time_parse_range(start, strlen(start), &lo, &x) != 0)
            return;
        if (end && time_parse_range(end, strlen(end), &x, &hi) != 0)
            return;
    } else {
        return;
    }
    IndexRow *row = row_add(r, sp->code, SP_DATE);
    row->lo = lo;
    row->hi = hi;
}

static void number_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    if (json_is_number(v))
        row_add(r, sp->code, SP_NUMBER)->num = json_number_value(v);
}

static void quantity_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    json_t *value = json_object_get(v, "value");
    if (!json_is_number(value))
        return;
    IndexRow *row = row_add(r, sp->code, SP_QUANTITY);
    row->num = json_number_value(value);
    if (json_str(v, "currency")) { /* Money */
        row->s2 = "urn:iso:std:iso:4217";
        row->s3 = dup(r, json_str(v, "currency"));
    } else {
        row->s2 = dup(r, json_str(v, "system"));
        const char *code = json_str(v, "code");
        row->s3 = dup(r, code ? code : json_str(v, "unit"));
    }
}

static void uri_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    if (json_is_string(v))
        row_add(r, sp->code, SP_URI)->s1 = dup(r, json_string_value(v));
}

/* A FHIR Location.position (or any element with numeric latitude/longitude in range). */
static void geo_item(IndexRows *r, const SearchParam *sp, json_t *v)
{
    json_t *lat = json_object_get(v, "latitude"), *lon = json_object_get(v, "longitude");
    if (!json_is_number(lat) || !json_is_number(lon))
        return;
    double y = json_number_value(lat), x = json_number_value(lon);
    if (!(y >= -90 && y <= 90 && x >= -180 && x <= 180))
        return;
    IndexRow *row = row_add(r, sp->code, SP_SPECIAL);
    row->num = y;
    row->num2 = x;
}

static void item_rows(IndexRows *out, const SearchParam *sp, json_t *v)
{
    switch (sp->type) {
    case SP_TOKEN: token_item(out, sp, v); break;
    case SP_STRING: string_item(out, sp, v); break;
    case SP_REFERENCE: reference_item(out, sp, v); break;
    case SP_DATE: date_item(out, sp, v); break;
    case SP_NUMBER: number_item(out, sp, v); break;
    case SP_QUANTITY: quantity_item(out, sp, v); break;
    case SP_URI: uri_item(out, sp, v); break;
    case SP_SPECIAL: geo_item(out, sp, v); break;
    default: break;
    }
}

/* Rows of `path` evaluated on `root`, each tagged with correlation instance `grp`. */
static int eval_rows(const SearchParam *sp, const FhirPath *path, json_t *root, int grp,
                     IndexRows *out, Diag *d)
{
    FpResult result = {0};
    int rc = fhirpath_eval(path, root, &result, d);
    if (rc != 0) {
        diag_expr(d, "%s", sp->expression);
    } else {
        for (size_t k = 0; k < result.n; k++) {
            size_t first = out->n;
            item_rows(out, sp, result.items[k].node);
            for (size_t i = first; i < out->n; i++)
                out->rows[i].grp = grp;
        }
    }
    fp_result_cleanup(&result);
    return rc;
}

#define GROUPS_CACHED 16

int fhir_index_extract(const FhirRegistry *reg, const char *type, json_t *res, IndexRows *out,
                       Diag *d)
{
    return fhir_index_extract_types(reg, type, res, ~0u, out, d);
}

int fhir_index_extract_types(const FhirRegistry *reg, const char *type, json_t *res, unsigned types,
                             IndexRows *out, Diag *d)
{
    size_t n;
    const SearchParam *const *params = fhir_registry_params(reg, type, &n);
    /* each correlation group's elements, evaluated once per resource */
    FpResult groups[GROUPS_CACHED] = {{0}};
    bool have[GROUPS_CACHED] = {false};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const SearchParam *sp = params[i];
        if (!sp->path || !(types & (1u << sp->type)))
            continue;
        if (!sp->group) {
            rc = eval_rows(sp, sp->path, res, 0, out, d);
            continue;
        }
        FpResult local = {0}, *elems = &local;
        if (sp->group < GROUPS_CACHED) {
            elems = &groups[sp->group];
            if (!have[sp->group]) {
                rc = fhirpath_eval(sp->group_path, res, elems, d);
                have[sp->group] = true;
            }
        } else {
            rc = fhirpath_eval(sp->group_path, res, elems, d);
        }
        for (size_t k = 0; rc == 0 && k < elems->n; k++) /* instances numbered from 1 */
            rc = eval_rows(sp, sp->rel_path, elems->items[k].node, (int)k + 1, out, d);
        fp_result_cleanup(&local);
    }
    for (int g = 0; g < GROUPS_CACHED; g++)
        if (have[g])
            fp_result_cleanup(&groups[g]);
    return rc;
}
