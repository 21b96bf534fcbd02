/*
 * import/finess.c and projection.c: the etalab FINESS parser on the fixtures of
 * tests/data/finess (made by make_fixture.py; expected values in expected.json come from the
 * national FHIR set and commune centres, not from this parser).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fhir/fhir.h"
#include "json/json.h"
#include "import/import.h"
#include "import/import_int.h"

#define R13 "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
#define INSEE_URL "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
#define SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"

static char *fixture(const char *name)
{
    const char *src = getenv("ROR_SOURCE_DIR");
    assert_non_null(src);
    return xasprintf("%s/tests/data/finess/%s", src, name);
}

static json_t *expected(void)
{
    char *path = fixture("expected.json");
    json_t *e = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(e);
    return e;
}

/* Parse a fixture (or an absolute path) into a collector; *rc gets the parser's result. */
static ImportSink *run(const char *name, bool strict, int *rc, Diag *d)
{
    char *path = name[0] == '/' ? xstrdup(name) : fixture(name);
    ImportSink *k = import_collector_new(strict);
    *rc = import_parse_finess(k, path, d);
    free(path);
    return k;
}

static json_t *find(ImportSink *k, const char *type, const char *id)
{
    json_t *r;
    size_t i;
    json_array_foreach(import_collector_resources(k), i, r)
    {
        if (strcmp(json_str(r, "resourceType"), type) == 0 && strcmp(json_str(r, "id"), id) == 0)
            return r;
    }
    return NULL;
}

static size_t count_type(ImportSink *k, const char *type)
{
    json_t *r;
    size_t i, n = 0;
    json_array_foreach(import_collector_resources(k), i, r)
    {
        n += strcmp(json_str(r, "resourceType"), type) == 0;
    }
    return n;
}

static json_t *ext(json_t *res, const char *url)
{
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(res, "extension"), i, e)
    {
        if (strcmp(json_str(e, "url"), url) == 0)
            return e;
    }
    return NULL;
}

static const char *commune_cog(json_t *loc)
{
    json_t *e = ext(loc, SD "ror-commune-cog");
    assert_non_null(e);
    json_t *c =
        json_array_get(json_object_get(json_object_get(e, "valueCodeableConcept"), "coding"), 0);
    assert_string_equal(json_str(c, "system"), R13);
    return json_str(c, "code");
}

static const char *address_insee(json_t *addr)
{
    json_t *e = ext(addr, INSEE_URL);
    assert_non_null(e);
    return json_str(json_object_get(e, "valueCoding"), "code");
}

static bool has_identifier(json_t *res, const char *system, const char *value)
{
    json_t *id;
    size_t i;
    json_array_foreach(json_object_get(res, "identifier"), i, id)
    {
        if (strcmp(json_str(id, "system"), system) == 0 &&
            strcmp(json_str(id, "value"), value) == 0)
            return true;
    }
    return false;
}

static bool has_type(json_t *res, const char *system_part, const char *code)
{
    json_t *t;
    size_t i;
    json_array_foreach(json_object_get(res, "type"), i, t)
    {
        json_t *c = json_array_get(json_object_get(t, "coding"), 0);
        if (strstr(json_str(c, "system"), system_part) && strcmp(json_str(c, "code"), code) == 0)
            return true;
    }
    return false;
}

static char *id_of(const char *finess)
{
    return xasprintf("finess-%s", finess);
}

static void assert_near(json_t *loc, double lat, double lon)
{
    json_t *pos = json_object_get(loc, "position");
    assert_non_null(pos);
    double got_lat = json_real_value(json_object_get(pos, "latitude"));
    double got_lon = json_real_value(json_object_get(pos, "longitude"));
    double m = geo_distance_m(lat, lon, got_lat, got_lon);
    if (m > 10.0)
        fail_msg("%s: %.2f m from the expected position", json_str(loc, "id"), m);
    /* 7 decimals at most */
    assert_true(fabs(got_lat * 1e7 - round(got_lat * 1e7)) < 1e-3);
}

