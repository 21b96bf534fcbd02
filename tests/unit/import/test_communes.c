/* import/communes.c: the communes CodeSystem from the real COG, geo.api and La Poste files, and
 * golden cases (tests/data/communes). Expected values are read from the raw files here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "json/json.h"

#define COG "data/communes/decoupage-administratif-6.0.0/communes.json"
#define GEO "data/communes/geo-api-communes-centres-2021-04-01.json"
#define LAPOSTE "data/communes/laposte_hexasmal_2020-11.csv"

static char *shared_path(const char *rel)
{
    const char *dir = getenv("ROR_SHARED_DIR");
    assert_non_null(dir);
    return xasprintf("%s/%s", dir, rel);
}

static char *fixture_path(const char *name)
{
    const char *dir = getenv("ROR_SOURCE_DIR");
    assert_non_null(dir);
    return xasprintf("%s/tests/data/communes/%s", dir, name);
}

static ImportSink *run(char **paths, size_t n, int *rc, Diag *d)
{
    ImportSink *k = import_collector_new(false);
    *rc = import_parse_communes(k, (const char *const *)paths, n, d);
    return k;
}

/* The first property `code` of a concept, or NULL. */
static json_t *prop(const json_t *concept, const char *code)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(concept, "property"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "code")), code) == 0)
            return p;
    }
    return NULL;
}

static const char *prop_code(const json_t *concept, const char *code)
{
    return json_string_value(json_object_get(prop(concept, code), "valueCode"));
}

static double prop_dec(const json_t *concept, const char *code)
{
    json_t *p = prop(concept, code);
    assert_non_null(p);
    json_t *v = json_object_get(p, "valueDecimal");
    assert_true(json_is_real(v));
    return json_real_value(v);
}

/* The postalCode values of a concept, joined with ',' in their order. */
static char *postal_codes(const json_t *concept)
{
    Buf b;
    buf_init(&b, 1 << 16);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(concept, "property"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "code")), "postalCode") == 0) {
            if (b.len)
                buf_adds(&b, ",");
            buf_adds(&b, json_string_value(json_object_get(p, "valueString")));
        }
    }
    return buf_steal(&b, NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, de-duplicated keys of a JSON object used as a set, joined with ','. */
static char *set_join(const json_t *set)
{
    size_t n = json_object_size(set), i = 0;
    const char **v = xmalloc((n + 1) * sizeof *v);
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)set, key, x)
    {
        v[i++] = key;
    }
    qsort(v, n, sizeof *v, cmp_str);
    Buf b;
    buf_init(&b, 1 << 16);
    for (i = 0; i < n; i++) {
        if (i)
            buf_adds(&b, ",");
        buf_adds(&b, v[i]);
    }
    free(v);
    return buf_steal(&b, NULL);
}

static json_t *set_add(json_t *sets, const char *key, const char *value)
{
    json_t *s = json_object_get(sets, key);
    if (!s) {
        s = json_object();
        json_object_set_new(sets, key, s);
    }
    json_object_set_new(s, value, json_true());
    return s;
}

/* The test's own reading of the La Poste CSV: code -> {postal codes}, code -> [lat sum, lon
 * sum, n]. */
static void laposte_read(const char *path, json_t *postal, json_t *coords)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, fp);
    assert_true(n > 0);
    while ((n = getline(&line, &cap, fp)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *f[6];
        int nf = 0;
        char *p = line;
        for (;;) {
            assert_true(nf < 6);
            f[nf++] = p;
            char *sc = strchr(p, ';');
            if (!sc)
                break;
            *sc = '\0';
            p = sc + 1;
        }
        assert_int_equal(nf, 6);
        set_add(postal, f[0], f[2]);
        if (*f[5]) {
            double lat, lon;
            assert_int_equal(sscanf(f[5], "%lf,%lf", &lat, &lon), 2);
            json_t *c = json_object_get(coords, f[0]);
            if (!c) {
                c = json_pack("[fff]", 0.0, 0.0, 0.0);
                json_object_set_new(coords, f[0], c);
            }
            json_array_set_new(c, 0, json_real(json_real_value(json_array_get(c, 0)) + lat));
            json_array_set_new(c, 1, json_real(json_real_value(json_array_get(c, 1)) + lon));
            json_array_set_new(c, 2, json_real(json_real_value(json_array_get(c, 2)) + 1));
        }
    }
    free(line);
    fclose(fp);
}

