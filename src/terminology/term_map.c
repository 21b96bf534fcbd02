/* terminology: a string-keyed hash map and word folding, shared by the other files. */
#include <stdlib.h>
#include <string.h>

#include "terminology/term_int.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void term_map_init(TermMap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    m->cap = cap;
    m->n = 0;
    m->keys = xcalloc(cap, sizeof *m->keys);
    m->vals = xcalloc(cap, sizeof *m->vals);
}

void term_map_cleanup(TermMap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void grow(TermMap *m)
{
    TermMap bigger;
    term_map_init(&bigger, m->cap); /* twice the slots: load stays under one half */
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            term_map_put(&bigger, m->keys[i], m->vals[i]);
    term_map_cleanup(m);
    *m = bigger;
}

void term_map_put(TermMap *m, const char *key, void *val)
{
    if (!m->cap)
        term_map_init(m, 8);
    if ((m->n + 1) * 2 > m->cap)
        grow(m);
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
}

void *term_map_get(const TermMap *m, const char *key)
{
    if (!m->cap || !key)
        return NULL;
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

char *term_fold_words(Arena *a, const char *s)
{
    char *f = text_fold(s, strlen(s));
    if (!f)
        return NULL;
    /* "Saint-Étienne", "L'Haÿ-les-Roses", "Saint Etienne" and "saint   etienne" must compare
     * equal: punctuation becomes a space, runs of spaces become one. */
    char *o = f;
    bool space = true;
    for (const char *p = f; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool sep = c == ' ' || c == '-' || c == '\'' || c == '.' || c == ',' || c == '/' ||
                   c == '(' || c == ')';
        /* U+2019 RIGHT SINGLE QUOTATION MARK (typographic apostrophe) */
        if (c == 0xE2 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0x99) {
            sep = true;
            p += 2;
        }
        if (sep) {
            if (!space)
                *o++ = ' ';
            space = true;
        } else {
            *o++ = (char)c;
            space = false;
        }
    }
    if (o > f && o[-1] == ' ')
        o--;
    *o = 0;
    if (!a)
        return f;
    char *r = arena_strdup(a, f);
    free(f);
    return r;
}
