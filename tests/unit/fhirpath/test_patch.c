/* Unit tests of FHIRPath Patch: the ROR bed-update protocol, every operation, every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fhirpath/fhirpath.h"
#include "fixtures.h"

#define CAP_WHERE(assign)                                                                          \
    "Location.extension.where(url='" CAP "' and extension.where(url='temporaryAssignement' and "   \
    "valueCodeableConcept.coding[0].code='" assign "'))"

/* {"name":"operation","part":[type, path]} */
static json_t *op_new(const char *type, const char *path)
{
    json_t *op = json_pack("{s:s,s:[{s:s,s:s}]}", "name", "operation", "part", "name", "type",
                           "valueCode", type);
    if (path)
        json_array_append_new(json_object_get(op, "part"),
                              json_pack("{s:s,s:s}", "name", "path", "valueString", path));
    return op;
}

/* Append the part {"name": name, vkey: v} (v stolen) and return op. */
static json_t *op_part(json_t *op, const char *name, const char *vkey, json_t *v)
{
    json_array_append_new(json_object_get(op, "part"),
                          json_pack("{s:s,s:o}", "name", name, vkey, v));
    return op;
}

/* Apply one operation (stolen) to res. */
static int apply1(json_t *res, json_t *op, Diag *d)
{
    json_t *p = json_pack("{s:s,s:[o]}", "resourceType", "Parameters", "parameter", op);
    int rc = fhirpath_patch_apply(res, p, d);
    json_decref(p);
    return rc;
}

/* The values `expr` selects in res, as a JSON array (owned). */
static json_t *sel(json_t *res, const char *expr)
{
    FpResult r = {0};
    assert_int_equal(fhirpath_eval_str(expr, res, &r, NULL), 0);
    json_t *a = json_array();
    for (size_t i = 0; i < r.n; i++)
        json_array_append(a, r.items[i].node);
    fp_result_cleanup(&r);
    return a;
}

static void assert_sel(json_t *res, const char *expr, const char *expect)
{
    json_t *got = sel(res, expr), *want = jq(expect);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_COMPACT);
        fprintf(stderr, "%s\n  got  %s\n  want %s\n", expr, s, expect);
        free(s);
    }
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
}

/* ---------------------------------------------------------------- ROR bed-update protocol */

static void test_replace_nb_capacity(void **state)
{
    (void)state;
    json_t *loc = jq(LOC);
    Diag d = {0};
    json_t *op = op_new("replace", CAP_WHERE("02") ".extension.where(url='nbCapacity')");
    assert_int_equal(apply1(loc, op_part(op, "value", "valueInteger", json_integer(12)), &d), 0);
    assert_sel(loc, CAP_WHERE("02") ".extension.where(url='nbCapacity')",
               "[{'url':'nbCapacity','valueInteger':12}]");
    assert_sel(loc, CAP_WHERE("01") ".extension.where(url='nbCapacity').value", "[5]");

    /* the guide's untyped form "value": 3 keeps the value[x] type */
    op = op_new("replace", CAP_WHERE("01") ".extension.where(url='nbCapacity')");
    assert_int_equal(apply1(loc, op_part(op, "value", "value", json_integer(3)), &d), 0);
    assert_sel(loc, CAP_WHERE("01") ".extension.where(url='nbCapacity')",
               "[{'url':'nbCapacity','valueInteger':3}]");

    /* replacing the value itself */
    op = op_new("replace", CAP_WHERE("01") ".extension.where(url='nbCapacity').value");
    assert_int_equal(apply1(loc, op_part(op, "value", "valueInteger", json_integer(4)), &d), 0);
    assert_sel(loc, CAP_WHERE("01") ".extension.where(url='nbCapacity')",
               "[{'url':'nbCapacity','valueInteger':4}]");

    /* a choice element may change type */
    op = op_new("replace", CAP_WHERE("01") ".extension.where(url='nbCapacity').value");
    assert_int_equal(apply1(loc, op_part(op, "value", "valueString", json_string("n/a")), &d), 0);
    assert_sel(loc, CAP_WHERE("01") ".extension.where(url='nbCapacity')",
               "[{'url':'nbCapacity','valueString':'n/a'}]");

    /* an extension replaced by a CodeableConcept gets valueCodeableConcept */
    op = op_new("replace", CAP_WHERE("01") ".extension.where(url='capacityStatus')");
    assert_int_equal(apply1(loc, op_part(op, "value", "valueCodeableConcept", jq(CC("03"))), &d),
                     0);
    assert_sel(loc, CAP_WHERE("01") ".extension.where(url='capacityStatus')",
               "[{'url':'capacityStatus','valueCodeableConcept':" CC("03") "}]");

    /* the unknown indicator: 404 with the path as expression */
    const char *missing = CAP_WHERE("03") ".extension.where(url='nbCapacity')";
    op = op_new("replace", missing);
    assert_int_equal(apply1(loc, op_part(op, "value", "valueInteger", json_integer(1)), &d),
                     ERR_NOT_FOUND);
    assert_string_equal(d.expr, missing);
    assert_true(d.msg[0] != '\0');
    json_decref(loc);
}

