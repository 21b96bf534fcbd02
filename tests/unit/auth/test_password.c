/* auth: argon2id password hashes and API keys. Expected values come from libsodium called
 * directly with other parameters, or from b2sum / Python hashlib (noted where used). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* libsodium's interactive argon2id limits: t=2, 64 MiB = 65536 KiB, one lane. */
#define CURRENT_PREFIX "$argon2id$v=19$m=65536,t=2,p=1$"

static int setup(void **state)
{
    (void)state;
    return auth_init();
}

static void t_round_trip(void **state)
{
    (void)state;
    char h[AUTH_HASH_MAX];
    Diag d = {{0}, {0}};
    assert_int_equal(auth_password_hash("correct horse battery staple", h, &d), 0);
    assert_int_equal(strncmp(h, CURRENT_PREFIX, strlen(CURRENT_PREFIX)), 0);
    assert_true(auth_password_verify(h, "correct horse battery staple"));
    assert_false(auth_password_verify(h, "correct horse battery stapl"));
    assert_false(auth_password_verify(h, "correct horse battery staple "));
    assert_false(auth_password_verify(h, "Correct horse battery staple"));
    assert_false(auth_password_verify(h, ""));
    assert_false(auth_password_verify(h, NULL));
    assert_false(auth_password_needs_rehash(h));
    /* the string is libsodium's own format: its verifier accepts it */
    assert_int_equal(crypto_pwhash_str_verify(h, "correct horse battery staple", 28), 0);
}

static void t_salted(void **state)
{
    (void)state;
    char a[AUTH_HASH_MAX], b[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("motdepasse", a, NULL), 0);
    assert_int_equal(auth_password_hash("motdepasse", b, NULL), 0);
    assert_string_not_equal(a, b);
    assert_true(auth_password_verify(a, "motdepasse"));
    assert_true(auth_password_verify(b, "motdepasse"));
}

static void t_bounds(void **state)
{
    (void)state;
    char h[AUTH_HASH_MAX];
    memset(h, 'x', sizeof h);
    Diag d = {{0}, {0}};
    assert_int_equal(auth_password_hash("", h, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "vide"));
    assert_int_equal(auth_password_hash(NULL, h, &d), ERR_INVALID);
    assert_int_equal(h[0], 'x'); /* untouched on failure */

    char *pw = malloc(1026);
    memset(pw, 'a', 1025);
    pw[1025] = '\0';
    assert_int_equal(auth_password_hash(pw, h, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "trop long"));
    assert_int_equal(h[0], 'x');
    pw[1024] = '\0'; /* 1024 bytes: the largest accepted */
    assert_int_equal(auth_password_hash(pw, h, &d), 0);
    assert_true(auth_password_verify(h, pw));
    pw[1024] = 'a'; /* a longer candidate is refused without hashing, never matches */
    assert_false(auth_password_verify(h, pw));
    free(pw);

    assert_int_equal(auth_password_hash("\xff\xfe", h, &d), ERR_INVALID);
    assert_non_null(strstr(d.msg, "UTF-8"));
    assert_int_equal(auth_password_hash("a", h, &d), 0); /* 1 byte is enough */
    assert_true(auth_password_verify(h, "a"));
    assert_false(auth_password_verify(h, "a\xff"));
}

static void t_malformed(void **state)
{
    (void)state;
    char h[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("secret", h, NULL), 0);
    assert_false(auth_password_verify(NULL, "secret"));
    assert_false(auth_password_verify("", "secret"));
    assert_false(auth_password_verify("$argon2id$", "secret"));
    assert_false(auth_password_verify("secret", "secret"));

    char cut[AUTH_HASH_MAX];
    memcpy(cut, h, sizeof cut);
    cut[strlen(cut) - 4] = '\0';
    assert_false(auth_password_verify(cut, "secret"));

    char flip[AUTH_HASH_MAX];
    memcpy(flip, h, sizeof flip);
    size_t last = strlen(flip) - 2;
    flip[last] = flip[last] == 'A' ? 'B' : 'A'; /* a bit of the tag changed */
    assert_false(auth_password_verify(flip, "secret"));

    /* not terminated within AUTH_HASH_MAX: refused without reading past it (ASan build) */
    char *longh = malloc(AUTH_HASH_MAX);
    memcpy(longh, h, strlen(h));
    memset(longh + strlen(h), 'A', AUTH_HASH_MAX - strlen(h));
    assert_false(auth_password_verify(longh, "secret"));
    assert_true(auth_password_needs_rehash(longh));
    free(longh);

    assert_true(auth_password_needs_rehash(NULL));
    assert_true(auth_password_needs_rehash("garbage"));
}

