/*
 * textidx — word index for type-ahead search (see textidx.h).
 *
 * Layout:
 *   - Word slots live in `w`, addressed by a stable id (freed ids are reused); each holds the
 *     folded word and its posting list (sorted, distinct doc numbers).
 *   - `order` holds the live word ids sorted by the bytes of their word, so that the words
 *     beginning with a prefix form one contiguous range found by two binary searches.
 *   - `docs[doc]` lists the word ids of a document (unsorted, distinct), so that remove does not
 *     have to scan the vocabulary.
 *   - `slot` is a hash table of the live words: adding a known word (most words of a new
 *     document) costs no binary search over the vocabulary.
 * Invariants: a word is in `order` iff its posting list is non-empty; doc d is in the postings
 * of word i iff i is in docs[d]; `pairs` is the total length of all posting lists.
 *
 * A query is answered by taking the query word with the fewest postings (summed over its
 * prefix range) as candidates, then testing each candidate against the other words, each with
 * the cheapest test for its range: one posting list (galloping cursor), a bitmap of the range's
 * union, or a scan of the candidate's own words.
 */
#include "orient/textidx.h"

#include "core/core.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define NO_WORD UINT32_MAX

typedef struct Word {
    char *s; /* folded word, NUL-terminated; NULL while the slot is free */
    uint32_t len;
    uint32_t hash;
    uint32_t n, cap;
    uint32_t *docs; /* sorted, distinct */
} Word;

typedef struct DocWords {
    uint32_t *ids;
    uint32_t n, cap;
} DocWords;

struct TextIndex {
    Word *w;
    size_t nw, aw; /* slots used (live or free) / allocated */
    uint32_t *free_ids;
    size_t nfree, afree;
    uint32_t *order; /* live word ids, sorted by word bytes */
    size_t norder, aorder;
    uint32_t *slot; /* hash of live words: id + 1, 0 when empty; linear probing, load <= 1/2 */
    size_t nslot;   /* power of two */
    DocWords *docs; /* indexed by doc number */
    size_t ndocs;
    size_t pairs;     /* (doc, word) pairs = sum of posting lengths */
    size_t live_docs; /* docs with at least one word */
};

static const char *const STOP_WORDS[] = {"de", "du", "des", "la", "le",  "les",  "l",  "d",
                                         "et", "en", "a",   "au", "aux", "pour", "sur"};

/* ---------------------------------------------------------------- words of a text */

/* Folded text is lower case, so ASCII word bytes are [a-z0-9]; anything else non-ASCII is a
 * word character when it is a letter or a digit (ø, ł, Greek...), so that punctuation such as
 * ’ « » – splits words. */
static size_t word_char(const char *s, size_t len, size_t i, bool *is_word)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *is_word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
        return 1;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
    if (k <= 0) {
        *is_word = false;
        return 1;
    }
    utf8proc_category_t cat = utf8proc_category(cp);
    *is_word = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
    *is_word = *is_word || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
    return (size_t)k;
}

/* The next word of folded text `s` at or after *pos: returns false at the end. */
static bool next_word(const char *s, size_t len, size_t *pos, size_t *start, size_t *wlen)
{
    size_t i = *pos;
    bool w = false;
    while (i < len) {
        size_t k = word_char(s, len, i, &w);
        if (w)
            break;
        i += k;
    }
    if (i >= len) {
        *pos = len;
        return false;
    }
    *start = i;
    while (i < len) {
        size_t k = word_char(s, len, i, &w);
        if (!w)
            break;
        i += k;
    }
    *wlen = i - *start;
    *pos = i;
    return true;
}

