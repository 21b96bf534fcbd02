/*
 * libFuzzer target for bearer-token verification (auth_jwt_verify): the input is the token as a
 * client would send it after "Bearer ". The JWKS holds an RSA and an EC P-256 key generated at
 * start, so the header, key-selection and claim paths are reached; signatures made by the
 * fuzzer never verify, which is the point: nothing may be accepted, nothing may crash.
 */
#include <rhonabwy.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static AuthJwks *keys;

static void add_public(jwks_t *set, unsigned type, unsigned bits, const char *kid)
{
    jwk_t *priv = NULL, *pub = NULL;
    if (r_jwk_init(&priv) != RHN_OK || r_jwk_init(&pub) != RHN_OK ||
        r_jwk_generate_key_pair(priv, pub, type, bits, kid) != RHN_OK ||
        r_jwks_append_jwk(set, pub) != RHN_OK)
        abort();
    r_jwk_free(priv);
    r_jwk_free(pub);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (auth_init() != 0)
        abort();
    jwks_t *set = NULL;
    if (r_jwks_init(&set) != RHN_OK)
        abort();
    add_public(set, R_KEY_TYPE_RSA, 2048, "k-rsa");
    add_public(set, R_KEY_TYPE_EC, 256, "k-ec");
    char *json = r_jwks_export_to_json_str(set, 0);
    Diag d = {{0}, {0}};
    if (!json || auth_jwks_load(json, strlen(json), &keys, &d) != 0) {
        fprintf(stderr, "fuzz_jwt: JWKS: %s\n", d.msg);
        abort();
    }
    r_free(json);
    r_jwks_free(set);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = malloc(size + 1);
    memcpy(token, data, size);
    token[size] = '\0';
    AuthJwtPolicy p = {.issuer = "https://idp.example", .audience = "ror", .now_s = 1700000000};
    AuthClaims c;
    Diag d = {{0}, {0}};
    if (auth_jwt_verify(keys, &p, token, &c, &d) == 0)
        abort(); /* the fuzzer cannot hold our private keys: an accepted token is a bug */
    free(token);
    return 0;
}
