/* fhir: the SearchParameter registry, index extraction and search-query parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "json/json.h"

static FhirRegistry *reg;
static json_t *demo;

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("ROR_SOURCE_DIR");
    char path[1024];
    Diag d = {{0}, {0}};
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src ? src : ".");
    if (fhir_registry_load_file(reg, path, &d) != 0)
        return fprintf(stderr, "%s\n", d.msg), -1;
    snprintf(path, sizeof path, "%s/data/searchparams/ror", src ? src : ".");
    if (fhir_registry_load_dir(reg, path, &d) != 0)
        return fprintf(stderr, "%s\n", d.msg), -1;
    snprintf(path, sizeof path, "%s/data/searchparams/corrections.json", src ? src : ".");
    if (fhir_registry_finish(reg, path, &d) != 0)
        return fprintf(stderr, "%s\n", d.msg), -1;
    snprintf(path, sizeof path, "%s/data/demo/demo-region.json", src ? src : ".");
    demo = json_load_file(path, 0, NULL);
    return demo ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fhir_registry_free(reg);
    json_decref(demo);
    return 0;
}

static json_t *demo_resource(const char *type, const char *id)
{
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(demo, "entry"), i, e)
    {
        json_t *r = json_object_get(e, "resource");
        if (strcmp(json_str(r, "resourceType"), type) == 0 && strcmp(json_str(r, "id"), id) == 0)
            return r;
    }
    fail_msg("demo resource %s/%s missing", type, id);
    return NULL;
}

static void test_registry(void **state)
{
    (void)state;
    const SearchParam *sp = fhir_registry_param(reg, "Location", "capacity-status");
    assert_non_null(sp);
    assert_int_equal(sp->type, SP_TOKEN);
    assert_true(sp->corrected); /* .as(code) -> .as(CodeableConcept) */
    assert_non_null(strstr(sp->expression, "as(CodeableConcept)"));
    assert_non_null(sp->path);
    /* Resource-level parameters apply to every served type */
    for (const FhirType *t = fhir_types(); t->name; t++) {
        assert_non_null(fhir_registry_param(reg, t->name, "_id"));
        assert_non_null(fhir_registry_param(reg, t->name, "_lastUpdated"));
    }
    /* disabled by the correction table */
    assert_null(fhir_registry_param(reg, "HealthcareService", "equipment-type"));
    assert_null(fhir_registry_param(reg, "Organization", "oi-name"));
    sp = fhir_registry_param(reg, "HealthcareService", "organization");
    assert_non_null(sp);
    assert_int_equal(sp->type, SP_REFERENCE);
    assert_int_equal(sp->ntargets, 1);
    assert_string_equal(sp->targets[0], "Organization");
    assert_null(fhir_registry_param(reg, "Patient", "name"));
    /* the CapabilityStatement's name of the price parameter is served as well as its code */
    const SearchParam *price = fhir_registry_param(reg, "Organization", "price-amount-value");
    assert_non_null(price);
    assert_int_equal(price->type, SP_NUMBER);
    assert_string_equal(price->url, fhir_registry_param(reg, "Organization", "amount-value")->url);
    Diag d = {{0}, {0}};
    FhirRegistry *r2 = fhir_registry_new();
    assert_int_equal(fhir_registry_load_file(r2, "/nonexistent.json", &d), ERR_IO);
    fhir_registry_free(r2);
}

/* The index rows of a demo resource (cleanup with index_rows_cleanup). */
static void extract(const char *type, const char *id, IndexRows *rows)
{
    index_rows_init(rows);
    Diag d = {{0}, {0}};
    if (fhir_index_extract(reg, type, demo_resource(type, id), rows, &d) != 0)
        fail_msg("index extraction of %s/%s: %s", type, id, d.msg);
}

static bool has_row(const IndexRows *rows, const char *param, SpType kind, const char *s1,
                    const char *s2)
{
    for (size_t i = 0; i < rows->n; i++) {
        const IndexRow *r = &rows->rows[i];
        if (strcmp(r->param, param) == 0 && r->kind == kind &&
            (!s1 || (r->s1 && strcmp(r->s1, s1) == 0)) &&
            (!s2 || (r->s2 && strcmp(r->s2, s2) == 0)))
            return true;
    }
    return false;
}

