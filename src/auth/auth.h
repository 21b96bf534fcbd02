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

#include <jansson.h>

#include "core/core.h"

/* ---------------------------------------------------------------- passwords (password.c) */

#define AUTH_HASH_MAX 128 /* an encoded argon2id hash fits, NUL included */

/** Call once before any other auth function (initialises libsodium; thread-safe, idempotent).
 *  0, or ERR_INTERNAL. */
int auth_init(void);
/** Hash a password (UTF-8, 1..1024 bytes) with argon2id (t=2, 64 MiB) and a random salt into out
 *  (libsodium's "$argon2id$..." string, parameters included). The password is normalised to
 *  Unicode NFC first, so a precomposed and a decomposed "é" are the same password; case and
 *  compatibility forms are kept. ERR_INVALID for an empty, too long or non-UTF-8 password,
 *  ERR_INTERNAL when the memory is lacking; out untouched then. At most one hash or
 *  verification per core runs at a time (64 MiB each); callers beyond wait. */
int auth_password_hash(const char *password, char out[AUTH_HASH_MAX], Diag *d);
/** True when `password` matches the encoded hash (argon2id, or argon2i of older libsodium).
 *  False for a malformed hash and for a password auth_password_hash would refuse. ~56 ms. */
bool auth_password_verify(const char *hash, const char *password);
/** True when the hash was not made with the current algorithm and parameters (weaker or
 *  stronger, argon2i, or malformed): rehash the password at its next successful login. */
bool auth_password_needs_rehash(const char *hash);

/* ---------------------------------------------------------------- API keys (password.c) */

#define AUTH_KEY_MAX 64  /* "ror_" + base64url of 32 random bytes, NUL included */
#define AUTH_KEY_HASH 65 /* lower-case hex of a 32-byte BLAKE2b hash, NUL included */

/** A new API key (shown to its owner once: 47 characters, "ror_" + base64url without padding of
 *  32 random bytes) and the hash to store. */
void auth_apikey_new(char key[AUTH_KEY_MAX], char hash[AUTH_KEY_HASH]);
/** The hash of a presented key, to look it up: lower-case hex BLAKE2b-256 of the whole key,
 *  prefix included (unsalted: 256 random bits need no slow hash). ERR_INVALID when it is not
 *  exactly a key's shape (prefix, length, alphabet, canonical last character); hash untouched
 *  then. */
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

/*
 * Use: auth_throttle_check before verifying the password (a locked attempt costs no argon2),
 * then auth_throttle_record with the outcome, for unknown accounts too (so that a lockout does
 * not tell which accounts exist).
 * - Failures are counted in a sliding window: the max_failures-th failure of an account within
 *   window_s (or the max_per_address-th of an address, whatever the accounts) locks it; the
 *   count then starts again. Lockouts last lockout_s, doubled at each new one up to
 *   max_lockout_s; the doubling restarts after max_lockout_s without a lockout.
 * - A success clears the account's record, doubling included; never the address's.
 * - Accounts are compared folded (case, accents, spaces: text_fold), so that spellings of one
 *   account share one budget. Addresses are compared as given: pass a canonical form, and an
 *   IPv6 client's /64 prefix rather than its address (one client commonly holds a /64).
 * - NULL or "" account/address: that side is not counted.
 * - At most max_entries records (accounts and addresses together) are kept, the least recently
 *   used forgotten first, each a few dozen bytes plus 8 per failure inside the window.
 */

/** NULL policy: the defaults; fields <= 0 in a policy take their default too. Free with
 *  auth_throttle_free (NULL is a no-op). */
AuthThrottle *auth_throttle_new(const AuthThrottlePolicy *p);
void auth_throttle_free(AuthThrottle *t);
/** May `account` try to log in from `address` at `now_s`? 0 when allowed (*retry_after_s = 0);
 *  ERR_FORBIDDEN when the account or the address is locked, with *retry_after_s set to the
 *  seconds until the next attempt is allowed (the longer of the two). retry_after_s may be
 *  NULL. */
int auth_throttle_check(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                        int64_t *retry_after_s);
/** Record the outcome of an attempt (a success clears the account's record). */
void auth_throttle_record(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                          bool success);

/* ---------------------------------------------------------------- bearer tokens (jwt.c) */

typedef struct AuthJwks AuthJwks;

#define AUTH_JWT_MAX 16384      /* longest token accepted, in bytes (checked before parsing) */
#define AUTH_JWT_MAX_LEEWAY 300 /* largest clock skew a policy may allow, in seconds */

/** Load a JWKS document (JSON text, {"keys": [...]}, at most 64 keys and 1 MiB). Only the public
 *  part of RSA (2048..8192 bits) and EC P-256 keys is kept; keys of other kinds, keys whose
 *  "use"/"key_ops"/"alg" rule out RS256/ES256 verification, and keys with a malformed kid are
 *  skipped. x5u/x5c/jku members are ignored (nothing is ever fetched). The result is immutable:
 *  share it between threads, free it after the last verification. ERR_INVALID with the reason
 *  in d when the document is malformed or nothing usable is found; *out untouched then. */