/* Expected postal codes of a COG code: the COG's and La Poste's, sorted. */
static char *expected_postal(const json_t *cog, const json_t *lp_postal, const char *code)
{
    json_t *set = json_object();
    size_t i, j;
    json_t *e, *pc;
    json_array_foreach(cog, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "code")), code) != 0)
            continue;
        json_array_foreach(json_object_get(e, "codesPostaux"), j, pc)
        {
            json_object_set_new(set, json_string_value(pc), json_true());
        }
    }
    const char *k;
    json_t *x;
    json_object_foreach(json_object_get(lp_postal, code), k, x)
    {
        json_object_set_new(set, k, json_true());
    }
    char *s = set_join(set);
    json_decref(set);
    return s;
}

static const json_t *cog_entry(const json_t *cog, const char *code, const char *type)
{
    size_t i;
    json_t *e;
    json_array_foreach(cog, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "code")), code) == 0 &&
            strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            return e;
    }
    return NULL;
}

static void check_commune(const json_t *by, const json_t *cog, const json_t *geo_by,
                          const json_t *lp_postal, const char *code)
{
    const json_t *c = json_object_get(by, code);
    assert_non_null(c);
    const json_t *e = cog_entry(cog, code, "commune-actuelle");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(c, "display")), json_str(e, "nom"));
    assert_string_equal(prop_code(c, "type"), "commune-actuelle");
    assert_string_equal(prop_code(c, "departement"), json_str(e, "departement"));
    assert_string_equal(prop_code(c, "region"), json_str(e, "region"));
    assert_int_equal(json_integer_value(json_object_get(prop(c, "population"), "valueInteger")),
                     json_integer_value(json_object_get(e, "population")));
    assert_null(prop(c, "status"));
    char *want = expected_postal(cog, lp_postal, code), *got = postal_codes(c);
    assert_string_equal(got, want);
    free(want);
    free(got);
    const json_t *xy =
        json_object_get(json_object_get(json_object_get(geo_by, code), "centre"), "coordinates");
    assert_non_null(xy);
    assert_true(fabs(prop_dec(c, "longitude") - json_number_value(json_array_get(xy, 0))) < 1e-9);
    assert_true(fabs(prop_dec(c, "latitude") - json_number_value(json_array_get(xy, 1))) < 1e-9);
}

