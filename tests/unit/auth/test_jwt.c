/* auth: bearer-token verification against keys generated here (RSA 2048, EC P-256), and every way
 * a token is refused. Tokens are signed with rhonabwy or assembled by hand (unsigned, HMAC with
 * the public key as secret, tampered parts); each refusal checks the code, the reason, and that
 * the claims were left untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rhonabwy.h>
#include <sodium.h>

#include "auth/auth.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */
#define ISS "https://idp.example.org/realms/ror"
#define AUD "ror-api"

static jwk_t *rsa_priv, *rsa_pub;     /* kid "rsa1" */
static jwk_t *other_priv, *other_pub; /* another RSA key, also kid "rsa1" */
static jwk_t *ec_priv, *ec_pub;       /* kid "ec1" */
static AuthJwks *keys;                /* rsa_pub + ec_pub */

static const AuthJwtPolicy policy = {ISS, AUD, NOW, 0};

/* ---------------------------------------------------------------- helpers */

static char *jwks_of(jwk_t *a, jwk_t *b)
{
    json_t *ks = json_array();
    json_array_append_new(ks, r_jwk_export_to_json_t(a));
    if (b)
        json_array_append_new(ks, r_jwk_export_to_json_t(b));
    json_t *root = json_pack("{s:o}", "keys", ks);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static AuthJwks *load(const char *json)
{
    AuthJwks *k = NULL;
    Diag d = {{0}, {0}};
    assert_int_equal(auth_jwks_load(json, strlen(json), &k, &d), 0);
    assert_non_null(k);
    return k;
}

static json_t *claims_base(void)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "iss", ISS, "aud", AUD, "sub", "user-42",
                     "exp", (json_int_t)NOW + 300, "iat", (json_int_t)NOW - 5, "scope",
                     "openid system/Organization.read", "client_id", "ror-front", "name",
                     "Dr Alice Martin");
}

/* A token signed with `key` and `alg`; `header` (JSON text or NULL) is merged into the protected
 * header; the key's kid is added when the header names none. Takes `claims`. Caller frees. */
static char *sign(jwk_t *key, jwa_alg alg, const char *header, json_t *claims)
{
    jws_t *jws = NULL;
    assert_int_equal(r_jws_init(&jws), RHN_OK);
    if (header)
        assert_int_equal(r_jws_set_full_header_json_str(jws, header), RHN_OK);
    assert_int_equal(r_jws_set_alg(jws, alg), RHN_OK);
    char *payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    assert_int_equal(r_jws_set_payload(jws, (unsigned char *)payload, strlen(payload)), RHN_OK);
    char *t = r_jws_serialize(jws, key, 0);
    assert_non_null(t);
    char *out = strdup(t);
    r_free(t);
    free(payload);
    r_jws_free(jws);
    return out;
}

static char *b64(const void *p, size_t n)
{
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(cap);
    sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/* header.payload.sig from raw parts (sig may be empty). Caller frees. */
static char *assemble(const char *header, const char *payload, const char *sig_b64)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + strlen(sig_b64) + 3;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.%s", h, p, sig_b64);
    free(h);
    free(p);
    return t;
}

