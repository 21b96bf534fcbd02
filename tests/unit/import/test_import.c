/* import: the store sink and NDJSON/Bundle/gzip/tar reading — idempotence, incremental updates,
 * closing, rejects with file:line, strict and failed imports leaving the store unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "import/import.h"
#include "json/json.h"
#include "store/store.h"

static FhirRegistry *reg;
static char dir[256];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("ROR_SOURCE_DIR");
    char path[1024];
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src ? src : ".");
    if (fhir_registry_load_file(reg, path, NULL) != 0 || fhir_registry_finish(reg, NULL, NULL))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/ror-test-import-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fhir_registry_free(reg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static Store *open_store(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    StoreOptions o = {.path = path, .reg = reg, .readers = 2};
    Store *s = NULL;
    Diag d = {{0}, {0}};
    if (store_open(&o, &s, &d) != 0)
        fail_msg("store_open: %s", d.msg);
    return s;
}

static char *path_of(const char *name)
{
    static char p[8][400];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_gz(const char *name, const char *text)
{
    gzFile g = gzopen(path_of(name), "wb");
    assert_non_null(g);
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
}

/* A ustar archive of (name, text) members, gzip-compressed. */
static void write_tar_gz(const char *name, const char *const *members, size_t n)
{
    gzFile g = gzopen(path_of(name), "wb");
    assert_non_null(g);
    for (size_t i = 0; i < n; i++) {
        const char *mname = members[2 * i], *text = members[2 * i + 1];
        char h[512] = {0};
        size_t len = strlen(text);
        snprintf(h, 100, "%s", mname);
        snprintf(h + 100, 8, "0000644");
        snprintf(h + 108, 8, "0000000");
        snprintf(h + 116, 8, "0000000");
        snprintf(h + 124, 12, "%011o", (unsigned)len);
        snprintf(h + 136, 12, "%011o", 0u);
        h[156] = '0';
        memcpy(h + 257,
               "ustar\0"
               "00",
               8);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int j = 0; j < 512; j++)
            sum += (unsigned char)h[j];
        snprintf(h + 148, 8, "%06o", sum);
        gzwrite(g, h, 512);
        gzwrite(g, text, (unsigned)len);
        char pad[512] = {0};
        if (len % 512)
            gzwrite(g, pad, (unsigned)(512 - len % 512));
    }
    char zero[1024] = {0};
    gzwrite(g, zero, sizeof zero);
    gzclose(g);
}

typedef struct Problems {
    char msgs[32][512];
    int n, rejects;
} Problems;

static void on_problem(void *ctx, bool reject, const char *msg)
{
    Problems *p = ctx;
    if (p->n < 32)
        snprintf(p->msgs[p->n++], sizeof p->msgs[0], "%s", msg);
    p->rejects += reject;
}

static bool has_problem(const Problems *p, const char *needle1, const char *needle2)
{
    for (int i = 0; i < p->n; i++)
        if (strstr(p->msgs[i], needle1) && (!needle2 || strstr(p->msgs[i], needle2)))
            return true;
    return false;
}

static int run(Store *s, const char *kind, const char *const *files, size_t n, ImportOptions *o,
               ImportSummary *sum, Problems *pb)
{
    if (pb) {
        memset(pb, 0, sizeof *pb);
        o->on_problem = on_problem;
        o->problem_ctx = pb;
    }
    if (!o->author)
        o->author = "test-import";
    Diag d = {{0}, {0}};
    memset(sum, 0, sizeof *sum);
    return import_run(s, reg, import_kind_find(kind), files, n, o, sum, &d);
}

static int64_t count(Store *s, const char *type)
{
    int64_t n = -1;
    assert_int_equal(store_count(s, type, &n, NULL), 0);
    return n;
}

static json_t *read_res(Store *s, const char *type, const char *id, int64_t *version)
{
    Arena a;
    arena_init(&a);
    StoredResource r;
    int rc = store_read(s, &a, type, id, &r, NULL);
    json_t *v = NULL;
    if (rc == 0) {
        json_parse(r.body, r.len, &v, NULL);
        if (version)
            *version = r.version;
    }
    arena_cleanup(&a);
    return v;
}

