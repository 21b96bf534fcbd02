/*
 * Bearer tokens: compact JWS verification against a JWKS, with rhonabwy doing the signature.
 *
 * Everything an attacker controls is checked here before rhonabwy sees it: the token's size and
 * alphabet, a canonical base64url encoding of each part (so the bytes rhonabwy re-encodes and
 * verifies are the bytes we read), the header (alg RS256/ES256 only, no crit/zip/cty, a known
 * typ) and the key choice. Only then does rhonabwy parse the token (header keys ignored:
 * R_PARSE_NONE, so no jwk/jku/x5u/x5c from the token is ever used or fetched) and verify the
 * signature with the key we picked. Claims are read from our own strict decode of the payload.
 *
 * Thread safety: an AuthJwks is never written after auth_jwks_load; rhonabwy only deep-copies
 * the key it is given (json_deep_copy reads its source) and every other object is per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <rhonabwy.h>
#include <sodium.h>

#include "auth/auth.h"

#define JWKS_MAX_BYTES (1024 * 1024)
#define JWKS_MAX_KEYS 64
#define KID_MAX 255
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define ES256_SIG_BYTES 64

enum { KEY_RSA = 1, KEY_EC = 2 };

typedef struct JwksKey {
    jwk_t *jwk; /* public part only: kty and n/e or crv/x/y (and kid) */
    int type;   /* KEY_RSA or KEY_EC */
    char *kid;  /* NULL when the key has none */
} JwksKey;

struct AuthJwks {
    size_t n;
    JwksKey keys[];
};

/* ---------------------------------------------------------------- JWKS */

static const char *obj_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A key usable for signature verification by the algorithms we accept: its "use" and "key_ops"
 * (when present) allow verifying, its "alg" (when present) is the one alg its type maps to. */
static bool key_meant_for_verify(json_t *k, const char *alg)
{
    json_t *use = json_object_get(k, "use");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return false;
    json_t *ops = json_object_get(k, "key_ops");
    if (ops) {
        bool verify = false;
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op)
        {
            if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
                verify = true;
        }
        if (!verify)
            return false;
    }
    json_t *a = json_object_get(k, "alg");
    return !a || (json_is_string(a) && strcmp(json_string_value(a), alg) == 0);
}

/* The public part of one JWKS entry as a rhonabwy key, or NULL when it is not usable. Only the
 * members that make the public key are copied: private parts, x5u/x5c/jku (which rhonabwy would
 * fetch or trust) never reach it. */
static jwk_t *key_import(json_t *k, int *type)
{
    const char *kty = obj_str(k, "kty");
    json_t *pub = NULL;
    if (kty && strcmp(kty, "RSA") == 0 && key_meant_for_verify(k, "RS256") && obj_str(k, "n") &&
        obj_str(k, "e")) {
        pub = json_pack("{s:s,s:O,s:O}", "kty", "RSA", "n", json_object_get(k, "n"), "e",
                        json_object_get(k, "e"));
        *type = KEY_RSA;
    } else if (kty && strcmp(kty, "EC") == 0 && key_meant_for_verify(k, "ES256") &&
               obj_str(k, "crv") && strcmp(obj_str(k, "crv"), "P-256") == 0 && obj_str(k, "x") &&
               obj_str(k, "y")) {
        pub = json_pack("{s:s,s:s,s:O,s:O}", "kty", "EC", "crv", "P-256", "x",
                        json_object_get(k, "x"), "y", json_object_get(k, "y"));
        *type = KEY_EC;
    }
    if (!pub)
        return NULL;
    jwk_t *jwk = NULL;
    unsigned int bits = 0;
    unsigned char der[4096];
    size_t der_len = sizeof der;
    bool ok = r_jwk_init(&jwk) == RHN_OK && r_jwk_import_from_json_t(jwk, pub) == RHN_OK &&
              r_jwk_is_valid(jwk) == RHN_OK;
    if (ok) {
        int t = r_jwk_key_type(jwk, &bits, 0);
        ok =
            (t & R_KEY_TYPE_PUBLIC) &&
            (*type == KEY_RSA ? (t & R_KEY_TYPE_RSA) && bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS
                              : (t & R_KEY_TYPE_EC) && bits == 256);
    }
    /* gnutls must accept the key (a bad modulus or a point off the curve fails here, at load,
     * rather than as "signature invalide" on every token) */
    ok = ok && r_jwk_export_to_pem_der(jwk, R_FORMAT_DER, der, &der_len, 0) == RHN_OK;
    json_decref(pub);
    if (!ok) {
        r_jwk_free(jwk);
        return NULL;
    }
    return jwk;
}