/* The token's part i (0 header, 1 payload, 2 signature) as a new string. */
static char *part(const char *token, int i)
{
    const char *s = token;
    for (int k = 0; k < i; k++)
        s = strchr(s, '.') + 1;
    const char *e = strchr(s, '.');
    return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

/* The token with part i replaced. Caller frees. */
static char *replace_part(const char *token, int i, const char *with)
{
    char *p[3];
    for (int k = 0; k < 3; k++)
        p[k] = k == i ? strdup(with) : part(token, k);
    size_t n = strlen(p[0]) + strlen(p[1]) + strlen(p[2]) + 3;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.%s", p[0], p[1], p[2]);
    for (int k = 0; k < 3; k++)
        free(p[k]);
    return t;
}

static char *decoded_part(const char *token, int i)
{
    char *b = part(token, i);
    size_t cap = strlen(b) + 1, n = 0;
    char *out = calloc(1, cap);
    assert_int_equal(sodium_base642bin((unsigned char *)out, cap, b, strlen(b), NULL, &n, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    free(b);
    return out;
}

static int verify_with(const AuthJwks *k, const AuthJwtPolicy *p, const char *token, AuthClaims *c,
                       Diag *d)
{
    memset(d, 0, sizeof *d);
    return auth_jwt_verify(k, p, token, c, d);
}

/* Refused with ERR_UNAUTHORIZED, `why` in the reason, and the claims untouched. */
static void refused_with(const AuthJwks *k, const AuthJwtPolicy *p, const char *token,
                         const char *why)
{
    AuthClaims c, before;
    memset(&c, 0x5a, sizeof c);
    before = c;
    Diag d;
    int rc = verify_with(k, p, token, &c, &d);
    if (rc != ERR_UNAUTHORIZED || !strstr(d.msg, why))
        print_error("expected refusal \"%s\", got %d \"%s\"\n", why, rc, d.msg);
    assert_int_equal(rc, ERR_UNAUTHORIZED);
    assert_non_null(strstr(d.msg, why));
    assert_memory_equal(&c, &before, sizeof c);
}

static void refused(const char *token, const char *why)
{
    refused_with(keys, &policy, token, why);
}

static void accepted_with(const AuthJwks *k, const AuthJwtPolicy *p, const char *token,
                          AuthClaims *c)
{
    Diag d;
    int rc = verify_with(k, p, token, c, &d);
    if (rc != 0)
        print_error("expected acceptance, got %d \"%s\"\n", rc, d.msg);
    assert_int_equal(rc, 0);
}

static void accepted(const char *token, AuthClaims *c)
{
    accepted_with(keys, &policy, token, c);
}

/* One claim changed (NULL value: removed), signed RS256 with the good key, verified. */
static char *rs256_with(const char *name, json_t *value)
{
    json_t *c = claims_base();
    if (value)
        json_object_set_new(c, name, value);
    else
        json_object_del(c, name);
    return sign(rsa_priv, R_JWA_ALG_RS256, "{\"typ\":\"JWT\"}", c);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (r_jwk_init(&rsa_priv) || r_jwk_init(&rsa_pub) || r_jwk_init(&other_priv) ||
        r_jwk_init(&other_pub) || r_jwk_init(&ec_priv) || r_jwk_init(&ec_pub))
        return -1;
    if (r_jwk_generate_key_pair(rsa_priv, rsa_pub, R_KEY_TYPE_RSA, 2048, "rsa1") ||
        r_jwk_generate_key_pair(other_priv, other_pub, R_KEY_TYPE_RSA, 2048, "rsa1") ||
        r_jwk_generate_key_pair(ec_priv, ec_pub, R_KEY_TYPE_EC, 256, "ec1"))
        return -1;
    char *j = jwks_of(rsa_pub, ec_pub);
    Diag d = {{0}, {0}};
    int rc = auth_jwks_load(j, strlen(j), &keys, &d);
    free(j);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    auth_jwks_free(keys);
    r_jwk_free(rsa_priv);
    r_jwk_free(rsa_pub);
    r_jwk_free(other_priv);
    r_jwk_free(other_pub);
    r_jwk_free(ec_priv);
    r_jwk_free(ec_pub);
    return 0;
}

/* ---------------------------------------------------------------- accepted */

static void t_rs256_valid(void **state)
{
    (void)state;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, "{\"typ\":\"JWT\"}", claims_base());
    AuthClaims c;
    memset(&c, 0x5a, sizeof c);
    accepted(t, &c);
    assert_string_equal(c.subject, "user-42");
    assert_string_equal(c.scope, "openid system/Organization.read");
    assert_string_equal(c.client_id, "ror-front");
    assert_string_equal(c.name, "Dr Alice Martin");
    assert_int_equal(c.exp, NOW + 300);
    assert_int_equal(c.iat, NOW - 5);
    free(t);
}

static void t_es256_valid(void **state)
{
    (void)state;
    /* aud as an array holding ours, azp for client_id, preferred_username for name, no iat, no
     * scope, typ at+jwt (RFC 9068) */
    json_t *cl = claims_base();
    json_object_set_new(cl, "aud", json_pack("[s,s]", "account", AUD));
    json_object_del(cl, "client_id");
    json_object_del(cl, "name");
    json_object_del(cl, "iat");
    json_object_del(cl, "scope");
    json_object_set_new(cl, "azp", json_string("ror-back"));
    json_object_set_new(cl, "preferred_username", json_string("amartin"));
    char *t = sign(ec_priv, R_JWA_ALG_ES256, "{\"typ\":\"at+jwt\"}", cl);
    AuthClaims c;
    accepted(t, &c);
    assert_string_equal(c.subject, "user-42");
    assert_string_equal(c.client_id, "ror-back");
    assert_string_equal(c.name, "amartin");
    assert_string_equal(c.scope, "");
    assert_int_equal(c.iat, 0);
    assert_int_equal(c.exp, NOW + 300);
    free(t);
}

static void t_no_kid(void **state)
{
    (void)state;
    /* no kid: the only key of the token's type is used */
    jwk_t *anon = r_jwk_copy(rsa_priv);
    assert_int_equal(r_jwk_delete_property_str(anon, "kid"), RHN_OK);
    char *t = sign(anon, R_JWA_ALG_RS256, NULL, claims_base());
    char *h = decoded_part(t, 0);
    assert_null(strstr(h, "kid"));
    AuthClaims c;
    accepted(t, &c);
    assert_string_equal(c.subject, "user-42");
    /* two RSA keys (same kid "rsa1"): ambiguous with or without kid */
    char *j = jwks_of(rsa_pub, other_pub);
    AuthJwks *two = load(j);
    refused_with(two, &policy, t, "ambiguë");
    char *tk = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    refused_with(two, &policy, tk, "ambiguë");
    auth_jwks_free(two);
    free(j);
    free(tk);
    free(h);
    free(t);
    r_jwk_free(anon);
}

/* ---------------------------------------------------------------- time and audience */

static void t_expired(void **state)
{
    (void)state;
    char *t = rs256_with("exp", json_integer(NOW - 1));
    refused(t, "jeton expiré");
    free(t);
    t = rs256_with("exp", json_integer(NOW)); /* exp must be strictly after now */
    refused(t, "jeton expiré");
    free(t);
    t = rs256_with("exp", NULL);
    refused(t, "expiration");
    free(t);
    t = rs256_with("exp", json_string("2099-01-01"));
    refused(t, "« exp » invalide");
    free(t);
    /* NumericDate may be fractional */
    t = rs256_with("exp", json_real(NOW + 0.5));
    refused(t, "jeton expiré");
    free(t);
    t = rs256_with("exp", json_real(NOW + 1.5));
    AuthClaims c;
    accepted(t, &c);
    assert_int_equal(c.exp, NOW + 1);
    free(t);
}

static void t_not_yet_valid(void **state)
{
    (void)state;
    char *t = rs256_with("nbf", json_integer(NOW + 60));
    refused(t, "pas encore valide");
    free(t);
    t = rs256_with("iat", json_integer(NOW + 60));
    refused(t, "émis dans le futur");
    free(t);
    t = rs256_with("nbf", json_integer(NOW)); /* nbf == now is valid */
    AuthClaims c;
    accepted(t, &c);
    free(t);
    t = rs256_with("nbf", json_string("now"));
    refused(t, "« nbf » invalide");
    free(t);
}

static void t_leeway(void **state)
{
    (void)state;
    AuthJwtPolicy p = policy;
    AuthClaims c;
    char *t = rs256_with("exp", json_integer(NOW - 10));
    p.leeway_s = 30;
    accepted_with(keys, &p, t, &c);
    p.leeway_s = 10; /* exp == now - leeway: expired */
    refused_with(keys, &p, t, "jeton expiré");
    p.leeway_s = 11;
    accepted_with(keys, &p, t, &c);
    free(t);
    t = rs256_with("nbf", json_integer(NOW + 20));
    p.leeway_s = 20;
    accepted_with(keys, &p, t, &c);
    p.leeway_s = 19;
    refused_with(keys, &p, t, "pas encore valide");
    free(t);
    t = rs256_with("iat", json_integer(NOW + 20));
    p.leeway_s = 20;
    accepted_with(keys, &p, t, &c);
    p.leeway_s = 19;
    refused_with(keys, &p, t, "émis dans le futur");
    /* the leeway is bounded */
    Diag d;
    memset(&c, 0x5a, sizeof c);
    AuthClaims before = c;
    p.leeway_s = AUTH_JWT_MAX_LEEWAY + 1;
    assert_int_equal(verify_with(keys, &p, t, &c, &d), ERR_INVALID);
    p.leeway_s = -1;
    assert_int_equal(verify_with(keys, &p, t, &c, &d), ERR_INVALID);
    assert_memory_equal(&c, &before, sizeof c);
    free(t);
}

static void t_issuer(void **state)
{
    (void)state;
    char *t = rs256_with("iss", json_string("https://evil.example.org/realms/ror"));
    refused(t, "émetteur inattendu");
    free(t);
    t = rs256_with("iss", json_string(ISS "/"));
    refused(t, "émetteur inattendu");
    free(t);
    t = rs256_with("iss", NULL);
    refused(t, "émetteur inattendu");
    free(t);
    /* an embedded NUL must not make a prefix match */
    t = rs256_with("iss", json_stringn(ISS "\0x", sizeof ISS + 1));
    refused(t, "jeton mal formé");
    free(t);
}

static void t_audience(void **state)
{
    (void)state;
    char *t = rs256_with("aud", json_string("other-api"));
    refused(t, "audience inattendue");
    free(t);
    t = rs256_with("aud", json_pack("[s,s]", "other-api", "account"));
    refused(t, "audience inattendue");
    free(t);
    t = rs256_with("aud", NULL);
    refused(t, "audience inattendue");
    free(t);
    t = rs256_with("aud", json_pack("[i,s]", 1, AUD));
    AuthClaims c;
    accepted(t, &c);
    free(t);
}

/* ---------------------------------------------------------------- signature and algorithm */

static void t_other_key_same_kid(void **state)
{
    (void)state;
    char *t = sign(other_priv, R_JWA_ALG_RS256, NULL, claims_base());
    char *h = decoded_part(t, 0);
    assert_non_null(strstr(h, "\"kid\":\"rsa1\""));
    refused(t, "signature invalide");
    free(h);
    free(t);
    /* a key carried in the header is never trusted */
    json_t *jwk = r_jwk_export_to_json_t(other_pub);
    json_t *hdr = json_pack("{s:o}", "jwk", jwk);
    char *hs = json_dumps(hdr, JSON_COMPACT);
    t = sign(other_priv, R_JWA_ALG_RS256, hs, claims_base());
    refused(t, "signature invalide");
    free(t);
    json_decref(hdr);
    free(hs);
}

static void t_alg_none(void **state)
{
    (void)state;
    json_t *cl = claims_base();
    char *payload = json_dumps(cl, JSON_COMPACT), *t;
    json_decref(cl);
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                             "{\"alg\":\"none\",\"kid\":\"rsa1\"}",
                             "{\"alg\":\"None\"}",
                             "{\"alg\":\"NONE\"}",
                             "{\"typ\":\"JWT\"}",
                             "{\"alg\":null}",
                             "{\"alg\":\"\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        t = assemble(headers[i], payload, "");
        refused(t, "algorithme refusé");
        free(t);
        /* with some signature bytes too */
        t = assemble(headers[i], payload, "c2lnbmF0dXJl");
        refused(t, "algorithme refusé");
        free(t);
    }
    free(payload);
}

static void t_hs256_key_confusion(void **state)
{
    (void)state;
    /* the classic attack: HMAC keyed with the verifier's public key (PEM, then JWK JSON) */
    unsigned char pem[4096];
    size_t pem_len = sizeof pem;
    assert_int_equal(r_jwk_export_to_pem_der(rsa_pub, R_FORMAT_PEM, pem, &pem_len, 0), RHN_OK);
    char *json = r_jwk_export_to_json_str(rsa_pub, 0);
    const struct {
        const unsigned char *p;
        size_t n;
    } secrets[] = {{pem, pem_len}, {(const unsigned char *)json, strlen(json)}};
    for (size_t i = 0; i < 2; i++) {
        jwk_t *h = NULL;
        assert_int_equal(r_jwk_init(&h), RHN_OK);
        assert_int_equal(r_jwk_import_from_symmetric_key(h, secrets[i].p, secrets[i].n), RHN_OK);
        char *t = sign(h, R_JWA_ALG_HS256, "{\"kid\":\"rsa1\",\"typ\":\"JWT\"}", claims_base());
        char *hd = decoded_part(t, 0);
        assert_non_null(strstr(hd, "HS256"));
        refused(t, "algorithme refusé");
        free(hd);
        free(t);
        r_jwk_free(h);
    }
    r_free(json);
    /* other real algorithms, validly signed by our own keys, are refused too */
    char *t = sign(rsa_priv, R_JWA_ALG_RS384, NULL, claims_base());
    refused(t, "algorithme refusé");
    free(t);
    t = sign(rsa_priv, R_JWA_ALG_PS256, NULL, claims_base());
    refused(t, "algorithme refusé");
    free(t);
}

static void t_tampered_payload(void **state)
{
    (void)state;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    AuthClaims c;
    accepted(t, &c);
    /* one character of the claims changed, re-encoded */
    char *p = decoded_part(t, 1);
    char *at = strstr(p, "user-42");
    assert_non_null(at);
    at[6] = '3';
    char *pb = b64(p, strlen(p));
    char *t2 = replace_part(t, 1, pb);
    refused(t2, "signature invalide");
    free(t2);
    free(pb);
    free(p);
    /* one character of the encoded payload changed (the JSON may no longer parse: still a
     * signature failure, since claims are read only after the signature) */
    char *raw = part(t, 1);
    raw[strlen(raw) / 2] = raw[strlen(raw) / 2] == 'A' ? 'B' : 'A';
    t2 = replace_part(t, 1, raw);
    refused(t2, "signature invalide");
    free(t2);
    free(raw);
    /* same for the ES256 signature of an ES256 token */
    char *te = sign(ec_priv, R_JWA_ALG_ES256, NULL, claims_base());
    raw = part(te, 1);
    raw[10] = raw[10] == 'x' ? 'y' : 'x';
    t2 = replace_part(te, 1, raw);
    refused(t2, "signature invalide");
    free(t2);
    free(raw);
    /* and one character of the signature */
    raw = part(te, 2);
    raw[5] = raw[5] == 'Q' ? 'R' : 'Q';
    t2 = replace_part(te, 2, raw);
    refused(t2, "signature invalide");
    free(t2);
    free(raw);
    free(te);
    free(t);
}

static void t_non_canonical_base64(void **state)
{
    (void)state;
    /* a payload whose length leaves unused bits in the last character: setting one of them
     * decodes to the same bytes, but is another token (and rhonabwy would verify it) */
    json_t *cl = claims_base();
    char *t = NULL;
    for (int pad = 0; pad < 3; pad++) {
        json_object_set_new(cl, "x", json_stringn("xxx", (size_t)pad));
        char *js = json_dumps(cl, JSON_COMPACT);
        size_t n = strlen(js);
        free(js);
        if (n % 3 != 0)
            break;
    }
    t = sign(rsa_priv, R_JWA_ALG_RS256, NULL, cl);
    AuthClaims c;
    accepted(t, &c);
    char *raw = part(t, 1);
    size_t n = strlen(raw);
    assert_true(n % 4 == 2 || n % 4 == 3);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *pos = strchr(alphabet, raw[n - 1]);
    raw[n - 1] = alphabet[(pos - alphabet) + 1];
    char *t2 = replace_part(t, 1, raw);
    refused(t2, "jeton mal formé");
    /* refused as malformed before the signature, not later on the claims */
    Diag d;
    assert_int_equal(verify_with(keys, &policy, t2, &c, &d), ERR_UNAUTHORIZED);
    assert_string_equal(d.msg, "jeton mal formé");
    free(t2);
    free(raw);
    free(t);
}

static void t_es256_padded_signature(void **state)
{
    (void)state;
    /* r and s left-padded to 48 bytes each: the same numbers, so the same signature to gnutls,
     * and rhonabwy takes 96-byte signatures (ES384's size): another encoding of a valid token */
    char *t = sign(ec_priv, R_JWA_ALG_ES256, NULL, claims_base());
    char *sb = part(t, 2);
    unsigned char sig[64], padded[96] = {0};
    size_t n = 0;
    assert_int_equal(sodium_base642bin(sig, sizeof sig, sb, strlen(sb), NULL, &n, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(n, 64);
    memcpy(padded + 16, sig, 32);
    memcpy(padded + 64, sig + 32, 32);
    char *pb = b64(padded, sizeof padded);
    char *t2 = replace_part(t, 2, pb);
    refused(t2, "signature invalide");
    free(t2);
    free(pb);
    free(sb);
    free(t);
}

static void t_tampered_header(void **state)
{
    (void)state;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, "{\"typ\":\"JWT\"}", claims_base());
    char *h = b64("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\",\"x\":1}",
                  strlen("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\",\"x\":1}"));
    char *t2 = replace_part(t, 0, h);
    refused(t2, "signature invalide");
    free(t2);
    free(h);
    /* the RSA signature presented as ES256 with the EC key's kid */
    h = b64("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", strlen("{\"alg\":\"ES256\",\"kid\":\"ec1\"}"));
    t2 = replace_part(t, 0, h);
    refused(t2, "signature invalide");
    free(t2);
    free(h);
    /* a duplicated alg member */
    h = b64("{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
            strlen("{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"rsa1\"}"));
    t2 = replace_part(t, 0, h);
    refused(t2, "jeton mal formé");
    free(t2);
    free(h);
    free(t);
}

static void t_unknown_kid(void **state)
{
    (void)state;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, "{\"kid\":\"nope\"}", claims_base());
    refused(t, "clé de signature inconnue");
    free(t);
    /* a kid naming a key of the other type */
    t = sign(ec_priv, R_JWA_ALG_ES256, "{\"kid\":\"rsa1\"}", claims_base());
    refused(t, "clé de signature inconnue");
    free(t);
    /* a kid that is not a non-empty string (rhonabwy would not sign one: built by hand) */
    char *good = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    const char *hdrs[] = {"{\"alg\":\"RS256\",\"kid\":42}", "{\"alg\":\"RS256\",\"kid\":\"\"}",
                          "{\"alg\":\"RS256\",\"kid\":[\"rsa1\"]}"};
    for (size_t i = 0; i < 3; i++) {
        char *h = b64(hdrs[i], strlen(hdrs[i]));
        t = replace_part(good, 0, h);
        refused(t, "kid");
        free(t);
        free(h);
    }
    free(good);
}

static void t_header_refused(void **state)
{
    (void)state;
    const char *hdrs[] = {"{\"crit\":[\"exp\"],\"exp\":1}", "{\"cty\":\"JWT\"}",
                          "{\"b64\":false,\"crit\":[\"b64\"]}"};
    for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
        char *t = sign(rsa_priv, R_JWA_ALG_RS256, hdrs[i], claims_base());
        refused(t, "en-tête de jeton non pris en charge");
        free(t);
    }
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, "{\"typ\":\"dpop+jwt\"}", claims_base());
    refused(t, "type de jeton refusé");
    free(t);
    t = sign(rsa_priv, R_JWA_ALG_RS256, "{\"typ\":\"application/AT+JWT\"}", claims_base());
    AuthClaims c;
    accepted(t, &c);
    free(t);
}