int auth_jwks_load(const char *json, size_t len, AuthJwks **out, Diag *d);
/** NULL is a no-op. */
void auth_jwks_free(AuthJwks *k);

typedef struct AuthJwtPolicy {
    const char *issuer;   /* required: the `iss` claim must equal it */
    const char *audience; /* required: `aud` (string or array) must contain it */
    int64_t now_s;        /* the current time (seconds since the epoch) */
    int64_t leeway_s;     /* clock skew allowed on exp/nbf/iat (default 0; at most 300) */
} AuthJwtPolicy;

/* Strings are NUL-terminated UTF-8 as the token carries them. sub, scope and client_id are never
 * truncated (a cut identity or scope could name another): a longer value refuses the token.
 * name, for display only, is cut at a UTF-8 character boundary. */
typedef struct AuthClaims {
    char subject[256];   /* sub (required, non-empty) */
    char scope[1024];    /* scope (space-separated), else "scp" (array or string), "" when absent */
    char client_id[256]; /* client_id (RFC 9068), else azp, "" when absent */
    char name[256];      /* name, or preferred_username, "" when absent */
    int64_t exp, iat;    /* iat is 0 when absent */
} AuthClaims;

/** Verify a compact JWS (at most AUTH_JWT_MAX bytes, strict base64url): alg RS256 or ES256 only
 *  (none, HS*, others refused before any key or signature work; so are crit, zip, cty, and a typ
 *  other than JWT/at+jwt), signature by the JWKS key of that type named by `kid` (or the only key
 *  of that type when there is no kid; refused when ambiguous); then exp required and
 *  > now - leeway, nbf/iat (when present) <= now + leeway, iss equal to the policy's issuer,
 *  aud containing its audience, sub present. Keys carried by the token (jwk, jku, x5u, x5c) are
 *  never used. On success fills *out; on failure *out is untouched and the result is
 *  ERR_UNAUTHORIZED with a short French reason in d ("jeton expiré", "signature invalide"...),
 *  or ERR_INVALID when the call itself is wrong (NULL keys/policy/out, no issuer or audience,
 *  leeway outside 0..AUTH_JWT_MAX_LEEWAY). Thread-safe, including on one shared AuthJwks. */
int auth_jwt_verify(const AuthJwks *keys, const AuthJwtPolicy *p, const char *token,
                    AuthClaims *out, Diag *d);

/* ---------------------------------------------------------------- access profiles (visibility.c)
 * The guide's access policy ("Politique d'accès aux données ME 3.0", the mapping comments of the
 * ROR profiles): what a reader of each access profile sees of a resource.
 *   1  full access (ARS, ROR referents);
 *   4  regulation (SAMU): every unit, sensitive ones included, but only public contacts;
 *   2  health professionals: no sensitive unit, no extra beds, no "très restreint" contact;
 *   3  médico-social professionals: as 2, and only médico-social offers in full;
 *   5  institutional readers: as 2, capacities reduced to installed beds;
 *   0  public: no sensitive unit, no capacity, no equipment, public contacts only,
 *      professionals only for "Ville" offers.
 * A resource is filtered in place; what a profile may not see is removed, never altered. */

#define AUTH_PROFILES 6

/** What decides a resource's visibility beyond its own content: for a HealthcareService, the
 *  offer itself (auth_visibility_offer); for a Location, the offers delivered there (any one
 *  sensitive makes the Location sensitive; any one médico-social or Ville counts); for a
 *  PractitionerRole, its offer; for a Practitioner, the offers of its roles. */
typedef struct AuthVisContext {
    bool sensitive;     /* a sensitive unit (ror-healthcareservice-sensitive-unit = true) */
    bool medico_social; /* champ d'activité médico-social (TRE_R227 04) */
    bool ville;         /* champ d'activité Ville (TRE_R227 05) */
} AuthVisContext;

/** Add to *ctx what HealthcareService `hs` says of itself (sensitive flag, champ d'activité):
 *  flags are OR-ed in, so several offers can be folded into one context. */
void auth_visibility_offer(const json_t *hs, AuthVisContext *ctx);
/** Filter resource `res` (any type) in place for access profile `profile` (0..5) in context
 *  `ctx` (NULL: nothing known beyond the resource, i.e. all flags false). Returns false when the
 *  profile may not see the resource at all (res is then left as it was). Profile 1 sees
 *  everything unchanged; an unknown profile number is treated as 0. */
bool auth_visibility_apply(json_t *res, int profile, const AuthVisContext *ctx);

