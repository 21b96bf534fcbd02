/* import/csv.c: field splitting, UTF-8 detection, Latin-1 conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import_int.h"

/* Split a copy of `text`; the fields are compared as strings. */
static int split(const char *text, char sep, bool quotes, CsvFields *out, char **keep, Diag *d)
{
    *keep = strdup(text);
    return csv_split(*keep, strlen(text), sep, quotes, out, d);
}

static void assert_field(const CsvFields *f, int i, const char *want)
{
    assert_true(i < f->n);
    assert_int_equal(f->f[i].len, strlen(want));
    assert_memory_equal(f->f[i].p, want, strlen(want));
}

static void test_split_plain(void **state)
{
    (void)state;
    CsvFields f;
    char *s;
    assert_int_equal(split("structureet;010000024;;CH DE FLEYRIAT;", ';', true, &f, &s, NULL), 0);
    assert_int_equal(f.n, 5);
    assert_field(&f, 0, "structureet");
    assert_field(&f, 1, "010000024");
    assert_field(&f, 2, "");
    assert_field(&f, 3, "CH DE FLEYRIAT");
    assert_field(&f, 4, ""); /* a trailing separator ends with an empty field */
    free(s);

    assert_int_equal(split("", ';', true, &f, &s, NULL), 0);
    assert_int_equal(f.n, 1);
    assert_field(&f, 0, "");
    free(s);

    assert_int_equal(split("a\tb;c", '\t', true, &f, &s, NULL), 0);
    assert_int_equal(f.n, 2);
    assert_field(&f, 1, "b;c");
    free(s);
}

static void test_split_quotes(void **state)
{
    (void)state;
    /* golden cases: the documented example, and raison sociale fields of the real extract as
     * the national FHIR set kept them (010786101, 030001382) */
    static const struct {
        const char *in;
        const char *first, *second;
    } cases[] = {
        {"\"LIEU DE VIE \"\"MAVOUNA MEMA 1\"\"\";x", "LIEU DE VIE \"MAVOUNA MEMA 1\"", "x"},
        {"\"EHPAD \"\"LE CORNILLON\"\" ST RAMBERT  BUGEY\";;",
         "EHPAD \"LE CORNILLON\" ST RAMBERT  BUGEY", ""},
        {"\"\"\"\"\"SELARL PHARMACIE GRAND\"\"\"\"\";1", "\"\"SELARL PHARMACIE GRAND\"\"", "1"},
        {"\"a;b\";c", "a;b", "c"},
        {"\"\";c", "", "c"},
        {"\"a\"b;c", "ab", "c"}, /* text after the closing quote is kept */
        {"RESIDENCE \"LES PINS\";c", "RESIDENCE \"LES PINS\"", "c"}, /* quote inside: literal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CsvFields f;
        char *s;
        assert_int_equal(split(cases[i].in, ';', true, &f, &s, NULL), 0);
        assert_true(f.n >= 2);
        assert_field(&f, 0, cases[i].first);
        assert_field(&f, 1, cases[i].second);
        free(s);
    }
    /* without quote handling, quotes are data */
    CsvFields f;
    char *s;
    assert_int_equal(split("\"a;b\";c", ';', false, &f, &s, NULL), 0);
    assert_int_equal(f.n, 3);
    assert_field(&f, 0, "\"a");
    free(s);
}

static void test_split_errors(void **state)
{
    (void)state;
    CsvFields f;
    char *s;
    Diag d = {{0}, {0}};
    assert_int_equal(split("a;\"CH SANS FIN;b", ';', true, &f, &s, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "guillemet non fermé"));
    assert_non_null(strstr(d.msg, "champ 2"));
    free(s);
    assert_int_equal(split("a;\"x\"\"", ';', true, &f, &s, &d), ERR_INVALID);
    free(s);

    /* CSV_MAX_FIELDS fields are fine, one more is not */
    char line[CSV_MAX_FIELDS * 2 + 4] = "";
    for (int i = 0; i < CSV_MAX_FIELDS - 1; i++)
        strcat(line, "x;");
    strcat(line, "x");
    assert_int_equal(split(line, ';', true, &f, &s, &d), 0);
    assert_int_equal(f.n, CSV_MAX_FIELDS);
    free(s);
    strcat(line, ";");
    assert_int_equal(split(line, ';', true, &f, &s, &d), ERR_TOO_LARGE);
    free(s);
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *good[] = {"",
                                 "ASCII",
                                 "R\xC3\xA9sidence",
                                 "\xE2\x82\xAC",
                                 "\xF0\x9F\x98\x80",
                                 "\xEF\xBF\xBD",
                                 "\xF4\x8F\xBF\xBF",
                                 "\xED\x9F\xBF"};
    static const char *bad[] = {
        "caf\xE9",          /* Latin-1 é */
        "\xC3",             /* truncated */
        "\xE2\x82",         /* truncated */
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong */
        "\xE0\x80\x80",     /* overlong */
        "\xF0\x80\x80\x80", /* overlong */
        "\xED\xA0\x80",     /* surrogate */
        "\xF4\x90\x80\x80", /* > U+10FFFF */
        "\xF5\x80\x80\x80",
        "\x80",
        "\xBF",
        "\xFE",
        "\xFF",
        "a\xC3(",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(text_is_utf8(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(text_is_utf8(bad[i], strlen(bad[i])));
    /* the length is honoured: a valid prefix of an invalid string */
    assert_true(text_is_utf8("ab\xFF", 2));
}

static char *convert(const char *in, size_t n)
{
    Buf b;
    buf_init(&b, 1 << 16);
    text_latin1_to_utf8(in, n, &b);
    return buf_steal(&b, NULL);
}

static void test_latin1(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"R\xC9SIDENCE CR\xC8VECOEUR", "RÉSIDENCE CRÈVECOEUR"},
        {"L\x92\x8CILLET", "L’ŒILLET"}, /* Windows-1252 0x80-0x9F */
        {"\x80 \x85 \x9C \x9F", "€ … œ Ÿ"},
        {"N\xB0 1 \xAB\xA0\xBB \xFF", "N° 1 «\xC2\xA0» ÿ"}, /* A0: no-break space */
        {"\x81\x8D\x8F\x90\x9D", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"plain ascii", "plain ascii"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = convert(cases[i].in, strlen(cases[i].in));
        assert_string_equal(out, cases[i].out);
        free(out);
    }
    /* every byte converts to valid UTF-8 */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    Buf b;
    buf_init(&b, 1 << 16);
    text_latin1_to_utf8(all, sizeof all, &b);
    assert_true(text_is_utf8(b.p, b.len));
    assert_int_equal(b.p[0], 0);
    buf_cleanup(&b);
    /* the buffer's cap holds */
    buf_init(&b, 4);
    text_latin1_to_utf8("\xE9\xE9\xE9", 3, &b);
    assert_true(b.overflow);
    assert_true(b.len <= 4);
    buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_plain),  cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_split_errors), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_latin1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