static void t_malformed(void **state)
{
    (void)state;
    char *good = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    char *h = part(good, 0), *p = part(good, 1), *s = part(good, 2);
    char buf[AUTH_JWT_MAX + 64];
    refused(NULL, "jeton absent");
    refused("", "jeton absent");
    refused("abc", "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s", h, p);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s.%s.%s", h, p, s, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s.%s.%s.%s", h, p, s, s, s); /* JWE shape */
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s..%s", h, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, ".%s.%s", p, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s!.%s", h, p, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s. %s", h, p, s); /* rhonabwy would strip the blank */
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s.%s=", h, p, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "%s.%s+/.%s", h, p, s); /* base64, not base64url */
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "Bearer %s.%s.%s", h, p, s);
    refused(buf, "jeton mal formé");
    /* header not JSON, not an object; a lone char (6 bits) is no base64 at all */
    snprintf(buf, sizeof buf, "bm90IGpzb24.%s.%s", p, s);
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "WyJSUzI1NiJd.%s.%s", p, s); /* ["RS256"] */
    refused(buf, "jeton mal formé");
    snprintf(buf, sizeof buf, "e.%s.%s", p, s);
    refused(buf, "jeton mal formé");
    /* a validly signed payload that is not a JSON object */
    jws_t *jws = NULL;
    assert_int_equal(r_jws_init(&jws), RHN_OK);
    assert_int_equal(r_jws_set_alg(jws, R_JWA_ALG_RS256), RHN_OK);
    assert_int_equal(r_jws_set_payload(jws, (const unsigned char *)"[1,2]", 5), RHN_OK);
    char *arr = r_jws_serialize(jws, rsa_priv, 0);
    refused(arr, "jeton mal formé");
    r_free(arr);
    r_jws_free(jws);
    /* huge: refused on length alone, whatever it holds */
    memset(buf, 'A', AUTH_JWT_MAX + 1);
    buf[10] = '.';
    buf[20] = '.';
    buf[AUTH_JWT_MAX + 1] = '\0';
    refused(buf, "jeton trop long");
    /* exactly at the cap: not refused for its length */
    buf[AUTH_JWT_MAX] = '\0';
    AuthClaims c;
    Diag d;
    assert_int_equal(verify_with(keys, &policy, buf, &c, &d), ERR_UNAUTHORIZED);
    assert_null(strstr(d.msg, "trop long"));
    free(h);
    free(p);
    free(s);
    free(good);
}

