/*
 * ndjson.c — FHIR resources from NDJSON files, Bundles or single-resource JSON files, plain or
 * gzip-compressed, and from tar archives (.tar, .tar.gz) holding such files.
 *
 * A file is NDJSON when its first non-empty line is a complete JSON object; otherwise it is one
 * JSON document (a resource, a Bundle, or an array of resources). A Bundle, wherever it appears,
 * is expanded into its entries' resources: a Bundle is never stored as such by an import.
 * NDJSON lines are handed to the sink as text, so that parsing happens on its workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "import/import.h"
#include "import/import_int.h"
#include "json/json.h"

#define DOC_MAX (1024u << 20) /* a JSON document or tar member read whole: 1 GiB at most */
#define BLOCK 512

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* Emit the resources of a parsed JSON value: a resource, a Bundle's entries, or an array. */
static int emit_value(ImportSink *k, json_t *v, const char *file, long line)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            int rc = emit_value(k, json_incref(e), file, (long)i + 1);
            if (rc != 0) {
                json_decref(v);
                return rc;
            }
        }
        json_decref(v);
        return 0;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return import_reject(k, file, line, "une ressource FHIR (objet JSON) est attendue");
    }
    const char *rt = json_string_value(json_object_get(v, "resourceType"));
    if (rt && strcmp(rt, "Bundle") == 0) {
        json_t *entries = json_object_get(v, "entry");
        size_t i;
        json_t *e;
        int rc = 0;
        json_array_foreach(entries, i, e)
        {
            json_t *res = json_object_get(e, "resource");
            json_t *req = json_object_get(e, "request");
            const char *method = json_string_value(json_object_get(req, "method"));
            if (method && strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0) {
                rc = import_reject(k, file, line, "Bundle, entrée %zu : requête %s non importable",
                                   i + 1, method);
            } else if (!json_is_object(res)) {
                rc = import_reject(k, file, line, "Bundle, entrée %zu : pas de ressource", i + 1);
            } else {
                rc = import_emit(k, json_incref(res), file, line);
            }
            if (rc != 0)
                break;
        }
        json_decref(v);
        return rc;
    }
    return import_emit(k, v, file, line);
}

/* One NDJSON line: as text to the sink, unless it may be a Bundle (parsed here, expanded). */
static int emit_line(ImportSink *k, const char *p, size_t n, const char *file, long line)
{
    if (blank(p, n))
        return 0;
    if (memmem(p, n, "\"Bundle\"", 8)) {
        Diag d = {0};
        json_t *v = NULL;
        if (json_parse(p, n, &v, &d) != 0)
            return import_reject(k, file, line, "JSON invalide : %s", d.msg);
        return emit_value(k, v, file, line);
    }
    return import_emit_text(k, p, n, file, line);
}

/* A whole JSON document in memory. */
static int emit_document(ImportSink *k, const char *p, size_t n, const char *file)
{
    Diag d = {0};
    json_t *v = NULL;
    if (json_parse(p, n, &v, &d) != 0)
        return import_reject(k, file, 1, "JSON invalide : %s", d.msg);
    return emit_value(k, v, file, 1);
}

/* Text held in memory (a tar member): NDJSON or one document. */
static int emit_buffer(ImportSink *k, char *p, size_t n, const char *file)
{
    const char *first = p;
    size_t left = n;
    while (left > 0) { /* the first non-empty line decides */
        const char *nl = memchr(first, '\n', left);
        size_t len = nl ? (size_t)(nl - first) : left;
        if (!blank(first, len))
            break;
        left -= nl ? len + 1 : len;
        first = nl ? nl + 1 : first + len;
    }
    if (left == 0)
        return 0;
    const char *nl = memchr(first, '\n', left);
    size_t len = nl ? (size_t)(nl - first) : left;
    json_t *v = NULL;
    if (json_parse(first, len, &v, NULL) != 0)
        return emit_document(k, p, n, file);
    json_decref(v);
    long line = 0;
    for (size_t at = 0; at < n;) {
        char *e = memchr(p + at, '\n', n - at);
        size_t l = e ? (size_t)(e - (p + at)) : n - at;
        line++;
        int rc = emit_line(k, p + at, l, file, line);
        if (rc != 0)
            return rc;
        at += l + 1;
        if (line % 4096 == 0)
            import_progress(k, at, n);
    }
    return 0;
}

/* ------------------------------------------------------------------ tar */

static bool tar_octal(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    bool any = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v > (UINT64_MAX >> 3))
            return false;
        v = v * 8 + (uint64_t)(p[i] - '0');
        any = true;
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0')
            return false;
    *out = v;
    return any;
}

