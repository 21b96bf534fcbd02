/*
 * libFuzzer target for the JSON reader and the resource text rewriter.
 * Property: whatever json_parse accepts as an object, json_resource_rewrite turns into text
 * that parses again, with the same members (id/meta/resourceType replaced).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    if (json_parse((const char *)data, size, &v, NULL) != 0)
        return 0;
    if (json_is_object(v)) {
        Buf out;
        buf_init(&out, 16u << 20);
        json_t *meta = json_pack("{ss}", "versionId", "1");
        int rc = json_resource_rewrite((const char *)data, size, "Location", "x", meta, &out);
        if (rc == 0) {
            json_t *back = NULL;
            if (json_parse(out.p, out.len, &back, NULL) != 0)
                abort(); /* the rewriter produced invalid JSON */
            const char *k;
            json_t *m;
            json_object_foreach(v, k, m)
            {
                if (strcmp(k, "id") && strcmp(k, "meta") && strcmp(k, "resourceType") &&
                    !json_equal(m, json_object_get(back, k)))
                    abort(); /* a member changed */
            }
            if (json_object_size(back) + 3 < json_object_size(v))
                abort();
            json_decref(back);
        } else if (rc != ERR_UNSUPPORTED && rc != ERR_TOO_LARGE) {
            abort(); /* a parsed object must be rewritable */
        }
        json_decref(meta);
        buf_cleanup(&out);
    }
    json_decref(v);
    return 0;
}