static void t_claims_bounds(void **state)
{
    (void)state;
    AuthClaims c;
    char big[2048];
    memset(big, 's', sizeof big);
    big[255] = '\0';
    char *t = rs256_with("sub", json_string(big)); /* 255 bytes: fits */
    accepted(t, &c);
    assert_int_equal(strlen(c.subject), 255);
    free(t);
    big[255] = 's';
    big[256] = '\0';
    t = rs256_with("sub", json_string(big));
    refused(t, "« sub » trop longue");
    free(t);
    t = rs256_with("sub", NULL);
    refused(t, "sub");
    free(t);
    t = rs256_with("sub", json_string(""));
    refused(t, "sub");
    free(t);
    t = rs256_with("sub", json_integer(42));
    refused(t, "sub");
    free(t);
    /* jansson refuses \u0000 unless told otherwise: no NUL can shorten a claim */
    t = rs256_with("sub", json_stringn("admin\0user", 10));
    refused(t, "jeton mal formé");
    free(t);
    big[256] = 's';
    big[1024] = '\0';
    t = rs256_with("scope", json_string(big));
    refused(t, "« scope » trop longue");
    free(t);
    t = rs256_with("client_id", json_string(big));
    refused(t, "« client_id » trop longue");
    free(t);
    t = rs256_with("scope", json_integer(1));
    refused(t, "« scope » invalide");
    free(t);
    /* scp as an array, joined with spaces */
    json_t *cl = claims_base();
    json_object_del(cl, "scope");
    json_object_set_new(cl, "scp", json_pack("[s,s]", "openid", "user/*.read"));
    t = sign(rsa_priv, R_JWA_ALG_RS256, NULL, cl);
    accepted(t, &c);
    assert_string_equal(c.scope, "openid user/*.read");
    free(t);
    /* name is for display: cut at a character boundary ("é" is 2 bytes) */
    char name[600] = "";
    for (int i = 0; i < 200; i++)
        strcat(name, "é");
    t = rs256_with("name", json_string(name));
    accepted(t, &c);
    assert_int_equal(strlen(c.name), 254);
    assert_memory_equal(c.name, name, 254);
    free(t);
}