/* The add of a whole capacity extension, as the guide's patch-capacitaire page writes it:
 * path "Location", no name, a value part holding a bare {"extension": [...]} fragment. */
static void test_add_capacity_guide_shape(void **state)
{
    (void)state;
    json_t *loc = jq(LOC);
    Diag d = {0};
    const char *body =
        "{'parameter':[{'name':'operation','part':[{'name':'type','valueString':'add'},"
        "{'name':'path','valueString':'Location'},{'name':'value','part':[{'extension':[{"
        "'extension':[{'url':'capacityType','valueCodeableConcept':" CC(
            "01") "},"
                  "{'url':'capacityStatus','valueCodeableConcept':" CC(
                      "02") "},"
                            "{'url':'temporalityCapacity','valueCodeableConcept':" CC(
                                "01") "},"
                                      "{'url':'nbCapacity','valueInteger':9},"
                                      "{'url':'temporaryAssignement','valueCodeableConcept':" CC(
                                          "03") "}],"
                                                "'url':'" CAP
                                                "'}]}]}]}],'resourceType':'Parameters'}";
    json_t *p = jq(body);
    assert_non_null(p);
    assert_int_equal(fhirpath_patch_apply(loc, p, &d), 0);
    assert_sel(loc, "Location.extension.where(url='" CAP "').count()", "[3]");
    assert_sel(loc, CAP_WHERE("03") ".extension.where(url='nbCapacity').value", "[9]");
    /* the other extensions are untouched */
    assert_sel(loc, "Location.extension.count()", "[6]");
    json_decref(p);

    /* same on a Location without extensions: the array is created */
    json_t *bare = jq("{'resourceType':'Location','id':'x'}");
    p = jq(body);
    assert_int_equal(fhirpath_patch_apply(bare, p, &d), 0);
    assert_int_equal(json_array_size(json_object_get(bare, "extension")), 1);
    json_decref(p);
    json_decref(bare);
    json_decref(loc);
}

