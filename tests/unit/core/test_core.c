/* core: time ranges, text folding, buffers, ids, geo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int64_t ms(const char *s)
{
    int64_t lo, hi;
    assert_int_equal(time_parse_range(s, strlen(s), &lo, &hi), 0);
    return lo;
}

static void test_time_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t lo, hi;
    } cases[] = {
        {"1970", 0, 365LL * 86400000 - 1},
        {"2020-02", 1580515200000LL, 1583020800000LL - 1}, /* leap February */
        {"2021-03-04", 1614816000000LL, 1614816000000LL + 86400000 - 1},
        {"2021-03-04T10:00Z", 1614852000000LL, 1614852000000LL + 59999},
        {"2021-03-04T10:00:05Z", 1614852005000LL, 1614852005999LL},
        {"2021-03-04T10:00:05.123Z", 1614852005123LL, 1614852005123LL},
        {"2021-03-04T11:00:05.123+01:00", 1614852005123LL, 1614852005123LL},
        {"2021-03-04T05:30:00-04:30", 1614852000000LL, 1614852000999LL},
        {"2021-03-04T10:00:05.1234567Z", 1614852005123LL, 1614852005123LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(time_parse_range(cases[i].s, strlen(cases[i].s), &lo, &hi), 0);
        assert_int_equal(lo, cases[i].lo);
        assert_int_equal(hi, cases[i].hi);
    }
    static const char *bad[] = {"",
                                "20",
                                "2021-13",
                                "2021-02-30",
                                "2021-1-01",
                                "2021-01-01T",
                                "2021-01-01T25:00Z",
                                "2021-01-01T10:00:00+1:00",
                                "2021-01-01x",
                                "2021-01-01T10:00:00.Z",
                                "２０２１",
                                "2021-01-01T10:61Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t lo = 7, hi = 7;
        assert_int_equal(time_parse_range(bad[i], strlen(bad[i]), &lo, &hi), ERR_INVALID);
        assert_int_equal(lo, 7); /* untouched on failure */
    }
    char out[32];
    time_format_instant(ms("2021-03-04T10:00:05.123Z"), out);
    assert_string_equal(out, "2021-03-04T10:00:05.123Z");
    time_format_instant(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
}

static void test_text_fold(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Hôpital Pitié-Salpêtrière", "hopital pitie-salpetriere"},
        {"CŒUR  et   ÆSCHYLE", "coeur et aeschyle"},
        {"  Saint-Étienne\t", "saint-etienne"},
        {"Straße", "strasse"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *f = text_fold(cases[i].in, strlen(cases[i].in));
        assert_non_null(f);
        assert_string_equal(f, cases[i].out);
        free(f);
    }
    assert_null(text_fold("\xff\xfe", 2)); /* not UTF-8 */
}

static void test_buf_cap(void **state)
{
    (void)state;
    Buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_adds(&b, "0123456789"), 0);
    assert_int_equal(buf_adds(&b, "x"), ERR_TOO_LARGE);
    assert_true(b.overflow);
    assert_int_equal(b.len, 10);
    buf_cleanup(&b);

    buf_init(&b, 1024);
    buf_add_json_string(&b, "a\"b\\c\n\x01é", 9);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001é\"");
    size_t len;
    char *s = buf_steal(&b, &len);
    assert_int_equal(len, strlen(s));
    free(s);
    assert_null(b.p);
}

static void test_ids_and_geo(void **state)
{
    (void)state;
    assert_true(fhir_id_valid("abc-DEF.123", 11));
    assert_false(fhir_id_valid("", 0));
    assert_false(fhir_id_valid("a/b", 3));
    assert_false(fhir_id_valid("a b", 3));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    assert_false(fhir_id_valid(long_id, 65));
    assert_true(fhir_id_valid(long_id, 64));

    char u1[37], u2[37];
    uuid_v4(u1);
    uuid_v4(u2);
    assert_int_equal(strlen(u1), 36);
    assert_int_equal(u1[14], '4');
    assert_true(strchr("89ab", u1[19]) != NULL);
    assert_string_not_equal(u1, u2);
    assert_true(fhir_id_valid(u1, 36));

    /* Paris (Notre-Dame) - Lyon (Bellecour): 391.5 km great-circle */
    double d = geo_distance_m(48.8530, 2.3498, 45.7578, 4.8320);
    assert_true(d > 391000 && d < 392500);
    assert_true(geo_distance_m(45, 4, 45, 4) < 1e-6);
}

static void test_arena(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    char *big = arena_alloc(&a, 100000); /* larger than a block */
    memset(big, 1, 100000);
    char *s = arena_printf(&a, "%s-%d", "x", 42);
    assert_string_equal(s, "x-42");
    for (int i = 0; i < 10000; i++)
        assert_non_null(arena_strdup(&a, "some text"));
    arena_cleanup(&a);
    assert_null(a.head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_ranges), cmocka_unit_test(test_text_fold),
        cmocka_unit_test(test_buf_cap),     cmocka_unit_test(test_ids_and_geo),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