/* Every resource passes the server's checks (ROR profiles it claims included). */
static void assert_valid(ImportSink *k)
{
    json_t *r;
    size_t i;
    json_array_foreach(import_collector_resources(k), i, r)
    {
        Diag d = {{0}, {0}};
        int rc = fhir_resource_check(json_str(r, "resourceType"), r, &d);
        if (rc != 0)
            fail_msg("%s/%s: %s", json_str(r, "resourceType"), json_str(r, "id"), d.msg);
        json_t *meta = json_object_get(r, "meta");
        assert_null(json_object_get(meta, "versionId"));
        assert_null(json_object_get(meta, "lastUpdated"));
        assert_null(json_object_get(meta, "tag"));
    }
}

static void test_sample(void **state)
{
    (void)state;
    int rc;
    ImportSink *k = run("etalab-sample-latin1.csv", false, &rc, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 0);
    assert_int_equal(json_array_size(import_collector_warnings(k)), 0);
    json_t *all = expected(), *exp = json_object_get(all, "sample");
    assert_int_equal(count_type(k, "Organization"), json_array_size(exp));
    assert_int_equal(count_type(k, "Location"), json_array_size(exp));
    assert_valid(k);

    json_t *e;
    size_t i;
    json_array_foreach(exp, i, e)
    {
        char *id = id_of(json_str(e, "nofinesset"));
        json_t *org = find(k, "Organization", id), *loc = find(k, "Location", id);
        assert_non_null(org);
        assert_non_null(loc);
        assert_string_equal(json_str(org, "name"), json_str(e, "name"));
        assert_string_equal(json_str(loc, "name"), json_str(e, "name"));
        json_t *addr = json_array_get(json_object_get(org, "address"), 0);
        assert_string_equal(address_insee(addr), json_str(e, "insee"));
        assert_string_equal(json_str(addr, "postalCode"), json_str(e, "postalCode"));
        assert_string_equal(json_str(addr, "city"), json_str(e, "city"));
        assert_string_equal(commune_cog(loc), json_str(e, "insee"));
        assert_string_equal(address_insee(json_object_get(loc, "address")), json_str(e, "insee"));
        assert_true(
            has_identifier(org, "https://finess.esante.gouv.fr", json_str(e, "nofinesset")));
        char *idnat = xasprintf("1%s", json_str(e, "nofinesset"));
        assert_true(has_identifier(org, "urn:oid:1.2.250.1.71.4.2.2", idnat));
        free(idnat);
        char *ej = xasprintf("Organization/finess-%s", json_str(e, "nofinessej"));
        assert_string_equal(json_str(json_object_get(org, "partOf"), "reference"), ej);
        free(ej);
        char *eg = xasprintf("Organization/%s", id);
        assert_string_equal(json_str(json_object_get(loc, "managingOrganization"), "reference"),
                            eg);
        free(eg);
        assert_true(json_is_true(json_object_get(org, "active")));
        assert_string_equal(json_str(loc, "status"), "active");
        if (json_is_null(json_object_get(e, "latitude")))
            assert_null(json_object_get(loc, "position"));
        else
            assert_near(loc, json_real_value(json_object_get(e, "latitude")),
                        json_real_value(json_object_get(e, "longitude")));
        free(id);
    }

    /* one record in detail: CH de Fleyriat */
    json_t *org = find(k, "Organization", "finess-010000024");
    assert_true(has_type(org, "TRE_R66", "355"));
    assert_true(has_type(org, "TRE_R65", "1102"));
    assert_true(has_type(org, "TRE_R73", "1"));
    assert_true(has_identifier(org, "https://sirene.fr", "26010004500012"));
    json_t *addr = json_array_get(json_object_get(org, "address"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(addr, "line"), 0)),
                        "900 RTE DE PARIS");
    assert_string_equal(json_str(json_array_get(json_object_get(org, "telecom"), 0), "value"),
                        "0474454647");
    json_t *period = ext(org, "http://hl7.org/fhir/StructureDefinition/organization-period");
    assert_string_equal(json_str(json_object_get(period, "valuePeriod"), "start"), "1979-02-13");
    assert_string_equal(json_str(ext(org, SD "ror-meta-creation-date"), "valueDateTime"),
                        "1979-02-13");
    /* a BP goes to its own line */
    addr =
        json_array_get(json_object_get(find(k, "Organization", "finess-010000032"), "address"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(addr, "line"), 1)),
                        "BP 139");
    /* the ET without geolocalisation row comes last, without position */
    json_t *res = import_collector_resources(k);
    json_t *last = json_array_get(res, json_array_size(res) - 1);
    assert_string_equal(json_str(last, "id"), "finess-730000288");
    assert_string_equal(json_str(last, "resourceType"), "Location");
    json_decref(all);
    import_collector_free(k);
}

