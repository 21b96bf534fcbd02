/* terminology: the real NOS files of shared/spec/nos written to a store as `ror import nos`
 * does, then lookups, expansions, validation, folded search, communes, binding checks and
 * changes applied from the commit hook. Expected values are read from the files here, with
 * jansson, never from the module under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "store/store.h"
#include "terminology/terminology.h"

#define NOS_URL "https://mos.esante.gouv.fr/NOS/"
#define R227 NOS_URL "TRE_R227-ChampActivite/FHIR/TRE-R227-ChampActivite"
#define R30 NOS_URL "TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM"
#define R330 NOS_URL "TRE_R330-TypeStatutCapacite/FHIR/TRE-R330-TypeStatutCapacite"
#define J20 NOS_URL "JDV_J20-ChampActivite-ROR/FHIR/JDV-J20-ChampActivite-ROR"
#define J237 NOS_URL "JDV_J237-RegionOM-ROR/FHIR/JDV-J237-RegionOM-ROR"
#define ROR_SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"

static FhirRegistry *reg;
static Store *store;
static Terminology *term;
static char dir[256];
static char nos[1100], src[1024], shared[1024];
static size_t n_tre, n_jdv;

/* ---------------------------------------------------------------- helpers */

static void on_commit(void *ctx, const StoreChange *c, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        terminology_note_change(term, c[i].type, c[i].id);
}

typedef struct Put {
    json_t **res; /* resources to write (resourceType and id set) */
    size_t n;
    const char *del_type, *del_id; /* or one deletion */
} Put;

static int txn(StoreTxn *t, void *vctx, Diag *d)
{
    Put *p = vctx;
    Arena a;
    arena_init(&a);
    int rc = 0;
    StoredResource out;
    if (p->del_type)
        rc = store_txn_delete(t, &a, p->del_type, p->del_id, 0, "test", &out, d);
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        StorePut sp = {.type = json_str(p->res[i], "resourceType"),
                       .id = json_str(p->res[i], "id"),
                       .res = p->res[i],
                       .author = "test"};
        rc = store_txn_put(t, &a, &sp, &out, d);
    }
    arena_cleanup(&a);
    return rc;
}

static void write_all(json_t **res, size_t n)
{
    Put p = {res, n, NULL, NULL};
    Diag d = {{0}, {0}};
    if (store_write(store, txn, &p, &d) != 0)
        fail_msg("store_write: %s", d.msg);
}

static void write_one(json_t *res)
{
    write_all(&res, 1);
}

static void delete_one(const char *type, const char *id)
{
    Put p = {NULL, 0, type, id};
    Diag d = {{0}, {0}};
    if (store_write(store, txn, &p, &d) != 0)
        fail_msg("delete: %s", d.msg);
}

static json_t *load(const char *sub, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/%s", nos, sub, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json file names of nos/<sub>, sorted. */
static char **list_dir(const char *sub, size_t *n)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", nos, sub);
    DIR *dd = opendir(path);
    if (!dd)
        return NULL;
    char **v = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(dd))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            v = realloc(v, (*n + 1) * sizeof *v);
            v[(*n)++] = strdup(e->d_name);
        }
    }
    closedir(dd);
    qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The NOS file (TRE or JDV) whose canonical url is `url`, or NULL. */
