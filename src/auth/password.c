/* password.c — argon2id password hashes and API keys (libsodium).
 *
 * Passwords are normalised to Unicode NFC before hashing: the same French word typed on two
 * systems may arrive precomposed ("é", U+00E9, Windows/Linux AZERTY) or decomposed ("e" +
 * U+0301, some macOS and mobile input paths, copy-paste from NFD text), and browsers send what
 * they were given. Only canonical equivalence is folded (RFC 8265 OpaqueString also uses NFC):
 * NFKC would merge visibly distinct characters (ligatures, superscripts, full-width forms), and
 * case is kept. The choice is baked into every stored hash: changing it later invalidates the
 * passwords that contain the characters concerned. */
#include "auth/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#define PASSWORD_MAX 1024

/* libsodium's "interactive" argon2id limits: t=2, 64 MiB, measured 56 ms on the 2-vCPU target
 * (STACK-NOTES). Above OWASP's argon2id floor (19 MiB, t=2) and short enough for a login. */
#define PWHASH_OPS crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PWHASH_MEM crypto_pwhash_MEMLIMIT_INTERACTIVE

#define KEY_PREFIX "ror_"
#define KEY_PREFIX_LEN 4
#define KEY_BYTES 32
#define KEY_B64_LEN 43 /* ceil(32 * 4 / 3), no padding */
#define KEY_LEN (KEY_PREFIX_LEN + KEY_B64_LEN)