static int read_full(gzFile gz, void *p, size_t n, Diag *d)
{
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(gz, (char *)p + got, chunk);
        if (r < 0) {
            int err;
            return diag_set(d, ERR_IO, "lecture impossible : %s", gzerror(gz, &err));
        }
        if (r == 0)
            return diag_set(d, ERR_IO, "archive tronquée");
        got += (size_t)r;
    }
    return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int parse_tar(ImportSink *k, gzFile gz, const char *path, uint64_t size, Diag *d)
{
    char hdr[BLOCK];
    char *longname = NULL;
    int rc = 0, zeros = 0;
    for (;;) {
        int r = gzread(gz, hdr, BLOCK);
        if (r == 0 && zeros > 0)
            break; /* some writers stop after one zero block */
        if (r != BLOCK) {
            int err;
            rc = diag_set(d, ERR_IO, "%s : archive tronquée%s%s", path, r < 0 ? " : " : "",
                          r < 0 ? gzerror(gz, &err) : "");
            break;
        }
        bool allzero = true;
        for (int i = 0; i < BLOCK && allzero; i++)
            allzero = hdr[i] == '\0';
        if (allzero) {
            if (++zeros == 2)
                break;
            continue;
        }
        zeros = 0;
        uint64_t len;
        if (!tar_octal(hdr + 124, 12, &len) || len > DOC_MAX) {
            rc = diag_set(d, ERR_INVALID,
                          "%s : en-tête d'archive tar illisible ou membre trop "
                          "volumineux",
                          path);
            break;
        }
        char type = hdr[156];
        char name[256 + 2];
        if (longname) {
            snprintf(name, sizeof name, "%s", longname);
            free(longname);
            longname = NULL;
        } else if (memcmp(hdr + 257, "ustar", 5) == 0 && hdr[345]) {
            snprintf(name, sizeof name, "%.155s/%.100s", hdr + 345, hdr);
        } else {
            snprintf(name, sizeof name, "%.100s", hdr);
        }
        uint64_t padded = (len + BLOCK - 1) / BLOCK * BLOCK;
        char *data = xmalloc(padded + 1);
        if ((rc = read_full(gz, data, (size_t)padded, d)) != 0) {
            free(data);
            diag_set(d, ERR_IO, "%s : archive tronquée (membre %s)", path, name);
            break;
        }
        data[len] = '\0';
        if (type == 'L') { /* GNU long name of the next member */
            longname = xstrndup(data, (size_t)len);
        } else if (type == '0' || type == '\0') {
            char *where = xasprintf("%s:%s", path, name);
            if (has_suffix(name, ".gz"))
                import_warn(k, where, 0, "membre compressé non pris en charge dans une archive");
            else
                rc = emit_buffer(k, data, (size_t)len, where);
            free(where);
        }
        free(data);
        long off = gzoffset(gz);
        import_progress(k, off > 0 ? (uint64_t)off : 0, size);
        if (rc != 0)
            break;
    }
    free(longname);
    return rc;
}

/* ------------------------------------------------------------------ files */

static int parse_stream(ImportSink *k, const char *path, Diag *d)
{
    LineReader *r;
    int rc = line_reader_open(path, &r, d);
    if (rc != 0)
        return rc;
    char *line;
    size_t len;
    bool decided = false;
    while ((rc = line_reader_next(r, &line, &len, d)) != 0) {
        long no = line_reader_lineno(r);
        if (rc == ERR_TOO_LARGE) {
            rc = import_reject(k, path, no, "%s", d ? d->msg : "ligne trop longue");
            if (rc != 0)
                break;
            continue;
        }
        if (rc < 0)
            break;
        if (!decided) {
            if (blank(line, len))
                continue;
            json_t *v = NULL;
            if (json_parse(line, len, &v, NULL) != 0) { /* not NDJSON: one document */
                line_reader_free(r);
                r = NULL;
                break;
            }
            json_decref(v);
            decided = true;
        }
        if ((rc = emit_line(k, line, len, path, no)) != 0)
            break;
        if (no % 4096 == 0)
            import_progress(k, line_reader_offset(r), line_reader_size(r));
    }
    if (r) {
        if (rc == ERR_IO) { /* the reader's own failure (a sink's stop is passed on as is) */
            char msg[sizeof d->msg];
            snprintf(msg, sizeof msg, "%s", d ? d->msg : "");
            diag_set(d, rc, "%s:%ld : %s", path, line_reader_lineno(r), msg);
        }
        line_reader_free(r);
        return rc < 0 ? rc : 0;
    }
    /* one JSON document: read it whole */
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno ? errno : EIO));
    Buf b;
    buf_init(&b, DOC_MAX);
    char chunk[1 << 16];
    int n;
    rc = 0;
    while ((n = gzread(gz, chunk, sizeof chunk)) > 0)
        if (buf_add(&b, chunk, (size_t)n) != 0) {
            rc = diag_set(d, ERR_TOO_LARGE, "%s : document JSON trop volumineux", path);
            break;
        }
    if (rc == 0 && n < 0) {
        int err;
        rc = diag_set(d, ERR_IO, "%s : %s", path, gzerror(gz, &err));
    }
    gzclose(gz);
    if (rc == 0)
        rc = emit_document(k, b.p ? b.p : "", b.len, path);
    buf_cleanup(&b);
    return rc;
}

int import_parse_ndjson(ImportSink *k, const char *path, Diag *d)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno ? errno : EIO));
    char hdr[BLOCK];
    int n = gzread(gz, hdr, BLOCK);
    if (n == BLOCK && memcmp(hdr + 257, "ustar", 5) == 0) {
        gzrewind(gz);
        FILE *f = fopen(path, "rb");
        uint64_t size = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            size = sz > 0 ? (uint64_t)sz : 0;
            fclose(f);
        }
        int rc = parse_tar(k, gz, path, size, d);
        gzclose(gz);
        return rc;
    }
    gzclose(gz);
    return parse_stream(k, path, d);
}
