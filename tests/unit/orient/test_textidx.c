/* textidx: folding, prefix AND, exact counts, stop words, remove, and a randomized comparison
 * against a brute-force matcher written here from the header's contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orient/textidx.h"

/* The hits of a query as "doc:exact doc:exact ..." ("" when none), in a static buffer. */
static const char *hits(const TextIndex *t, const char *query, size_t max)
{
    static char buf[1 << 16];
    TextHit *h = (TextHit *)(uintptr_t)1; /* must be overwritten */
    size_t n = textidx_query(t, query, max, &h);
    size_t len = 0;
    buf[0] = 0;
    if (n == 0)
        assert_null(h);
    for (size_t i = 0; i < n; i++) {
        if (i)
            assert_true(h[i - 1].doc < h[i].doc);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%u:%u", i ? " " : "",
                                (unsigned)h[i].doc, (unsigned)h[i].exact);
        assert_true(len < sizeof buf);
    }
    free(h);
    return buf;
}

static void t_fold_and_prefix(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    textidx_add(t, 1, "REANIMATION ADULTE");
    textidx_add(t, 2, "Réanimation pédiatrique");
    textidx_add(t, 3, "Centre hospitalier universitaire de Bordeaux");
    textidx_add(t, 4, "CH DE FLEYRIAT");
    textidx_add(t, 5, "L’HÔPITAL DES ENFANTS");
    textidx_add(t, 6, "Œuvre Saint-Jean, centre de santé");
    /* accents and case, on both sides */
    assert_string_equal(hits(t, "réa", 0), "1:0 2:0");
    assert_string_equal(hits(t, "REA", 0), "1:0 2:0");
    assert_string_equal(hits(t, "Réanimation", 0), "1:1 2:1");
    assert_string_equal(hits(t, "hopital", 0), "5:1");
    assert_string_equal(hits(t, "oeuvre", 0), "6:1");
    assert_string_equal(hits(t, "ŒUV", 0), "6:0");
    /* every query word must match (AND); order does not matter */
    assert_string_equal(hits(t, "rea adu", 0), "1:0");
    assert_string_equal(hits(t, "adulte réanimation", 0), "1:2");
    assert_string_equal(hits(t, "rea ped", 0), "2:0");
    assert_string_equal(hits(t, "rea bord", 0), "");
    assert_string_equal(hits(t, "centre bord", 0), "3:1");
    assert_string_equal(hits(t, "c", 0), "3:0 4:0 6:0");
    assert_string_equal(hits(t, "ch", 0), "4:1");
    assert_string_equal(hits(t, "cent", 0), "3:0 6:0");
    assert_string_equal(hits(t, "centre", 0), "3:1 6:1");
    /* punctuation splits words: "Saint-Jean", "L’HÔPITAL" */
    assert_string_equal(hits(t, "jean", 0), "6:1");
    assert_string_equal(hits(t, "saint-jean", 0), "6:2");
    assert_string_equal(hits(t, "l'hop", 0), "5:0");
    /* a query word that is no prefix of any word */
    assert_string_equal(hits(t, "centres", 0), "");
    assert_string_equal(hits(t, "zzz", 0), "");
    /* duplicate query words count once */
    assert_string_equal(hits(t, "centre CENTRE", 0), "3:1 6:1");
    textidx_free(t);
    textidx_free(NULL);
}

static void t_stop_words(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    textidx_add(t, 1, "Centre de santé");
    textidx_add(t, 2, "Centre médical");
    textidx_add(t, 3, "Delta du Rhône");
    textidx_add(t, 4, "Les Lilas");
    /* "de" and "la" are ignored next to another word ... */
    assert_string_equal(hits(t, "centre de", 0), "1:1 2:1");
    assert_string_equal(hits(t, "de la centre", 0), "1:1 2:1");
    assert_string_equal(hits(t, "l'centre", 0), "1:1 2:1");
    /* ... but a query of stop words only is a prefix query like any other */
    assert_string_equal(hits(t, "de", 0), "1:1 3:0");
    assert_string_equal(hits(t, "du", 0), "3:1");
    assert_string_equal(hits(t, "la", 0), "");
    assert_string_equal(hits(t, "les", 0), "4:1");
    assert_string_equal(hits(t, "de du", 0), "3:1");
    /* words that merely begin like a stop word are not stop words */
    assert_string_equal(hits(t, "centre del", 0), "");
    assert_string_equal(hits(t, "lil", 0), "4:0");
    textidx_free(t);
}

