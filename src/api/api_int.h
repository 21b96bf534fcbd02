/*
 * api_int.h — helpers shared by the handler files of the api module (private to it).
 */
#ifndef ROR_API_INT_H
#define ROR_API_INT_H

#include <jansson.h>

#include "http/http.h"

/** Answer an error: ERR_* with a French message (an OperationOutcome, through http_fail). */
void api_fail(HttpRequest *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Answer 200 with `v` as compact JSON (application/json); takes the reference to v. */
void api_respond_json(HttpRequest *r, json_t *v);
/** The value of query parameter `name` (the first one), or NULL. */
const char *api_query(HttpRequest *r, const char *name);

#endif