int auth_jwks_load(const char *json, size_t len, AuthJwks **out, Diag *d)
{
    if (!json || len == 0 || !out)
        return diag_set(d, ERR_INVALID, "JWKS vide");
    if (len > JWKS_MAX_BYTES)
        return diag_set(d, ERR_INVALID, "JWKS trop volumineux (plus de %d octets)", JWKS_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        json_decref(root);
        return diag_set(d, ERR_INVALID, "JWKS invalide : objet {\"keys\": [...]} attendu");
    }
    if (json_array_size(keys) > JWKS_MAX_KEYS) {
        json_decref(root);
        return diag_set(d, ERR_INVALID, "JWKS : plus de %d clés", JWKS_MAX_KEYS);
    }
    AuthJwks *set = xcalloc(1, sizeof *set + json_array_size(keys) * sizeof set->keys[0]);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        json_t *kid = json_object_get(k, "kid");
        if (!json_is_object(k) ||
            (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                     json_string_length(kid) > KID_MAX ||
                     strlen(json_string_value(kid)) != json_string_length(kid))))
            continue;
        int type = 0;
        jwk_t *jwk = key_import(k, &type);
        if (!jwk)
            continue;
        set->keys[set->n++] = (JwksKey){jwk, type, kid ? xstrdup(json_string_value(kid)) : NULL};
    }
    json_decref(root);
    if (set->n == 0) {
        auth_jwks_free(set);
        return diag_set(d, ERR_INVALID,
                        "JWKS sans clé utilisable (clés de signature RSA ou EC P-256 attendues)");
    }
    *out = set;
    return 0;
}

void auth_jwks_free(AuthJwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        r_jwk_free(k->keys[i].jwk);
        free(k->keys[i].kid);
    }
    free(k);
}

/* ---------------------------------------------------------------- token */

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Strict base64url (no padding, unused bits zero, so one encoding per value) into out, which has
 * room for len * 3 / 4 bytes. */