/* ---------------------------------------------------------------- principals and rights (access.c)
 * Who is asking (an AuthPrincipal, built by the HTTP gate from a session, an API key or a bearer
 * token, or anonymous) and what they may write. The rights are the account's grants:
 *   ars-admin                 every write in the region;
 *   establishment-manager:ORG the organisations under ORG (an EJ or an EG: the organisation
 *                             itself and everything whose partOf chain reaches it), their
 *                             offers, locations and professional roles; may create Practitioners;
 *   bed-declarer:ORG          the capacities (beds, places) of the Locations under ORG, nothing
 *                             else of them;
 *   reader[:PROFILE]          reads (orientation / regulation), raises anomalies (Task);
 *   system[:PROFILE]          a machine client that reads (and raises anomalies) with PROFILE.
 * ORG is compared with the "owner keys" of a resource: "Organization/<id>" and every
 * identifier value of each organisation of its chain (so a FINESS number works as well).
 * Reads are filtered by the principal's access profile (visibility above). */

typedef enum AuthRole {
    AUTH_ROLE_ARS_ADMIN,
    AUTH_ROLE_MANAGER,
    AUTH_ROLE_BED_DECLARER,
    AUTH_ROLE_READER,
    AUTH_ROLE_SYSTEM,
    AUTH_ROLES
} AuthRole;

typedef enum AuthScope { AUTH_SCOPE_NONE, AUTH_SCOPE_ORGANIZATION, AUTH_SCOPE_PROFILE } AuthScope;

typedef struct AuthRoleInfo {
    const char *name;  /* "ars-admin" ... */
    AuthScope scope;   /* what the grant's qualifier is (required for ORGANIZATION) */
    int profile;       /* the access profile the role reads with (default one for PROFILE) */
    const char *label; /* French, for listings */
} AuthRoleInfo;

extern const AuthRoleInfo auth_roles[AUTH_ROLES];

/** The role named `name`, or -1. */
int auth_role_find(const char *name);

typedef struct AuthGrant {
    AuthRole role;
    const char *organization; /* AUTH_SCOPE_ORGANIZATION roles; NULL otherwise */
    int profile;              /* the access profile this grant reads with */
} AuthGrant;

typedef struct AuthPrincipal {
    const char *login;  /* NULL: anonymous */
    const char *name;   /* display name ("" when none) */
    const char *author; /* recorded with what it writes: the login, or "anonyme@<address>" */
    const char *method; /* "session", "apikey", "jwt" or "anonymous" */
    const AuthGrant *grants;
    size_t ngrants;
    bool
        read_only; /* a bearer token whose scope grants reading only (ror.read without ror.write) */
    int profile;   /* the access profile of this request's reads (0..5) */
} AuthPrincipal;

/** Parse an account's roles (JSON array text [{"role": ..., "organization"|"profile": ...}])
 *  into grants allocated in `a`. Unknown roles and malformed entries are skipped (an account
 *  never gains a right from a bad entry). */
void auth_grants_parse(Arena *a, const char *roles_json, AuthGrant **out, size_t *n);
/** Check an account's roles as given by an administrator (JSON array of {"role"} plus
 *  "organization" for the scoped roles, or an optional "profile" 0..5 for reader/system) and
 *  return them normalised (a new array, members in a fixed order). NULL with the reason in d
 *  (ERR_INVALID) for anything else: unknown role, missing or extra qualifier, duplicates. */
json_t *auth_roles_normalise(const json_t *roles, Diag *d);
/** True when the principal holds `role` (any qualifier). */
bool auth_has_role(const AuthPrincipal *p, AuthRole role);
/** The access profile a principal reads with by default: anonymous 0; else the first of
 *  1, 4, 2, 3, 5, 0 that one of its grants gives. */
int auth_profile_default(const AuthPrincipal *p);
/** May the principal read with `profile` (one of its grants gives it; ars-admin may use any)? */
bool auth_profile_allowed(const AuthPrincipal *p, int profile);

typedef enum AuthWrite { AUTH_WRITE_CREATE, AUTH_WRITE_UPDATE, AUTH_WRITE_DELETE } AuthWrite;

/** The owner keys of one version of a resource (see above); n = 0 for a resource owned by no
 *  organisation. */
typedef struct AuthOwner {
    const char *const *keys;
    size_t n;
} AuthOwner;

typedef struct AuthWriteRequest {
    const char *type; /* resource type */
    AuthWrite op;
    const AuthOwner *before; /* the current version's owners; NULL for a create */
    const AuthOwner *after;  /* the new version's owners; NULL for a delete */
    bool capacity_only;      /* the change touches nothing but capacity indicators */
} AuthWriteRequest;

/** May `p` make this write? 0, or ERR_UNAUTHORIZED (anonymous) / ERR_FORBIDDEN with the reason
 *  in French in d (which organisation, which role is missing). Both the version replaced and the
 *  version written must be the principal's: nobody moves a resource into or out of another's
 *  scope. Tasks (anomaly reports): any signed-in principal may raise one; the owners of the
 *  Task's focus (and the ARS) update it. */
int auth_may_write(const AuthPrincipal *p, const AuthWriteRequest *w, Diag *d);

#endif