static void t_policy_invalid(void **state)
{
    (void)state;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    AuthClaims c;
    Diag d;
    AuthJwtPolicy p = policy;
    p.issuer = NULL;
    assert_int_equal(verify_with(keys, &p, t, &c, &d), ERR_INVALID);
    p = policy;
    p.audience = "";
    assert_int_equal(verify_with(keys, &p, t, &c, &d), ERR_INVALID);
    assert_int_equal(verify_with(NULL, &policy, t, &c, &d), ERR_INVALID);
    assert_int_equal(verify_with(keys, NULL, t, &c, &d), ERR_INVALID);
    assert_int_equal(verify_with(keys, &policy, t, NULL, &d), ERR_INVALID);
    /* a NULL Diag is allowed */
    assert_int_equal(auth_jwt_verify(keys, &policy, t, &c, NULL), 0);
    assert_int_equal(auth_jwt_verify(keys, &policy, "x", &c, NULL), ERR_UNAUTHORIZED);
    free(t);
}

/* ---------------------------------------------------------------- JWKS */

static void jwks_refused(const char *json)
{
    AuthJwks *k = (AuthJwks *)&k; /* a sentinel that must survive */
    Diag d = {{0}, {0}};
    assert_int_equal(auth_jwks_load(json, strlen(json), &k, &d), ERR_INVALID);
    assert_ptr_equal(k, (AuthJwks *)&k);
    assert_true(d.msg[0] != '\0');
}