static void t_remove_readd(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    textidx_add(t, 10, "CH DE FLEYRIAT");
    textidx_add(t, 10, "Réanimation adulte"); /* words accumulate */
    textidx_add(t, 11, "CH du Pays de Gex");
    textidx_add(t, 11, "CH du Pays de Gex"); /* twice: no duplicate posting */
    assert_int_equal(textidx_words(t), 8);   /* ch de fleyriat reanimation adulte du pays gex */
    assert_string_equal(hits(t, "ch", 0), "10:1 11:1");
    assert_string_equal(hits(t, "ch rea", 0), "10:1");
    textidx_remove(t, 10);
    assert_string_equal(hits(t, "ch", 0), "11:1");
    assert_string_equal(hits(t, "rea", 0), "");
    assert_string_equal(hits(t, "fley", 0), "");
    assert_int_equal(textidx_words(t), 5); /* words only doc 10 had are gone */
    textidx_remove(t, 10);                 /* unknown now: no-op */
    textidx_remove(t, 12345);
    assert_int_equal(textidx_words(t), 5);
    textidx_add(t, 10, "Hôpital de Fleyriat");
    assert_string_equal(hits(t, "fley", 0), "10:0");
    assert_string_equal(hits(t, "ch", 0), "11:1");
    assert_string_equal(hits(t, "de", 0), "10:1 11:1");
    textidx_remove(t, 11);
    textidx_remove(t, 10);
    assert_int_equal(textidx_words(t), 0);
    assert_string_equal(hits(t, "de", 0), "");
    textidx_add(t, 0, "Gex");
    assert_string_equal(hits(t, "g", 0), "0:0");
    textidx_free(t);
}

static void t_invalid_and_empty(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    textidx_add(t, 1, "Centre");
    textidx_add(t, 2, "ABC \xff DEF"); /* invalid UTF-8: ignored as a whole */
    textidx_add(t, 3, "\xc3");
    textidx_add(t, 4, NULL);
    textidx_add(t, 5, "");
    textidx_add(t, 6, " -- , ");
    assert_int_equal(textidx_words(t), 1);
    assert_string_equal(hits(t, "abc", 0), "");
    assert_string_equal(hits(t, "cen\xff", 0), "");
    assert_string_equal(hits(t, "\xe2\x82", 0), "");
    assert_string_equal(hits(t, "", 0), "");
    assert_string_equal(hits(t, "   ", 0), "");
    assert_string_equal(hits(t, " - ’ ( ) ", 0), "");
    assert_string_equal(hits(t, "cen", 0), "1:0");
    TextHit *h = NULL;
    assert_int_equal(textidx_query(t, NULL, 0, &h), 0);
    assert_null(h);
    textidx_free(t);
}

static void t_max(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    for (uint32_t d = 100; d > 0; d--) /* out of order on purpose */
        textidx_add(t, d * 7, d % 2 ? "Hôpital local" : "Hôpital");
    assert_string_equal(hits(t, "hop", 3), "7:0 14:0 21:0");
    assert_string_equal(hits(t, "hopital loc", 2), "7:1 21:1");
    assert_string_equal(hits(t, "hopital", 1), "7:1");
    TextHit *h = NULL;
    assert_int_equal(textidx_query(t, "hop", 0, &h), 100);
    free(h);
    assert_int_equal(textidx_query(t, "hop", 1000, &h), 100);
    free(h);
    assert_int_equal(textidx_query(t, "local", 0, &h), 50);
    free(h);
    textidx_free(t);
}

/* Shapes that steer the query through its different ways of testing a word: one posting list,
 * a bitmap of a prefix range, or the candidates' own words. */