static json_t *load_by_url(const char *sub, const char *url)
{
    size_t n;
    char **files = list_dir(sub, &n);
    json_t *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        json_t *j = load(sub, files[i]);
        if (strcmp(json_str(j, "url"), url) == 0)
            found = j;
        else
            json_decref(j);
    }
    free_list(files, n);
    return found;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("ROR_SOURCE_DIR"), *sh = getenv("ROR_SHARED_DIR");
    snprintf(src, sizeof src, "%s", s ? s : ".");
    snprintf(shared, sizeof shared, "%s", sh ? sh : "../shared");
    snprintf(nos, sizeof nos, "%s/spec/nos", shared);
    char path[2048];
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src);
    if (fhir_registry_load_file(reg, path, NULL) != 0 || fhir_registry_finish(reg, NULL, NULL))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/ror-test-term-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char db[512];
    snprintf(db, sizeof db, "%s/ror.db", dir);
    StoreOptions so = {.path = db, .reg = reg, .readers = 6};
    Diag d = {{0}, {0}};
    if (store_open(&so, &store, &d) != 0) {
        fprintf(stderr, "store_open: %s\n", d.msg);
        return -1;
    }
    store_set_commit_hook(store, on_commit, NULL);

    /* every NOS file, in one transaction, as the import does */
    char **tre = list_dir("TRE", &n_tre), **jdv = list_dir("JDV", &n_jdv);
    if (!tre || !jdv || n_tre == 0 || n_jdv == 0)
        return -1;
    json_t **all = calloc(n_tre + n_jdv, sizeof *all);
    for (size_t i = 0; i < n_tre; i++)
        all[i] = load("TRE", tre[i]);
    for (size_t i = 0; i < n_jdv; i++)
        all[n_tre + i] = load("JDV", jdv[i]);
    write_all(all, n_tre + n_jdv);
    for (size_t i = 0; i < n_tre + n_jdv; i++)
        json_decref(all[i]);
    free(all);
    free_list(tre, n_tre);
    free_list(jdv, n_jdv);

    snprintf(path, sizeof path, "%s/data/bindings.json", src);
    TerminologyOptions to = {.store = store, .reg = reg, .bindings_path = path};
    if (terminology_open(&to, &term, &d) != 0) {
        fprintf(stderr, "terminology_open: %s\n", d.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(store);
    terminology_free(term);
    fhir_registry_free(reg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_loaded(void **state)
{
    (void)state;
    size_t ncs = 0, nvs = 0, nconcepts = 0;
    terminology_counts(term, &ncs, &nvs, &nconcepts);
    assert_int_equal(ncs, n_tre);
    assert_int_equal(nvs, n_jdv);
    assert_true(nconcepts > 1000);
    assert_true(terminology_binding_count(term) > 40);
}

/* $lookup of the first, a middle and the last concept of a few real TRE files. */
static void check_lookup_file(const char *file)
{
    json_t *cs = load("TRE", file);
    json_t *concepts = json_object_get(cs, "concept");
    size_t n = json_array_size(concepts);
    assert_true(n > 0);
    size_t picks[3] = {0, n / 2, n - 1};
    Arena a;
    arena_init(&a);
    for (int k = 0; k < 3; k++) {
        json_t *c = json_array_get(concepts, picks[k]);
        TermConcept tc;
        Diag d = {{0}, {0}};
        int rc =
            terminology_lookup(term, &a, json_str(cs, "url"), NULL, json_str(c, "code"), &tc, &d);
        if (rc != 0)
            fail_msg("%s %s: %s", file, json_str(c, "code"), d.msg);
        assert_string_equal(tc.display, json_str(c, "display"));
        assert_string_equal(tc.version, json_str(cs, "version"));
        assert_string_equal(tc.name, json_str(cs, "name"));
        json_t *ds = json_object_get(c, "designation");
        assert_int_equal(tc.ndesignations, json_array_size(ds));
        for (size_t i = 0; i < tc.ndesignations; i++) {
            json_t *x = json_array_get(ds, i);
            assert_string_equal(tc.designations[i].value, json_str(x, "value"));
            const char *use = json_str(json_object_get(x, "use"), "code");
            if (use)
                assert_string_equal(tc.designations[i].use_code, use);
        }
        json_t *ps = json_object_get(c, "property");
        assert_int_equal(tc.nproperties, json_array_size(ps));
        for (size_t i = 0; i < tc.nproperties; i++) {
            json_t *x = json_array_get(ps, i);
            assert_string_equal(tc.properties[i].code, json_str(x, "code"));
            const char *v = json_str(x, tc.properties[i].type);
            if (v) { /* dateTime, string, code: the JSON text is the quoted value */
                char *q = xasprintf("\"%s\"", v);
                assert_string_equal(tc.properties[i].value, q);
                free(q);
            }
        }
        /* with the version, same answer; with another version, unknown */
        assert_int_equal(terminology_lookup(term, &a, json_str(cs, "url"), json_str(cs, "version"),
                                            json_str(c, "code"), &tc, NULL),
                         0);
        assert_int_equal(terminology_lookup(term, &a, json_str(cs, "url"), "1900",
                                            json_str(c, "code"), &tc, NULL),
                         ERR_NOT_FOUND);
    }
    arena_cleanup(&a);
    json_decref(cs);
}

static void test_lookup(void **state)
{
    (void)state;
    check_lookup_file("TRE_R227_ChampActivite.json");
    check_lookup_file("TRE_R211_ActiviteOperationnelle.json");
    check_lookup_file("TRE_G09_DepartementOM.json");
    check_lookup_file("TRE_R330_TypeStatutCapacite.json");

    Arena a;
    arena_init(&a);
    TermConcept tc;
    Diag d = {{0}, {0}};
    assert_int_equal(terminology_lookup(term, &a, "http://example.org/none", NULL, "01", &tc, &d),
                     ERR_NOT_FOUND);
    assert_non_null(strstr(d.msg, "système de codes inconnu"));
    assert_int_equal(terminology_lookup(term, &a, R227, NULL, "no-such-code", &tc, &d),
                     ERR_NOT_FOUND);
    assert_non_null(strstr(d.msg, "no-such-code"));
    arena_cleanup(&a);
}

/* Expected expansion size computed from the files: the union of the include concept lists and
 * of whole code systems (their TRE file's concepts), without duplicates. */
static size_t expected_count(json_t *vs)
{
    json_t *seen = json_object();
    json_t *inc;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(vs, "compose"), "include"), i, inc)
    {
        const char *system = json_str(inc, "system");
        json_t *list = json_object_get(inc, "concept");
        json_t *cs = NULL;
        if (json_array_size(list) == 0) {
            cs = load_by_url("TRE", system);
            assert_non_null(cs);
            list = json_object_get(cs, "concept");
        }
        json_t *c;
        size_t k;
        json_array_foreach(list, k, c)
        {
            char *key = xasprintf("%s|%s", system, json_str(c, "code"));
            json_object_set_new(seen, key, json_true());
            free(key);
        }
        json_decref(cs);
    }
    size_t n = json_object_size(seen);
    json_decref(seen);
    return n;
}

static void check_expansion(const char *file)
{
    json_t *vs = load("JDV", file);
    const char *url = json_str(vs, "url");
    Arena a;
    arena_init(&a);
    TermCode *codes;
    size_t n;
    bool complete = false;
    Diag d = {{0}, {0}};
    if (terminology_expand(term, &a, url, &codes, &n, &complete, &d) != 0)
        fail_msg("%s: %s", file, d.msg);
    assert_true(complete);
    assert_int_equal(n, expected_count(vs));
    /* every listed concept validates, with the display the file gives */
    json_t *inc, *c;
    size_t i, k;
    json_array_foreach(json_object_get(json_object_get(vs, "compose"), "include"), i, inc)
    {
        json_array_foreach(json_object_get(inc, "concept"), k, c)
        {
            TermValidation v;
            assert_int_equal(terminology_validate_vs(term, &a, url, NULL, json_str(inc, "system"),
                                                     json_str(c, "code"), NULL, &v, &d),
                             0);
            assert_true(v.result);
            assert_string_equal(v.display, json_str(c, "display"));
        }
    }
    arena_cleanup(&a);
    json_decref(vs);
}

static void test_expansions(void **state)
{
    (void)state;
    check_expansion("JDV_J20-ChampActivite-ROR-FHIR.json");
    check_expansion("JDV_J16-ActeSpecifique-ROR-FHIR.json");
    check_expansion("JDV_J227_NiveauExpertise_ROR.json");              /* two systems */
    check_expansion("JDV_J236_TypeIdentifiant_ROR.json");              /* five systems */
    check_expansion("JDV_J51_FamilleActiviteOperationnelle_ROR.json"); /* a whole TRE */
    check_expansion("JDV_J55-CategorieEG-ROR.json");
}

static void test_validate(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    json_t *tre = load("TRE", "TRE_R227_ChampActivite.json");
    json_t *c0 = json_array_get(json_object_get(tre, "concept"), 0);
    const char *code = json_str(c0, "code"), *display = json_str(c0, "display");
    TermValidation v;
    Diag d = {{0}, {0}};

    assert_int_equal(terminology_validate_vs(term, &a, J20, NULL, R227, code, NULL, &v, &d), 0);
    assert_true(v.result);
    /* display: accents and case do not matter; another text does */
    char *shouted = text_fold(display, strlen(display));
    assert_int_equal(terminology_validate_vs(term, &a, J20, NULL, R227, code, shouted, &v, &d), 0);
    assert_true(v.result);
    free(shouted);
    assert_int_equal(
        terminology_validate_vs(term, &a, J20, NULL, R227, code, "Autre chose", &v, &d), 0);
    assert_false(v.result);
    /* the message gives the value set's display (J20 may word it unlike the TRE) */
    json_t *j20 = load("JDV", "JDV_J20-ChampActivite-ROR-FHIR.json");
    json_t *j20c = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_object_get(j20, "compose"), "include"), 0),
            "concept"),
        0);
    assert_string_equal(json_str(j20c, "code"), code);
    assert_non_null(strstr(v.message, json_str(j20c, "display")));
    json_decref(j20);
    /* without a system: found in the value set's system */
    assert_int_equal(terminology_validate_vs(term, &a, J20, NULL, NULL, code, NULL, &v, &d), 0);
    assert_true(v.result);
    /* not in the value set, or another system */
    assert_int_equal(terminology_validate_vs(term, &a, J20, NULL, R227, "99", NULL, &v, &d), 0);
    assert_false(v.result);
    assert_non_null(strstr(v.message, "99"));
    assert_int_equal(terminology_validate_vs(term, &a, J20, NULL, R30, code, NULL, &v, &d), 0);
    assert_false(v.result);
    /* unknown value set */
    assert_int_equal(
        terminology_validate_vs(term, &a, "http://example.org/vs", NULL, R227, code, NULL, &v, &d),
        ERR_NOT_FOUND);
    /* the J237 ".tabs" url of the snapshot answers under the url the guide binds to */
    json_t *j237 = load("JDV", "JDV_J237_RegionOM_ROR.json");
    assert_non_null(strstr(json_str(j237, "url"), ".tabs"));
    assert_true(terminology_has_valueset(term, J237));
    assert_true(terminology_has_valueset(term, json_str(j237, "url")));
    json_t *inc0 = json_array_get(json_object_get(json_object_get(j237, "compose"), "include"), 0);
    const char *region = json_str(json_array_get(json_object_get(inc0, "concept"), 0), "code");
    assert_int_equal(terminology_validate_vs(term, &a, J237, NULL, json_str(inc0, "system"), region,
                                             NULL, &v, &d),
                     0);
    assert_true(v.result);
    json_decref(j237);
    /* TRE_R340 is published under a ".tabs" url too; J228 names it without */
    assert_true(terminology_validate_cs(term, &a,
                                        NOS_URL "TRE_R340-TypeCaracteristiqueEquipement/FHIR/"
                                                "TRE-R340-TypeCaracteristiqueEquipement",
                                        NULL, "001", NULL, &v, &d) == 0 &&
                v.result);
    /* CodeSystem $validate-code */
    assert_int_equal(terminology_validate_cs(term, &a, R227, NULL, code, display, &v, &d), 0);
    assert_true(v.result);
    assert_string_equal(v.display, display);
    assert_int_equal(terminology_validate_cs(term, &a, R227, NULL, "99", NULL, &v, &d), 0);
    assert_false(v.result);
    assert_int_equal(
        terminology_validate_cs(term, &a, "http://example.org/cs", NULL, code, NULL, &v, &d),
        ERR_NOT_FOUND);
    json_decref(tre);
    arena_cleanup(&a);
}