/* A JWKS of `key` alone, with one member set: refused. */
static void jwks_refused_one(jwk_t *key, const char *member, const char *value)
{
    json_t *k = r_jwk_export_to_json_t(key);
    if (member)
        json_object_set_new(k, member, json_string(value));
    json_t *root = json_pack("{s:[o]}", "keys", k);
    char *j = json_dumps(root, JSON_COMPACT);
    jwks_refused(j);
    free(j);
    json_decref(root);
}

static void t_jwks_unusable(void **state)
{
    (void)state;
    jwks_refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"h\"}]}");
    jwks_refused("{\"keys\":[]}");
    jwks_refused("{\"keys\":{}}");
    jwks_refused("[]");
    jwks_refused("{\"keys\":[");
    jwks_refused("{\"keys\":[1,\"x\",null]}");
    AuthJwks *k = NULL;
    assert_int_equal(auth_jwks_load("", 0, &k, NULL), ERR_INVALID);
    assert_null(k);

    /* EC P-384; our own keys restricted to other uses or algorithms; a curve that does not
     * match the coordinates */
    jwk_t *p384 = NULL, *p384pub = NULL;
    assert_int_equal(r_jwk_init(&p384), RHN_OK);
    assert_int_equal(r_jwk_init(&p384pub), RHN_OK);
    assert_int_equal(r_jwk_generate_key_pair(p384, p384pub, R_KEY_TYPE_EC, 384, "p384"), RHN_OK);
    jwks_refused_one(p384pub, NULL, NULL);
    jwks_refused_one(rsa_pub, "use", "enc");
    jwks_refused_one(rsa_pub, "alg", "RS512");
    jwks_refused_one(rsa_pub, "alg", "PS256");
    jwks_refused_one(ec_pub, "alg", "RS256");
    jwks_refused_one(ec_pub, "crv", "P-384");
    jwks_refused_one(ec_pub, "kid", "");
    /* key_ops without verify */
    json_t *kj = r_jwk_export_to_json_t(rsa_pub);
    json_object_set_new(kj, "key_ops", json_pack("[s]", "encrypt"));
    json_t *root = json_pack("{s:[o]}", "keys", kj);
    char *j = json_dumps(root, JSON_COMPACT);
    jwks_refused(j);
    free(j);
    json_decref(root);
    r_jwk_free(p384);
    r_jwk_free(p384pub);
}

