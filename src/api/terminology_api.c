/* api terminology: CodeSystem/$lookup, ValueSet/$validate-code, CodeSystem/$validate-code
 * (FHIR R4 operations, GET with query parameters or POST with a Parameters resource) and the
 * communes completion used by the address forms (GET /communes?q=&limit=). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "json/json.h"
#include "terminology/terminology.h"

#define FHIR_JSON "application/fhir+json; charset=utf-8"
#define COMMUNES_LIMIT_DEFAULT 10
#define COMMUNES_LIMIT_MAX 50

void terminology_api_routes(HttpServer *s, Terminology *t, const char *base);

/* The inputs of an operation, from the query string and (POST) a Parameters body. Strings are
 * borrowed from the request or from `body`, which the caller releases. */
typedef struct OpParams {
    const char *url, *version, *system, *code, *display;
    json_t *coding;   /* valueCoding */
    json_t *codeable; /* valueCodeableConcept */
    json_t *body;     /* the parsed Parameters (owned) */
} OpParams;

static void fail(HttpRequest *r, int err, const char *msg)
{
    Diag d = {{0}, {0}};
    snprintf(d.msg, sizeof d.msg, "%s", msg);
    http_fail(r, err, &d);
}

static void set_param(OpParams *p, const char *name, const char *value)
{
    if (!value)
        return;
    if (strcmp(name, "url") == 0)
        p->url = value;
    else if (strcmp(name, "version") == 0 || strcmp(name, "valueSetVersion") == 0)
        p->version = value;
    else if (strcmp(name, "system") == 0)
        p->system = value;
    else if (strcmp(name, "code") == 0)
        p->code = value;
    else if (strcmp(name, "display") == 0)
        p->display = value;
}

/* The string value of a Parameters.parameter (valueUri, valueCode, valueString...). */
static const char *param_string(json_t *param)
{
    const char *key;
    json_t *v;
    json_object_foreach(param, key, v)
    {
        if (strncmp(key, "value", 5) == 0 && json_is_string(v))
            return json_string_value(v);
    }
    return NULL;
}

/* Gather the inputs; false when an error has been answered. */
static bool params_or_respond(HttpRequest *r, OpParams *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < r->nquery; i++)
        set_param(p, r->query[i].name, r->query[i].value);
    if (r->method != HTTP_POST || r->body_len == 0)
        return true;
    const char *ct = http_header(r, "Content-Type");
    if (!ct || (strncasecmp(ct, "application/fhir+json", 21) != 0 &&
                strncasecmp(ct, "application/json", 16) != 0)) {
        fail(r, ERR_MEDIA_TYPE, "une ressource Parameters (application/fhir+json) est attendue");
        return false;
    }
    Diag d = {{0}, {0}};
    if (json_parse(r->body, r->body_len, &p->body, &d) != 0) {
        http_fail(r, ERR_INVALID, &d);
        return false;
    }
    if (!json_str(p->body, "resourceType") ||
        strcmp(json_str(p->body, "resourceType"), "Parameters") != 0) {
        json_decref(p->body);
        p->body = NULL;
        fail(r, ERR_INVALID, "une ressource Parameters est attendue");
        return false;
    }
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(p->body, "parameter"), i, e)
    {
        const char *name = json_str(e, "name");
        if (!name)
            continue;
        if (strcmp(name, "coding") == 0)
            p->coding = json_object_get(e, "valueCoding");
        else if (strcmp(name, "codeableConcept") == 0)
            p->codeable = json_object_get(e, "valueCodeableConcept");
        else
            set_param(p, name, param_string(e));
    }
    return true;
}

static void params_from_coding(OpParams *p, json_t *coding)
{
    if (json_str(coding, "system"))
        p->system = json_str(coding, "system");
    if (json_str(coding, "code"))
        p->code = json_str(coding, "code");
    if (json_str(coding, "display"))
        p->display = json_str(coding, "display");
}

/* ---------------------------------------------------------------- Parameters text */

static void param_open(Buf *b, bool *first, const char *name)
{
    buf_adds(b, *first ? "{\"name\":" : ",{\"name\":");
    *first = false;
    buf_add_json_string(b, name, strlen(name));
}

static void param_str(Buf *b, bool *first, const char *name, const char *type, const char *v)
{
    if (!v)
        return;
    param_open(b, first, name);
    buf_printf(b, ",\"%s\":", type);
    buf_add_json_string(b, v, strlen(v));
    buf_adds(b, "}");
}