/* The real files: every COG code once, plus the merged communes the older sources know. */
static void test_real_files(void **state)
{
    (void)state;
    char *paths[3] = {shared_path(LAPOSTE), shared_path(GEO), shared_path(COG)};
    int rc;
    Diag d = {0};
    ImportSink *k = run(paths, 3, &rc, &d);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 0);
    json_t *res = import_collector_resources(k);
    assert_int_equal(json_array_size(res), 1);
    json_t *cs = json_array_get(res, 0);
    assert_string_equal(json_str(cs, "resourceType"), "CodeSystem");
    assert_string_equal(json_str(cs, "id"), "ror-communes");
    assert_string_equal(json_str(cs, "url"),
                        "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM");
    assert_string_equal(json_str(cs, "status"), "active");
    assert_string_equal(json_str(cs, "content"), "complete");
    assert_true(json_is_true(json_object_get(cs, "caseSensitive")));
    /* the COG does not date itself: the package folder it was unpacked to names it */
    assert_string_equal(json_str(cs, "version"), "decoupage-administratif 6.0.0");
    assert_null(json_object_get(cs, "meta"));

    /* the test's own reading of the three files */
    json_error_t je;
    json_t *cog = json_load_file(paths[2], 0, &je);
    json_t *geo = json_load_file(paths[1], 0, &je);
    assert_non_null(cog);
    assert_non_null(geo);
    json_t *cog_codes = json_object(), *geo_by = json_object(), *children = json_object();
    json_t *absorbed = json_object(); /* old code -> absorbing commune */
    size_t i, j;
    json_t *e, *x;
    json_t *actuelle = json_object();
    json_array_foreach(cog, i, e)
    {
        if (strcmp(json_str(e, "type"), "commune-actuelle") == 0)
            json_object_set(actuelle, json_str(e, "code"), e);
    }
    json_array_foreach(cog, i, e)
    {
        const char *code = json_str(e, "code"), *type = json_str(e, "type");
        assert_true(
            strcmp(type, "commune-actuelle") == 0 || strcmp(type, "commune-deleguee") == 0 ||
            strcmp(type, "commune-associee") == 0 || strcmp(type, "arrondissement-municipal") == 0);
        json_object_set_new(cog_codes, code, json_true());
        const char *parent =
            json_str(e, "commune") ? json_str(e, "commune") : json_str(e, "chefLieu");
        if (parent && strcmp(parent, code) != 0 && !json_object_get(actuelle, code))
            set_add(children, parent, code);
        json_array_foreach(json_object_get(e, "anciensCodes"), j, x)
        {
            json_object_set_new(absorbed, json_string_value(x), json_string(code));
        }
    }
    json_array_foreach(geo, i, e)
    {
        json_object_set(geo_by, json_str(e, "code"), e);
    }
    json_t *lp_postal = json_object(), *lp_coords = json_object();
    laposte_read(paths[0], lp_postal, lp_coords);
    json_t *retired = json_object();
    const char *key;
    /* known to the older sources only; 99xxx are foreign countries (La Poste lists Monaco) */
    json_object_foreach(geo_by, key, x)
    {
        if (!json_object_get(cog_codes, key) && strncmp(key, "99", 2) != 0)
            json_object_set_new(retired, key, json_true());
    }
    json_object_foreach(lp_postal, key, x)
    {
        if (!json_object_get(cog_codes, key) && strncmp(key, "99", 2) != 0)
            json_object_set_new(retired, key, json_true());
    }
    assert_true(json_object_size(retired) > 10); /* merged since 2020-2021 */

    json_t *concepts = json_object_get(cs, "concept");
    assert_int_equal(json_array_size(concepts),
                     json_object_size(cog_codes) + json_object_size(retired));
    assert_int_equal(json_integer_value(json_object_get(cs, "count")), json_array_size(concepts));
    json_t *by = json_object();
    const char *prev = "";
    json_array_foreach(concepts, i, x)
    {
        const char *code = json_str(x, "code");
        assert_true(strcmp(prev, code) < 0); /* sorted, no duplicate */
        prev = code;
        json_object_set(by, code, x);
    }

    /* Paris and its arrondissements, Ajaccio, Saint-Denis de La Réunion */
    check_commune(by, cog, geo_by, lp_postal, "75056");
    check_commune(by, cog, geo_by, lp_postal, "2A004");
    check_commune(by, cog, geo_by, lp_postal, "97411");
    json_t *paris_children = json_object();
    json_array_foreach(concepts, i, x)
    {
        const char *parent = prop_code(x, "parent");
        if (parent && strcmp(parent, "75056") == 0)
            json_object_set_new(paris_children, json_str(x, "code"), json_true());
    }
    char *want = set_join(json_object_get(children, "75056")), *got = set_join(paris_children);
    assert_string_equal(got, want);
    assert_int_equal(json_object_size(paris_children), 20);
    free(want);
    free(got);
    json_decref(paris_children);
    const json_t *a1 = json_object_get(by, "75101");
    assert_string_equal(prop_code(a1, "type"), "arrondissement-municipal");
    /* no geo.api centre for an arrondissement: the mean of La Poste's points */
    assert_null(json_object_get(geo_by, "75101"));
    json_t *c = json_object_get(lp_coords, "75101");
    double n = json_real_value(json_array_get(c, 2));
    assert_true(fabs(prop_dec(a1, "latitude") - json_real_value(json_array_get(c, 0)) / n) < 1e-6);
    assert_true(fabs(prop_dec(a1, "longitude") - json_real_value(json_array_get(c, 1)) / n) < 1e-6);

    /* a commune to which La Poste adds a postal code the COG does not list */
    bool found = false;
    json_object_foreach(lp_postal, key, x)
    {
        const json_t *ce = json_object_get(actuelle, key);
        if (!ce || found)
            continue;
        const char *pc;
        json_t *y;
        json_object_foreach(x, pc, y)
        {
            bool listed = false;
            json_t *z;
            json_array_foreach(json_object_get(ce, "codesPostaux"), j, z)
            {
                listed = listed || strcmp(json_string_value(z), pc) == 0;
            }
            if (!listed && !found) {
                char *all = postal_codes(json_object_get(by, key));
                assert_non_null(strstr(all, pc));
                want = expected_postal(cog, lp_postal, key);
                assert_string_equal(all, want);
                free(want);
                free(all);
                found = true;
            }
        }
    }
    assert_true(found);

    /* positions equal geo.api's centre, on a sample */
    size_t sampled = 0;
    json_array_foreach(geo, i, e)
    {
        const json_t *xy = json_object_get(json_object_get(e, "centre"), "coordinates");
        if (i % 97 || !xy || !json_object_get(cog_codes, json_str(e, "code")))
            continue;
        const json_t *cc = json_object_get(by, json_str(e, "code"));
        assert_true(fabs(prop_dec(cc, "longitude") - json_number_value(json_array_get(xy, 0))) <
                    1e-9);
        assert_true(fabs(prop_dec(cc, "latitude") - json_number_value(json_array_get(xy, 1))) <
                    1e-9);
        sampled++;
    }
    assert_true(sampled > 300);

    /* merged communes: retired, inactive, attached to the commune that absorbed them */
    json_object_foreach(retired, key, x)
    {
        const json_t *cc = json_object_get(by, key);
        assert_non_null(cc);
        assert_string_equal(prop_code(cc, "status"), "retired");
        assert_true(json_is_true(json_object_get(prop(cc, "inactive"), "valueBoolean")));
        assert_null(prop(cc, "type"));
        const char *abs = json_string_value(json_object_get(absorbed, key));
        if (abs)
            assert_string_equal(prop_code(cc, "parent"), abs);
        else
            assert_null(prop(cc, "parent"));
        const json_t *g = json_object_get(geo_by, key);
        if (g)
            assert_string_equal(json_str(cc, "display"), json_str(g, "nom"));
    }

    json_decref(by);
    json_decref(retired);
    json_decref(lp_postal);
    json_decref(lp_coords);
    json_decref(absorbed);
    json_decref(children);
    json_decref(actuelle);
    json_decref(geo_by);
    json_decref(cog_codes);
    json_decref(cog);
    json_decref(geo);
    import_collector_free(k);
    for (i = 0; i < 3; i++)
        free(paths[i]);
}