/* Folded search: every concept whose display or designation contains "reanimation" once
 * folded, counted independently over the TRE files. */
static void test_search(void **state)
{
    (void)state;
    size_t nfiles, expected = 0, expected_prefix = 0;
    char **files = list_dir("TRE", &nfiles);
    for (size_t f = 0; f < nfiles; f++) {
        json_t *cs = load("TRE", files[f]), *c;
        size_t i;
        json_array_foreach(json_object_get(cs, "concept"), i, c)
        {
            bool hit = false, pre = false;
            const char *texts[64];
            size_t nt = 0;
            texts[nt++] = json_str(c, "display") ? json_str(c, "display") : "";
            json_t *x;
            size_t k;
            json_array_foreach(json_object_get(c, "designation"), k, x) if (nt < 64) texts[nt++] =
                json_str(x, "value");
            for (size_t t = 0; t < nt; t++) {
                if (!texts[t])
                    continue;
                char *fo = text_fold(texts[t], strlen(texts[t]));
                hit |= strstr(fo, "reanimation") != NULL;
                pre |= strncmp(fo, "reanimation", 11) == 0;
                free(fo);
            }
            expected += hit;
            expected_prefix += pre;
        }
        json_decref(cs);
    }
    free_list(files, nfiles);
    assert_true(expected > 0);

    Arena a;
    arena_init(&a);
    TermCode out[2000];
    size_t n = terminology_search(term, &a, NULL, "RÉANIMATION", TERM_MATCH_CONTAINS, out, 2000);
    assert_int_equal(n, expected);
    bool accented = false;
    for (size_t i = 0; i < n; i++)
        accented |= strstr(out[i].display, "éanimation") != NULL;
    assert_true(accented);
    size_t np = terminology_search(term, &a, NULL, "reanimation", TERM_MATCH_PREFIX, out, 2000);
    assert_int_equal(np, expected_prefix);
    /* prefix matches come first in contains mode, in the same order */
    TermCode *pre = arena_alloc(&a, np * sizeof *pre);
    memcpy(pre, out, np * sizeof *pre);
    n = terminology_search(term, &a, NULL, "reanimation", TERM_MATCH_CONTAINS, out, 2000);
    assert_int_equal(n, expected);
    for (size_t i = 0; i < np; i++) {
        assert_string_equal(out[i].system, pre[i].system);
        assert_string_equal(out[i].code, pre[i].code);
    }
    /* one system, and a cap */
    n = terminology_search(term, &a, R227, "sante", TERM_MATCH_CONTAINS, out, 1);
    assert_true(n <= 1);
    assert_int_equal(
        terminology_search(term, &a, "http://example.org/none", "a", TERM_MATCH_CONTAINS, out, 10),
        0);
    arena_cleanup(&a);
}