static char *dump_all(ImportSink *k)
{
    return json_dumps(import_collector_resources(k), JSON_SORT_KEYS | JSON_COMPACT);
}

static void test_latin1_equals_utf8(void **state)
{
    (void)state;
    int rc1, rc2, rc3;
    ImportSink *a = run("etalab-sample-latin1.csv", false, &rc1, NULL);
    ImportSink *b = run("etalab-sample-utf8.csv", false, &rc2, NULL);
    ImportSink *c = run("etalab-sample-latin1.csv", false, &rc3, NULL);
    assert_int_equal(rc1 | rc2 | rc3, 0);
    char *sa = dump_all(a), *sb = dump_all(b), *sc = dump_all(c);
    assert_true(strlen(sa) > 1000);
    assert_string_equal(sa, sb); /* encodings and line ends do not matter */
    assert_string_equal(sa, sc); /* same input, byte-identical output */
    assert_non_null(strstr(sa, "RÉSIDENCE LES FONTAINES D'OR"));
    assert_non_null(strstr(sa, "CRÈVECOEUR"));
    free(sa);
    free(sb);
    free(sc);
    import_collector_free(a);
    import_collector_free(b);
    import_collector_free(c);
}

static void test_gzip(void **state)
{
    (void)state;
    char *src = fixture("etalab-sample-latin1.csv");
    char tmp[] = "/tmp/test-finess-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    FILE *in = fopen(src, "rb");
    gzFile out = gzopen(tmp, "wb");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        gzwrite(out, buf, (unsigned)n);
    fclose(in);
    gzclose(out);
    int rc1, rc2;
    ImportSink *a = run(src, false, &rc1, NULL), *b = run(tmp, false, &rc2, NULL);
    assert_int_equal(rc1 | rc2, 0);
    char *sa = dump_all(a), *sb = dump_all(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    import_collector_free(a);
    import_collector_free(b);
    unlink(tmp);
    free(src);
}

static void test_overseas(void **state)
{
    (void)state;
    int rc;
    ImportSink *k = run("etalab-overseas.csv", false, &rc, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 0);
    assert_valid(k);
    json_t *exp = expected();
    json_t *e;
    size_t i, warned = 0;
    json_array_foreach(json_object_get(exp, "overseas"), i, e)
    {
        char *id = id_of(json_str(e, "nofinesset"));
        json_t *loc = find(k, "Location", id);
        assert_non_null(loc);
        assert_non_null(find(k, "Organization", id));
        assert_string_equal(commune_cog(loc), json_str(e, "insee"));
        assert_string_equal(json_str(loc, "name"), json_str(e, "name"));
        const char *outcome = json_str(e, "outcome");
        if (strcmp(outcome, "position") == 0) {
            assert_near(loc, json_real_value(json_object_get(e, "latitude")),
                        json_real_value(json_object_get(e, "longitude")));
        } else {
            assert_null(json_object_get(loc, "position"));
        }
        if (strcmp(outcome, "warning") == 0) {
            /* the warning names the establishment */
            bool found = false;
            json_t *w;
            size_t j;
            json_array_foreach(import_collector_warnings(k), j, w)
            {
                found |= strstr(json_string_value(w), json_str(e, "nofinesset")) != NULL;
            }
            assert_true(found);
            warned++;
        }
        free(id);
    }
    assert_int_equal(warned, 3);
    assert_int_equal(json_array_size(import_collector_warnings(k)), warned);
    json_t *w;
    json_array_foreach(import_collector_warnings(k), i, w)
    {
        assert_non_null(strstr(json_string_value(w), "etalab-overseas.csv:"));
    }
    const char *w0 = json_string_value(json_array_get(import_collector_warnings(k), 0));
    assert_non_null(strstr(w0, "incohérente"));
    const char *w1 = json_string_value(json_array_get(import_collector_warnings(k), 1));
    assert_non_null(strstr(w1, "projection inconnue « GAUSS_LABORDE_STE_ANNE »"));
    json_decref(exp);
    import_collector_free(k);
}

/* The rejects are exactly expected's, in order, as "<file>:<line>: <reason>". */
static void assert_rejects(ImportSink *k, json_t *want, const char *file)
{
    json_t *got = import_collector_rejects(k);
    if (json_array_size(got) != json_array_size(want))
        for (size_t i = 0; i < json_array_size(got); i++)
            print_message("reject: %s\n", json_string_value(json_array_get(got, i)));
    assert_int_equal(json_array_size(got), json_array_size(want));
    json_t *e;
    size_t i;
    json_array_foreach(want, i, e)
    {
        const char *msg = json_string_value(json_array_get(got, i));
        char *where = xasprintf("/%s:%lld: ", file,
                                (long long)json_integer_value(json_object_get(e, "line")));
        if (!strstr(msg, where) || !strstr(msg, json_str(e, "contains")))
            fail_msg("reject %zu: '%s', expected '%s' and '%s'", i, msg, where,
                     json_str(e, "contains"));
        free(where);
    }
}

static void test_bad_lines(void **state)
{
    (void)state;
    int rc;
    ImportSink *k = run("etalab-bad.csv", false, &rc, NULL);
    assert_int_equal(rc, 0);
    json_t *exp = expected(), *bad = json_object_get(exp, "bad");
    assert_rejects(k, json_object_get(bad, "rejects"), "etalab-bad.csv");
    assert_valid(k);
    json_t *orgs = json_object_get(bad, "organizations"), *e;
    size_t i;
    assert_int_equal(count_type(k, "Organization"), json_array_size(orgs));
    assert_int_equal(count_type(k, "Location"), json_array_size(orgs));
    json_array_foreach(orgs, i, e)
    {
        char *id = id_of(json_string_value(e));
        json_t *loc = find(k, "Location", id);
        assert_non_null(loc);
        bool placed =
            strcmp(json_string_value(e),
                   json_string_value(json_array_get(json_object_get(bad, "placed"), 0))) == 0;
        assert_int_equal(json_object_get(loc, "position") != NULL, placed);
        free(id);
    }
    json_decref(exp);
    import_collector_free(k);

    /* strict: the first reject stops the parse, with what was emitted before it */
    k = run("etalab-bad.csv", true, &rc, NULL);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 1);
    assert_int_equal(count_type(k, "Organization"), 3);
    assert_int_equal(count_type(k, "Location"), 0);
    import_collector_free(k);
}

