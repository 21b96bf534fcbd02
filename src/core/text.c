/* core text folding for accent- and case-insensitive search (utf8proc). */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Ligatures that NFKD leaves alone but a French reader folds: œ, æ, ß. */
static const char *ligature(utf8proc_int32_t c)
{
    switch (c) {
    case 0x0153:
    case 0x0152: return "oe";
    case 0x00E6:
    case 0x00C6: return "ae";
    case 0x00DF: return "ss";
    default: return NULL;
    }
}

char *text_fold(const char *s, size_t len)
{
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &folded,
                                      UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE | UTF8PROC_CASEFOLD |
                                          UTF8PROC_STRIPMARK | UTF8PROC_IGNORE);
    if (n < 0)
        return NULL;
    Buf out;
    buf_init(&out, (size_t)n * 2 + 16);
    bool space = true; /* drop leading white space */
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(folded + i, n - i, &c);
        if (k <= 0)
            break;
        const char *lig = ligature(c);
        utf8proc_category_t cat = utf8proc_category(c);
        if (cat == UTF8PROC_CATEGORY_ZS || c == '\t' || c == '\n' || c == '\r') {
            if (!space)
                buf_add(&out, " ", 1);
            space = true;
        } else if (lig) {
            buf_adds(&out, lig);
            space = false;
        } else {
            buf_add(&out, folded + i, (size_t)k);
            space = false;
        }
        i += k;
    }
    free(folded);
    if (out.len && out.p[out.len - 1] == ' ')
        out.p[--out.len] = 0;
    return buf_steal(&out, NULL);
}