/* ---------------------------------------------------------------- changes */

static json_t *test_cs(const char *display01, bool with02)
{
    json_t *cs =
        json_pack("{ss ss ss ss ss ss s[{ss ss}]}", "resourceType", "CodeSystem", "id", "test-cs",
                  "url", "http://example.org/cs/test", "version", "1", "status", "active",
                  "content", "complete", "concept", "code", "01", "display", display01);
    if (with02)
        json_array_append_new(json_object_get(cs, "concept"),
                              json_pack("{ss ss}", "code", "02", "display", "Deux"));
    return cs;
}

static void test_update_after_commit(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    TermConcept tc;
    TermCode *codes;
    size_t n;
    bool complete;
    assert_int_equal(
        terminology_lookup(term, &a, "http://example.org/cs/test", NULL, "01", &tc, NULL),
        ERR_NOT_FOUND);
    json_t *cs = test_cs("Un", false);
    write_one(cs);
    json_decref(cs);
    /* the commit hook queued the change: the next query sees it */
    assert_int_equal(
        terminology_lookup(term, &a, "http://example.org/cs/test", NULL, "01", &tc, NULL), 0);
    assert_string_equal(tc.display, "Un");

    /* a value set including the whole code system follows the code system's changes */
    json_t *vs = json_pack("{ss ss ss ss s{s[{ss}]}}", "resourceType", "ValueSet", "id", "test-vs",
                           "url", "http://example.org/vs/test", "status", "active", "compose",
                           "include", "system", "http://example.org/cs/test");
    write_one(vs);
    json_decref(vs);
    assert_int_equal(
        terminology_expand(term, &a, "http://example.org/vs/test", &codes, &n, &complete, NULL), 0);
    assert_int_equal(n, 1);
    cs = test_cs("Un (modifié)", true);
    write_one(cs);
    json_decref(cs);
    assert_int_equal(
        terminology_expand(term, &a, "http://example.org/vs/test", &codes, &n, &complete, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(codes[0].display, "Un (modifié)");

    /* deletion: gone from the code systems; the value set can no longer decide */
    delete_one("CodeSystem", "test-cs");
    assert_int_equal(
        terminology_lookup(term, &a, "http://example.org/cs/test", NULL, "01", &tc, NULL),
        ERR_NOT_FOUND);
    assert_int_equal(
        terminology_expand(term, &a, "http://example.org/vs/test", &codes, &n, &complete, NULL), 0);
    assert_int_equal(n, 0);
    assert_false(complete);
    TermValidation v;
    assert_int_equal(terminology_validate_vs(term, &a, "http://example.org/vs/test", NULL,
                                             "http://example.org/cs/test", "01", NULL, &v, NULL),
                     ERR_UNSUPPORTED);
    delete_one("ValueSet", "test-vs");
    assert_false(terminology_has_valueset(term, "http://example.org/vs/test"));
    /* other code systems untouched */
    size_t ncs, nvs;
    terminology_counts(term, &ncs, &nvs, NULL);
    assert_int_equal(ncs, n_tre);
    assert_int_equal(nvs, n_jdv);
    arena_cleanup(&a);
}

/* Readers keep answering consistently while code systems are replaced. */
typedef struct Reader {
    int ok, bad;
} Reader;

static void *reader(void *arg)
{
    Reader *r = arg;
    for (int i = 0; i < 300; i++) {
        Arena a;
        arena_init(&a);
        TermConcept tc;
        int rc = terminology_lookup(term, &a, "http://example.org/cs/race", NULL, "01", &tc, NULL);
        if (rc == ERR_NOT_FOUND || (rc == 0 && strncmp(tc.display, "version ", 8) == 0))
            r->ok++;
        else
            r->bad++;
        TermValidation v;
        if (terminology_validate_vs(term, &a, J20, NULL, R227, "01", NULL, &v, NULL) != 0 ||
            !v.result)
            r->bad++;
        arena_cleanup(&a);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    pthread_t th[4];
    Reader rs[4] = {{0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader, &rs[i]);
    for (int k = 0; k < 6; k++) {
        char display[32];
        snprintf(display, sizeof display, "version %d", k);
        json_t *cs = json_pack("{ss ss ss ss ss s[{ss ss}]}", "resourceType", "CodeSystem", "id",
                               "race-cs", "url", "http://example.org/cs/race", "status", "active",
                               "content", "complete", "concept", "code", "01", "display", display);
        write_one(cs);
        json_decref(cs);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rs[i].bad, 0);
        assert_int_equal(rs[i].ok, 300);
    }
    Arena a;
    arena_init(&a);
    TermConcept tc;
    assert_int_equal(
        terminology_lookup(term, &a, "http://example.org/cs/race", NULL, "01", &tc, NULL), 0);
    assert_string_equal(tc.display, "version 5");
    arena_cleanup(&a);
    delete_one("CodeSystem", "race-cs");
}

/* ---------------------------------------------------------------- binding checks */

static json_t *hs_with_type(const char *system, const char *code)
{
    return json_pack("{ss ss s[{s[{ss ss}]}]}", "resourceType", "HealthcareService", "id", "hs1",
                     "type", "coding", "system", system, "code", code);
}

static void test_check_resource(void **state)
{
    (void)state;
    Diag d = {{0}, {0}};
    json_t *ok = hs_with_type(R227, "01");
    assert_int_equal(terminology_check_resource(term, "HealthcareService", ok, &d), 0);
    json_decref(ok);

    json_t *bad = hs_with_type(R227, "99");
    assert_int_equal(terminology_check_resource(term, "HealthcareService", bad, &d), ERR_BUSINESS);
    assert_string_equal(d.expr, "HealthcareService.type");
    assert_non_null(strstr(d.msg, "« 99 »"));
    json_decref(bad);

    /* a coding of a system the value set does not draw from is not judged */
    json_t *other = hs_with_type("http://example.org/local", "99");
    assert_int_equal(terminology_check_resource(term, "HealthcareService", other, &d), 0);
    json_decref(other);

    /* meta.tag codeRegion against J237 (loaded under its ".tabs" url) */
    json_t *tag = json_pack("{ss s{s[{ss ss}]}}", "resourceType", "Location", "meta", "tag",
                            "system", R30, "code", "ZZ");
    assert_int_equal(terminology_check_resource(term, "Location", tag, &d), ERR_BUSINESS);
    assert_string_equal(d.expr, "Location.meta.tag");
    json_decref(tag);

    /* a capacity status: J188 is not in the snapshot, its TRE R330 is */
#define LOC_CAPA                                                                                   \
    "{\"resourceType\":\"Location\",\"extension\":[{\"url\":\"" ROR_SD                             \
    "ror-location-supported-capacity\",\"extension\":[{\"url\":"                                   \
    "\"capacityStatus\",\"valueCodeableConcept\":{\"coding\":[{\"system\":"                        \
    "\"" R330 "\",\"code\":\"%s\"}]}}]}]}"
    char text[2048];
    json_t *res;
    snprintf(text, sizeof text, LOC_CAPA, "02");
    assert_int_equal(json_parse(text, strlen(text), &res, NULL), 0);
    assert_int_equal(terminology_check_resource(term, "Location", res, &d), 0);
    json_decref(res);
    snprintf(text, sizeof text, LOC_CAPA, "42");
    assert_int_equal(json_parse(text, strlen(text), &res, NULL), 0);
    assert_int_equal(terminology_check_resource(term, "Location", res, &d), ERR_BUSINESS);
    assert_non_null(strstr(d.expr, "capacityStatus"));
    json_decref(res);
}

/* The guide's own examples and the demo data set pass the checks with every NOS loaded. */
static void check_resource_file(const char *path, bool bundle)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    json_t *entries = bundle ? json_object_get(j, "entry") : NULL, *x;
    size_t i, n = bundle ? json_array_size(entries) : 1;
    for (i = 0; i < n; i++) {
        x = bundle ? json_object_get(json_array_get(entries, i), "resource") : j;
        Diag d = {{0}, {0}};
        if (terminology_check_resource(term, json_str(x, "resourceType"), x, &d) != 0)
            fail_msg("%s %s/%s: %s", path, json_str(x, "resourceType"), json_str(x, "id"), d.msg);
    }
    json_decref(j);
}

static void test_guide_data_passes(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/data/demo/demo-region.json", src);
    check_resource_file(path, true);
    snprintf(path, sizeof path, "%s/spec/ror-ig/examples", shared);
    DIR *dd = opendir(path);
    assert_non_null(dd);
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(dd))) {
        if (!strstr(e->d_name, ".json"))
            continue;
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        check_resource_file(file, false);
        seen++;
    }
    closedir(dd);
    assert_true(seen > 0);
}

