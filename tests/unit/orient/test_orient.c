/* orient: the in-memory index against a brute-force model kept by the test, over a real store;
 * changes noted by the commit hook are seen by the next search (read-your-writes); searches run
 * concurrently with writes (meant for ThreadSanitizer too). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "orient/orient.h"
#include "store/store.h"

#define NORG 300
#define CAT_SYSTEM "http://example.org/cat"

static FhirRegistry *reg;
static char dir[256];
static Store *store;
static Orient *orient;

/* the test's own model of the data */
typedef struct Model {
    bool present;
    char cat; /* 'A', 'B' or 'C' */
    double lat, lon;
    char name[64];
} Model;
static Model model[NORG];
static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(next() % 1000000) / 1e6;
}

/* haversine written here, independently of core's */
static double km(double la1, double lo1, double la2, double lo2)
{
    const double r = 6371.0088, rad = M_PI / 180;
    double h = pow(sin((la2 - la1) * rad / 2), 2) +
               cos(la1 * rad) * cos(la2 * rad) * pow(sin((lo2 - lo1) * rad / 2), 2);
    return 2 * r * asin(fmin(1, sqrt(h)));
}

typedef struct Put {
    const char *type, *id;
    json_t *res; /* NULL: delete */
} Put;

static int txn(StoreTxn *t, void *ctx, Diag *d)
{
    Put *p = ctx;
    Arena a;
    arena_init(&a);
    StoredResource out;
    int rc;
    if (p->res) {
        StorePut sp = {.type = p->type, .id = p->id, .res = p->res, .author = "test"};
        rc = store_txn_put(t, &a, &sp, &out, d);
    } else {
        rc = store_txn_delete(t, &a, p->type, p->id, 0, "test", &out, d);
    }
    arena_cleanup(&a);
    return rc;
}

static void write_one(const char *type, const char *id, json_t *res)
{
    Put p = {type, id, res};
    Diag d = {{0}, {0}};
    if (store_write(store, txn, &p, &d) != 0)
        fail_msg("write %s/%s: %s", type, id, d.msg);
    json_decref(res);
}

static void write_org(int i)
{
    char id[32], loc[32], cat[2] = {model[i].cat, 0};
    snprintf(id, sizeof id, "o%d", i);
    snprintf(loc, sizeof loc, "l%d", i);
    write_one("Organization", id,
              json_pack("{s:s,s:s,s:s,s:[{s:[{s:s,s:s}]}]}", "resourceType", "Organization", "id",
                        id, "name", model[i].name, "type", "coding", "system", CAT_SYSTEM, "code",
                        cat));
    write_one("Location", loc,
              json_pack("{s:s,s:s,s:{s:f,s:f},s:{s:s}}", "resourceType", "Location", "id", loc,
                        "position", "latitude", model[i].lat, "longitude", model[i].lon,
                        "managingOrganization", "reference",
                        (snprintf(id, sizeof id, "Organization/o%d", i), id)));
}

static void on_commit(void *ctx, const StoreChange *c, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (orient)
            orient_note_change(orient, c[i].type, c[i].id);
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("ROR_SOURCE_DIR");
    char path[1024];
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src ? src : ".");
    if (fhir_registry_load_file(reg, path, NULL) != 0 || fhir_registry_finish(reg, NULL, NULL))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/ror-test-orient-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/ror.db", dir);
    StoreOptions o = {.path = path, .reg = reg, .readers = 4};
    Diag d = {{0}, {0}};
    if (store_open(&o, &store, &d) != 0)
        return -1;
    store_set_commit_hook(store, on_commit, NULL);
    static const char *const words[] = {"centre", "hospitalier", "clinique", "saint",
                                        "louis",  "marie",       "sud",      "nord"};
    for (int i = 0; i < NORG; i++) {
        model[i].present = true;
        model[i].cat = (char)('A' + next() % 3);
        model[i].lat = uniform(48.0, 49.6);
        model[i].lon = uniform(1.5, 3.2);
        snprintf(model[i].name, sizeof model[i].name, "%s %s %d", words[next() % 8],
                 words[next() % 8], i);
        write_org(i);
    }
    OrientOptions oo = {.store = store, .reg = reg};
    return orient_open(&oo, &orient, &d);
}