static void respond_params(HttpRequest *r, Buf *b)
{
    buf_adds(b, "]}");
    if (b->overflow) {
        buf_cleanup(b);
        fail(r, ERR_TOO_LARGE, "réponse trop volumineuse");
        return;
    }
    size_t len;
    char *p = buf_steal(b, &len);
    http_respond(r, 200, FHIR_JSON, p, len);
}

/* ---------------------------------------------------------------- $lookup */

static void h_lookup(HttpRequest *r, void *ctx)
{
    Terminology *t = ctx;
    OpParams p;
    if (!params_or_respond(r, &p))
        return;
    if (p.coding)
        params_from_coding(&p, p.coding);
    if (!p.system || !p.code) {
        json_decref(p.body);
        fail(r, ERR_INVALID, "$lookup : les paramètres system et code sont obligatoires");
        return;
    }
    TermConcept c;
    Diag d = {{0}, {0}};
    int rc = terminology_lookup(t, &r->arena, p.system, p.version, p.code, &c, &d);
    json_decref(p.body);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    Buf b;
    buf_init(&b, 16u << 20);
    bool first = true;
    buf_adds(&b, "{\"resourceType\":\"Parameters\",\"parameter\":[");
    param_str(&b, &first, "name", "valueString", c.name);
    param_str(&b, &first, "version", "valueString", c.version);
    param_str(&b, &first, "display", "valueString", c.display);
    for (size_t i = 0; i < c.ndesignations; i++) {
        const TermDesignation *x = &c.designations[i];
        param_open(&b, &first, "designation");
        buf_adds(&b, ",\"part\":[");
        bool pf = true;
        param_str(&b, &pf, "language", "valueCode", x->language);
        if (x->use_code) {
            param_open(&b, &pf, "use");
            buf_adds(&b, ",\"valueCoding\":{\"code\":");
            buf_add_json_string(&b, x->use_code, strlen(x->use_code));
            if (x->use_system) {
                buf_adds(&b, ",\"system\":");
                buf_add_json_string(&b, x->use_system, strlen(x->use_system));
            }
            if (x->use_display) {
                buf_adds(&b, ",\"display\":");
                buf_add_json_string(&b, x->use_display, strlen(x->use_display));
            }
            buf_adds(&b, "}}");
        }
        param_str(&b, &pf, "value", "valueString", x->value);
        buf_adds(&b, "]}");
    }
    for (size_t i = 0; i < c.nproperties; i++) {
        const TermProperty *x = &c.properties[i];
        param_open(&b, &first, "property");
        buf_adds(&b, ",\"part\":[");
        bool pf = true;
        param_str(&b, &pf, "code", "valueCode", x->code);
        param_open(&b, &pf, "value");
        buf_printf(&b, ",\"%s\":%s}]}", x->type, x->value);
    }
    respond_params(r, &b);
}

/* ---------------------------------------------------------------- $validate-code */

static void respond_validation(HttpRequest *r, const TermValidation *v)
{
    Buf b;
    buf_init(&b, 1 << 20);
    bool first = true;
    buf_adds(&b, "{\"resourceType\":\"Parameters\",\"parameter\":[");
    param_open(&b, &first, "result");
    buf_adds(&b, v->result ? ",\"valueBoolean\":true}" : ",\"valueBoolean\":false}");
    param_str(&b, &first, "message", "valueString", v->message);
    param_str(&b, &first, "display", "valueString", v->display);
    respond_params(r, &b);
}

/* One validation; ERR_* answered by the caller. */
static int validate_one(Terminology *t, HttpRequest *r, bool vs, const OpParams *p,
                        TermValidation *v, Diag *d)
{
    if (vs)
        return terminology_validate_vs(t, &r->arena, p->url, p->version, p->system, p->code,
                                       p->display, v, d);
    /* CodeSystem/$validate-code names the code system by url (system accepted too) */
    return terminology_validate_cs(t, &r->arena, p->url ? p->url : p->system, p->version, p->code,
                                   p->display, v, d);
}