static void t_query_shapes(void **state)
{
    (void)state;
    TextIndex *t = textidx_new();
    for (uint32_t d = 0; d < 400; d++)
        textidx_add(t, d, d % 2 ? "Centre" : "Central");
    textidx_add(t, 1000, "Rare");
    textidx_add(t, 1001, "Rare Centre");
    textidx_add(t, 1002, "Rarement central");
    textidx_add(t, 1003, "Rare, rarement");
    /* a small range unioned: a doc with two of its words appears once */
    assert_string_equal(hits(t, "rar", 0), "1000:0 1001:0 1002:0 1003:0");
    /* few candidates (rare), large range (cent...) */
    assert_string_equal(hits(t, "rare cent", 0), "1001:1 1002:0"); /* rare(ment) */
    assert_string_equal(hits(t, "rar cent", 0), "1001:0 1002:0");
    assert_string_equal(hits(t, "rar centre", 0), "1001:1");
    /* many candidates on both sides */
    textidx_add(t, 2000, "Centrale");
    for (uint32_t d = 0; d < 400; d += 3)
        textidx_add(t, d, "Chirurgie");
    TextHit *h = NULL;
    size_t n = textidx_query(t, "cent ch", 0, &h);
    assert_int_equal(n, 134); /* 0, 3, ..., 399 */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h[i].doc, 3 * i);
        assert_int_equal(h[i].exact, 0);
    }
    free(h);
    n = textidx_query(t, "c ce", 0, &h);
    assert_int_equal(n, 403);
    free(h);
    textidx_free(t);
}

/* ---------------------------------------------------------------- randomized */

/* Each vocabulary entry: how it is written in a document, and its folded form by hand. */
static const struct {
    const char *text, *folded;
} VOCAB[] = {
    {"Centre", "centre"},
    {"CENTRAL", "central"},
    {"centrale", "centrale"},
    {"Cent", "cent"},
    {"CH", "ch"},
    {"CHU", "chu"},
    {"Chirurgie", "chirurgie"},
    {"Hôpital", "hopital"},
    {"HOSPITALIER", "hospitalier"},
    {"Réanimation", "reanimation"},
    {"RÉA", "rea"},
    {"Réadaptation", "readaptation"},
    {"Bordeaux", "bordeaux"},
    {"bord", "bord"},
    {"Santé", "sante"},
    {"ŒUVRE", "oeuvre"},
    {"Œil", "oeil"},
    {"ÉCOLE", "ecole"},
    {"Ørsted", "\xc3\xb8rsted"},
    {"Saint", "saint"},
    {"St", "st"},
    {"Ste", "ste"},
    {"Adulte", "adulte"},
    {"ADULTES", "adultes"},
    {"Pédiatrie", "pediatrie"},
    {"75013", "75013"},
    {"7", "7"},
    {"de", "de"},
    {"DES", "des"},
    {"Delta", "delta"},
    {"du", "du"},
    {"la", "la"},
    {"Lac", "lac"},
    {"L", "l"},
    {"d", "d"},
    {"et", "et"},
    {"À", "a"},
    {"aux", "aux"},
    {"pour", "pour"},
};
#define NVOCAB (sizeof VOCAB / sizeof VOCAB[0])
static const char *const SEPS[] = {" ", "-", ", ", "’", "'", " (", ") ", "/", " – ", "  "};
#define NSEPS (sizeof SEPS / sizeof SEPS[0])
/* The header's list, written again rather than shared with the implementation. */
static const char *const STOPS[] = {"de", "du", "des", "la", "le",  "les",  "l",  "d",
                                    "et", "en", "a",   "au", "aux", "pour", "sur"};

#define MAXDOC 3000
#define DOCWORDS 32

typedef struct Model {
    const char *words[MAXDOC][DOCWORDS]; /* folded words of each doc (with repeats) */
    int n[MAXDOC];
} Model;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void model_add(TextIndex *t, Model *m, uint32_t doc)
{
    char text[512] = "";
    int nw = 1 + (int)rnd(5);
    for (int i = 0; i < nw && m->n[doc] < DOCWORDS; i++) {
        size_t v = rnd(NVOCAB);
        if (i)
            strcat(text, SEPS[rnd(NSEPS)]);
        strcat(text, VOCAB[v].text);
        m->words[doc][m->n[doc]++] = VOCAB[v].folded;
    }
    textidx_add(t, doc, text);
}