_Static_assert(AUTH_HASH_MAX >= crypto_pwhash_STRBYTES, "an encoded argon2id hash must fit");
_Static_assert(AUTH_KEY_MAX > KEY_LEN, "an API key must fit");
_Static_assert(sodium_base64_ENCODED_LEN(KEY_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   KEY_B64_LEN + 1,
               "base64url of 32 bytes is 43 characters");
_Static_assert(AUTH_KEY_HASH == 2 * crypto_generichash_BYTES + 1, "hex of a 32-byte BLAKE2b");

/* Each hash or verification holds 64 MiB for ~56 ms: with 8 HTTP workers logging in at once
 * that is 512 MiB for no gain on 2 cores. At most one computation per core runs; the others
 * wait their turn (the CPU would have made them wait anyway). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_busy;
static int gate_limit = 2; /* set from the number of cores by auth_init */

static void gate_enter(void)
{
    pthread_mutex_lock(&gate_lock);
    while (gate_busy >= gate_limit)
        pthread_cond_wait(&gate_cond, &gate_lock);
    gate_busy++;
    pthread_mutex_unlock(&gate_lock);
}

static void gate_leave(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_busy--;
    pthread_cond_signal(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

int auth_init(void)
{
    /* sodium_init is thread-safe and returns 1 when already done. */
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_mutex_lock(&gate_lock);
    gate_limit = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
    pthread_mutex_unlock(&gate_lock);
    return 0;
}

/* The NFC form of a password, in a buffer the caller wipes and frees with nfc_free (the
 * utf8proc_map convenience would leave an unwiped copy behind). NULL when the password is
 * empty, too long or not UTF-8; *why says which, in French. */
static char *nfc_dup(const char *password, size_t *len, size_t *size, const char **why)
{
    size_t n = password ? strnlen(password, PASSWORD_MAX + 1) : 0;
    if (n == 0) {
        *why = "mot de passe vide";
        return NULL;
    }
    if (n > PASSWORD_MAX) {
        *why = "mot de passe trop long (1024 octets au plus)";
        return NULL;
    }
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)password;
    utf8proc_ssize_t cps = utf8proc_decompose(s, (utf8proc_ssize_t)n, NULL, 0, opt);
    if (cps < 0) {
        *why = "mot de passe : UTF-8 invalide";
        return NULL;
    }
    /* One code point per int32 slot; reencode writes the UTF-8 (never longer) in place. */
    *size = ((size_t)cps + 1) * sizeof(utf8proc_int32_t);
    utf8proc_int32_t *buf = xmalloc(*size);
    utf8proc_ssize_t got = utf8proc_decompose(s, (utf8proc_ssize_t)n, buf, cps, opt);
    utf8proc_ssize_t bytes = got == cps ? utf8proc_reencode(buf, got, opt) : -1;
    if (bytes < 0) {
        sodium_memzero(buf, *size);
        free(buf);
        *why = "mot de passe : normalisation Unicode impossible";
        return NULL;
    }
    *len = (size_t)bytes;
    return (char *)buf;
}

/* The whole code point buffer held the password, not only its UTF-8 prefix. */
static void nfc_free(char *p, size_t size)
{
    sodium_memzero(p, size);
    free(p);
}

int auth_password_hash(const char *password, char out[AUTH_HASH_MAX], Diag *d)
{
    size_t len = 0, size = 0;
    const char *why = NULL;
    char *nfc = nfc_dup(password, &len, &size, &why);
    if (!nfc)
        return diag_set(d, ERR_INVALID, "%s", why);
    char tmp[crypto_pwhash_STRBYTES];
    gate_enter();
    int rc =
        crypto_pwhash_str_alg(tmp, nfc, len, PWHASH_OPS, PWHASH_MEM, crypto_pwhash_ALG_ARGON2ID13);
    gate_leave();
    nfc_free(nfc, size);
    if (rc != 0)
        return diag_set(d, ERR_INTERNAL, "hachage du mot de passe impossible (mémoire)");
    memcpy(out, tmp, sizeof tmp);
    return 0;
}

bool auth_password_verify(const char *hash, const char *password)
{
    if (!hash || strnlen(hash, AUTH_HASH_MAX) >= AUTH_HASH_MAX)
        return false;
    size_t len = 0, size = 0;
    const char *why = NULL;
    char *nfc = nfc_dup(password, &len, &size, &why);
    if (!nfc)
        return false;
    gate_enter();
    int rc = crypto_pwhash_str_verify(hash, nfc, len);
    gate_leave();
    nfc_free(nfc, size);
    return rc == 0;
}

bool auth_password_needs_rehash(const char *hash)
{
    if (!hash || strnlen(hash, AUTH_HASH_MAX) >= AUTH_HASH_MAX)
        return true;
    /* 1: other parameters; -1: not an argon2id hash (argon2i, malformed). Both call for a new
     * hash, which the caller can only make after a successful verification anyway. */
    return crypto_pwhash_str_needs_rehash(hash, PWHASH_OPS, PWHASH_MEM) != 0;
}

void auth_apikey_new(char key[AUTH_KEY_MAX], char hash[AUTH_KEY_HASH])
{
    unsigned char raw[KEY_BYTES];
    randombytes_buf(raw, sizeof raw);
    memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
    sodium_bin2base64(key + KEY_PREFIX_LEN, AUTH_KEY_MAX - KEY_PREFIX_LEN, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    int rc = auth_apikey_hash(key, hash);
    (void)rc; /* a key we just made always has the shape */
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int auth_apikey_hash(const char *key, char hash[AUTH_KEY_HASH])
{
    if (!key || strnlen(key, KEY_LEN + 1) != KEY_LEN || memcmp(key, KEY_PREFIX, KEY_PREFIX_LEN))
        return ERR_INVALID;
    /* Not left to the decoder: libsodium 1.0.18's sodium_base642bin takes any byte >= 0x80
     * for '_' (tested). */
    for (size_t i = KEY_PREFIX_LEN; i < KEY_LEN; i++)
        if (!b64url_char(key[i]))
            return ERR_INVALID;
    /* Decoding also refuses a non-canonical last character (its 2 spare bits set), so one key
     * has exactly one spelling. */
    unsigned char raw[KEY_BYTES];
    size_t raw_len = 0;
    const char *end = NULL;
    int rc = sodium_base642bin(raw, sizeof raw, key + KEY_PREFIX_LEN, KEY_B64_LEN, NULL, &raw_len,
                               &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    if (rc != 0 || raw_len != KEY_BYTES || end != key + KEY_LEN)
        return ERR_INVALID;
    /* A fast unsalted hash is enough: the key carries 256 random bits, so there is nothing to
     * guess, and it must be deterministic to be looked up. */
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, KEY_LEN, NULL, 0);
    sodium_bin2hex(hash, AUTH_KEY_HASH, h, sizeof h);
    return 0;
}