/* ---------------------------------------------------------------- communes */

/* The communes CodeSystem as `ror import communes` writes it, built here from the real COG
 * (decoupage-administratif) and centroid files for a few départements. */
static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool wanted(const char *code)
{
    return strncmp(code, "42", 2) == 0 || strncmp(code, "78", 2) == 0 ||
           strncmp(code, "75", 2) == 0 || strncmp(code, "2A", 2) == 0;
}

static json_t *communes_cs(json_t *cog, json_t *centres)
{
    json_t *pos = json_object();
    json_t *c;
    size_t i;
    json_array_foreach(centres, i, c)
    {
        json_t *coords = json_object_get(json_object_get(c, "centre"), "coordinates");
        if (json_str(c, "code") && json_array_size(coords) == 2)
            json_object_set(pos, json_str(c, "code"), coords);
    }
    json_t *concepts = json_array();
    json_array_foreach(cog, i, c)
    {
        const char *code = json_str(c, "code"), *type = json_str(c, "type");
        if (!code || !wanted(code) || strcmp(type, "arrondissement-municipal") == 0)
            continue;
        json_t *props = json_array(), *cp;
        size_t k;
        json_array_foreach(json_object_get(c, "codesPostaux"), k, cp) json_array_append_new(
            props, json_pack("{ss sO}", "code", "postalCode", "valueString", cp));
        json_t *xy = json_object_get(pos, code);
        if (xy && strcmp(type, "commune-actuelle") == 0) {
            json_array_append_new(props, json_pack("{ss sO}", "code", "latitude", "valueDecimal",
                                                   json_array_get(xy, 1)));
            json_array_append_new(props, json_pack("{ss sO}", "code", "longitude", "valueDecimal",
                                                   json_array_get(xy, 0)));
        }
        if (json_str(c, "departement"))
            json_array_append_new(props, json_pack("{ss ss}", "code", "departement", "valueCode",
                                                   json_str(c, "departement")));
        if (json_is_integer(json_object_get(c, "population")))
            json_array_append_new(props, json_pack("{ss sO}", "code", "population", "valueInteger",
                                                   json_object_get(c, "population")));
        if (strcmp(type, "commune-actuelle") != 0) {
            json_array_append_new(props,
                                  json_pack("{ss ss}", "code", "status", "valueCode", "retired"));
            json_array_append_new(props,
                                  json_pack("{ss sb}", "code", "inactive", "valueBoolean", 1));
        }
        json_array_append_new(concepts, json_pack("{ss ss so}", "code", code, "display",
                                                  json_str(c, "nom"), "property", props));
    }
    json_decref(pos);
    return json_pack("{ss ss ss ss ss so}", "resourceType", "CodeSystem", "id", "ror-communes",
                     "url", TERM_COMMUNES_URL, "status", "active", "content", "complete", "concept",
                     concepts);
}

