/*
 * auth — who is asking, and what may they do (issue 6).
 *
 * This first part holds the building blocks that need no store and no HTTP:
 *  - passwords hashed with argon2id (libsodium), verified in constant time;
 *  - API keys: random secrets shown once, kept only as a hash;
 *  - login throttling: per-account and per-address failure counting with lockout;
 *  - bearer tokens: OIDC/JWT verification against an issuer's JWKS (rhonabwy), with expiry,
 *    not-before, issuer and audience checked, RS256/ES256 only (never "none").
 * Accounts, roles, access profiles and audit build on them.
 *
 * Threading: functions are thread-safe unless said otherwise; an AuthThrottle and an AuthJwks
 * may be shared by threads (AuthThrottle locks internally; AuthJwks is immutable once loaded).
 */
#ifndef ROR_AUTH_H
#define ROR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---------------------------------------------------------------- passwords (password.c) */

#define AUTH_HASH_MAX 128 /* an encoded argon2id hash fits, NUL included */

/** Call once before any other auth function (initialises libsodium). 0, or ERR_INTERNAL. */
int auth_init(void);
/** Hash a password (UTF-8, 1..1024 bytes) with argon2id and a random salt into out (encoded
 *  string, parameters included). ERR_INVALID for an empty or too long password. */
int auth_password_hash(const char *password, char out[AUTH_HASH_MAX], Diag *d);
/** True when `password` matches the encoded hash. False for a malformed hash. */
bool auth_password_verify(const char *hash, const char *password);
/** True when the hash was made with weaker parameters than the current ones (rehash it at the
 *  next successful login). */
bool auth_password_needs_rehash(const char *hash);

/* ---------------------------------------------------------------- API keys (password.c) */

#define AUTH_KEY_MAX 64  /* "ror_" + base64url of 32 random bytes, NUL included */
#define AUTH_KEY_HASH 65 /* lower-case hex of a 32-byte BLAKE2b hash, NUL included */

/** A new API key (shown to its owner once) and the hash to store. */
void auth_apikey_new(char key[AUTH_KEY_MAX], char hash[AUTH_KEY_HASH]);
/** The hash of a presented key, to look it up. ERR_INVALID when it is not a key's shape. */
int auth_apikey_hash(const char *key, char hash[AUTH_KEY_HASH]);

/* ---------------------------------------------------------------- throttling (throttle.c) */

typedef struct AuthThrottle AuthThrottle;

typedef struct AuthThrottlePolicy {
    int max_failures;      /* failures within `window_s` that lock (default 5) */
    int64_t window_s;      /* (default 900) */
    int64_t lockout_s;     /* first lockout (default 900), doubled at each new lockout */
    int64_t max_lockout_s; /* (default 86400) */
    int max_per_address;   /* failures per client address within window_s (default 50) */
    size_t max_entries;    /* memory bound: oldest entries forgotten (default 100000) */
} AuthThrottlePolicy;

/** NULL policy: the defaults. */
AuthThrottle *auth_throttle_new(const AuthThrottlePolicy *p);
void auth_throttle_free(AuthThrottle *t);
/** May `account` try to log in from `address` at `now_s`? 0 when allowed; ERR_FORBIDDEN when
 *  locked, with *retry_after_s set (how long until the next attempt is allowed). */
int auth_throttle_check(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                        int64_t *retry_after_s);
/** Record the outcome of an attempt (a success clears the account's failures). */
void auth_throttle_record(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                          bool success);

/* ---------------------------------------------------------------- bearer tokens (jwt.c) */

typedef struct AuthJwks AuthJwks;

/** Load a JWKS document (JSON text, {"keys": [...]}, RSA and EC P-256 public keys). Keys of
 *  other kinds are skipped. ERR_INVALID with the reason in d when nothing usable is found. */
int auth_jwks_load(const char *json, size_t len, AuthJwks **out, Diag *d);
void auth_jwks_free(AuthJwks *k);

typedef struct AuthJwtPolicy {
    const char *issuer;   /* required: the `iss` claim must equal it */
    const char *audience; /* required: `aud` (string or array) must contain it */
    int64_t now_s;        /* the current time (seconds since the epoch) */
    int64_t leeway_s;     /* clock skew allowed on exp/nbf/iat (default 0; at most 300) */
} AuthJwtPolicy;

typedef struct AuthClaims {
    char subject[256]; /* sub */
    char scope[1024];  /* scope (space-separated), "" when absent */
    char client_id[256];
    char name[256]; /* name, or preferred_username, "" when absent */
    int64_t exp, iat;
} AuthClaims;

/** Verify a compact JWS: alg RS256 or ES256 only (none, HS*, others refused), signature by
 *  the JWKS key named by `kid` (or the only key of that type when there is no kid), exp
 *  required and in the future, nbf/iat not in the future, iss and aud as the policy says.
 *  ERR_UNAUTHORIZED with a French reason in d for any failure. */
int auth_jwt_verify(const AuthJwks *keys, const AuthJwtPolicy *p, const char *token,
                    AuthClaims *out, Diag *d);

#endif