static void assert_strings(json_t *arr, const char *const *want, size_t n)
{
    for (size_t i = 0; i < json_array_size(arr) && i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), want[i]);
    assert_int_equal(json_array_size(arr), n);
}

/* Small fixtures: exact rejects and warnings, merging of the three sources. */
static void test_fixtures(void **state)
{
    (void)state;
    char *cog = fixture_path("cog.json"), *geo = fixture_path("geo.json"),
         *lp = fixture_path("laposte.csv");
    char *paths[3] = {lp, cog, geo};
    int rc;
    Diag d = {0};
    ImportSink *k = run(paths, 3, &rc, &d);
    assert_int_equal(rc, 0);
    char *rej[11] = {
        xasprintf("%s:5: élément n°5 du tableau : objet attendu", cog),
        xasprintf("%s:6: élément n°6 du tableau : code INSEE manquant ou invalide", cog),
        xasprintf("%s:7: élément n°7 du tableau : code INSEE manquant ou invalide", cog),
        xasprintf("%s:8: élément n°8 du tableau : commune 01002 de type « commune-fantôme » "
                  "inconnu",
                  cog),
        xasprintf("%s:9: élément n°9 du tableau : code INSEE 75056 en double (commune-actuelle)",
                  cog),
        xasprintf("%s:12: élément n°12 du tableau : commune 01004 : population invalide", cog),
        xasprintf("%s:4: élément n°4 du tableau : code INSEE manquant ou invalide", geo),
        xasprintf("%s:6: élément n°6 du tableau : objet attendu", geo),
        xasprintf("%s:7: code INSEE « 1234 » invalide", lp),
        xasprintf("%s:8: code postal « 1300 » invalide", lp),
        xasprintf("%s:9: 5 colonnes au lieu de 6", lp),
    };
    assert_strings(import_collector_rejects(k), (const char *const *)rej, 11);
    char *warn[4] = {
        xasprintf("%s:11: élément n°11 du tableau : commune 01262 : code postal invalide ignoré",
                  cog),
        xasprintf("%s:3: élément n°3 du tableau : commune 01015 : centre invalide, ignoré", geo),
        xasprintf("%s:6: code 99138 d'un pays étranger, ignoré", lp),
        xasprintf("%s:10: coordonnées GPS « pas,des,coords » illisibles, ignorées", lp),
    };
    assert_strings(import_collector_warnings(k), (const char *const *)warn, 4);

    json_t *cs = json_array_get(import_collector_resources(k), 0);
    json_t *concepts = json_object_get(cs, "concept");
    static const char *const codes[] = {"01015", "01120", "01262", "01888",
                                        "01999", "75056", "75101", "97411"};
    assert_int_equal(json_array_size(concepts), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(json_str(json_array_get(concepts, i), "code"), codes[i]);
    /* commune nouvelle + commune déléguée of the same code: one concept, two names */
    json_t *c = json_array_get(concepts, 0);
    assert_string_equal(json_str(c, "display"), "Arboys en Bugey");
    assert_string_equal(json_str(json_array_get(json_object_get(c, "designation"), 0), "value"),
                        "Arbignieu");
    assert_string_equal(prop_code(c, "type"), "commune-actuelle");
    assert_null(prop(c, "parent"));
    assert_null(prop(c, "latitude")); /* its centre was invalid, La Poste has no point */
    char *pcs = postal_codes(c);
    assert_string_equal(pcs, "01300,01510");
    free(pcs);
    c = json_array_get(concepts, 1);
    assert_string_equal(prop_code(c, "type"), "commune-associee");
    assert_string_equal(prop_code(c, "parent"), "01262");
    c = json_array_get(concepts, 2);
    pcs = postal_codes(c);
    assert_string_equal(pcs, "01120");
    free(pcs);
    /* La Poste only: retired, no absorber known */
    c = json_array_get(concepts, 3);
    assert_string_equal(json_str(c, "display"), "ANCIEN VILLAGE");
    assert_string_equal(prop_code(c, "status"), "retired");
    assert_null(prop(c, "parent"));
    assert_string_equal(prop_code(c, "departement"), "01");
    /* geo.api only, absorbed according to anciensCodes */
    c = json_array_get(concepts, 4);
    assert_string_equal(json_str(c, "display"), "Ancienne-Commune");
    assert_string_equal(prop_code(c, "parent"), "01015");
    assert_string_equal(prop_code(c, "region"), "84");
    assert_true(fabs(prop_dec(c, "latitude") - 45.72) < 1e-12);
    c = json_array_get(concepts, 5);
    assert_true(fabs(prop_dec(c, "latitude") - 48.8534) < 1e-12);
    assert_true(fabs(prop_dec(c, "longitude") - 2.3488) < 1e-12);
    pcs = postal_codes(c);
    assert_string_equal(pcs, "75001,75002");
    free(pcs);
    c = json_array_get(concepts, 6);
    assert_string_equal(prop_code(c, "parent"), "75056");
    assert_true(fabs(prop_dec(c, "latitude") - 48.865) < 1e-9);
    assert_true(fabs(prop_dec(c, "longitude") - 2.335) < 1e-9);
    c = json_array_get(concepts, 7);
    assert_true(fabs(prop_dec(c, "latitude") - -20.93) < 1e-9); /* La Poste fallback */
    pcs = postal_codes(c);
    assert_string_equal(pcs, "97400,97490");
    free(pcs);

    /* the same files in another order give the same bytes */
    char *other[3] = {geo, cog, lp};
    ImportSink *k2 = run(other, 3, &rc, &d);
    assert_int_equal(rc, 0);
    char *a = json_dumps(import_collector_resources(k), JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *b = json_dumps(import_collector_resources(k2), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(a, b);
    free(a);
    free(b);
    import_collector_free(k2);

    for (size_t i = 0; i < 11; i++)
        free(rej[i]);
    for (size_t i = 0; i < 4; i++)
        free(warn[i]);
    import_collector_free(k);
    free(cog);
    free(geo);
    free(lp);
}

/* Whole-import errors: no COG, a truncated JSON file, an unknown file, two COG files. */
static void test_file_errors(void **state)
{
    (void)state;
    char *cog = fixture_path("cog.json"), *geo = fixture_path("geo.json"),
         *lp = fixture_path("laposte.csv"), *trunc = fixture_path("truncated.json"),
         *unknown = fixture_path("unknown.json");
    int rc;
    Diag d = {0};

    char *no_cog[2] = {geo, lp};
    ImportSink *k = run(no_cog, 2, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "communes.json du COG INSEE"));
    assert_non_null(strstr(d.msg, "obligatoire"));
    assert_int_equal(json_array_size(import_collector_resources(k)), 0);
    import_collector_free(k);

    char *with_trunc[2] = {cog, trunc};
    k = run(with_trunc, 2, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, trunc));
    assert_non_null(strstr(d.msg, "tronqué"));
    assert_int_equal(json_array_size(import_collector_resources(k)), 0);
    import_collector_free(k);

    k = run(&trunc, 1, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    import_collector_free(k);

    char *with_unknown[2] = {cog, unknown};
    k = run(with_unknown, 2, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "contenu non reconnu"));
    import_collector_free(k);

    char *two_cog[2] = {cog, cog};
    k = run(two_cog, 2, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "deux fichiers communes.json"));
    import_collector_free(k);

    char *missing = "/nonexistent/communes.json";
    k = run(&missing, 1, &rc, &d);
    assert_int_equal(rc, ERR_IO);
    import_collector_free(k);

    k = run(NULL, 0, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    import_collector_free(k);

    free(cog);
    free(geo);
    free(lp);
    free(trunc);
    free(unknown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_files),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
