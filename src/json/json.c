/* json: jansson helpers and the resource text rewriter. */
#include "json/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_parse(const char *p, size_t len, json_t **out, Diag *d)
{
    json_error_t e;
    json_t *v = json_loadb(p, len, JSON_REJECT_DUPLICATES, &e);
    if (!v)
        return diag_set(d, ERR_INVALID, "JSON invalide (ligne %d, colonne %d) : %s", e.line,
                        e.column, e.text);
    *out = v;
    return 0;
}

const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A real in the shortest of %.15g, %.16g, %.17g that reads back as the same double (15 digits
 * print 0.1 as 0.1; 17 keep every double exactly), with a decimal point or exponent so that it
 * stays a real. */
static int real_add(Buf *b, double x)
{
    char t[40];
    if (!isfinite(x))
        return buf_adds(b, "null");
    for (int p = 15; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, x);
        if (strtod(t, NULL) == x)
            break;
    }
    int rc = buf_adds(b, t);
    if (rc == 0 && !strpbrk(t, ".eEn"))
        rc = buf_adds(b, ".0");
    return rc;
}

static int dump(Buf *b, const json_t *v, int depth)
{
    if (depth > 512)
        return ERR_TOO_LARGE;
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        bool first = true;
        rc = buf_add(b, "{", 1);
        json_object_foreach((json_t *)v, k, m)
        {
            if (rc == 0 && !first)
                rc = buf_add(b, ",", 1);
            first = false;
            if (rc == 0)
                rc = buf_add_json_string(b, k, strlen(k));
            if (rc == 0)
                rc = buf_add(b, ":", 1);
            if (rc == 0)
                rc = dump(b, m, depth + 1);
        }
        return rc ? rc : buf_add(b, "}", 1);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        rc = buf_add(b, "[", 1);
        json_array_foreach(v, i, m)
        {
            if (rc == 0 && i)
                rc = buf_add(b, ",", 1);
            if (rc == 0)
                rc = dump(b, m, depth + 1);
        }
        return rc ? rc : buf_add(b, "]", 1);
    }
    case JSON_STRING: return buf_add_json_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return real_add(b, json_real_value(v));
    case JSON_TRUE: return buf_adds(b, "true");
    case JSON_FALSE: return buf_adds(b, "false");
    default: return buf_adds(b, "null");
    }
}

char *json_dump_compact(const json_t *v, size_t *len)
{
    Buf b;
    buf_init(&b, (size_t)1 << 30);
    if (!v || dump(&b, v, 0) != 0) {
        buf_cleanup(&b);
        return NULL;
    }
    size_t n;
    char *s = buf_steal(&b, &n);
    if (len)
        *len = n;
    return s;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* End (exclusive) of the string token starting at s[i] == '"'. */
static size_t string_end(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* End (exclusive) of the value starting at s[i]. */
static size_t value_end(const char *s, size_t len, size_t i)
{
    int depth = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            i = string_end(s, len, i) - 1;
            if (depth == 0)
                return i + 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* end of the enclosing container */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
            return i;
        }
    }
    return len;
}

int json_compact_text(const char *text, size_t len, Buf *out)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            i = string_end(text, len, i) - 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            if (buf_add(out, text + run, i - run) != 0)
                return ERR_TOO_LARGE;
            run = i + 1;
        }
    }
    return buf_add(out, text + run, len - run) != 0 ? ERR_TOO_LARGE : 0;
}

static bool key_is(const char *s, size_t klen, const char *name)
{
    return klen == strlen(name) + 2 && memcmp(s + 1, name, klen - 2) == 0;
}

int json_resource_rewrite(const char *text, size_t len, const char *type, const char *id,
                          const json_t *meta, Buf *out)
{
    size_t i = skip_ws(text, len, 0);
    if (i >= len || text[i] != '{')
        return ERR_INVALID;
    int rc = buf_adds(out, "{\"resourceType\":");
    rc |= buf_add_json_string(out, type, strlen(type));
    if (id) {
        rc |= buf_adds(out, ",\"id\":");
        rc |= buf_add_json_string(out, id, strlen(id));
    }
    if (meta) {
        char *m = json_dump_compact(meta, NULL);
        if (!m)
            return ERR_INVALID;
        rc |= buf_adds(out, ",\"meta\":");
        rc |= buf_adds(out, m);
        free(m);
    }
    i = skip_ws(text, len, i + 1);
    while (i < len && text[i] == '"') {
        size_t kend = string_end(text, len, i);
        size_t klen = kend - i;
        if (memchr(text + i, '\\', klen))
            return ERR_UNSUPPORTED; /* escaped key: caller re-serialises instead */
        size_t v = skip_ws(text, len, kend);
        if (v >= len || text[v] != ':')
            return ERR_INVALID;
        v = skip_ws(text, len, v + 1);
        size_t vend = value_end(text, len, v);
        if (!key_is(text + i, klen, "resourceType") && !key_is(text + i, klen, "id") &&
            !key_is(text + i, klen, "meta")) {
            rc |= buf_add(out, ",", 1);
            rc |= buf_add(out, text + i, klen);
            rc |= buf_add(out, ":", 1);
            if (json_compact_text(text + v, vend - v, out) != 0)
                rc = ERR_TOO_LARGE;
        }
        i = skip_ws(text, len, vend);
        if (i < len && text[i] == ',')
            i = skip_ws(text, len, i + 1);
    }
    if (i >= len || text[i] != '}')
        return ERR_INVALID;
    rc |= buf_add(out, "}", 1);
    return rc ? ERR_TOO_LARGE : 0;
}