static const char *ORGS =
    "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Hôpital Un\","
    "\"identifier\":[{\"system\":\"urn:oid:1.2.250.1.71.4.2.2\",\"value\":\"750000001\"}]}\n"
    "{\"resourceType\":\"Organization\",\"id\":\"o2\",\"name\":\"Clinique Deux\"}\n"
    "\n"
    "{\"resourceType\":\"Location\",\"id\":\"l1\",\"name\":\"Site Un\",\"status\":\"active\","
    "\"meta\":{\"versionId\":\"9\",\"lastUpdated\":\"2021-01-08T00:00:00Z\"},"
    "\"managingOrganization\":{\"reference\":\"Organization/o1\"}}\n"
    "{\"resourceType\":\"Location\",\"id\":\"l2\",\"name\":\"Site Deux\",\"status\":\"active\"}\n";

/* The same extract a month later: o2 renamed, l2 gone, o3 new, the rest identical. */
static const char *ORGS_NEXT =
    "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Hôpital Un\","
    "\"identifier\":[{\"system\":\"urn:oid:1.2.250.1.71.4.2.2\",\"value\":\"750000001\"}]}\n"
    "{\"resourceType\":\"Organization\",\"id\":\"o2\",\"name\":\"Clinique Deux-Rives\"}\n"
    "{\"resourceType\":\"Location\",\"id\":\"l1\",\"name\":\"Site Un\",\"status\":\"active\","
    "\"meta\":{\"versionId\":\"9\",\"lastUpdated\":\"2021-01-08T00:00:00Z\"},"
    "\"managingOrganization\":{\"reference\":\"Organization/o1\"}}\n"
    "{\"resourceType\":\"Organization\",\"id\":\"o3\",\"name\":\"Centre Trois\"}\n";

static void t_idempotent_incremental_close(void **state)
{
    (void)state;
    Store *s = open_store("incr");
    write_file("orgs.ndjson", ORGS);
    const char *f1[] = {path_of("orgs.ndjson")};
    ImportOptions o = {0};
    ImportSummary sum;
    assert_int_equal(run(s, "ndjson", f1, 1, &o, &sum, NULL), 0);
    assert_int_equal(sum.read, 4);
    assert_int_equal(sum.created, 4);
    assert_int_equal(sum.rejected, 0);
    assert_int_equal(count(s, "Organization"), 2);
    assert_int_equal(count(s, "Location"), 2);

    /* stored with the feed tag, server-owned meta replaced */
    int64_t v = 0;
    json_t *l1 = read_res(s, "Location", "l1", &v);
    assert_non_null(l1);
    assert_int_equal(v, 1);
    assert_string_equal(json_str(json_object_get(l1, "meta"), "versionId"), "1");
    json_t *tag = json_array_get(json_object_get(json_object_get(l1, "meta"), "tag"), 0);
    assert_string_equal(json_str(tag, "system"), IMPORT_FEED_SYSTEM);
    assert_string_equal(json_str(tag, "code"), "ndjson");
    json_decref(l1);

    /* the same file again: nothing changes, no new version */
    assert_int_equal(run(s, "ndjson", f1, 1, &o, &sum, NULL), 0);
    assert_int_equal(sum.unchanged, 4);
    assert_int_equal(sum.created + sum.updated + sum.closed, 0);
    json_decref(read_res(s, "Organization", "o2", &v));
    assert_int_equal(v, 1);

    /* the next extract: exactly the changed rows get new versions, the missing one is closed */
    write_file("orgs-next.ndjson", ORGS_NEXT);
    const char *f2[] = {path_of("orgs-next.ndjson")};
    assert_int_equal(run(s, "ndjson", f2, 1, &o, &sum, NULL), 0);
    assert_int_equal(sum.created, 1);
    assert_int_equal(sum.updated, 1);
    assert_int_equal(sum.unchanged, 2);
    assert_int_equal(sum.closed, 1);
    json_t *o2 = read_res(s, "Organization", "o2", &v);
    assert_int_equal(v, 2);
    assert_string_equal(json_str(o2, "name"), "Clinique Deux-Rives");
    json_decref(o2);
    json_decref(read_res(s, "Organization", "o1", &v));
    assert_int_equal(v, 1);
    json_t *l2 = read_res(s, "Location", "l2", &v); /* closed, not deleted; history kept */
    assert_non_null(l2);
    assert_int_equal(v, 2);
    assert_string_equal(json_str(l2, "status"), "inactive");
    json_decref(l2);
    Arena a;
    arena_init(&a);
    StoredResource old;
    assert_int_equal(store_vread(s, &a, "Location", "l2", 1, &old, NULL), 0);
    assert_non_null(strstr(old.body, "\"active\""));
    arena_cleanup(&a);

    /* again: nothing more to close, nothing changes */
    assert_int_equal(run(s, "ndjson", f2, 1, &o, &sum, NULL), 0);
    assert_int_equal(sum.unchanged, 4);
    assert_int_equal(sum.created + sum.updated + sum.closed, 0);

    /* l2 comes back: reopened from the source */
    assert_int_equal(run(s, "ndjson", f1, 1, &o, &sum, NULL), 0);
    assert_int_equal(sum.updated, 2); /* o2's old name, l2 reopened */
    assert_int_equal(sum.closed, 1);  /* o3 */
    json_t *o3 = read_res(s, "Organization", "o3", NULL);
    assert_true(json_is_false(json_object_get(o3, "active")));
    json_decref(o3);
    l2 = read_res(s, "Location", "l2", &v);
    assert_int_equal(v, 3);
    assert_string_equal(json_str(l2, "status"), "active");
    json_decref(l2);

    /* --no-close: a partial extract closes nothing */
    const char *part[] = {path_of("orgs-next.ndjson")};
    ImportOptions partial = {.no_close = true};
    assert_int_equal(run(s, "ndjson", part, 1, &partial, &sum, NULL), 0);
    assert_int_equal(sum.closed, 0);
    store_close(s);
}