/* The standard nested-part form: name + value built from parts. */
static void test_add_nested_parts(void **state)
{
    (void)state;
    json_t *loc = jq(LOC);
    Diag d = {0};
    json_t *sub = jq("[{'name':'url','valueUri':'nbCapacity'},{'name':'value','valueInteger':4}]");
    json_t *parts = json_pack("[{s:s,s:s},{s:s,s:o},{s:s,s:o}]", "name", "url", "valueUri", CAP,
                              "name", "extension", "part", sub, "name", "extension", "part",
                              jq("[{'name':'url','valueString':'temporaryAssignement'},"
                                 "{'name':'value','valueCodeableConcept':" CC("03") "}]"));
    json_t *op =
        op_part(op_new("add", "Location"), "name", "valueString", json_string("extension"));
    assert_int_equal(apply1(loc, op_part(op, "value", "part", parts), &d), 0);
    assert_sel(loc, CAP_WHERE("03"),
               "[{'url':'" CAP "','extension':[{'url':'nbCapacity','valueInteger':4},"
               "{'url':'temporaryAssignement','valueCodeableConcept':" CC("03") "}]}]");

    /* add to a list, to an absent single element, to an existing single element */
    op = op_part(op_new("add", "Location"), "name", "valueString", json_string("alias"));
    assert_int_equal(apply1(loc, op_part(op, "value", "valueString", json_string("UB")), &d), 0);
    assert_sel(loc, "Location.alias", "['UA','Unite A','UB']");
    op = op_part(op_new("add", "Location"), "name", "valueString", json_string("description"));
    assert_int_equal(apply1(loc, op_part(op, "value", "valueString", json_string("d")), &d), 0);
    assert_true(json_is_string(json_object_get(loc, "description")));
    op = op_part(op_new("add", "Location"), "name", "valueString", json_string("name"));
    assert_int_equal(apply1(loc, op_part(op, "value", "valueString", json_string("n")), &d),
                     ERR_INVALID);
    /* list-ness comes from the resource type: Organization.address is a list */
    json_t *org = jq("{'resourceType':'Organization','id':'o'}");
    op = op_part(op_new("add", "Organization"), "name", "valueString", json_string("address"));
    assert_int_equal(apply1(org, op_part(op, "value", "valueAddress", jq("{'city':'Paris'}")), &d),
                     0);
    assert_sel(org, "Organization.address", "[{'city':'Paris'}]");
    assert_true(json_is_array(json_object_get(org, "address")));
    /* add under a nested element */
    op = op_part(op_new("add", "Organization.address"), "name", "valueString", json_string("line"));
    assert_int_equal(apply1(org, op_part(op, "value", "valueString", json_string("1 rue")), &d), 0);
    assert_sel(org, "Organization.address.line", "['1 rue']");
    json_decref(org);
    json_decref(loc);
}

static void test_insert_move_delete(void **state)
{
    (void)state;
    json_t *loc = jq(LOC);
    Diag d = {0};
    json_t *op =
        op_part(op_new("insert", "Location.identifier"), "index", "valueInteger", json_integer(0));
    assert_int_equal(
        apply1(loc, op_part(op, "value", "valueIdentifier", jq("{'system':'urn:z','value':'Z0'}")),
               &d),
        0);
    assert_sel(loc, "Location.identifier.value", "['Z0','A1','B2']");
    op = op_part(op_new("insert", "Location.identifier"), "index", "valueInteger", json_integer(3));
    assert_int_equal(apply1(loc, op_part(op, "value", "valueIdentifier", jq("{'value':'E'}")), &d),
                     0);
    assert_sel(loc, "Location.identifier.value", "['Z0','A1','B2','E']");

    op = op_part(op_new("move", "Location.identifier"), "source", "valueInteger", json_integer(0));
    op = op_part(op, "destination", "valueInteger", json_integer(2));
    assert_int_equal(apply1(loc, op, &d), 0);
    assert_sel(loc, "Location.identifier.value", "['A1','B2','Z0','E']");

    assert_int_equal(apply1(loc, op_new("delete", "Location.identifier.where(value='B2')"), &d), 0);
    assert_sel(loc, "Location.identifier.value", "['A1','Z0','E']");
    assert_int_equal(
        apply1(loc, op_new("delete", "Location.extension('" SD "ror-commune-cog')"), &d), 0);
    assert_sel(loc, "Location.extension('" SD "ror-commune-cog')", "[]");
    assert_int_equal(apply1(loc, op_new("delete", CAP_WHERE("02")), &d), 0);
    assert_sel(loc, "Location.extension.where(url='" CAP "').count()", "[1]");
    assert_int_equal(apply1(loc, op_new("delete", "Location.address.city"), &d), 0);
    assert_null(json_object_get(json_object_get(loc, "address"), "city"));
    /* deleting the last item removes the member */
    assert_int_equal(apply1(loc, op_new("delete", "Location.type"), &d), 0);
    assert_null(json_object_get(loc, "type"));
    /* fhirpatch.html: deleting nothing is a no-op */
    json_t *before = json_deep_copy(loc);
    assert_int_equal(apply1(loc, op_new("delete", "Location.telecom"), &d), 0);
    assert_true(json_equal(before, loc));
    json_decref(before);

    /* replace a whole list with a list (the guide's Practitioner.telecom example) */
    json_t *op2 = op_new("replace", "Location.alias");
    assert_int_equal(apply1(loc, op_part(op2, "value", "value", jq("['X','Y']")), &d), 0);
    assert_sel(loc, "Location.alias", "['X','Y']");
    /* replace with `name` (the guide's Organization address example) */
    op2 = op_part(op_new("replace", "Location"), "name", "valueString", json_string("address"));
    assert_int_equal(apply1(loc, op_part(op2, "value", "value", jq("{'city':'Buc'}")), &d), 0);
    assert_sel(loc, "Location.address", "[{'city':'Buc'}]");
    json_decref(loc);
}