static void t_jwks_private_and_mixed(void **state)
{
    (void)state;
    /* a JWKS holding private keys, an HMAC key and an x5u: the public parts are kept, the rest
     * dropped (nothing fetched), and tokens verify */
    json_t *ks = json_array();
    json_array_append_new(ks, json_pack("{s:s,s:s}", "kty", "oct", "k", "c2VjcmV0"));
    json_t *r = r_jwk_export_to_json_t(rsa_priv);
    json_object_set_new(r, "x5u", json_string("https://127.0.0.1:9/never"));
    json_array_append_new(ks, r);
    json_array_append_new(ks, r_jwk_export_to_json_t(ec_priv));
    json_t *root = json_pack("{s:o}", "keys", ks);
    char *j = json_dumps(root, JSON_COMPACT);
    AuthJwks *k = load(j);
    AuthClaims c;
    char *t = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    accepted_with(k, &policy, t, &c);
    free(t);
    t = sign(ec_priv, R_JWA_ALG_ES256, NULL, claims_base());
    accepted_with(k, &policy, t, &c);
    free(t);
    auth_jwks_free(k);
    auth_jwks_free(NULL);
    free(j);
    json_decref(root);
}

/* ---------------------------------------------------------------- threads */

#define THREADS 4
#define ROUNDS 60