static void test_truncated(void **state)
{
    (void)state;
    int rc;
    ImportSink *k = run("etalab-truncated.csv", false, &rc, NULL);
    assert_int_equal(rc, 0);
    json_t *exp = expected(), *t = json_object_get(exp, "truncated");
    assert_int_equal(json_array_size(import_collector_rejects(k)), 1);
    const char *msg = json_string_value(json_array_get(import_collector_rejects(k), 0));
    char *where = xasprintf("etalab-truncated.csv:%lld: dernière ligne tronquée",
                            (long long)json_integer_value(json_object_get(t, "line")));
    assert_non_null(strstr(msg, where));
    free(where);
    assert_int_equal(count_type(k, "Organization"), 3);
    assert_int_equal(count_type(k, "Location"), 3);
    assert_non_null(json_object_get(find(k, "Location", "finess-010000024"), "position"));
    assert_null(json_object_get(find(k, "Location", "finess-010000032"), "position"));
    json_decref(exp);
    import_collector_free(k);
}

/* The same short last line is truncated without a final newline, a plain bad line with. */
static void test_truncated_quote(void **state)
{
    (void)state;
    const char *text = "finess;etalab;1;2021-01-08\n"
                       "structureet;010000024;010780054;\"CH DE FLEY";
    for (int with_nl = 0; with_nl < 2; with_nl++) {
        char tmp[] = "/tmp/test-finess-XXXXXX";
        int fd = mkstemp(tmp);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        if (with_nl)
            assert_int_equal(write(fd, "\n", 1), 1);
        close(fd);
        int rc;
        ImportSink *k = run(tmp, false, &rc, NULL);
        assert_int_equal(rc, 0);
        assert_int_equal(json_array_size(import_collector_rejects(k)), 1);
        const char *msg = json_string_value(json_array_get(import_collector_rejects(k), 0));
        assert_non_null(strstr(msg, ":2: "));
        assert_non_null(strstr(msg, "guillemet non fermé"));
        assert_int_equal(strstr(msg, "tronquée") != NULL, !with_nl);
        assert_int_equal(json_array_size(import_collector_resources(k)), 0);
        import_collector_free(k);
        unlink(tmp);
    }
}

