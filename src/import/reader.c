/*
 * reader.c — lines of a plain or gzip-compressed file (zlib reads both transparently).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "import/import_int.h"

#define CHUNK (256u << 10)

struct LineReader {
    gzFile gz;
    char *buf;    /* CHUNK + LINE_READER_MAX_LINE + 1 */
    size_t start; /* first unread byte */
    size_t end;   /* one past the last byte read */
    bool eof;
    long lineno;
    uint64_t size;
};

int line_reader_open(const char *path, LineReader **out, Diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return diag_set(d, ERR_IO, "%s est un dossier", path);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno ? errno : EIO));
    gzbuffer(gz, 128u << 10);
    LineReader *r = xcalloc(1, sizeof *r);
    r->gz = gz;
    r->buf = xmalloc(CHUNK + LINE_READER_MAX_LINE + 1);
    r->size = (uint64_t)st.st_size;
    *out = r;
    return 0;
}

/* Read more bytes after `end`. 1 when some were read, 0 at the end, ERR_IO on error. */
static int fill(LineReader *r, Diag *d)
{
    if (r->eof)
        return 0;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    size_t room = CHUNK + LINE_READER_MAX_LINE - r->end;
    if (room > CHUNK)
        room = CHUNK;
    int n = gzread(r->gz, r->buf + r->end, (unsigned)room);
    if (n < 0) {
        int err;
        const char *msg = gzerror(r->gz, &err);
        return diag_set(d, ERR_IO, "lecture impossible : %s", msg ? msg : "erreur");
    }
    if (n == 0) {
        int err = Z_OK;
        const char *msg = gzerror(r->gz, &err);
        r->eof = true;
        if (err != Z_OK) /* e.g. a truncated gzip stream */
            return diag_set(d, ERR_IO, "fichier compressé tronqué ou corrompu : %s", msg);
        return 0;
    }
    r->end += (size_t)n;
    return 1;
}

int line_reader_next(LineReader *r, char **line, size_t *len, Diag *d)
{
    size_t scanned = r->start;
    bool too_long = false;
    for (;;) {
        char *nl = memchr(r->buf + scanned, '\n', r->end - scanned);
        if (nl) {
            size_t at = (size_t)(nl - r->buf);
            r->lineno++;
            if (too_long) { /* the rest of an over-long line: skip it */
                r->start = at + 1;
                return diag_set(d, ERR_TOO_LARGE, "ligne trop longue (plus de %u octets)",
                                LINE_READER_MAX_LINE);
            }
            size_t n = at - r->start;
            if (n > 0 && r->buf[at - 1] == '\r')
                n--;
            *line = r->buf + r->start;
            (*line)[n] = '\0';
            *len = n;
            r->start = at + 1;
            return 1;
        }
        if (r->end - r->start >= LINE_READER_MAX_LINE) {
            too_long = true; /* drop what we have and look for the end of the line */
            r->start = r->end;
        }
        scanned = r->end;
        size_t off = scanned - r->start;
        int rc = fill(r, d);
        if (rc < 0)
            return rc;
        scanned = r->start + off;
        if (rc == 0) {
            if (r->end == r->start)
                return too_long ? (r->lineno++, diag_set(d, ERR_TOO_LARGE, "ligne trop longue"))
                                : 0;
            r->lineno++; /* a last line without its newline */
            size_t n = r->end - r->start;
            if (n > 0 && r->buf[r->end - 1] == '\r')
                n--;
            *line = r->buf + r->start;
            (*line)[n] = '\0';
            *len = n;
            r->start = r->end;
            if (too_long)
                return diag_set(d, ERR_TOO_LARGE, "ligne trop longue");
            return 1;
        }
    }
}

long line_reader_lineno(const LineReader *r)
{
    return r->lineno;
}

uint64_t line_reader_offset(const LineReader *r)
{
    long off = gzoffset(r->gz);
    return off > 0 ? (uint64_t)off : 0;
}

uint64_t line_reader_size(const LineReader *r)
{
    return r->size;
}

void line_reader_free(LineReader *r)
{
    if (!r)
        return;
    gzclose(r->gz);
    free(r->buf);
    free(r);
}