static void t_bad_records_reported(void **state)
{
    (void)state;
    Store *s = open_store("bad");
    write_file("bad.ndjson",
               "{\"resourceType\":\"Organization\",\"id\":\"ok1\",\"name\":\"A\"}\n"
               "{\"resourceType\":\"Organization\",\"id\":\"x\",\"name\":\n"
               "{\"resourceType\":\"Spaceship\",\"id\":\"s1\"}\n"
               "{\"resourceType\":\"Organization\",\"name\":\"sans id\"}\n"
               "{\"resourceType\":\"Organization\",\"id\":\"bad id!\"}\n"
               "[1,2]\n"
               "{\"resourceType\":\"Organization\",\"id\":\"ok2\",\"name\":\"B\",\"name\":\"C\"}\n"
               "{\"resourceType\":\"Organization\",\"id\":\"ok3\",\"name\":\"D\"}\n");
    const char *f[] = {path_of("bad.ndjson")};
    ImportOptions o = {0};
    ImportSummary sum;
    Problems pb;
    assert_int_equal(run(s, "ndjson", f, 1, &o, &sum, &pb), 0);
    assert_int_equal(sum.created, 2);
    assert_int_equal(sum.rejected, 6);
    assert_int_equal(pb.rejects, 6);
    assert_true(has_problem(&pb, "bad.ndjson:2:", "JSON invalide"));
    assert_true(has_problem(&pb, "bad.ndjson:3:", "Spaceship"));
    assert_true(has_problem(&pb, "bad.ndjson:4:", "id"));
    assert_true(has_problem(&pb, "bad.ndjson:5:", "id"));
    assert_true(has_problem(&pb, "bad.ndjson:6:", NULL));
    assert_true(has_problem(&pb, "bad.ndjson:7:", NULL)); /* duplicate key */
    assert_int_equal(count(s, "Organization"), 2);
    store_close(s);
}

