/* capacity: indicator keys from the guide's dimensions, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "capacity/capacity.h"
#include "json/json.h"

static json_t *sc(const char *status, const char *gender, int nb, bool with_nb)
{
    json_t *ext = json_pack("{s:s,s:[]}", "url", CAPACITY_EXT_URL, "extension");
    json_t *subs = json_object_get(ext, "extension");
    json_array_append_new(subs, json_pack("{s:s,s:{s:[{s:s}]}}", "url", "capacityType",
                                          "valueCodeableConcept", "coding", "code", "01"));
    json_array_append_new(subs, json_pack("{s:s,s:{s:[{s:s}]}}", "url", "capacityStatus",
                                          "valueCodeableConcept", "coding", "code", status));
    json_array_append_new(subs, json_pack("{s:s,s:{s:[{s:s}]}}", "url", "temporalityCapacity",
                                          "valueCodeableConcept", "coding", "code", "01"));
    if (gender)
        json_array_append_new(subs,
                              json_pack("{s:s,s:{s:[{s:s}]}}", "url", "genderCapacityAvailable",
                                        "valueCodeableConcept", "coding", "code", gender));
    if (with_nb)
        json_array_append_new(subs,
                              json_pack("{s:s,s:i}", "url", "nbCapacity", "valueInteger", nb));
    json_array_append_new(subs, json_pack("{s:s,s:s}", "url", "capacityUpdateDate", "valueDateTime",
                                          "2026-12-02T10:00:00+01:00"));
    return ext;
}

static json_t *location(json_t *a, json_t *b)
{
    json_t *loc = json_pack("{s:s,s:s,s:[]}", "resourceType", "Location", "id", "l1", "extension");
    json_array_append_new(
        json_object_get(loc, "extension"),
        json_pack("{s:s,s:s}", "url", "http://example.org/other", "valueString", "x"));
    if (a)
        json_array_append_new(json_object_get(loc, "extension"), a);
    if (b)
        json_array_append_new(json_object_get(loc, "extension"), b);
    return loc;
}

static void t_keys(void **state)
{
    (void)state;
    json_t *loc = location(sc("01", NULL, 20, true), sc("02", "03", 4, true));
    CapacityIndicator *v = NULL;
    size_t n = 0;
    Diag d = {{0}, {0}};
    assert_int_equal(capacity_indicators(loc, &v, &n, &d), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].key, "01|01|01|-|-|-|-|-");
    assert_string_equal(v[1].key, "01|02|01|03|-|-|-|-");
    assert_true(v[1].has_count);
    assert_int_equal(v[1].count, 4);
    assert_string_equal(v[1].update_date, "2026-12-02T10:00:00+01:00");
    free(v);
    json_decref(loc);
}

static void t_refused(void **state)
{
    (void)state;
    CapacityIndicator *v = NULL;
    size_t n = 0;
    Diag d = {{0}, {0}};
    json_t *dup = location(sc("02", "03", 4, true), sc("02", "03", 5, true));
    assert_int_equal(capacity_indicators(dup, &v, &n, &d), ERR_BUSINESS);
    assert_non_null(strstr(d.msg, "mêmes dimensions"));
    json_decref(dup);
    /* same status, another gender: two indicators */
    json_t *two = location(sc("02", "01", 4, true), sc("02", "02", 5, true));
    assert_int_equal(capacity_indicators(two, &v, &n, &d), 0);
    assert_int_equal(n, 2);
    free(v);
    json_decref(two);
    /* a code with the key separator cannot forge another key */
    json_t *bad = location(sc("02|03", NULL, 1, true), NULL);
    assert_int_equal(capacity_indicators(bad, &v, &n, &d), ERR_BUSINESS);
    json_decref(bad);
    /* no indicator at all */
    json_t *none = location(NULL, NULL);
    assert_int_equal(capacity_indicators(none, &v, &n, &d), 0);
    assert_int_equal(n, 0);
    free(v);
    json_decref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_keys),
        cmocka_unit_test(t_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
