/*
 * csv.c — splitting one delimited line into fields, and the two encodings French exports use.
 *
 * The etalab FINESS files are ISO-8859-1 historically but recent extracts are read as UTF-8 by
 * several tools: parsers decide per line (text_is_utf8) and convert what is not UTF-8.
 */
#include <string.h>

#include "import/import_int.h"

int csv_split(char *line, size_t len, char sep, bool quotes, CsvFields *out, Diag *d)
{
    int n = 0;
    size_t i = 0;
    for (;;) {
        if (n == CSV_MAX_FIELDS)
            return diag_set(d, ERR_TOO_LARGE, "plus de %d champs", CSV_MAX_FIELDS);
        size_t start = i;
        if (quotes && i < len && line[i] == '"') {
            /* Unquote in place: the text only shrinks, so the write position never passes
             * the read position and the fields before stay intact. */
            size_t w = i;
            i++;
            for (;;) {
                if (i >= len)
                    return diag_set(d, ERR_INVALID, "guillemet non fermé (champ %d)", n + 1);
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        line[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                line[w++] = line[i++];
            }
            /* Text after the closing quote (`"a"b;`) is kept as is, as most readers do. */
            while (i < len && line[i] != sep)
                line[w++] = line[i++];
            out->f[n].p = line + start;
            out->f[n].len = w - start;
        } else {
            while (i < len && line[i] != sep)
                i++;
            out->f[n].p = line + start;
            out->f[n].len = i - start;
        }
        n++;
        if (i >= len)
            break;
        i++; /* the separator: another field follows, possibly empty */
    }
    out->n = n;
    return 0;
}

bool text_is_utf8(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* beyond U+10FFFF */
        } else
            return false; /* continuation byte first, C0/C1 overlongs, F5..FF */
        if (n - i - 1 < need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* Windows-1252 0x80..0x9F; 0 where the code page defines nothing. */
static const unsigned short cp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

void text_latin1_to_utf8(const char *p, size_t n, Buf *out)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t run = 0; /* ASCII bytes pending, appended in one call */
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c < 0x80) {
            run++;
            continue;
        }
        if (run) {
            buf_add(out, p + i - run, run);
            run = 0;
        }
        if (c < 0xA0) {
            c = cp1252[c - 0x80];
            if (!c)
                c = 0xFFFD;
        }
        char u[3];
        if (c < 0x800) {
            u[0] = (char)(0xC0 | (c >> 6));
            u[1] = (char)(0x80 | (c & 0x3F));
            buf_add(out, u, 2);
        } else {
            u[0] = (char)(0xE0 | (c >> 12));
            u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            u[2] = (char)(0x80 | (c & 0x3F));
            buf_add(out, u, 3);
        }
    }
    if (run)
        buf_add(out, p + n - run, run);
}