static bool b64url_decode(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    return sodium_base642bin(out, len * 3 / 4 + 1, s, len, NULL, out_len, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
}

/* The one key that may have signed a token of this type and kid, or NULL with the reason. */
static const JwksKey *key_pick(const AuthJwks *set, int type, const char *kid, const char **why)
{
    const JwksKey *found = NULL;
    for (size_t i = 0; i < set->n; i++) {
        const JwksKey *k = &set->keys[i];
        if (k->type != type || (kid && (!k->kid || strcmp(k->kid, kid) != 0)))
            continue;
        if (found) {
            *why = "clé de signature ambiguë";
            return NULL;
        }
        found = k;
    }
    if (!found)
        *why = "clé de signature inconnue";
    return found;
}

/* typ values of a JWT access token (RFC 7519, RFC 9068); media types compare case-insensitively */
static bool typ_accepted(const char *typ)
{
    return strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0 ||
           strcasecmp(typ, "application/at+jwt") == 0;
}

/* Returns the reason a header is refused, or NULL. Sets *type and *kid (borrowed from hdr). */
static const char *header_check(json_t *hdr, int *type, const char **kid)
{
    const char *alg = obj_str(hdr, "alg");
    if (alg && strcmp(alg, "RS256") == 0)
        *type = KEY_RSA;
    else if (alg && strcmp(alg, "ES256") == 0)
        *type = KEY_EC;
    else
        return "algorithme refusé";
    /* crit names extensions we would have to understand; zip would inflate the payload (a
     * bomb); cty "JWT" makes rhonabwy treat the payload as a nested token; enc is a JWE */
    if (json_object_get(hdr, "crit") || json_object_get(hdr, "zip") ||
        json_object_get(hdr, "cty") || json_object_get(hdr, "enc") || json_object_get(hdr, "b64"))
        return "en-tête de jeton non pris en charge";
    json_t *typ = json_object_get(hdr, "typ");
    if (typ && (!json_is_string(typ) || !typ_accepted(json_string_value(typ))))
        return "type de jeton refusé";
    json_t *k = json_object_get(hdr, "kid");
    if (k && (!json_is_string(k) || json_string_length(k) == 0 || json_string_length(k) > KID_MAX ||
              strlen(json_string_value(k)) != json_string_length(k)))
        return "identifiant de clé (kid) invalide";
    *kid = k ? json_string_value(k) : NULL;
    return NULL;
}

/* ---------------------------------------------------------------- claims */

/* A NumericDate (integer or not, RFC 7519 §2) as whole seconds, rounded towards the strict side
 * (`up` for nbf/iat, down for exp). False when it is not a number or out of range. */
static bool numeric_date(json_t *v, bool up, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    double x = json_real_value(v);
    if (!isfinite(x) || x > 1e15 || x < -1e15)
        return false;
    *out = (int64_t)(up ? ceil(x) : floor(x));
    return true;
}

/* A string claim: false when present with another type or with an embedded NUL. *s is NULL when
 * absent. */
static bool claim_str(json_t *claims, const char *name, const char **s)
{
    json_t *v = json_object_get(claims, name);
    *s = NULL;
    if (!v)
        return true;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return false;
    *s = json_string_value(v);
    return true;
}

/* Copy at most cap - 1 bytes, cutting before a UTF-8 continuation byte. */
static void copy_truncated(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool copy_exact(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool aud_contains(json_t *aud, const char *want)
{
    size_t wl = strlen(want);
    if (json_is_string(aud))
        return json_string_length(aud) == wl && memcmp(json_string_value(aud), want, wl) == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a)
    {
        if (json_is_string(a) && json_string_length(a) == wl &&
            memcmp(json_string_value(a), want, wl) == 0)
            return true;
    }
    return false;
}

/* scope as a space-separated string; some providers send "scp" (array or string) instead */
static int claims_scope(json_t *claims, char *dst, size_t cap, Diag *d)
{
    const char *s;
    if (!claim_str(claims, "scope", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « scope » invalide");
    json_t *scp = json_object_get(claims, "scp");
    dst[0] = '\0';
    if (!s && json_is_string(scp) && !claim_str(claims, "scp", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « scp » invalide");
    if (s) {
        if (!copy_exact(dst, cap, s))
            return diag_set(d, ERR_UNAUTHORIZED, "revendication « scope » trop longue");
        return 0;
    }
    if (!scp)
        return 0;
    if (!json_is_array(scp))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « scp » invalide");
    size_t len = 0, i;
    json_t *v;
    json_array_foreach(scp, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            strchr(json_string_value(v), ' '))
            return diag_set(d, ERR_UNAUTHORIZED, "revendication « scp » invalide");
        size_t n = json_string_length(v);
        if (len + (len > 0) + n >= cap)
            return diag_set(d, ERR_UNAUTHORIZED, "revendication « scp » trop longue");
        if (len > 0)
            dst[len++] = ' ';
        memcpy(dst + len, json_string_value(v), n + 1);
        len += n;
    }
    return 0;
}

static int claims_check(json_t *claims, const AuthJwtPolicy *p, AuthClaims *c, Diag *d)
{
    if (!json_is_object(claims))
        return diag_set(d, ERR_UNAUTHORIZED, "jeton mal formé (revendications)");
    json_t *v = json_object_get(claims, "exp");
    if (!v)
        return diag_set(d, ERR_UNAUTHORIZED, "jeton sans date d'expiration");
    if (!numeric_date(v, false, &c->exp))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « exp » invalide");
    if (c->exp <= p->now_s - p->leeway_s)
        return diag_set(d, ERR_UNAUTHORIZED, "jeton expiré");
    int64_t nbf;
    if ((v = json_object_get(claims, "nbf")) && !numeric_date(v, true, &nbf))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « nbf » invalide");
    if (v && nbf > p->now_s + p->leeway_s)
        return diag_set(d, ERR_UNAUTHORIZED, "jeton pas encore valide");
    c->iat = 0;
    if ((v = json_object_get(claims, "iat")) && !numeric_date(v, true, &c->iat))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « iat » invalide");
    if (v && c->iat > p->now_s + p->leeway_s)
        return diag_set(d, ERR_UNAUTHORIZED, "jeton émis dans le futur");

    v = json_object_get(claims, "iss");
    size_t il = strlen(p->issuer);
    if (!json_is_string(v) || json_string_length(v) != il ||
        memcmp(json_string_value(v), p->issuer, il) != 0)
        return diag_set(d, ERR_UNAUTHORIZED, "émetteur inattendu");
    if (!aud_contains(json_object_get(claims, "aud"), p->audience))
        return diag_set(d, ERR_UNAUTHORIZED, "audience inattendue");

    const char *s;
    if (!claim_str(claims, "sub", &s) || !s || !*s)
        return diag_set(d, ERR_UNAUTHORIZED, "sujet (sub) absent ou invalide");
    if (!copy_exact(c->subject, sizeof c->subject, s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « sub » trop longue");
    int rc = claims_scope(claims, c->scope, sizeof c->scope, d);
    if (rc)
        return rc;
    if (!claim_str(claims, "client_id", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « client_id » invalide");
    if (!s && !claim_str(claims, "azp", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « azp » invalide");
    if (!copy_exact(c->client_id, sizeof c->client_id, s ? s : ""))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « client_id » trop longue");
    if (!claim_str(claims, "name", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « name » invalide");
    if (!s && !claim_str(claims, "preferred_username", &s))
        return diag_set(d, ERR_UNAUTHORIZED, "revendication « preferred_username » invalide");
    copy_truncated(c->name, sizeof c->name, s ? s : "");
    return 0;
}

/* ---------------------------------------------------------------- verification */

static int unauthorized(Diag *d, const char *why)
{
    return diag_set(d, ERR_UNAUTHORIZED, "%s", why);
}

int auth_jwt_verify(const AuthJwks *keys, const AuthJwtPolicy *p, const char *token,
                    AuthClaims *out, Diag *d)
{
    if (!keys || !p || !out || !p->issuer || !*p->issuer || !p->audience || !*p->audience ||
        p->leeway_s < 0 || p->leeway_s > AUTH_JWT_MAX_LEEWAY)
        return diag_set(d, ERR_INVALID, "vérification de jeton mal paramétrée");
    if (!token || !*token)
        return unauthorized(d, "jeton absent");
    size_t len = strnlen(token, AUTH_JWT_MAX + 1);
    if (len > AUTH_JWT_MAX)
        return unauthorized(d, "jeton trop long");

    /* header.payload.signature, base64url only */
    const char *dot[2];
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (ndots == 2)
                return unauthorized(d, "jeton mal formé");
            dot[ndots++] = token + i;
        } else if (!b64url_char(c)) {
            return unauthorized(d, "jeton mal formé");
        }
    }
    if (ndots != 2 || dot[0] == token || dot[1] == dot[0] + 1)
        return unauthorized(d, "jeton mal formé");
    size_t hlen = (size_t)(dot[0] - token), plen = (size_t)(dot[1] - dot[0] - 1);
    const char *sig = dot[1] + 1;
    size_t slen = len - (size_t)(sig - token);

    int rc = ERR_UNAUTHORIZED;
    unsigned char *buf = xmalloc(len); /* room for any one decoded part, NUL included */
    json_t *hdr = NULL, *claims = NULL;
    jws_t *jws = NULL;
    size_t n = 0;
    const char *why = "jeton mal formé";
    if (!b64url_decode(token, hlen, buf, &n))
        goto fail;
    hdr = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr))
        goto fail;
    int type = 0;
    const char *kid = NULL;
    if ((why = header_check(hdr, &type, &kid)))
        goto fail;
    const JwksKey *key = key_pick(keys, type, kid, &why);
    if (!key)
        goto fail;
    /* the signature must be a canonical encoding too: rhonabwy decodes it leniently */
    why = "signature invalide";
    if (slen == 0 || !b64url_decode(sig, slen, buf, &n) || (type == KEY_EC && n != ES256_SIG_BYTES))
        goto fail;
    why = "jeton mal formé";
    if (!b64url_decode(dot[0] + 1, plen, buf, &n))
        goto fail;

    if (r_jws_init(&jws) != RHN_OK)
        goto fail;
    if (r_jws_advanced_parsen(jws, token, len, R_PARSE_NONE, 0) != RHN_OK ||
        r_jws_get_alg(jws) != (type == KEY_RSA ? R_JWA_ALG_RS256 : R_JWA_ALG_ES256))
        goto fail;
    why = "signature invalide";
    if (r_jws_verify_signature(jws, key->jwk, 0) != RHN_OK)
        goto fail;

    why = NULL;
    claims = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    AuthClaims c;
    memset(&c, 0, sizeof c);
    rc = claims_check(claims, p, &c, d);
    if (rc == 0)
        *out = c;
fail:
    if (why)
        rc = unauthorized(d, why);
    r_jws_free(jws);
    json_decref(claims);
    json_decref(hdr);
    free(buf);
    return rc;
}