typedef struct {
    const char *good_rs, *good_es, *bad;
    int ok, refused, wrong;
} Work;

static void *worker(void *arg)
{
    Work *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        AuthClaims c;
        Diag d;
        int r1 = auth_jwt_verify(keys, &policy, w->good_rs, &c, &d);
        int good1 = r1 == 0 && strcmp(c.subject, "user-42") == 0;
        int r2 = auth_jwt_verify(keys, &policy, w->good_es, &c, &d);
        int good2 = r2 == 0 && c.exp == NOW + 300;
        int r3 = auth_jwt_verify(keys, &policy, w->bad, &c, &d);
        int good3 = r3 == ERR_UNAUTHORIZED && strstr(d.msg, "signature invalide") != NULL;
        w->ok += good1 + good2;
        w->refused += good3;
        w->wrong += !good1 + !good2 + !good3;
    }
    return NULL;
}

static void t_concurrent(void **state)
{
    (void)state;
    char *rs = sign(rsa_priv, R_JWA_ALG_RS256, NULL, claims_base());
    char *es = sign(ec_priv, R_JWA_ALG_ES256, NULL, claims_base());
    char *bad = sign(other_priv, R_JWA_ALG_RS256, NULL, claims_base());
    pthread_t th[THREADS];
    Work w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (Work){rs, es, bad, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].ok, 2 * ROUNDS);
        assert_int_equal(w[i].refused, ROUNDS);
        assert_int_equal(w[i].wrong, 0);
    }
    free(rs);
    free(es);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_rs256_valid),
        cmocka_unit_test(t_es256_valid),
        cmocka_unit_test(t_no_kid),
        cmocka_unit_test(t_expired),
        cmocka_unit_test(t_not_yet_valid),
        cmocka_unit_test(t_leeway),
        cmocka_unit_test(t_issuer),
        cmocka_unit_test(t_audience),
        cmocka_unit_test(t_other_key_same_kid),
        cmocka_unit_test(t_alg_none),
        cmocka_unit_test(t_hs256_key_confusion),
        cmocka_unit_test(t_tampered_payload),
        cmocka_unit_test(t_non_canonical_base64),
        cmocka_unit_test(t_es256_padded_signature),
        cmocka_unit_test(t_tampered_header),
        cmocka_unit_test(t_unknown_kid),
        cmocka_unit_test(t_header_refused),
        cmocka_unit_test(t_malformed),
        cmocka_unit_test(t_claims_bounds),
        cmocka_unit_test(t_policy_invalid),
        cmocka_unit_test(t_jwks_unusable),
        cmocka_unit_test(t_jwks_private_and_mixed),
        cmocka_unit_test(t_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