/* ---------------------------------------------------------------- errors */

static void test_errors(void **state)
{
    (void)state;
    json_t *loc = jq(LOC), *orig = json_deep_copy(loc);
    Diag d = {0};
    struct {
        json_t *op;
        int err;
    } cases[] = {
        {op_part(op_new("replace", "Location.identifier"), "value", "valueString",
                 json_string("x")),
         ERR_MULTIPLE},
        {op_new("delete", "Location.identifier"), ERR_MULTIPLE},
        {op_part(op_new("add", "Location.identifier"), "name", "valueString", json_string("x")),
         ERR_INVALID}, /* no value */
        {op_part(
             op_part(op_new("add", "Location.identifier"), "name", "valueString", json_string("x")),
             "value", "valueString", json_string("v")),
         ERR_MULTIPLE},
        {op_part(op_new("add", "Location.telecom"), "name", "valueString", json_string("x")),
         ERR_INVALID},
        {op_part(
             op_part(op_new("add", "Location.telecom"), "name", "valueString", json_string("x")),
             "value", "valueString", json_string("v")),
         ERR_NOT_FOUND},
        {op_part(op_part(op_new("insert", "Location.telecom"), "index", "valueInteger",
                         json_integer(0)),
                 "value", "valueString", json_string("v")),
         ERR_NOT_FOUND},
        {op_part(op_part(op_new("insert", "Location.identifier"), "index", "valueInteger",
                         json_integer(9)),
                 "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_part(op_new("insert", "Location.address"), "index", "valueInteger",
                         json_integer(0)),
                 "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_new("insert", "Location.identifier"), "value", "valueString", json_string("v")),
         ERR_INVALID}, /* no index */
        {op_part(op_part(op_new("move", "Location.identifier"), "source", "valueInteger",
                         json_integer(0)),
                 "destination", "valueInteger", json_integer(5)),
         ERR_INVALID},
        {op_part(op_new("move", "Location.identifier"), "source", "valueInteger", json_integer(0)),
         ERR_INVALID},
        {op_part(
             op_part(op_new("move", "Location.telecom"), "source", "valueInteger", json_integer(0)),
             "destination", "valueInteger", json_integer(0)),
         ERR_NOT_FOUND},
        {op_part(op_part(op_new("move", "Location.extension.extension"), "source", "valueInteger",
                         json_integer(0)),
                 "destination", "valueInteger", json_integer(1)),
         ERR_MULTIPLE},
        /* the server owns id and resourceType */
        {op_part(op_new("replace", "Location.id"), "value", "valueId", json_string("y")),
         ERR_INVALID},
        {op_part(op_new("replace", "Location.resourceType"), "value", "valueString",
                 json_string("Patient")),
         ERR_INVALID},
        {op_new("delete", "Location.id"), ERR_INVALID},
        {op_part(op_part(op_new("add", "Location"), "name", "valueString", json_string("id")),
                 "value", "valueId", json_string("z")),
         ERR_INVALID},
        {op_part(op_new("add", "Location"), "value", "value", jq("{'resourceType':'Patient'}")),
         ERR_INVALID},
        {op_part(op_part(op_new("replace", "Location"), "name", "valueString", json_string("id")),
                 "value", "valueId", json_string("z")),
         ERR_INVALID},
        {op_part(op_new("replace", "Location"), "value", "value", jq("{'resourceType':'X'}")),
         ERR_INVALID},
        {op_new("delete", "Location"), ERR_INVALID},
        /* malformed operations */
        {op_part(op_new("frobnicate", "Location"), "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_new("replace", NULL), "value", "valueString", json_string("v")), ERR_INVALID},
        {op_new("replace", "Location.name"), ERR_INVALID},
        {op_part(op_new("add", "Location"), "value", "valueString", json_string("v")),
         ERR_INVALID}, /* add without name and a non-object value */
        {op_part(op_new("replace", "Location.name)"), "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_new("replace", "Location.name"), "bogus", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_new("delete", "Location.name"), "path", "valueString", json_string("x")),
         ERR_INVALID}, /* repeated path */
        {op_part(
             op_part(op_new("replace", "Location.name"), "value", "valueString", json_string("v")),
             "value", "valueString", json_string("w")),
         ERR_INVALID},
        {op_part(op_part(op_new("insert", "Location.identifier"), "index", "valueInteger",
                         json_integer(-1)),
                 "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(
             op_part(op_new("delete", "Location.name"), "name", "valueString", json_string("x")),
             "value", "valueString", json_string("v")),
         ERR_INVALID},
        {op_part(op_new("add", "Location"), "value", "part", jq("[{'name':'x'}]")), ERR_INVALID},
        {op_part(op_new("add", "Location"), "value", "part", jq("{'name':'x'}")), ERR_INVALID},
        {op_part(op_new("add", "Location"), "value", "part", jq("[1]")), ERR_INVALID},
        {json_pack("{s:s,s:[]}", "name", "operation", "part"), ERR_INVALID},
        {json_pack("{s:s,s:[{s:s}]}", "name", "operation", "part", "valueString", "x"),
         ERR_INVALID},
        {json_pack("{s:s}", "name", "notanoperation"), ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *res = json_deep_copy(orig);
        d = (Diag){0};
        int rc = apply1(res, cases[i].op, &d);
        if (rc != cases[i].err)
            fprintf(stderr, "case %zu: rc=%d want %d (%s)\n", i, rc, cases[i].err, d.msg);
        assert_int_equal(rc, cases[i].err);
        assert_true(d.msg[0] != '\0');
        if (rc == ERR_INVALID && i >= 14 && i <= 21)
            assert_true(json_equal(res, orig)); /* protected elements untouched */
        json_decref(res);
    }
    /* Parameters-level errors */
    static const char *const bad[] = {
        "{'resourceType':'Parameters'}",
        "{'resourceType':'Parameters','parameter':[]}",
        "{'resourceType':'Bundle','parameter':[{'name':'operation','part':[]}]}",
        "{'resourceType':'Parameters','parameter':{}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *p = jq(bad[i]);
        assert_int_equal(fhirpath_patch_apply(loc, p, &d), ERR_INVALID);
        json_decref(p);
    }
    assert_int_equal(fhirpath_patch_apply(loc, NULL, &d), ERR_INVALID);
    assert_true(json_equal(loc, orig));
    json_decref(loc);
    json_decref(orig);
}

/* Operations apply in order; a later failure reports its own path. */
static void test_sequence(void **state)
{
    (void)state;
    json_t *loc = jq(LOC);
    Diag d = {0};
    json_t *p = json_pack(
        "{s:s,s:[o,o]}", "resourceType", "Parameters", "parameter",
        op_part(op_new("replace", "Location.name"), "value", "valueString", json_string("Unite B")),
        op_part(op_new("replace", "Location.name.where($this='Unite A')"), "value", "valueString",
                json_string("never")));
    assert_int_equal(fhirpath_patch_apply(loc, p, &d), ERR_NOT_FOUND);
    assert_string_equal(d.expr, "Location.name.where($this='Unite A')");
    assert_sel(loc, "Location.name", "['Unite B']");
    json_decref(p);
    json_decref(loc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace_nb_capacity),
        cmocka_unit_test(test_add_capacity_guide_shape),
        cmocka_unit_test(test_add_nested_parts),
        cmocka_unit_test(test_insert_move_delete),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