static int teardown(void **state)
{
    (void)state;
    orient_free(orient);
    orient = NULL;
    store_close(store);
    fhir_registry_free(reg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct Expect {
    int idx;
    double km;
} Expect;

static int expect_cmp(const void *a, const void *b)
{
    double x = ((const Expect *)a)->km, y = ((const Expect *)b)->km;
    return x < y ? -1 : x > y;
}

/* every present org of category cat within r km of the point, nearest first */
static size_t brute(char cat, double lat, double lon, double r, Expect *out)
{
    size_t n = 0;
    for (int i = 0; i < NORG; i++) {
        if (!model[i].present || (cat && model[i].cat != cat))
            continue;
        double d = km(lat, lon, model[i].lat, model[i].lon);
        if (d <= r)
            out[n++] = (Expect){i, d};
    }
    qsort(out, n, sizeof *out, expect_cmp);
    return n;
}

static void check_query(char cat, double lat, double lon, double r)
{
    char code[2] = {cat, 0};
    const char *codes[] = {code};
    OrientNeed need = {.codes = codes, .ncodes = 1};
    OrientQuery q = {.needs = &need,
                     .nneeds = cat ? 1 : 0,
                     .lat = lat,
                     .lon = lon,
                     .radius_km = r,
                     .age = -1,
                     .now_ms = 0,
                     .limit = NORG,
                     .with_sensitive = true};
    Expect want[NORG];
    size_t n = brute(cat, lat, lon, r, want);
    Arena a;
    arena_init(&a);
    OrientResult res;
    Diag d = {{0}, {0}};
    assert_int_equal(orient_search(orient, &a, &q, &res, &d), 0);
    assert_int_equal(res.total, n);
    assert_int_equal(res.nhits, n);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "o%d", want[i].idx);
        assert_string_equal(res.hits[i].id, id);
        assert_true(fabs(res.hits[i].distance_km - want[i].km) < 1e-6);
        assert_string_equal(res.hits[i].type, "Organization");
    }
    arena_cleanup(&a);
}

static void t_matches_brute_force(void **state)
{
    (void)state;
    for (int k = 0; k < 40; k++)
        check_query(k % 4 == 3 ? 0 : (char)('A' + k % 3), uniform(47.8, 49.8), uniform(1.3, 3.4),
                    uniform(5, 80));
}

static void t_follows_writes(void **state)
{
    (void)state;
    for (int k = 0; k < 60; k++) {
        int i = (int)(next() % NORG);
        char id[32], loc[32];
        snprintf(id, sizeof id, "o%d", i);
        snprintf(loc, sizeof loc, "l%d", i);
        switch (k % 3) {
        case 0: /* move and recategorise */
            model[i].present = true;
            model[i].cat = (char)('A' + next() % 3);
            model[i].lat = uniform(48.0, 49.6);
            model[i].lon = uniform(1.5, 3.2);
            write_org(i);
            break;
        case 1: /* delete the establishment (its site stays, unlinked) */
            if (model[i].present)
                write_one("Organization", id, NULL);
            model[i].present = false;
            break;
        default: /* delete the site: the establishment has no place any more */
            if (model[i].present)
                write_one("Location", loc, NULL);
            model[i].present = false;
            break;
        }
        /* the very next search sees it */
        check_query(model[i].cat, model[i].lat, model[i].lon, 30);
    }
    OrientStats st;
    orient_stats(orient, &st);
    assert_true(st.applied > 0);
}

