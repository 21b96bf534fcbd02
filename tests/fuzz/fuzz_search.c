/*
 * libFuzzer target for the search-query parser and the SQL it compiles to.
 * Input: a query string "a=b&c=d..." (percent-decoding is not applied: the bytes are the
 * decoded values), for a resource type chosen by the first byte. The plan is executed on a
 * small store seeded with the demo region, so the SQL builder and keyset cursors are exercised.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json/json.h"
#include "store/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FhirRegistry *reg;
static Store *store;

static int seed(StoreTxn *t, void *ctx, Diag *d)
{
    json_t *bundle = ctx, *e;
    size_t i;
    Arena a;
    arena_init(&a);
    json_array_foreach(json_object_get(bundle, "entry"), i, e)
    {
        json_t *res = json_object_get(e, "resource");
        StoredResource out;
        StorePut p = {.type = json_str(res, "resourceType"),
                      .id = json_str(res, "id"),
                      .res = res,
                      .author = "fuzz"};
        if (store_txn_put(t, &a, &p, &out, d) != 0)
            abort();
    }
    arena_cleanup(&a);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *src = getenv("ROR_SOURCE_DIR") ? getenv("ROR_SOURCE_DIR") : ROR_SOURCE_DIR;
    char path[1024];
    Diag d = {{0}, {0}};
    reg = fhir_registry_new();
    snprintf(path, sizeof path, "%s/data/searchparams/core.json", src);
    int rc = fhir_registry_load_file(reg, path, &d);
    snprintf(path, sizeof path, "%s/data/searchparams/ror", src);
    rc |= fhir_registry_load_dir(reg, path, &d);
    snprintf(path, sizeof path, "%s/data/searchparams/corrections.json", src);
    rc |= fhir_registry_finish(reg, path, &d);
    char dir[] = "/tmp/ror-fuzz-search-XXXXXX";
    if (rc != 0 || !mkdtemp(dir)) {
        fprintf(stderr, "fuzz_search: init failed: %s\n", d.msg);
        abort();
    }
    snprintf(path, sizeof path, "%s/ror.db", dir);
    StoreOptions o = {.path = path, .reg = reg, .readers = 1};
    if (store_open(&o, &store, &d) != 0)
        abort();
    snprintf(path, sizeof path, "%s/data/demo/demo-region.json", src);
    json_t *bundle = json_load_file(path, 0, NULL);
    if (!bundle || store_write(store, seed, bundle, &d) != 0)
        abort();
    json_decref(bundle);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *types[] = {"Location", "HealthcareService", "Organization",
                                  "PractitionerRole"};
    if (size < 1 || size > 4096)
        return 0;
    const char *type = types[data[0] % 4];
    char *q = malloc(size);
    memcpy(q, data + 1, size - 1);
    q[size - 1] = 0;
    QueryParam params[64];
    size_t n = 0;
    for (char *tok = q, *next; tok && n < 64; tok = next) {
        next = strchr(tok, '&');
        if (next)
            *next++ = 0;
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = 0;
        params[n].name = tok;
        params[n].value = eq ? eq : "";
        n++;
    }
    SearchPlan *plan = NULL;
    if (fhir_search_parse(reg, type, params, n, data[0] & 0x80, &plan, NULL) == 0) {
        if (plan->count > 20)
            plan->count = 20;
        Arena a;
        arena_init(&a);
        StorePage page;
        int rc = store_search(store, &a, plan, &page, NULL);
        if (rc != 0 && rc != ERR_INVALID && rc != ERR_TOO_LARGE)
            abort(); /* a parsed plan must compile to valid SQL */
        arena_cleanup(&a);
        search_plan_free(plan);
    }
    free(q);
    return 0;
}