static void test_communes(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    TermCommune out[20];
    assert_int_equal(terminology_communes_complete(term, &a, "versa", out, 10), 0);

    char path[2048];
    json_error_t e;
    snprintf(path, sizeof path, "%s/data/communes/decoupage-administratif-6.0.0/communes.json",
             shared);
    json_t *cog = json_load_file(path, 0, &e);
    snprintf(path, sizeof path, "%s/data/communes/geo-api-communes-centres-2021-04-01.json",
             shared);
    json_t *centres = json_load_file(path, 0, &e);
    assert_non_null(cog);
    assert_non_null(centres);
    json_t *cs = communes_cs(cog, centres);
    write_one(cs);

    /* by INSEE code: Saint-Étienne, its postal codes and centroid from the files */
    json_t *se = NULL, *c, *xy = NULL;
    size_t i;
    json_array_foreach(cog, i, c)
    {
        if (strcmp(json_str(c, "code"), "42218") == 0 &&
            strcmp(json_str(c, "type"), "commune-actuelle") == 0)
            se = c;
    }
    json_array_foreach(centres, i, c)
    {
        if (strcmp(json_str(c, "code"), "42218") == 0)
            xy = json_object_get(json_object_get(c, "centre"), "coordinates");
    }
    assert_non_null(se);
    assert_non_null(xy);
    TermCommune one;
    assert_int_equal(terminology_commune(term, &a, "42218", &one), 0);
    assert_string_equal(one.name, json_str(se, "nom"));
    assert_int_equal(one.npostal, json_array_size(json_object_get(se, "codesPostaux")));
    assert_string_equal(one.postal_codes[0],
                        json_string_value(json_array_get(json_object_get(se, "codesPostaux"), 0)));
    assert_true(one.has_position);
    assert_true(one.lat > json_number_value(json_array_get(xy, 1)) - 1e-9 &&
                one.lat < json_number_value(json_array_get(xy, 1)) + 1e-9);
    assert_string_equal(one.departement, "42");
    assert_true(one.active);
    assert_int_equal(terminology_commune(term, &a, "99999", &one), ERR_NOT_FOUND);

    /* by postal code */
    size_t n = terminology_communes_by_postal(term, &a, "78000", out, 20);
    assert_true(n >= 1);
    assert_string_equal(out[0].code, "78646"); /* Versailles */

    /* completion: folded, hyphens as spaces; the largest active commune first */
    const char *queries[] = {"saint-eti", "SAINT ETI", "saint étienne"};
    for (int q = 0; q < 3; q++) {
        n = terminology_communes_complete(term, &a, queries[q], out, 5);
        assert_true(n >= 1);
        assert_string_equal(out[0].code, "42218");
    }
    /* the expected order, computed from the files: active communes of the fixture whose
     * name starts with "sain", largest population first (there are more than 20) */
    int64_t pops[2000];
    size_t npops = 0;
    json_array_foreach(cog, i, c)
    {
        if (!wanted(json_str(c, "code")) || strcmp(json_str(c, "type"), "commune-actuelle") != 0)
            continue;
        char *fo = text_fold(json_str(c, "nom"), strlen(json_str(c, "nom")));
        if (strncmp(fo, "sain", 4) == 0 && npops < 2000)
            pops[npops++] = json_integer_value(json_object_get(c, "population"));
        free(fo);
    }
    assert_true(npops > 20);
    qsort(pops, npops, sizeof *pops, cmp_desc);
    n = terminology_communes_complete(term, &a, "sain", out, 20);
    assert_int_equal(n, 20);
    for (size_t k = 0; k < n; k++) {
        assert_true(out[k].active);
        assert_int_equal(out[k].population, pops[k]);
    }
    /* a merged commune comes after the active ones */
    json_t *merged = NULL;
    json_array_foreach(cog, i, c)
    {
        if (!merged && wanted(json_str(c, "code")) &&
            strcmp(json_str(c, "type"), "commune-deleguee") == 0)
            merged = c;
    }
    assert_non_null(merged);
    assert_int_equal(terminology_commune(term, &a, json_str(merged, "code"), &one), 0);
    assert_false(one.active);
    /* word prefix: "etienne" finds Saint-Étienne too */
    n = terminology_communes_complete(term, &a, "etienne", out, 20);
    bool found = false;
    for (size_t k = 0; k < n; k++)
        found |= strcmp(out[k].code, "42218") == 0;
    assert_true(found);
    /* postal code prefix and INSEE code prefix */
    n = terminology_communes_complete(term, &a, "7800", out, 20);
    found = false;
    for (size_t k = 0; k < n; k++)
        found |= strcmp(out[k].code, "78646") == 0;
    assert_true(found);
    n = terminology_communes_complete(term, &a, "2a00", out, 20);
    assert_true(n >= 1);
    assert_int_equal(strncmp(out[0].code, "2A00", 4), 0);
    /* limit */
    assert_int_equal(terminology_communes_complete(term, &a, "s", out, 3), 3);

    /* the commune-cog binding judges against the communes code system once it is loaded */
    json_t *loc = json_pack("{ss s[{ss s{s[{ss ss}]}}]}", "resourceType", "Location", "extension",
                            "url", ROR_SD "ror-commune-cog", "valueCodeableConcept", "coding",
                            "system", TERM_COMMUNES_URL, "code", "42218");
    Diag d = {{0}, {0}};
    assert_int_equal(terminology_check_resource(term, "Location", loc, &d), 0);
    json_object_set_new(
        json_array_get(
            json_object_get(json_object_get(json_array_get(json_object_get(loc, "extension"), 0),
                                            "valueCodeableConcept"),
                            "coding"),
            0),
        "code", json_string("00000"));
    assert_int_equal(terminology_check_resource(term, "Location", loc, &d), ERR_BUSINESS);
    json_decref(loc);

    delete_one("CodeSystem", "ror-communes");
    assert_int_equal(terminology_communes_complete(term, &a, "versa", out, 10), 0);
    json_decref(cs);
    json_decref(cog);
    json_decref(centres);
    arena_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_expansions),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_check_resource),
        cmocka_unit_test(test_guide_data_passes),
        cmocka_unit_test(test_update_after_commit),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_communes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
