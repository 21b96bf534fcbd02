/* store: versions, history, conflicts, group commit with savepoints, persistence, paging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json/json.h"
#include "store/store.h"

static FhirRegistry *reg;
static char dir[256], dbpath[300];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("ROR_SOURCE_DIR");
    char path[1024];
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src ? src : ".");
    if (fhir_registry_load_file(reg, path, NULL) != 0 || fhir_registry_finish(reg, NULL, NULL))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/ror-test-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fhir_registry_free(reg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static Store *open_store_timeout(const char *name, int timeout_ms)
{
    snprintf(dbpath, sizeof dbpath, "%s/%s.db", dir, name);
    StoreOptions o = {.path = dbpath, .reg = reg, .readers = 4, .query_timeout_ms = timeout_ms};
    Store *s = NULL;
    Diag d = {{0}, {0}};
    if (store_open(&o, &s, &d) != 0)
        fail_msg("store_open: %s", d.msg);
    return s;
}

static Store *open_store(const char *name)
{
    return open_store_timeout(name, 0);
}

typedef struct PutCtx {
    const char *type, *id, *text;
    int64_t if_match;
    bool create_only, fail_after;
    StoredResource out;
    Arena arena;
} PutCtx;

static int txn_put(StoreTxn *t, void *vctx, Diag *d)
{
    PutCtx *c = vctx;
    json_t *res = NULL;
    int rc = json_parse(c->text, strlen(c->text), &res, d);
    if (rc != 0)
        return rc;
    StorePut p = {.type = c->type,
                  .id = c->id,
                  .res = res,
                  .text = c->text,
                  .len = strlen(c->text),
                  .if_match = c->if_match,
                  .create_only = c->create_only,
                  .author = "test"};
    rc = store_txn_put(t, &c->arena, &p, &c->out, d);
    json_decref(res);
    if (rc == 0 && c->fail_after)
        return diag_set(d, ERR_BUSINESS, "refused after writing");
    return rc;
}

static int put(Store *s, PutCtx *c)
{
    arena_init(&c->arena);
    Diag d = {{0}, {0}};
    return store_write(s, txn_put, c, &d);
}

static void test_versions_history_delete(void **state)
{
    (void)state;
    Store *s = open_store("versions");
    PutCtx c = {.type = "Organization",
                .id = "o1",
                .text = "{\"resourceType\":\"Organization\",\"name\":\"A\",\"x\":1.50}"};
    assert_int_equal(put(s, &c), 0);
    assert_int_equal(c.out.version, 1);
    assert_non_null(strstr(c.out.body, "\"x\":1.50")); /* decimal text kept */
    assert_non_null(strstr(c.out.body, "\"versionId\":\"1\""));
    arena_cleanup(&c.arena);

    PutCtx c2 = {.type = "Organization",
                 .id = "o1",
                 .text = "{\"resourceType\":\"Organization\",\"name\":\"B\"}",
                 .if_match = 1};
    assert_int_equal(put(s, &c2), 0);
    assert_int_equal(c2.out.version, 2);
    arena_cleanup(&c2.arena);

    /* stale If-Match: refused, nothing changes */
    PutCtx c3 = {.type = "Organization",
                 .id = "o1",
                 .text = "{\"resourceType\":\"Organization\",\"name\":\"C\"}",
                 .if_match = 1};
    assert_int_equal(put(s, &c3), ERR_PRECONDITION);
    arena_cleanup(&c3.arena);
    PutCtx c4 = {.type = "Organization",
                 .id = "o1",
                 .create_only = true,
                 .text = "{\"resourceType\":\"Organization\"}"};
    assert_int_equal(put(s, &c4), ERR_CONFLICT);
    arena_cleanup(&c4.arena);

    Arena a;
    arena_init(&a);
    StoredResource r;
    assert_int_equal(store_read(s, &a, "Organization", "o1", &r, NULL), 0);
    assert_int_equal(r.version, 2);
    assert_non_null(strstr(r.body, "\"name\":\"B\""));
    assert_string_equal(r.author, "test");
    assert_int_equal(store_vread(s, &a, "Organization", "o1", 1, &r, NULL), 0);
    assert_non_null(strstr(r.body, "\"name\":\"A\""));
    assert_int_equal(store_vread(s, &a, "Organization", "o1", 3, &r, NULL), ERR_NOT_FOUND);
    assert_int_equal(store_read(s, &a, "Organization", "nope", &r, NULL), ERR_NOT_FOUND);

    StoredResource *h;
    size_t n;
    assert_int_equal(store_history(s, &a, "Organization", "o1", 100, &h, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].version, 2);
    assert_int_equal(h[1].version, 1);
    assert_true(h[0].last_updated > h[1].last_updated);
    arena_cleanup(&a);
    store_close(s);
}

