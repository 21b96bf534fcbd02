/*
 * textidx — a word index for free-text search with prefix matching (type-ahead). Private to
 * the orient module.
 *
 * Documents are small integers chosen by the caller. Text is folded (text_fold: accents, case,
 * ligatures) and split into words on anything that is not a letter or a digit. A query matches
 * a document when EVERY query word is a prefix of some word of the document (French stop words
 * of the query — de, du, des, la, le, les, l, d, et, en, a, au, aux, pour, sur — are ignored
 * unless the query has nothing else; documents keep theirs). A word repeated in the query
 * counts once.
 *
 * Threading: none inside. The caller serialises writers against readers (orient holds a
 * rwlock); textidx_query does not modify the index, so concurrent queries are safe.
 */
#ifndef ROR_ORIENT_TEXTIDX_H
#define ROR_ORIENT_TEXTIDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct TextIndex TextIndex;

typedef struct TextHit {
    uint32_t doc;
    uint32_t exact; /* (distinct, non-ignored) query words that equal a document word, not only
                       begin one */
} TextHit;

TextIndex *textidx_new(void);
/** NULL is a no-op. */
void textidx_free(TextIndex *t);
/** Index `doc` under the words of `text` (UTF-8; invalid UTF-8 is ignored as a whole; NULL is a
 *  no-op). May be called several times for one doc (name, then labels...): the words
 *  accumulate. Memory grows with the largest doc number, so keep them dense. */
void textidx_add(TextIndex *t, uint32_t doc, const char *text);
/** Forget doc entirely (every word added for it). Unknown doc: no-op. */
void textidx_remove(TextIndex *t, uint32_t doc);
/** The documents matching `query` (see above), sorted by doc, in *out (malloc'd; caller frees;
 *  NULL when none). At most `max` hits (0: no limit): the lowest docs. Returns the number of
 *  hits. A query with no word, or not valid UTF-8, matches nothing. */
size_t textidx_query(const TextIndex *t, const char *query, size_t max, TextHit **out);
/** Distinct words held (for statistics and tests). */
size_t textidx_words(const TextIndex *t);

#endif