static bool is_stop(const char *w)
{
    for (size_t i = 0; i < sizeof STOPS / sizeof STOPS[0]; i++)
        if (strcmp(STOPS[i], w) == 0)
            return true;
    return false;
}

/* Brute force: hits of the folded query words qw[0..nq) (distinct) as "doc:exact ...". */
static void brute(const Model *m, const char **qw, int nq, size_t max, char *out, size_t cap)
{
    const char *keep[8];
    int nk = 0;
    for (int i = 0; i < nq; i++)
        if (!is_stop(qw[i]))
            keep[nk++] = qw[i];
    if (nk == 0)
        for (int i = 0; i < nq; i++)
            keep[nk++] = qw[i];
    size_t len = 0, n = 0;
    out[0] = 0;
    for (uint32_t d = 0; d < MAXDOC && nk && (max == 0 || n < max); d++) {
        bool all = m->n[d] > 0;
        unsigned exact = 0;
        for (int i = 0; i < nk && all; i++) {
            bool pre = false, eq = false;
            for (int j = 0; j < m->n[d]; j++) {
                pre = pre || strncmp(m->words[d][j], keep[i], strlen(keep[i])) == 0;
                eq = eq || strcmp(m->words[d][j], keep[i]) == 0;
            }
            all = pre;
            exact += eq;
        }
        if (all) {
            len +=
                (size_t)snprintf(out + len, cap - len, "%s%u:%u", n ? " " : "", (unsigned)d, exact);
            n++;
        }
    }
}

static size_t model_words(const Model *m)
{
    size_t n = 0;
    for (size_t v = 0; v < NVOCAB; v++) {
        bool dup = false; /* "À" and "a"-like entries may share a folded form */
        for (size_t u = 0; u < v && !dup; u++)
            dup = strcmp(VOCAB[u].folded, VOCAB[v].folded) == 0;
        bool used = false;
        for (uint32_t d = 0; d < MAXDOC && !dup && !used; d++)
            for (int j = 0; j < m->n[d] && !used; j++)
                used = strcmp(m->words[d][j], VOCAB[v].folded) == 0;
        n += used;
    }
    return n;
}

static void t_random_vs_brute(void **state)
{
    (void)state;
    Model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    TextIndex *t = textidx_new();
    for (int i = 0; i < 2000; i++) {
        uint32_t doc = rnd(MAXDOC);
        model_add(t, m, doc);
        if (rnd(3) == 0)
            model_add(t, m, doc);
    }
    static char expect[1 << 16];
    static char got[1 << 16];
    int nonempty = 0, big = 0;
    for (int qi = 0; qi < 500; qi++) {
        if (qi % 25 == 24) { /* churn: remove some docs, re-add others */
            for (int k = 0; k < 40; k++) {
                uint32_t doc = rnd(MAXDOC);
                textidx_remove(t, doc);
                m->n[doc] = 0;
            }
            for (int k = 0; k < 40; k++)
                model_add(t, m, rnd(MAXDOC));
            assert_int_equal(textidx_words(t), model_words(m));
        }
        char query[256] = "";
        char folded[8][32];
        const char *qw[8];
        int nq = 0, nw = 1 + (int)rnd(3);
        for (int i = 0; i < nw; i++) {
            size_t v = rnd(NVOCAB);
            const char *f = VOCAB[v].folded;
            char word[32];
            uint32_t kind = rnd(4);
            if (kind == 0) { /* as written in documents */
                snprintf(word, sizeof word, "%s", VOCAB[v].text);
                snprintf(folded[i], sizeof folded[i], "%s", f);
            } else if (kind == 3 && rnd(4) == 0) { /* absent from the vocabulary */
                snprintf(word, sizeof word, "%sq", f);
                snprintf(folded[i], sizeof folded[i], "%sq", f);
            } else { /* a prefix of the folded form, random case */
                size_t cut = 1 + rnd((uint32_t)strlen(f));
                while (((unsigned char)f[cut] & 0xc0) == 0x80) /* whole characters */
                    cut++;
                snprintf(folded[i], sizeof folded[i], "%.*s", (int)cut, f);
                for (size_t c = 0; c <= cut; c++)
                    word[c] = rnd(2) && (unsigned char)f[c] < 0x80 ? (char)toupper(f[c]) : f[c];
                word[cut] = 0;
            }
            if (i)
                strcat(query, SEPS[rnd(NSEPS)]);
            strcat(query, word);
            bool dup = false;
            for (int j = 0; j < nq && !dup; j++)
                dup = strcmp(qw[j], folded[i]) == 0;
            if (!dup)
                qw[nq++] = folded[i];
        }
        size_t max = rnd(4) == 0 ? 1 + rnd(20) : 0;
        brute(m, qw, nq, max, expect, sizeof expect);
        snprintf(got, sizeof got, "%s", hits(t, query, max));
        if (strcmp(expect, got) != 0)
            fprintf(stderr, "query #%d \"%s\" max %zu\n", qi, query, max);
        assert_string_equal(got, expect);
        nonempty += got[0] != 0;
        big += strlen(got) > 2000;
    }
    /* the comparison must not be vacuous: many queries match something, some match a lot */
    assert_true(nonempty > 250);
    assert_true(big > 20);
    textidx_free(t);
    free(m);
}

