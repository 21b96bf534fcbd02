/*
 * libFuzzer target for the etalab FINESS parser: bytes -> lines -> csv_split -> row mapping,
 * as import_parse_finess does after its LineReader.
 * Properties: no crash or sanitizer report; every emitted resource is an object with a valid
 * id that passes the server's structure/profile checks and serialises; positions are finite
 * WGS84; every reject names its line. (Byte-identical output for the same input is checked
 * by the unit tests: a second parse here would halve the speed.)
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "import/import.h"
#include "import/import_int.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Projector *proj; /* created once: building PROJ objects is slow */

static char *parse(const uint8_t *data, size_t size)
{
    ImportSink *k = import_collector_new(false);
    FinessParser *p = finess_parser_new(k, "fuzz", proj);
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    size_t start = 0;
    long lineno = 0;
    int rc = 0;
    while (start < size && rc == 0) {
        char *nl = memchr(copy + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - copy) : size;
        size_t len = end - start;
        if (len > 0 && copy[start + len - 1] == '\r')
            len--;
        rc = finess_parser_line(p, copy + start, len, ++lineno, NULL);
        start = end + 1;
    }
    if (rc == 0)
        rc = finess_parser_finish(p, size > 0 && data[size - 1] != '\n', NULL);
    if (rc != 0)
        abort(); /* a collector never stops the parse, and PROJ is available */
    finess_parser_free(p);
    free(copy);

    json_t *r;
    size_t i;
    json_array_foreach(import_collector_resources(k), i, r)
    {
        const char *type = json_str(r, "resourceType"), *id = json_str(r, "id");
        if (!type || !id || !fhir_id_valid(id, strlen(id)))
            abort();
        if (fhir_resource_check(type, r, NULL) != 0)
            abort();
        json_t *pos = json_object_get(r, "position");
        if (pos) {
            double lat = json_real_value(json_object_get(pos, "latitude"));
            double lon = json_real_value(json_object_get(pos, "longitude"));
            if (!isfinite(lat) || !isfinite(lon) || fabs(lat) > 90 || fabs(lon) > 180)
                abort();
        }
    }
    json_array_foreach(import_collector_rejects(k), i, r)
    {
        if (strncmp(json_string_value(r), "fuzz:", 5) != 0)
            abort();
    }
    char *out = json_dumps(import_collector_resources(k), JSON_SORT_KEYS | JSON_COMPACT);
    if (!out)
        abort(); /* a string that is not UTF-8 would make the dump fail */
    import_collector_free(k);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!proj && projector_new(&proj, NULL) != 0)
        abort();
    free(parse(data, size));
    return 0;
}