static void t_rehash(void **state)
{
    (void)state;
    char weak[crypto_pwhash_STRBYTES], strong[crypto_pwhash_STRBYTES];
    char old[crypto_pwhash_STRBYTES];
    assert_int_equal(crypto_pwhash_str_alg(weak, "secret", 6, crypto_pwhash_OPSLIMIT_MIN,
                                           crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    assert_true(auth_password_verify(weak, "secret"));
    assert_false(auth_password_verify(weak, "Secret"));
    assert_true(auth_password_needs_rehash(weak));
    /* more time than now also differs: the parameters are set back to the current ones */
    assert_int_equal(crypto_pwhash_str_alg(strong, "secret", 6, 3, crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    assert_true(auth_password_needs_rehash(strong));
    /* argon2i (libsodium's default before 1.0.15) still verifies, and asks to be replaced */
    assert_int_equal(crypto_pwhash_str_alg(old, "secret", 6, 3, crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2I13),
                     0);
    assert_true(auth_password_verify(old, "secret"));
    assert_true(auth_password_needs_rehash(old));
}

static void t_nfc(void **state)
{
    (void)state;
    const char *composed = "caf\xc3\xa9";    /* café, é = U+00E9 */
    const char *decomposed = "cafe\xcc\x81"; /* café, e + U+0301 */
    const char *ligature = "\xef\xac\x81x";  /* ﬁx, U+FB01: NFKC would make it "fix" */
    char h[AUTH_HASH_MAX], ref[crypto_pwhash_STRBYTES];
    /* hashed decomposed by us, verified composed by libsodium alone */
    assert_int_equal(auth_password_hash(decomposed, h, NULL), 0);
    assert_int_equal(crypto_pwhash_str_verify(h, composed, strlen(composed)), 0);
    assert_true(auth_password_verify(h, composed));
    assert_true(auth_password_verify(h, decomposed));
    assert_false(auth_password_verify(h, "cafe"));
    assert_false(auth_password_verify(h, "CAF\xc3\x89"));
    /* hashed composed by libsodium alone, verified decomposed by us */
    assert_int_equal(crypto_pwhash_str_alg(ref, composed, strlen(composed),
                                           crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    assert_true(auth_password_verify(ref, decomposed));
    /* compatibility forms are not folded */
    assert_int_equal(auth_password_hash(ligature, h, NULL), 0);
    assert_true(auth_password_verify(h, ligature));
    assert_false(auth_password_verify(h, "fix"));
}

/* ---------------------------------------------------------------- API keys */

static bool key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void t_key_shape(void **state)
{
    (void)state;
    char key[AUTH_KEY_MAX], hash[AUTH_KEY_HASH], again[AUTH_KEY_HASH];
    auth_apikey_new(key, hash);
    assert_int_equal(strlen(key), 47);
    assert_int_equal(strncmp(key, "ror_", 4), 0);
    for (size_t i = 4; i < 47; i++)
        assert_true(key_char(key[i]));
    unsigned char raw[64];
    size_t raw_len = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, key + 4, 43, NULL, &raw_len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(raw_len, 32);
    assert_int_equal(strlen(hash), 64);
    for (size_t i = 0; i < 64; i++)
        assert_true((hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f'));
    assert_int_equal(auth_apikey_hash(key, again), 0);
    assert_string_equal(hash, again);
    /* the whole key, prefix included, through BLAKE2b-256 */
    unsigned char h[32];
    char hex[65];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(hash, hex);
}

static void t_key_known(void **state)
{
    (void)state;
    /* key = "ror_" + base64url(bytes 0..31); hash from both
     *   printf %s KEY | b2sum -l 256
     *   python3 -c 'hashlib.blake2b(KEY.encode(), digest_size=32).hexdigest()' */
    char hash[AUTH_KEY_HASH];
    assert_int_equal(auth_apikey_hash("ror_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", hash), 0);
    assert_string_equal(hash, "e5c9ead4a080fce5580d90cd86310c45c62299029b2903e09e1a6d803db0c618");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void t_key_unique(void **state)
{
    (void)state;
    enum { N = 1000 };
    char(*keys)[AUTH_KEY_MAX] = calloc(N, AUTH_KEY_MAX);
    char(*hashes)[AUTH_KEY_HASH] = calloc(N, AUTH_KEY_HASH);
    for (int i = 0; i < N; i++)
        auth_apikey_new(keys[i], hashes[i]);
    qsort(keys, N, AUTH_KEY_MAX, cmp_str);
    qsort(hashes, N, AUTH_KEY_HASH, cmp_str);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(keys[i - 1], keys[i]);
        assert_string_not_equal(hashes[i - 1], hashes[i]);
    }
    free(keys);
    free(hashes);
}

static void t_key_refused(void **state)
{
    (void)state;
    const char *good = "ror_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    char hash[AUTH_KEY_HASH];
    memset(hash, 'x', sizeof hash);
    char k[80];
    assert_int_equal(auth_apikey_hash(NULL, hash), ERR_INVALID);
    assert_int_equal(auth_apikey_hash("", hash), ERR_INVALID);
    assert_int_equal(auth_apikey_hash("ror_", hash), ERR_INVALID);
    /* prefix */
    const char *prefixes[] = {"ROR_", "rar_", "ror-", "ror."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        strcpy(k, good);
        memcpy(k, prefixes[i], 4);
        assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    }
    /* length: one short, one long, surrounding white space */
    strcpy(k, good);
    k[46] = '\0';
    assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    snprintf(k, sizeof k, "%sA", good);
    assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    snprintf(k, sizeof k, "%s\n", good);
    assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    snprintf(k, sizeof k, " %s", good);
    assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    /* alphabet: standard base64, padding, space, non-ASCII */
    const char bad[] = {'+', '/', '=', ' ', '.', '\x80'};
    for (size_t i = 0; i < sizeof bad; i++) {
        strcpy(k, good);
        k[20] = bad[i];
        assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    }
    /* the last character carries 4 bits and 2 spare zero bits: "8" is canonical, "9" is not */
    strcpy(k, good);
    assert_int_equal(k[46], '8');
    k[46] = '9';
    assert_int_equal(auth_apikey_hash(k, hash), ERR_INVALID);
    assert_int_equal(hash[0], 'x'); /* untouched on failure */
    k[46] = '4';                    /* another canonical spelling: a different key, accepted */
    assert_int_equal(auth_apikey_hash(k, hash), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_round_trip), cmocka_unit_test(t_salted),
        cmocka_unit_test(t_bounds),     cmocka_unit_test(t_malformed),
        cmocka_unit_test(t_rehash),     cmocka_unit_test(t_nfc),
        cmocka_unit_test(t_key_shape),  cmocka_unit_test(t_key_known),
        cmocka_unit_test(t_key_unique), cmocka_unit_test(t_key_refused),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
