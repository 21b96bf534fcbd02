/*
 * json — thin helpers over jansson: capped parsing with French diagnostics, typed member
 * access, compact dumping, and the resource text rewriter that keeps a client's original
 * member text (FHIR decimals such as 1.50 survive) while the server sets id and meta.
 *
 * Threading: all functions are reentrant.
 */
#ifndef ROR_JSON_H
#define ROR_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "core/core.h"

/** Parse `len` bytes of UTF-8 JSON. Duplicate keys, NUL bytes and trailing garbage are errors.
 *  ERR_INVALID with line/column in d. *out is a new reference. */
int json_parse(const char *p, size_t len, json_t **out, Diag *d);

/** Member `key` of `obj` as a string, or NULL when absent or not a string. Borrowed. */
const char *json_str(const json_t *obj, const char *key);

/** Compact dump (no spaces, keys in insertion order, each real in the shortest form that reads
 *  back as the same double: 0.1 stays 0.1, 2.1234567890123456 keeps its digits). Caller frees.
 *  NULL only if the value cannot be encoded (nesting deeper than 512). */
char *json_dump_compact(const json_t *v, size_t *len);

/**
 * Write a FHIR resource's text with "resourceType", "id" and "meta" first, then every other
 * top-level member of the original `text` byte for byte except for insignificant white space
 * (removed). `meta` replaces the original meta; `id` may be NULL to drop it.
 * `text` must be a JSON object that json_parse accepted. Appends to `out`.
 * ERR_INVALID if the text is not an object; ERR_TOO_LARGE if `out` is full.
 */
int json_resource_rewrite(const char *text, size_t len, const char *type, const char *id,
                          const json_t *meta, Buf *out);

/** Append `text` to out with insignificant white space removed. `text` must be valid JSON. */
int json_compact_text(const char *text, size_t len, Buf *out);

#endif
