/* libFuzzer: the access-profile filter (auth_visibility_apply) on any JSON resource.
 * Properties, for every profile 0..5 and every context: no crash; a hidden resource is left as
 * it was; a shown one only loses elements (every object member and array item that remains was
 * there), and a second pass changes nothing (the filter is idempotent); profile 1 changes
 * nothing. Input: 1 byte of context flags, then the resource's JSON text. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* Is `sub` obtained from `full` by removing object members and array items only? */
static int subset_of(const json_t *sub, const json_t *full)
{
    if (json_is_object(sub)) {
        if (!json_is_object(full))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sub, k, v)
        {
            json_t *f = json_object_get(full, k);
            if (!f || !subset_of(v, f))
                return 0;
        }
        return 1;
    }
    if (json_is_array(sub)) {
        if (!json_is_array(full))
            return 0;
        /* items keep their order: match greedily */
        size_t j = 0;
        for (size_t i = 0; i < json_array_size(sub); i++) {
            while (j < json_array_size(full) &&
                   !subset_of(json_array_get(sub, i), json_array_get(full, j)))
                j++;
            if (j++ >= json_array_size(full))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)sub, (json_t *)full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    AuthVisContext ctx = {
        .sensitive = data[0] & 1, .medico_social = data[0] & 2, .ville = data[0] & 4};
    json_t *orig = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!orig)
        return 0;
    for (int profile = -1; profile <= 6; profile++) {
        json_t *doc = json_deep_copy(orig);
        bool shown = auth_visibility_apply(doc, profile, (data[0] & 8) ? NULL : &ctx);
        if (!shown || profile == 1) {
            if (!json_equal(doc, orig))
                abort(); /* hidden (or profile 1): untouched */
        } else {
            if (!subset_of(doc, orig))
                abort(); /* only removals */
            json_t *again = json_deep_copy(doc);
            if (!auth_visibility_apply(again, profile, (data[0] & 8) ? NULL : &ctx) ||
                !json_equal(again, doc))
                abort(); /* idempotent */
            json_decref(again);
        }
        json_decref(doc);
    }
    json_decref(orig);
    return 0;
}