static bool is_stop_word(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof STOP_WORDS[0]; i++)
        if (strlen(STOP_WORDS[i]) == len && memcmp(STOP_WORDS[i], p, len) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- sorted vocabulary */

static int word_cmp(const Word *w, const char *p, size_t len)
{
    size_t m = w->len < len ? w->len : len;
    int c = memcmp(w->s, p, m);
    if (c)
        return c;
    return w->len < len ? -1 : w->len > len ? 1 : 0;
}

/* First rank whose word is >= (p, len). */
static size_t lower_bound(const TextIndex *t, const char *p, size_t len)
{
    size_t lo = 0, hi = t->norder;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (word_cmp(&t->w[t->order[mid]], p, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool has_prefix(const Word *w, const char *p, size_t len)
{
    return w->len >= len && memcmp(w->s, p, len) == 0;
}

/* First rank >= lo whose word does not begin with (p, len); the words from lo (the lower bound
 * of the prefix) up to there all do. */
static size_t prefix_end(const TextIndex *t, size_t lo, const char *p, size_t len)
{
    size_t hi = t->norder;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (has_prefix(&t->w[t->order[mid]], p, len))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t hash_bytes(const char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static uint32_t word_find(const TextIndex *t, const char *p, size_t len, uint32_t h)
{
    if (!t->nslot)
        return NO_WORD;
    size_t mask = t->nslot - 1;
    for (size_t i = h & mask; t->slot[i]; i = (i + 1) & mask) {
        const Word *w = &t->w[t->slot[i] - 1];
        if (w->hash == h && w->len == len && memcmp(w->s, p, len) == 0)
            return t->slot[i] - 1;
    }
    return NO_WORD;
}

static void slot_put(uint32_t *slot, size_t nslot, uint32_t h, uint32_t id)
{
    size_t i = h & (nslot - 1);
    while (slot[i])
        i = (i + 1) & (nslot - 1);
    slot[i] = id + 1;
}

/* Make room for one more word in the hash (called before it joins `order`). */
static void slots_reserve(TextIndex *t)
{
    if ((t->norder + 1) * 2 <= t->nslot)
        return;
    size_t n = t->nslot ? t->nslot * 2 : 16;
    uint32_t *slot = xcalloc(n, sizeof *slot);
    for (size_t r = 0; r < t->norder; r++)
        slot_put(slot, n, t->w[t->order[r]].hash, t->order[r]);
    free(t->slot);
    t->slot = slot;
    t->nslot = n;
}

/* Linear probing without tombstones: the entries after the hole that could sit in it move back. */
static void slot_delete(TextIndex *t, uint32_t id)
{
    size_t mask = t->nslot - 1, i = t->w[id].hash & mask;
    while (t->slot[i] != id + 1)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; t->slot[j]; j = (j + 1) & mask) {
        size_t home = t->w[t->slot[j] - 1].hash & mask;
        /* move slot j into hole i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i] = 0;
}

static uint32_t word_intern(TextIndex *t, const char *p, size_t len)
{
    uint32_t h = hash_bytes(p, len);
    uint32_t found = word_find(t, p, len, h);
    if (found != NO_WORD)
        return found;
    size_t rank = lower_bound(t, p, len);
    slots_reserve(t);
    uint32_t id;
    if (t->nfree) {
        id = t->free_ids[--t->nfree];
    } else {
        if (t->nw == t->aw) {
            t->aw = t->aw ? t->aw * 2 : 256;
            t->w = xrealloc(t->w, t->aw * sizeof *t->w);
        }
        id = (uint32_t)t->nw++;
    }
    Word *w = &t->w[id];
    memset(w, 0, sizeof *w);
    w->s = xstrndup(p, len);
    w->len = (uint32_t)len;
    w->hash = h;
    slot_put(t->slot, t->nslot, h, id);
    if (t->norder == t->aorder) {
        t->aorder = t->aorder ? t->aorder * 2 : 256;
        t->order = xrealloc(t->order, t->aorder * sizeof *t->order);
    }
    memmove(t->order + rank + 1, t->order + rank, (t->norder - rank) * sizeof *t->order);
    t->order[rank] = id;
    t->norder++;
    return id;
}

static void word_drop(TextIndex *t, uint32_t id)
{
    Word *w = &t->w[id];
    slot_delete(t, id);
    size_t rank = lower_bound(t, w->s, w->len);
    memmove(t->order + rank, t->order + rank + 1, (t->norder - rank - 1) * sizeof *t->order);
    t->norder--;
    free(w->s);
    free(w->docs);
    memset(w, 0, sizeof *w);
    if (t->nfree == t->afree) {
        t->afree = t->afree ? t->afree * 2 : 64;
        t->free_ids = xrealloc(t->free_ids, t->afree * sizeof *t->free_ids);
    }
    t->free_ids[t->nfree++] = id;
}

/* ---------------------------------------------------------------- posting lists */

/* First index j >= i with a[j] >= x (n when none). Galloping: cheap when successive calls
 * look for increasing x close to each other, and O(log n) at worst. */
static size_t gallop(const uint32_t *a, size_t n, size_t i, uint32_t x)
{
    if (i >= n || a[i] >= x)
        return i;
    size_t step = 1, lo = i, hi = i + 1; /* a[lo] < x */
    while (hi < n && a[hi] < x) {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    if (hi > n)
        hi = n;
    lo++; /* a[lo-1] < x; answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Insert doc into w's postings; false when it was already there. */
static bool posting_insert(Word *w, uint32_t doc)
{
    size_t at = w->n;
    if (w->n && w->docs[w->n - 1] >= doc) { /* documents usually come in increasing order */
        at = gallop(w->docs, w->n, 0, doc);
        if (w->docs[at] == doc)
            return false;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4;
        w->docs = xrealloc(w->docs, w->cap * sizeof *w->docs);
    }
    memmove(w->docs + at + 1, w->docs + at, (w->n - at) * sizeof *w->docs);
    w->docs[at] = doc;
    w->n++;
    return true;
}

static void posting_erase(Word *w, uint32_t doc)
{
    size_t at = gallop(w->docs, w->n, 0, doc);
    if (at < w->n && w->docs[at] == doc) {
        memmove(w->docs + at, w->docs + at + 1, (w->n - at - 1) * sizeof *w->docs);
        w->n--;
    }
}

/* ---------------------------------------------------------------- public: build */

TextIndex *textidx_new(void)
{
    return xcalloc(1, sizeof(TextIndex));
}

void textidx_free(TextIndex *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nw; i++) {
        free(t->w[i].s);
        free(t->w[i].docs);
    }
    for (size_t i = 0; i < t->ndocs; i++)
        free(t->docs[i].ids);
    free(t->w);
    free(t->free_ids);
    free(t->order);
    free(t->slot);
    free(t->docs);
    free(t);
}

static DocWords *doc_slot(TextIndex *t, uint32_t doc)
{
    if (doc >= t->ndocs) {
        size_t n = t->ndocs ? t->ndocs * 2 : 1024;
        if (n <= doc)
            n = (size_t)doc + 1;
        t->docs = xrealloc(t->docs, n * sizeof *t->docs);
        memset(t->docs + t->ndocs, 0, (n - t->ndocs) * sizeof *t->docs);
        t->ndocs = n;
    }
    return &t->docs[doc];
}

void textidx_add(TextIndex *t, uint32_t doc, const char *text)
{
    if (!t || !text)
        return;
    char *f = text_fold(text, strlen(text));
    if (!f)
        return;
    size_t len = strlen(f), pos = 0, start, wlen;
    while (next_word(f, len, &pos, &start, &wlen)) {
        uint32_t id = word_intern(t, f + start, wlen);
        if (!posting_insert(&t->w[id], doc))
            continue;
        DocWords *d = doc_slot(t, doc);
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 8;
            d->ids = xrealloc(d->ids, d->cap * sizeof *d->ids);
        }
        if (d->n == 0)
            t->live_docs++;
        d->ids[d->n++] = id;
        t->pairs++;
    }
    free(f);
}

void textidx_remove(TextIndex *t, uint32_t doc)
{
    if (!t || doc >= t->ndocs || t->docs[doc].n == 0)
        return;
    DocWords *d = &t->docs[doc];
    for (uint32_t i = 0; i < d->n; i++) {
        Word *w = &t->w[d->ids[i]];
        posting_erase(w, doc);
        if (w->n == 0)
            word_drop(t, d->ids[i]);
    }
    t->pairs -= d->n;
    t->live_docs--;
    free(d->ids);
    memset(d, 0, sizeof *d);
}

size_t textidx_words(const TextIndex *t)
{
    return t ? t->norder : 0;
}

/* ---------------------------------------------------------------- public: query */

/* How a candidate is tested against a term's range: the postings of its single word, a bitmap
 * of the range's union, or the candidate's own words. */
enum { TEST_POSTING, TEST_BITMAP, TEST_SCAN };

typedef struct Term {
    const char *p; /* into the folded query */
    size_t len;
    size_t lo, hi; /* prefix range in t->order */
    size_t total;  /* postings summed over the range */
    int test;
    const uint32_t *post; /* TEST_POSTING */
    size_t npost, cursor;
    uint64_t *bits; /* TEST_BITMAP */
} Term;

static inline bool bit_get(const uint64_t *bits, uint32_t doc)
{
    return (bits[doc >> 6] >> (doc & 63)) & 1;
}

static void bits_set(uint64_t *bits, const Word *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        bits[w->docs[i] >> 6] |= (uint64_t)1 << (w->docs[i] & 63);
}

static uint64_t *range_bitmap(const TextIndex *t, const Term *q, size_t nwords64)
{
    uint64_t *bits = xcalloc(nwords64 ? nwords64 : 1, sizeof *bits);
    for (size_t r = q->lo; r < q->hi; r++)
        bits_set(bits, &t->w[t->order[r]]);
    return bits;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t log2_ceil(size_t n)
{
    size_t k = 0;
    while (((size_t)1 << k) < n && k < 63)
        k++;
    return k;
}

/* The candidates: the documents of the first term's range, as a sorted list or a bitmap. */
typedef struct Cands {
    const uint32_t *list; /* sorted, distinct; borrowed when the range is one word */
    uint32_t *owned;
    uint64_t *bits;
    size_t n; /* documents */
} Cands;

static void candidates(const TextIndex *t, const Term *q, size_t nwords64, Cands *c)
{
    memset(c, 0, sizeof *c);
    if (q->hi - q->lo == 1) {
        const Word *w = &t->w[t->order[q->lo]];
        c->list = w->docs;
        c->n = w->n;
        return;
    }
    /* A bitmap costs its size whatever the range; sorting costs n log n: pick the cheaper. It
     * is walked in place: writing the list out would touch fresh memory for nothing. */
    if (nwords64 + q->total < q->total * log2_ceil(q->total)) {
        c->bits = range_bitmap(t, q, nwords64);
        for (size_t i = 0; i < nwords64; i++)
            c->n += (size_t)__builtin_popcountll(c->bits[i]);
        return;
    }
    uint32_t *v = xmalloc(q->total * sizeof *v);
    size_t n = 0;
    for (size_t r = q->lo; r < q->hi; r++) {
        const Word *w = &t->w[t->order[r]];
        memcpy(v + n, w->docs, w->n * sizeof *v);
        n += w->n;
    }
    qsort(v, n, sizeof *v, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    c->list = c->owned = v;
    c->n = k;
}

/* Choose how candidates are tested against term q (not the first), and prepare it. */
static void term_prepare_test(const TextIndex *t, Term *q, size_t ncand, size_t nwords64)
{
    size_t words_per_doc = t->live_docs ? t->pairs / t->live_docs + 1 : 1;
    if (q->hi - q->lo == 1) {
        const Word *w = &t->w[t->order[q->lo]];
        q->test = TEST_POSTING;
        q->post = w->docs;
        q->npost = w->n;
    } else if (ncand * words_per_doc * 4 < q->total + nwords64) {
        /* few candidates: reading their own words beats touching the whole range (a scan
         * chases pointers, hence the weight) */
        q->test = TEST_SCAN;
    } else {
        q->test = TEST_BITMAP;
        q->bits = range_bitmap(t, q, nwords64);
    }
}

/* Does doc hold a word of q's range? Docs come in increasing order (cursors only advance). */
static bool term_matches(const TextIndex *t, Term *q, uint32_t doc)
{
    switch (q->test) {
    case TEST_POSTING:
        q->cursor = gallop(q->post, q->npost, q->cursor, doc);
        return q->cursor < q->npost && q->post[q->cursor] == doc;
    case TEST_BITMAP: return bit_get(q->bits, doc);
    default: {
        const DocWords *d = &t->docs[doc];
        for (uint32_t i = 0; i < d->n; i++)
            if (has_prefix(&t->w[d->ids[i]], q->p, q->len))
                return true;
        return false;
    }
    }
}

/* Count in hits[].exact the hits that hold q's word itself, not only a longer one. That word,
 * if any, is the first of the range (the shortest of the words beginning with it). */
static void count_exact(const TextIndex *t, const Term *q, size_t nwords64, TextHit *hits,
                        size_t nhits)
{
    const Word *w = &t->w[t->order[q->lo]];
    if (w->len != q->len)
        return;
    if (q->hi - q->lo == 1) { /* every hit matched the range, which is that word alone */
        for (size_t h = 0; h < nhits; h++)
            hits[h].exact++;
        return;
    }
    size_t gallop_cost = nhits * (log2_ceil(w->n / (nhits + 1) + 1) + 2) * 4;
    if (w->n + nwords64 + nhits < gallop_cost) {
        uint64_t *bits = xcalloc(nwords64 ? nwords64 : 1, sizeof *bits);
        bits_set(bits, w);
        for (size_t h = 0; h < nhits; h++)
            hits[h].exact += bit_get(bits, hits[h].doc);
        free(bits);
        return;
    }
    size_t at = 0;
    for (size_t h = 0; h < nhits; h++) {
        at = gallop(w->docs, w->n, at, hits[h].doc);
        if (at < w->n && w->docs[at] == hits[h].doc)
            hits[h].exact++;
    }
}

typedef struct Collect {
    const TextIndex *t;
    Term *q;
    size_t nq;
    TextHit *hits;
    size_t n, cap;
} Collect;

/* Keep candidate doc if it matches every other term. */
static void consider(Collect *c, uint32_t doc)
{
    for (size_t i = 1; i < c->nq; i++)
        if (!term_matches(c->t, &c->q[i], doc))
            return;
    c->hits[c->n++] = (TextHit){doc, 0};
}

/* Split the folded query into distinct terms, stop words dropped unless nothing else. */
static size_t query_terms(const char *f, Term **out)
{
    size_t len = strlen(f), pos = 0, start, wlen, n = 0, cap = 0, nstop = 0;
    Term *q = NULL;
    while (next_word(f, len, &pos, &start, &wlen)) {
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = q[i].len == wlen && memcmp(q[i].p, f + start, wlen) == 0;
        if (dup)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            q = xrealloc(q, cap * sizeof *q);
        }
        memset(&q[n], 0, sizeof q[n]);
        q[n].p = f + start;
        q[n].len = wlen;
        nstop += is_stop_word(f + start, wlen);
        n++;
    }
    if (nstop && nstop < n) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!is_stop_word(q[i].p, q[i].len))
                q[k++] = q[i];
        n = k;
    }
    *out = q;
    return n;
}

/* Answer the terms q (at least one, ranges not yet resolved) into *out; returns the count. */
static size_t run_query(const TextIndex *t, Term *q, size_t nq, size_t max, TextHit **out)
{
    for (size_t i = 0; i < nq; i++) {
        q[i].lo = lower_bound(t, q[i].p, q[i].len);
        q[i].hi = prefix_end(t, q[i].lo, q[i].p, q[i].len);
        if (q[i].lo == q[i].hi)
            return 0; /* some word matches nothing */
        for (size_t r = q[i].lo; r < q[i].hi; r++)
            q[i].total += t->w[t->order[r]].n;
    }
    for (size_t i = 1; i < nq; i++) { /* fewest postings first: a handful of terms */
        Term x = q[i];
        size_t j = i;
        for (; j > 0 && q[j - 1].total > x.total; j--)
            q[j] = q[j - 1];
        q[j] = x;
    }

    size_t nwords64 = (t->ndocs + 63) / 64;
    Cands cand;
    candidates(t, &q[0], nwords64, &cand);
    for (size_t i = 1; i < nq; i++)
        term_prepare_test(t, &q[i], cand.n, nwords64);

    Collect c = {t, q, nq, NULL, 0, max && max < cand.n ? max : cand.n};
    c.hits = xmalloc((c.cap ? c.cap : 1) * sizeof *c.hits);
    if (cand.bits) {
        for (size_t i = 0; i < nwords64 && c.n < c.cap; i++)
            for (uint64_t b = cand.bits[i]; b && c.n < c.cap; b &= b - 1)
                consider(&c, (uint32_t)(i * 64 + (size_t)__builtin_ctzll(b)));
    } else {
        for (size_t i = 0; i < cand.n && c.n < c.cap; i++)
            consider(&c, cand.list[i]);
    }

    free(cand.owned);
    free(cand.bits);
    for (size_t i = 0; i < nq; i++) {
        free(q[i].bits);
        count_exact(t, &q[i], nwords64, c.hits, c.n);
    }
    if (c.n == 0) {
        free(c.hits);
        c.hits = NULL;
    }
    *out = c.hits;
    return c.n;
}

size_t textidx_query(const TextIndex *t, const char *query, size_t max, TextHit **out)
{
    *out = NULL;
    if (!t || !query)
        return 0;
    char *f = text_fold(query, strlen(query));
    if (!f)
        return 0;
    Term *q = NULL;
    size_t nq = query_terms(f, &q);
    size_t n = nq ? run_query(t, q, nq, max, out) : 0;
    free(q);
    free(f);
    return n;
}
