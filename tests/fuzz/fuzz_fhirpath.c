/*
 * libFuzzer target for the FHIRPath subset and FHIRPath Patch.
 *
 * Input: an expression, a newline, then a JSON document. The expression is compiled and
 * evaluated on the document (or on a small Location when the document does not parse); it is
 * then used as the path of replace/delete/add/insert/move operations on a copy, and when the
 * document is itself a Parameters it is applied as a patch to a copy of the Location.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhirpath/fhirpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const location =
    "{\"resourceType\":\"Location\",\"id\":\"l\",\"name\":\"n\",\"alias\":[\"a\",\"b\"],"
    "\"identifier\":[{\"system\":\"urn:x\",\"value\":\"1\"}],\"extension\":[{\"url\":\"u\","
    "\"extension\":[{\"url\":\"nbCapacity\",\"valueInteger\":3},{\"url\":\"t\","
    "\"valueCodeableConcept\":{\"coding\":[{\"code\":\"02\"}]}}]}]}";

static void patch_with(json_t *doc, const char *type, const char *path, json_t *value)
{
    json_t *res = json_deep_copy(doc);
    json_t *op = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:i},{s:s,s:i},"
                           "{s:s,s:i}]}",
                           "name", "operation", "part", "name", "type", "valueCode", type, "name",
                           "path", "valueString", path, "name", "name", "valueString", "extension",
                           "name", "index", "valueInteger", 0, "name", "source", "valueInteger", 0,
                           "name", "destination", "valueInteger", 1);
    if (value && strcmp(type, "delete") != 0 && strcmp(type, "move") != 0)
        json_array_append_new(json_object_get(op, "part"),
                              json_pack("{s:s,s:O}", "name", "value", "value", value));
    if (strcmp(type, "add") != 0) /* name is only valid for add */
        json_array_remove(json_object_get(op, "part"), 2);
    json_t *params = json_pack("{s:s,s:[o]}", "resourceType", "Parameters", "parameter", op);
    Diag d;
    if (res && params)
        fhirpath_patch_apply(res, params, &d);
    json_decref(params);
    json_decref(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t elen = nl ? (size_t)(nl - data) : size;
    char *expr = malloc(elen + 1);
    memcpy(expr, data, elen);
    expr[elen] = '\0';
    json_t *loc = json_loads(location, 0, NULL);
    json_t *doc = nl ? json_loadb((const char *)nl + 1, size - elen - 1, 0, NULL) : NULL;
    json_t *root = doc ? doc : loc;

    FhirPath *fp = NULL;
    Diag d;
    if (fhirpath_compile(expr, &fp, &d) == 0) {
        FpResult r = {0};
        if (fhirpath_eval(fp, root, &r, &d) == 0) {
            for (size_t i = 0; i < r.n; i++) /* touch every item */
                if (r.items[i].owner && r.items[i].key)
                    (void)json_object_get(r.items[i].owner, r.items[i].key);
        }
        fp_result_cleanup(&r);
        fhirpath_free(fp);
        json_t *v = json_integer(7);
        static const char *const types[] = {"replace", "delete", "add", "insert", "move"};
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            patch_with(root, types[i], expr, v);
        json_decref(v);
    }
    if (doc && json_is_object(doc)) {
        json_t *copy = json_deep_copy(loc);
        fhirpath_patch_apply(copy, doc, &d);
        json_decref(copy);
    }
    json_decref(doc);
    json_decref(loc);
    free(expr);
    return 0;
}