/* Many distinct words that come and go: the vocabulary (sorted order and hash) must follow
 * every add and remove. Words are [a-f]{1,4}, which fold to themselves. */
static void churn(uint32_t ndocs, int ops)
{
    enum { NDOCS = 300, NW = 6 };
    static char words[NDOCS][NW][5];
    static int nw[NDOCS];
    assert_true(ndocs <= NDOCS);
    memset(nw, 0, sizeof nw);
    TextIndex *t = textidx_new();
    for (int op = 0; op < ops; op++) {
        uint32_t d = rnd(ndocs);
        if (rnd(2)) {
            textidx_remove(t, d);
            nw[d] = 0;
        } else {
            char text[64] = "";
            for (int k = 1 + (int)rnd(3); k > 0 && nw[d] < NW; k--) {
                char *w = words[d][nw[d]++];
                int len = 1 + (int)rnd(4);
                for (int i = 0; i < len; i++)
                    w[i] = (char)('a' + rnd(6));
                w[len] = 0;
                strcat(text, " ");
                strcat(text, w);
            }
            textidx_add(t, d, text);
        }
        if (op % 50)
            continue;
        /* distinct live words, counted by brute force */
        size_t distinct = 0;
        for (uint32_t a = 0; a < ndocs; a++)
            for (int i = 0; i < nw[a]; i++) {
                bool seen = false;
                for (uint32_t b = 0; b <= a && !seen; b++)
                    for (int j = 0; j < (b == a ? i : nw[b]) && !seen; j++)
                        seen = strcmp(words[a][i], words[b][j]) == 0;
                distinct += !seen;
            }
        assert_int_equal(textidx_words(t), distinct);
        /* a one-word query, prefix or whole: the docs holding a word that begins with it */
        char qw[5];
        int qlen = 1 + (int)rnd(3);
        for (int i = 0; i < qlen; i++)
            qw[i] = (char)('a' + rnd(6));
        qw[qlen] = 0;
        static char expect[1 << 14];
        size_t len = 0, n = 0;
        expect[0] = 0;
        for (uint32_t a = 0; a < ndocs; a++) {
            bool pre = false, eq = false;
            for (int i = 0; i < nw[a]; i++) {
                pre = pre || strncmp(words[a][i], qw, (size_t)qlen) == 0;
                eq = eq || strcmp(words[a][i], qw) == 0;
            }
            if (pre)
                len += (size_t)snprintf(expect + len, sizeof expect - len, "%s%u:%d",
                                        n++ ? " " : "", (unsigned)a, eq);
        }
        assert_string_equal(hits(t, qw, 0), expect);
    }
    textidx_free(t);
}

static void t_random_churn(void **state)
{
    (void)state;
    churn(300, 20000); /* some hundreds of live words */
    churn(8, 20000);   /* a few dozen: small hash table, crowded */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_fold_and_prefix),
        cmocka_unit_test(t_stop_words),
        cmocka_unit_test(t_remove_readd),
        cmocka_unit_test(t_invalid_and_empty),
        cmocka_unit_test(t_max),
        cmocka_unit_test(t_query_shapes),
        cmocka_unit_test(t_random_vs_brute),
        cmocka_unit_test(t_random_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