typedef struct DelCtx {
    const char *id;
    StoredResource out;
    Arena arena;
} DelCtx;

static int txn_del(StoreTxn *t, void *vctx, Diag *d)
{
    DelCtx *c = vctx;
    return store_txn_delete(t, &c->arena, "Organization", c->id, 0, "test", &c->out, d);
}

static void test_delete(void **state)
{
    (void)state;
    Store *s = open_store("delete");
    PutCtx c = {.type = "Organization", .id = "d1", .text = "{\"resourceType\":\"Organization\"}"};
    assert_int_equal(put(s, &c), 0);
    arena_cleanup(&c.arena);
    DelCtx dc = {.id = "d1"};
    arena_init(&dc.arena);
    assert_int_equal(store_write(s, txn_del, &dc, NULL), 0);
    assert_true(dc.out.deleted);
    assert_int_equal(dc.out.version, 2);
    arena_cleanup(&dc.arena);
    DelCtx missing = {.id = "nope"};
    arena_init(&missing.arena);
    assert_int_equal(store_write(s, txn_del, &missing, NULL), ERR_NOT_FOUND);
    arena_cleanup(&missing.arena);

    Arena a;
    arena_init(&a);
    StoredResource r;
    assert_int_equal(store_read(s, &a, "Organization", "d1", &r, NULL), ERR_GONE);
    assert_int_equal(r.version, 2);
    int64_t count = -1;
    assert_int_equal(store_count(s, "Organization", &count, NULL), 0);
    assert_int_equal(count, 0);
    StoredResource *h;
    size_t n;
    assert_int_equal(store_history(s, &a, "Organization", "d1", 10, &h, &n, NULL), 0);
    assert_int_equal(n, 2); /* history kept */
    arena_cleanup(&a);
    store_close(s);
}

/* Concurrent writers: group commit, and a failing job rolls back alone. */
static int committed_changes;
static void hook(void *ctx, const StoreChange *changes, size_t n)
{
    (void)ctx;
    (void)changes;
    __atomic_add_fetch(&committed_changes, (int)n, __ATOMIC_SEQ_CST);
}

typedef struct Worker {
    Store *s;
    int index;
    int ok, failed;
} Worker;

static void *worker(void *arg)
{
    Worker *w = arg;
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d-%d", w->index, i);
        PutCtx c = {.type = "Organization",
                    .id = id,
                    .text = "{\"resourceType\":\"Organization\",\"name\":\"w\"}",
                    .fail_after = (i % 10 == 3)};
        int rc = put(w->s, &c);
        arena_cleanup(&c.arena);
        if (rc == 0)
            w->ok++;
        else if (rc == ERR_BUSINESS)
            w->failed++;
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    Store *s = open_store("group");
    committed_changes = 0;
    store_set_commit_hook(s, hook, NULL);
    pthread_t th[8];
    Worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (Worker){s, i, 0, 0};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    assert_int_equal(ok, 8 * 36);
    assert_int_equal(failed, 8 * 4);
    assert_int_equal(committed_changes, ok);
    int64_t n = 0;
    assert_int_equal(store_count(s, "Organization", &n, NULL), 0);
    assert_int_equal(n, ok);
    Arena a;
    arena_init(&a);
    StoredResource r;
    assert_int_equal(store_read(s, &a, "Organization", "w3-3", &r, NULL), ERR_NOT_FOUND);
    assert_int_equal(store_read(s, &a, "Organization", "w3-4", &r, NULL), 0);
    arena_cleanup(&a);
    store_close(s);

    /* reopen: everything is still there, the schema is not migrated twice */
    s = open_store("group");
    assert_int_equal(store_count(s, "Organization", &n, NULL), 0);
    assert_int_equal(n, ok);
    store_close(s);
}

