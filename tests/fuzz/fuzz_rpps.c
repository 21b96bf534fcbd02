/*
 * libFuzzer target for the RPPS extract parser (src/import/rpps.c), fed line by line as the
 * LineReader would (lines end at "\n", a "\r" before it is dropped).
 * Properties: every data line ends as exactly one PractitionerRole or one reject; every
 * resource has a valid FHIR id and serialises; every role points to a Practitioner emitted
 * before it; every Practitioner has at least one role.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "import/import_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = xmalloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    ImportSink *k = import_collector_new(false);
    RppsParser *p = rpps_parser_new(k, "fuzz");
    Diag d = {0};
    long lineno = 0, data_lines = 0;
    int rc = 0;
    char *s = copy, *end = copy + size;
    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *e = nl ? nl : end;
        size_t len = (size_t)(e - s);
        if (len && s[len - 1] == '\r')
            len--;
        s[len] = '\0';
        lineno++;
        if (lineno > 1 && len > 0)
            data_lines++;
        rc = rpps_parser_line(p, s, len, lineno, &d);
        if (rc)
            break;
        s = nl ? nl + 1 : end;
    }
    if (!rc)
        rc = rpps_parser_finish(p, &d);
    if (rc && rc != ERR_INVALID)
        abort(); /* a non-strict collector never stops the parser */
    if (rc == 0) {
        json_t *res = import_collector_resources(k);
        json_t *seen = json_object(); /* Practitioner id -> number of roles */
        long roles = 0;
        size_t i;
        json_t *r;
        json_array_foreach(res, i, r)
        {
            const char *type = json_string_value(json_object_get(r, "resourceType"));
            const char *id = json_string_value(json_object_get(r, "id"));
            if (!type || !id || !fhir_id_valid(id, strlen(id)))
                abort();
            char *text = json_dumps(r, JSON_COMPACT);
            if (!text)
                abort();
            free(text);
            if (strcmp(type, "Practitioner") == 0) {
                json_object_set_new(seen, id, json_integer(0));
            } else if (strcmp(type, "PractitionerRole") == 0) {
                roles++;
                json_t *ref = json_object_get(json_object_get(r, "practitioner"), "reference");
                const char *rs = json_string_value(ref);
                if (!rs || strncmp(rs, "Practitioner/", 13) != 0)
                    abort();
                json_t *n = json_object_get(seen, rs + 13);
                if (!n)
                    abort(); /* a role before (or without) its Practitioner */
                json_integer_set(n, json_integer_value(n) + 1);
            } else {
                abort();
            }
        }
        const char *key;
        json_t *n;
        json_object_foreach(seen, key, n)
        {
            if (json_integer_value(n) < 1)
                abort();
        }
        if (roles + (long)json_array_size(import_collector_rejects(k)) != data_lines)
            abort(); /* a line was lost or counted twice */
        json_decref(seen);
    }
    rpps_parser_free(p);
    import_collector_free(k);
    free(copy);
    return 0;
}