static void t_widening_and_limit(void **state)
{
    (void)state;
    /* far from everything: widened until 2 are found, within the cap */
    const char *codes[] = {"A"};
    OrientNeed need = {.codes = codes, .ncodes = 1};
    OrientQuery q = {.needs = &need,
                     .nneeds = 1,
                     .lat = 45.0,
                     .lon = 2.0,
                     .radius_km = 10,
                     .max_radius_km = 1000,
                     .min_results = 2,
                     .age = -1,
                     .limit = 1,
                     .with_sensitive = true};
    Arena a;
    arena_init(&a);
    OrientResult res;
    assert_int_equal(orient_search(orient, &a, &q, &res, NULL), 0);
    Expect want[NORG];
    size_t n = brute('A', 45.0, 2.0, res.radius_km, want);
    assert_true(res.widened > 0);
    assert_true(res.radius_km <= 1000);
    assert_true(n >= 2);
    assert_int_equal(res.total, n);
    assert_int_equal(res.nhits, 1);
    /* the radius before the last doubling held fewer than 2 */
    Expect fewer[NORG];
    assert_true(brute('A', 45.0, 2.0, res.radius_km / 2, fewer) < 2);
    q.lat = 100;
    assert_int_equal(orient_search(orient, &a, &q, &res, NULL), ERR_INVALID);
    arena_cleanup(&a);
}

static void t_text(void **state)
{
    (void)state;
    int i = 7;
    model[i].present = true;
    snprintf(model[i].name, sizeof model[i].name, "Hôpital Zéphyrin-Étoile");
    write_org(i);
    OrientNeed need = {.text = "zephyrin etoi"};
    OrientQuery q = {.needs = &need,
                     .nneeds = 1,
                     .lat = model[i].lat,
                     .lon = model[i].lon,
                     .radius_km = 1,
                     .age = -1,
                     .limit = 5,
                     .with_sensitive = true};
    Arena a;
    arena_init(&a);
    OrientResult res;
    assert_int_equal(orient_search(orient, &a, &q, &res, NULL), 0);
    assert_int_equal(res.nhits, 1);
    assert_string_equal(res.hits[0].id, "o7");
    assert_string_equal(res.hits[0].why[0].param, "nom");
    OrientName names[4];
    assert_int_equal(orient_names(orient, &a, "ZEPHY", 4, names), 1);
    assert_string_equal(names[0].id, "o7");
    arena_cleanup(&a);
}

/* searches on two threads while this one writes: results stay consistent with some state */
static void *searcher(void *arg)
{
    (void)arg;
    const char *codes[] = {"B"};
    OrientNeed need = {.codes = codes, .ncodes = 1};
    OrientQuery q = {.needs = &need,
                     .nneeds = 1,
                     .lat = 48.8,
                     .lon = 2.3,
                     .radius_km = 200,
                     .age = -1,
                     .limit = 50,
                     .with_sensitive = true};
    for (int k = 0; k < 200; k++) {
        Arena a;
        arena_init(&a);
        OrientResult res;
        if (orient_search(orient, &a, &q, &res, NULL) != 0)
            abort();
        for (size_t i = 1; i < res.nhits; i++)
            if (res.hits[i].distance_km < res.hits[i - 1].distance_km)
                abort();
        arena_cleanup(&a);
    }
    return NULL;
}

static void t_concurrent(void **state)
{
    (void)state;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, searcher, NULL), 0);
    for (int k = 0; k < 40; k++) {
        int i = (int)(next() % NORG);
        model[i].present = true;
        model[i].cat = 'B';
        model[i].lat = uniform(48.0, 49.6);
        model[i].lon = uniform(1.5, 3.2);
        write_org(i);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    check_query('B', 48.8, 2.3, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_matches_brute_force), cmocka_unit_test(t_follows_writes),
        cmocka_unit_test(t_widening_and_limit),  cmocka_unit_test(t_text),
        cmocka_unit_test(t_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