static void test_search_paging(void **state)
{
    (void)state;
    Store *s = open_store("paging");
    for (int i = 0; i < 25; i++) {
        char id[16], text[128];
        snprintf(id, sizeof id, "p%02d", i);
        snprintf(text, sizeof text, "{\"resourceType\":\"Organization\",\"name\":\"Nom %02d\"}",
                 24 - i);
        PutCtx c = {.type = "Organization", .id = id, .text = text};
        assert_int_equal(put(s, &c), 0);
        arena_cleanup(&c.arena);
    }
    for (int sorted = 0; sorted < 2; sorted++) {
        QueryParam q[2] = {{"_count", "10"}, {"_sort", "name"}};
        SearchPlan *plan = NULL;
        assert_int_equal(
            fhir_search_parse(reg, "Organization", q, sorted ? 2 : 1, true, &plan, NULL), 0);
        bool seen[25] = {false};
        int pages = 0, total = 0;
        const char *cursor = NULL;
        Arena a;
        arena_init(&a);
        char last[64] = "";
        do {
            plan->cursor = cursor;
            StorePage pg;
            Diag d = {{0}, {0}};
            assert_int_equal(store_search(s, &a, plan, &pg, &d), 0);
            assert_int_equal(pg.total, 25);
            for (size_t i = 0; i < pg.nmatches; i++) {
                int k = atoi(pg.matches[i].id + 1);
                assert_false(seen[k]);
                seen[k] = true;
                total++;
                if (sorted) { /* names descend as ids ascend: sorted by name = reverse id order */
                    const char *name = strstr(pg.matches[i].body, "Nom ");
                    assert_non_null(name);
                    assert_true(strncmp(last, name, 6) < 0);
                    snprintf(last, sizeof last, "%.6s", name);
                }
            }
            cursor = pg.next_cursor;
            pages++;
        } while (cursor);
        assert_int_equal(pages, 3);
        assert_int_equal(total, 25);
        plan->cursor = "[\"garbage\"";
        StorePage pg;
        assert_int_equal(store_search(s, &a, plan, &pg, NULL), ERR_INVALID);
        plan->cursor = NULL;
        arena_cleanup(&a);
        search_plan_free(plan);
    }
    store_close(s);
}

static int64_t search_total(Store *s, const QueryParam *q, size_t n, size_t *nmatches)
{
    SearchPlan *plan = NULL;
    Diag d = {{0}, {0}};
    if (fhir_search_parse(reg, "Organization", q, n, true, &plan, &d) != 0)
        fail_msg("parse: %s", d.msg);
    Arena a;
    arena_init(&a);
    StorePage pg;
    assert_int_equal(store_search(s, &a, plan, &pg, &d), 0);
    *nmatches = pg.nmatches;
    arena_cleanup(&a);
    search_plan_free(plan);
    return pg.total;
}

static void test_search_counts(void **state)
{
    (void)state;
    Store *s = open_store("counts");
    static const char *bodies[] = {
        ("{\"resourceType\":\"Organization\",\"name\":\"Centre A\",\"alias\":[\"Centre A bis\"],"
         "\"active\":true}"),
        "{\"resourceType\":\"Organization\",\"name\":\"Centre B\",\"active\":false}",
        "{\"resourceType\":\"Organization\",\"name\":\"Clinique C\",\"active\":true}",
        "{\"resourceType\":\"Organization\",\"name\":\"Centre D\",\"active\":true}",
    };
    const char *ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        PutCtx c = {.type = "Organization", .id = ids[i], .text = bodies[i]};
        assert_int_equal(put(s, &c), 0);
        arena_cleanup(&c.arena);
    }
    DelCtx dc = {.id = "d"};
    arena_init(&dc.arena);
    assert_int_equal(store_write(s, txn_del, &dc, NULL), 0);
    arena_cleanup(&dc.arena);

    size_t n;
    QueryParam q1[] = {{"name", "centre"}}; /* a matches twice (name, alias): counted once */
    assert_int_equal(search_total(s, q1, 1, &n), 2);
    assert_int_equal(n, 2);
    QueryParam q2[] = {{"name", "centre"}, {"active", "true"}};
    assert_int_equal(search_total(s, q2, 2, &n), 1);
    assert_int_equal(n, 1);
    QueryParam q3[] = {{"active:not", "true"}};
    assert_int_equal(search_total(s, q3, 1, &n), 1); /* b; d is deleted */
    QueryParam q4[] = {{"_count", "1"}};
    assert_int_equal(search_total(s, q4, 1, &n), 3);
    assert_int_equal(n, 1);
    store_close(s);
}