static void test_ej(void **state)
{
    (void)state;
    int rc;
    ImportSink *k = run("etalab-ej.csv", false, &rc, NULL);
    assert_int_equal(rc, 0);
    json_t *exp = expected(), *ej = json_object_get(exp, "ej");
    assert_rejects(k, json_object_get(ej, "rejects"), "etalab-ej.csv");
    assert_valid(k);
    json_t *want = json_object_get(ej, "resources"), *e;
    size_t i;
    assert_int_equal(json_array_size(import_collector_resources(k)), json_array_size(want));
    json_array_foreach(want, i, e)
    {
        char *id = id_of(json_str(e, "nofiness"));
        json_t *org = find(k, "Organization", id);
        assert_non_null(org);
        assert_string_equal(json_str(org, "name"), json_str(e, "name"));
        assert_true(has_identifier(org, "https://sirene.fr", json_str(e, "siren")));
        assert_true(has_identifier(org, "https://finess.esante.gouv.fr", json_str(e, "nofiness")));
        assert_true(has_type(org, "TRE_R72", "13"));
        assert_null(json_object_get(org, "partOf"));
        json_t *addr = json_array_get(json_object_get(org, "address"), 0);
        assert_string_equal(address_insee(addr), json_str(e, "insee"));
        assert_non_null(ext(org, SD "ror-organization-creation-date"));
        /* name is the long raison sociale, the short one is kept as alias */
        const char *alias = json_string_value(json_array_get(json_object_get(org, "alias"), 0));
        assert_non_null(alias);
        assert_true(strncmp(alias, "ENTITE JURIDIQUE TEST ", 22) == 0);
        free(id);
    }
    json_decref(exp);
    import_collector_free(k);
}

static void test_unreadable(void **state)
{
    (void)state;
    int rc;
    Diag d = {{0}, {0}};
    ImportSink *k = run("/nonexistent/finess.csv", false, &rc, &d);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(d.msg, "/nonexistent/finess.csv"));
    import_collector_free(k);
}

static void test_projection(void **state)
{
    (void)state;
    Projector *p = NULL;
    Diag d = {{0}, {0}};
    assert_int_equal(projector_new(&p, &d), 0);
    double lat = 0, lon = 0;
    /* the projection origin of Lambert-93 */
    assert_int_equal(projector_to_wgs84(p, 2154, 700000, 6600000, &lat, &lon, &d), 0);
    assert_true(fabs(lat - 46.5) < 1e-7 && fabs(lon - 3.0) < 1e-7);
    /* central meridian of UTM 40S, on the equator's false northing: outside Réunion */
    assert_int_equal(projector_to_wgs84(p, 2975, 500000, 10000000, &lat, &lon, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "domaine"));
    /* Réunion's UTM numbers read as Lambert-93 land far from France */
    assert_int_equal(projector_to_wgs84(p, 2154, 338511.5, 7683444.6, &lat, &lon, &d), ERR_INVALID);
    assert_int_equal(projector_to_wgs84(p, 999999, 1, 1, &lat, &lon, &d), ERR_UNSUPPORTED);
    assert_int_equal(projector_to_wgs84(p, 4326, 2, 48, &lat, &lon, &d), ERR_UNSUPPORTED);
    assert_int_equal(projector_to_wgs84(p, 2154, NAN, 1, &lat, &lon, &d), ERR_INVALID);
    assert_int_equal(projector_check_area(p, 2975, -21.0, 55.5, &d), 0);
    assert_int_equal(projector_check_area(p, 2975, 48.8, 2.3, &d), ERR_INVALID);
    /* many codes: the cache overflows without harm and answers stay right */
    for (int code = 32601; code < 32660; code++)
        projector_check_area(p, code, 0, 0, NULL);
    assert_int_equal(projector_to_wgs84(p, 2154, 700000, 6600000, &lat, &lon, &d), 0);
    assert_true(fabs(lat - 46.5) < 1e-7);
    projector_free(p);
    projector_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_latin1_equals_utf8),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_overseas),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_truncated_quote),
        cmocka_unit_test(test_ej),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