static void validate_code(HttpRequest *r, Terminology *t, bool vs)
{
    OpParams p;
    if (!params_or_respond(r, &p))
        return;
    if (p.coding)
        params_from_coding(&p, p.coding);
    json_t *codings = p.codeable ? json_object_get(p.codeable, "coding") : NULL;
    if ((vs && !p.url) || (!vs && !p.url && !p.system) ||
        (!p.code && json_array_size(codings) == 0)) {
        json_decref(p.body);
        fail(r, ERR_INVALID,
             vs ? "ValueSet/$validate-code : les paramètres url et code (ou coding, "
                  "codeableConcept) sont obligatoires"
                : "CodeSystem/$validate-code : les paramètres url et code (ou coding) sont "
                  "obligatoires");
        return;
    }
    TermValidation v = {0};
    Diag d = {{0}, {0}};
    int rc = 0;
    if (json_array_size(codings)) { /* valid when one of its codings is */
        json_t *c;
        size_t i;
        json_array_foreach(codings, i, c)
        {
            OpParams one = p;
            one.system = one.code = one.display = NULL;
            params_from_coding(&one, c);
            if (!one.code)
                continue;
            rc = validate_one(t, r, vs, &one, &v, &d);
            if (rc != 0 || v.result)
                break;
        }
        if (rc == 0 && !v.result && !v.message)
            v.message = "aucun code à valider dans codeableConcept";
    } else {
        rc = validate_one(t, r, vs, &p, &v, &d);
    }
    json_decref(p.body);
    if (rc != 0)
        http_fail(r, rc, &d);
    else
        respond_validation(r, &v);
}

static void h_validate_vs(HttpRequest *r, void *ctx)
{
    validate_code(r, ctx, true);
}

static void h_validate_cs(HttpRequest *r, void *ctx)
{
    validate_code(r, ctx, false);
}

/* ---------------------------------------------------------------- communes */

static void json_str_member(Buf *b, const char *name, const char *v, bool comma)
{
    buf_printf(b, "%s\"%s\":", comma ? "," : "", name);
    if (v)
        buf_add_json_string(b, v, strlen(v));
    else
        buf_adds(b, "null");
}

static void h_communes(HttpRequest *r, void *ctx)
{
    Terminology *t = ctx;
    const char *q = NULL, *lim = NULL;
    for (size_t i = 0; i < r->nquery; i++) {
        if (strcmp(r->query[i].name, "q") == 0)
            q = r->query[i].value;
        else if (strcmp(r->query[i].name, "limit") == 0)
            lim = r->query[i].value;
    }
    if (!q) {
        fail(r, ERR_INVALID, "le paramètre q (début du nom ou du code postal) est obligatoire");
        return;
    }
    long limit = COMMUNES_LIMIT_DEFAULT;
    if (lim) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1) {
            fail(r, ERR_INVALID, "limit doit être un entier positif");
            return;
        }
        if (limit > COMMUNES_LIMIT_MAX)
            limit = COMMUNES_LIMIT_MAX;
    }
    TermCommune out[COMMUNES_LIMIT_MAX];
    size_t n = terminology_communes_complete(t, &r->arena, q, out, (size_t)limit);
    Buf b;
    buf_init(&b, 1 << 20);
    buf_adds(&b, "[");
    for (size_t i = 0; i < n; i++) {
        const TermCommune *c = &out[i];
        buf_adds(&b, i ? ",{" : "{");
        json_str_member(&b, "code", c->code, false);
        json_str_member(&b, "nom", c->name, true);
        buf_adds(&b, ",\"codesPostaux\":[");
        for (size_t k = 0; k < c->npostal; k++) {
            if (k)
                buf_adds(&b, ",");
            buf_add_json_string(&b, c->postal_codes[k], strlen(c->postal_codes[k]));
        }
        buf_adds(&b, "]");
        json_str_member(&b, "departement", c->departement, true);
        if (c->has_position)
            buf_printf(&b, ",\"lat\":%.15g,\"lon\":%.15g", c->lat, c->lon);
        else
            buf_adds(&b, ",\"lat\":null,\"lon\":null");
        buf_adds(&b, "}");
    }
    buf_adds(&b, "]");
    size_t len;
    char *body = buf_steal(&b, &len);
    http_respond(r, 200, "application/json; charset=utf-8", body, len);
}

void terminology_api_routes(HttpServer *s, Terminology *t, const char *base)
{
    char p[256];
    snprintf(p, sizeof p, "%s/CodeSystem/$lookup", base);
    http_route(s, HTTP_GET | HTTP_POST, p, h_lookup, t);
    snprintf(p, sizeof p, "%s/CodeSystem/$validate-code", base);
    http_route(s, HTTP_GET | HTTP_POST, p, h_validate_cs, t);
    snprintf(p, sizeof p, "%s/ValueSet/$validate-code", base);
    http_route(s, HTTP_GET | HTTP_POST, p, h_validate_vs, t);
    http_route(s, HTTP_GET, "/communes", h_communes, t);
}