/* A batch of n organisations in one job. */
typedef struct Many {
    int n;
} Many;

static int txn_many(StoreTxn *t, void *vctx, Diag *d)
{
    Many *m = vctx;
    Arena a;
    arena_init(&a);
    int rc = 0;
    for (int i = 0; rc == 0 && i < m->n; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 "{\"resourceType\":\"Organization\",\"name\":\"Centre %d\",\"alias\":[\"CH %d\"]}",
                 i * 7919 % m->n, i);
        json_t *res = json_loads(text, 0, NULL);
        StoredResource out;
        StorePut p = {.type = "Organization",
                      .res = res,
                      .text = text,
                      .len = strlen(text),
                      .author = "test"};
        rc = store_txn_put(t, &a, &p, &out, d);
        json_decref(res);
    }
    arena_cleanup(&a);
    return rc;
}

static void test_query_timeout(void **state)
{
    (void)state;
    Store *s = open_store_timeout("timeout", 1);
    Many m = {6000};
    assert_int_equal(store_write(s, txn_many, &m, NULL), 0);
    /* a costly search (three substring scans, a two-key sort over every match) is abandoned
     * past the 1 ms limit instead of holding a reader */
    QueryParam q[] = {{"name:contains", "e"},
                      {"name:contains", "n"},
                      {"name:contains", "t"},
                      {"_sort", "-name,_id"}};
    SearchPlan *plan = NULL;
    assert_int_equal(fhir_search_parse(reg, "Organization", q, 4, true, &plan, NULL), 0);
    Arena a;
    arena_init(&a);
    StorePage pg;
    Diag d = {{0}, {0}};
    assert_int_equal(store_search(s, &a, plan, &pg, &d), ERR_TOO_LARGE);
    assert_non_null(strstr(d.msg, "trop coûteuse"));
    /* the connection is usable afterwards */
    StoredResource r;
    assert_int_equal(store_read(s, &a, "Organization", "nope", &r, NULL), ERR_NOT_FOUND);
    arena_cleanup(&a);
    search_plan_free(plan);
    store_close(s);
}

typedef struct AsyncDone {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls, ok, failed;
} AsyncDone;

static void async_done(void *vctx, int rc)
{
    AsyncDone *a = vctx;
    pthread_mutex_lock(&a->lock);
    a->calls++;
    if (rc == 0)
        a->ok++;
    else
        a->failed++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void test_async_and_drain(void **state)
{
    (void)state;
    Store *s = open_store("async");
    AsyncDone done = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    PutCtx c[20];
    Diag d[20];
    for (int i = 0; i < 20; i++) {
        char *id = xasprintf("a%d", i);
        c[i] = (PutCtx){.type = "Organization",
                        .id = id,
                        .text = "{\"resourceType\":\"Organization\"}",
                        .fail_after = i == 7};
        arena_init(&c[i].arena);
        memset(&d[i], 0, sizeof d[i]);
        assert_int_equal(store_write_async(s, txn_put, &c[i], &d[i], async_done, &done), 0);
    }
    /* drain: every queued job is committed and its caller told before it returns */
    store_drain(s);
    assert_int_equal(done.calls, 20);
    assert_int_equal(done.ok, 19);
    assert_int_equal(done.failed, 1);
    assert_non_null(strstr(d[7].msg, "refused"));
    int64_t n = 0;
    assert_int_equal(store_count(s, "Organization", &n, NULL), 0);
    assert_int_equal(n, 19);
    /* after the drain, writes are refused at once (and the callback is not called) */
    PutCtx late = {
        .type = "Organization", .id = "late", .text = "{\"resourceType\":\"Organization\"}"};
    arena_init(&late.arena);
    Diag ld = {{0}, {0}};
    assert_int_equal(store_write_async(s, txn_put, &late, &ld, async_done, &done), ERR_UNAVAILABLE);
    assert_int_equal(store_write(s, txn_put, &late, &ld), ERR_UNAVAILABLE);
    assert_int_equal(done.calls, 20);
    arena_cleanup(&late.arena);
    for (int i = 0; i < 20; i++) {
        free((char *)c[i].id);
        arena_cleanup(&c[i].arena);
    }
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_history_delete),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_search_paging),
        cmocka_unit_test(test_search_counts),
        cmocka_unit_test(test_query_timeout),
        cmocka_unit_test(test_async_and_drain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