static void t_strict_and_failures_leave_store_unchanged(void **state)
{
    (void)state;
    Store *s = open_store("strict");
    write_file("good.ndjson", ORGS);
    const char *good[] = {path_of("good.ndjson")};
    ImportOptions o = {0};
    ImportSummary sum;
    assert_int_equal(run(s, "ndjson", good, 1, &o, &sum, NULL), 0);

    /* strict: one bad line and nothing of the file is written */
    write_file("one-bad.ndjson",
               "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Renommé\"}\n"
               "{\"resourceType\":\"Organization\",\"id\":\"n1\",\"name\":\"Nouveau\"}\n"
               "{oops}\n");
    const char *bad[] = {path_of("one-bad.ndjson")};
    ImportOptions strict = {.strict = true};
    Problems pb;
    assert_int_equal(run(s, "ndjson", bad, 1, &strict, &sum, &pb), ERR_INVALID);
    assert_true(has_problem(&pb, "one-bad.ndjson:3:", NULL));
    assert_int_equal(count(s, "Organization"), 2);
    json_t *o1 = read_res(s, "Organization", "o1", NULL);
    assert_string_equal(json_str(o1, "name"), "Hôpital Un");
    json_decref(o1);

    /* a truncated gzip file among good ones: the whole import fails, nothing written */
    char big[64 * 1024];
    size_t at = 0;
    for (int i = 0; at < sizeof big - 200; i++)
        at += (size_t)snprintf(
            big + at, sizeof big - at,
            "{\"resourceType\":\"Organization\",\"id\":\"t%d\",\"name\":\"T\"}\n", i);
    write_gz("trunc.ndjson.gz", big);
    FILE *f = fopen(path_of("trunc.ndjson.gz"), "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path_of("trunc.ndjson.gz"), size / 2), 0);
    write_file("more.ndjson", "{\"resourceType\":\"Organization\",\"id\":\"m1\"}\n");
    const char *mix[] = {path_of("more.ndjson"), path_of("trunc.ndjson.gz")};
    int rc = run(s, "ndjson", mix, 2, &o, &sum, NULL);
    assert_int_equal(rc, ERR_IO);
    assert_int_equal(count(s, "Organization"), 2);
    json_t *m1 = read_res(s, "Organization", "m1", NULL);
    assert_null(m1);

    /* a missing file: same */
    const char *missing[] = {path_of("more.ndjson"), path_of("no-such-file.ndjson")};
    assert_int_equal(run(s, "ndjson", missing, 2, &o, &sum, NULL), ERR_IO);
    assert_int_equal(count(s, "Organization"), 2);

    /* dry run: everything counted, nothing written */
    ImportOptions dry = {.dry_run = true};
    const char *more[] = {path_of("more.ndjson")};
    assert_int_equal(run(s, "ndjson", more, 1, &dry, &sum, NULL), 0);
    assert_int_equal(sum.read, 1);
    assert_int_equal(count(s, "Organization"), 2);
    store_close(s);
}

static void t_formats(void **state)
{
    (void)state;
    Store *s = open_store("formats");
    write_file("bundle.json",
               "{\n  \"resourceType\": \"Bundle\", \"type\": \"collection\",\n  \"entry\": [\n"
               "    {\"resource\": {\"resourceType\": \"Organization\", \"id\": \"b1\"}},\n"
               "    {\"resource\": {\"resourceType\": \"Organization\", \"id\": \"b2\"}},\n"
               "    {\"request\": {\"method\": \"DELETE\", \"url\": \"Organization/zz\"}}\n"
               "  ]\n}\n");
    write_file("single.json", "{\n \"resourceType\": \"Location\",\n \"id\": \"s1\"\n}\n");
    write_gz("lines.ndjson.gz", "{\"resourceType\":\"Organization\",\"id\":\"g1\"}\r\n"
                                "{\"resourceType\":\"Organization\",\"id\":\"g2\"}");
    const char *members[] = {
        "a/first.ndjson",
        "{\"resourceType\":\"Organization\",\"id\":\"t1\"}\n"
        "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":"
        "{\"resourceType\":\"Organization\",\"id\":\"t2\"},\"request\":{\"method\":\"PUT\","
        "\"url\":\"Organization/t2\"}}]}\n",
        "a/second.json",
        "{\"resourceType\":\"Location\",\n\"id\":\"t3\"}",
    };
    write_tar_gz("archive.tar.gz", members, 2);
    const char *f[] = {path_of("bundle.json"), path_of("single.json"), path_of("lines.ndjson.gz"),
                       path_of("archive.tar.gz")};
    ImportOptions o = {0};
    ImportSummary sum;
    Problems pb;
    assert_int_equal(run(s, "ndjson", f, 4, &o, &sum, &pb), 0);
    assert_int_equal(sum.created, 8);
    assert_int_equal(sum.rejected, 1); /* the DELETE entry */
    assert_true(has_problem(&pb, "bundle.json", "DELETE"));
    assert_int_equal(count(s, "Organization"), 6);
    assert_int_equal(count(s, "Location"), 2);
    json_t *t2 = read_res(s, "Organization", "t2", NULL);
    assert_non_null(t2);
    json_decref(t2);

    /* a truncated tar: an error, nothing written */
    FILE *in = fopen(path_of("archive.tar.gz"), "rb");
    gzFile gz = gzdopen(fileno(in), "rb");
    char raw[4096];
    int n = gzread(gz, raw, sizeof raw);
    gzclose(gz);
    assert_true(n > 1100);
    gzFile out = gzopen(path_of("cut.tar.gz"), "wb");
    gzwrite(out, raw, 700); /* the first header and part of its data */
    gzclose(out);
    const char *cut[] = {path_of("cut.tar.gz")};
    ImportOptions o2 = {.feed = "other"};
    assert_int_equal(run(s, "ndjson", cut, 1, &o2, &sum, NULL), ERR_IO);
    assert_int_equal(count(s, "Organization"), 6);
    store_close(s);
}

static void t_references_by_identifier(void **state)
{
    (void)state;
    Store *s = open_store("refs");
    write_file("orgs.ndjson", ORGS);
    write_file(
        "roles.ndjson",
        "{\"resourceType\":\"PractitionerRole\",\"id\":\"r1\",\"organization\":"
        "{\"identifier\":{\"system\":\"urn:oid:1.2.250.1.71.4.2.2\",\"value\":\"750000001\"}}}\n"
        "{\"resourceType\":\"PractitionerRole\",\"id\":\"r2\",\"organization\":"
        "{\"identifier\":{\"system\":\"urn:oid:1.2.250.1.71.4.2.2\",\"value\":\"999\"}}}\n"
        "{\"resourceType\":\"PractitionerRole\",\"id\":\"r3\",\"organization\":"
        "{\"identifier\":{\"system\":\"https://finess.esante.gouv.fr\","
        "\"value\":\"750000001\"}}}\n");
    const char *f1[] = {path_of("orgs.ndjson")};
    const char *f2[] = {path_of("roles.ndjson")};
    ImportOptions o = {0};
    ImportSummary sum;
    assert_int_equal(run(s, "ndjson", f1, 1, &o, &sum, NULL), 0);
    ImportOptions o2 = {.feed = "roles"};
    assert_int_equal(run(s, "ndjson", f2, 1, &o2, &sum, NULL), 0);
    assert_int_equal(sum.created, 3);
    json_t *r1 = read_res(s, "PractitionerRole", "r1", NULL);
    assert_string_equal(json_str(json_object_get(r1, "organization"), "reference"),
                        "Organization/o1");
    json_decref(r1);
    /* the guide's FINESS form finds the organisation that carries the bare number under the
     * national structure OID (as the 2021 FINESS FHIR extract writes it) */
    json_t *r3 = read_res(s, "PractitionerRole", "r3", NULL);
    assert_string_equal(json_str(json_object_get(r3, "organization"), "reference"),
                        "Organization/o1");
    json_decref(r3);
    json_t *r2 = read_res(s, "PractitionerRole", "r2", NULL); /* unknown: stays by identifier */
    assert_null(json_object_get(json_object_get(r2, "organization"), "reference"));
    json_decref(r2);
    /* the feeds are separate: importing roles closed no organisation */
    assert_int_equal(sum.closed, 0);
    json_t *o1 = read_res(s, "Organization", "o1", NULL);
    assert_null(json_object_get(o1, "active"));
    json_decref(o1);
    store_close(s);
}

static void t_mass_close_guard(void **state)
{
    (void)state;
    Store *s = open_store("mass");
    Buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 150; i++)
        buf_printf(&b, "{\"resourceType\":\"Organization\",\"id\":\"m%d\"}\n", i);
    write_file("full.ndjson", b.p);
    buf_cleanup(&b);
    write_file("cut.ndjson", "{\"resourceType\":\"Organization\",\"id\":\"m0\"}\n");
    const char *full[] = {path_of("full.ndjson")};
    const char *cut[] = {path_of("cut.ndjson")};
    ImportOptions o = {0};
    ImportSummary sum;
    assert_int_equal(run(s, "ndjson", full, 1, &o, &sum, NULL), 0);
    /* a truncated extract would close 149 of 150: refused, nothing written */
    assert_int_equal(run(s, "ndjson", cut, 1, &o, &sum, NULL), ERR_BUSINESS);
    json_t *m5 = read_res(s, "Organization", "m5", NULL);
    assert_null(json_object_get(m5, "active"));
    json_decref(m5);
    /* a dry run says what it would do, and writes nothing */
    ImportOptions dry = {.dry_run = true, .max_close_pct = 100};
    assert_int_equal(run(s, "ndjson", cut, 1, &dry, &sum, NULL), 0);
    assert_int_equal(sum.closed, 149);
    m5 = read_res(s, "Organization", "m5", NULL);
    assert_null(json_object_get(m5, "active"));
    json_decref(m5);
    /* accepted explicitly */
    ImportOptions all = {.max_close_pct = 100};
    assert_int_equal(run(s, "ndjson", cut, 1, &all, &sum, NULL), 0);
    assert_int_equal(sum.closed, 149);
    m5 = read_res(s, "Organization", "m5", NULL);
    assert_true(json_is_false(json_object_get(m5, "active")));
    json_decref(m5);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_idempotent_incremental_close),
        cmocka_unit_test(t_bad_records_reported),
        cmocka_unit_test(t_strict_and_failures_leave_store_unchanged),
        cmocka_unit_test(t_formats),
        cmocka_unit_test(t_references_by_identifier),
        cmocka_unit_test(t_mass_close_guard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
