/* api_util: helpers shared by the handler files (api_int.h). */
#include "api/api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"

void api_fail(HttpRequest *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Diag d = {{0}, {0}};
    vsnprintf(d.msg, sizeof d.msg, fmt, ap);
    va_end(ap);
    http_fail(r, err, &d);
}

void api_respond_json(HttpRequest *r, json_t *v)
{
    size_t len = 0;
    char *text = json_dump_compact(v, &len);
    json_decref(v);
    http_respond(r, 200, "application/json; charset=utf-8", text, len);
}

const char *api_query(HttpRequest *r, const char *name)
{
    for (size_t i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].name, name) == 0)
            return r->query[i].value;
    return NULL;
}