static void test_index_location(void **state)
{
    (void)state;
    IndexRows rows;
    extract("Location", "loc-pitie-bloc", &rows);
    assert_true(has_row(&rows, "_id", SP_TOKEN, NULL, "loc-pitie-bloc"));
    assert_true(has_row(&rows, "commune-cog", SP_TOKEN,
                        "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                        "75113"));
    /* the nested equipment limit, found thanks to the correction table */
    bool limit = false;
    for (size_t i = 0; i < rows.n; i++)
        if (strcmp(rows.rows[i].param, "limit-value") == 0 && rows.rows[i].kind == SP_QUANTITY &&
            rows.rows[i].num == 250 && strcmp(rows.rows[i].s3, "kg") == 0)
            limit = true;
    assert_true(limit);
    /* a parameter whose element is absent yields no row */
    for (size_t i = 0; i < rows.n; i++)
        assert_string_not_equal(rows.rows[i].param, "capacity-closing-type");
    index_rows_cleanup(&rows);
}

static void test_index_service(void **state)
{
    (void)state;
    IndexRows rows;
    extract("HealthcareService", "hs-pitie-rea", &rows);
    assert_true(has_row(&rows, "organization", SP_REFERENCE, "Organization", "eg-pitie"));
    assert_true(has_row(&rows, "location", SP_REFERENCE, "Location", "loc-pitie-rea"));
    assert_true(has_row(&rows, "identifier", SP_TOKEN, NULL, "11/0000001"));
    bool age = false;
    for (size_t i = 0; i < rows.n; i++)
        if (strcmp(rows.rows[i].param, "age-range-low") == 0 && rows.rows[i].kind == SP_QUANTITY)
            age = true;
    assert_true(age);
    index_rows_cleanup(&rows);
}

static int parse(const char *type, const char *const *kv, size_t n, bool strict, SearchPlan **p,
                 Diag *d)
{
    QueryParam q[16];
    for (size_t i = 0; i < n; i++) {
        q[i].name = kv[2 * i];
        q[i].value = kv[2 * i + 1];
    }
    return fhir_search_parse(reg, type, q, n, strict, p, d);
}

static void test_parse_values(void **state)
{
    (void)state;
    SearchPlan *p = NULL;
    Diag d = {{0}, {0}};
    const char *q1[] = {"identifier",   "http://a|x\\,y,|z,w",
                        "_lastUpdated", "ge2021-03",
                        "nb-capacity",  "gt1.50",
                        "limit-value",  "le200|http://unitsofmeasure.org|kg",
                        "address-city", "Créteil",
                        "_count",       "500"};
    assert_int_equal(parse("Location", q1, 6, true, &p, &d), 0);
    assert_int_equal(p->nclauses, 5);
    assert_int_equal(p->count, SEARCH_COUNT_MAX);
    const SearchClause *c = &p->clauses[0];
    assert_int_equal(c->nvalues, 3);
    assert_string_equal(c->values[0].system, "http://a");
    assert_string_equal(c->values[0].code, "x,y");
    assert_string_equal(c->values[1].system, "");
    assert_string_equal(c->values[1].code, "z");
    assert_null(c->values[2].system);
    c = &p->clauses[1];
    assert_int_equal(c->values[0].prefix, PFX_GE);
    int64_t lo, hi;
    time_parse_range("2021-03", 7, &lo, &hi);
    assert_int_equal(c->values[0].lo, lo);
    assert_int_equal(c->values[0].hi, hi);
    c = &p->clauses[2];
    assert_int_equal(c->values[0].prefix, PFX_GT);
    assert_true(c->values[0].num_lo > 1.4949 && c->values[0].num_lo < 1.4951);
    c = &p->clauses[3];
    assert_string_equal(c->values[0].code, "kg");
    assert_string_equal(c->values[0].system, "http://unitsofmeasure.org");
    assert_string_equal(p->clauses[4].values[0].str, "creteil");
    search_plan_free(p);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *bad[][2] = {
        {"_lastUpdated", "xx2021"},
        {"_lastUpdated", "ge2021-13-01"},
        {"nb-capacity", "gtabc"},
        {"nb-capacity", "1e999"},
        {"_count", "-1"},
        {"_count", "ten"},
        {"name", ""},
        {"organization", "Bogus/1"},
        {"name:missing", "maybe"},
        {"_include", "Nope:x"},
        {"_include", "Location"},
        {"_total", "all"},
        {"_has:PractitionerRole", "x"},
        {"location.name.x.y.z", "a"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        SearchPlan *p = NULL;
        Diag d = {{0}, {0}};
        const char *type = strncmp(bad[i][0], "nb-", 3) == 0 || strcmp(bad[i][0], "_include") == 0
                               ? "Location"
                               : "HealthcareService";
        int rc = parse(type, bad[i], 1, false, &p, &d);
        if (rc == 0)
            fail_msg("'%s=%s' was accepted", bad[i][0], bad[i][1]);
        assert_null(p);
        assert_true(strlen(d.msg) > 0);
    }
    /* 101 values */
    char many[1024] = "";
    for (int i = 0; i < 101; i++)
        strcat(many, i ? ",a" : "a");
    const char *q[] = {"_id", many};
    SearchPlan *p = NULL;
    assert_int_equal(parse("Location", q, 1, false, &p, NULL), ERR_INVALID);
}

static void test_parse_unknown_and_chains(void **state)
{
    (void)state;
    SearchPlan *p = NULL;
    Diag d = {{0}, {0}};
    const char *q[] = {"foo", "bar", "name:sounds-like", "x", "_sort", "-name,_id"};
    assert_int_equal(parse("Organization", q, 3, false, &p, &d), 0);
    assert_int_equal(p->nclauses, 0);
    assert_int_equal(p->nignored, 2);
    assert_int_equal(p->nsorts, 2);
    assert_true(p->sorts[0].desc);
    assert_string_equal(p->self_query, "_sort=-name,_id");
    search_plan_free(p);
    assert_int_equal(parse("Organization", q, 1, true, &p, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "foo"));

    const char *chain[] = {"location.commune-cog",
                           "75113",
                           "organization.partof.identifier",
                           "x",
                           "_has:PractitionerRole:service:identifier",
                           "r1",
                           "_include:iterate",
                           "Organization:partof",
                           "_revinclude",
                           "PractitionerRole:service"};
    assert_int_equal(parse("HealthcareService", chain, 5, true, &p, &d), 0);
    assert_int_equal(p->nclauses, 3);
    assert_string_equal(p->clauses[0].chain_type, "Location");
    assert_string_equal(p->clauses[0].chain->sp->code, "commune-cog");
    assert_string_equal(p->clauses[1].chain->chain_type, "Organization");
    assert_true(p->clauses[2].reverse);
    assert_string_equal(p->clauses[2].chain_type, "PractitionerRole");
    assert_int_equal(p->nincludes, 2);
    assert_true(p->includes[0].iterate);
    assert_true(p->includes[1].rev);
    search_plan_free(p);
}

static void test_correlation_groups(void **state)
{
    (void)state;
    /* index rows of the capacity parameters carry their capacity instance */
    IndexRows rows;
    extract("Location", "loc-pitie-rea", &rows);
    int max_grp = 0, status_rows = 0;
    for (size_t i = 0; i < rows.n; i++) {
        const IndexRow *r = &rows.rows[i];
        if (strcmp(r->param, "capacity-status") == 0) {
            status_rows++;
            assert_true(r->grp >= 1);
            if (r->grp > max_grp)
                max_grp = r->grp;
        } else if (strcmp(r->param, "commune-cog") == 0) {
            assert_int_equal(r->grp, 0);
        }
    }
    assert_true(status_rows >= 2);
    assert_int_equal(max_grp, status_rows); /* one status per capacity instance */
    index_rows_cleanup(&rows);
    assert_int_not_equal(fhir_registry_param(reg, "Location", "nb-capacity")->group, 0);
    assert_int_equal(fhir_registry_param(reg, "Location", "nb-capacity")->group,
                     fhir_registry_param(reg, "Location", "capacity-status")->group);
    assert_int_equal(fhir_registry_param(reg, "Location", "name")->group, 0);

    /* chains through the same reference are merged: criteria hold on one target */
    SearchPlan *p = NULL;
    const char *q[] = {"location.capacity-status", "02", "location.nb-capacity", "gt0",
                       "organization.name",        "x"};
    assert_int_equal(parse("HealthcareService", q, 3, true, &p, NULL), 0);
    assert_int_equal(p->nclauses, 2);
    assert_int_equal(p->clauses[0].nchain, 2);
    assert_string_equal(p->clauses[0].chain[1].sp->code, "nb-capacity");
    assert_int_equal(p->clauses[1].nchain, 1);
    search_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),           cmocka_unit_test(test_index_location),
        cmocka_unit_test(test_index_service),      cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_errors),       cmocka_unit_test(test_parse_unknown_and_chains),
        cmocka_unit_test(test_correlation_groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
