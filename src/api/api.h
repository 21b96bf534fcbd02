/*
 * api — the HTTP handlers: the FHIR R4 REST interface of the ROR (metadata, read, vread,
 * search, create, update, patch, delete, instance history), mounted under a base path.
 *
 * Every request passes the gate first (auth_api.c: who is asking, with which access profile).
 * Every write goes through store_write (the one write path): parse (size-capped) -> validate
 * -> store transaction (where the access rules are checked against the current version) ->
 * durable commit -> response with ETag/Last-Modified. Reads are filtered by access profile.
 *
 * Threading: handlers run on HTTP worker threads; Api is immutable after api_new.
 */
#ifndef ROR_API_H
#define ROR_API_H

#include "fhir/fhir.h"
#include "http/http.h"
#include "store/store.h"

typedef struct Api Api;

typedef struct ApiOptions {
    Store *store;
    const FhirRegistry *reg;
    const char *base_path; /* "/fhir" */
    const char *software_version;
    struct Terminology *term; /* NULL: no terminology operations, no code checks on writes */
    struct Events *events;    /* committed changes (wake the capacity streams); may be NULL */
    const struct CapacityExpiry *capacity_expiry; /* staleness table; NULL: 24 h for all */
    struct Orient *orient; /* the orientation engine (GET|POST /orientation); may be NULL */
    size_t max_streams;    /* capacity event streams at once (0: from the connection limit) */
    /* authentication */
    const struct AuthJwks *jwks;             /* OIDC issuer's keys; NULL: bearer JWTs refused */
    const char *oidc_issuer, *oidc_audience; /* required with jwks */
    bool cookie_secure;             /* Secure session cookies over plain HTTP (TLS proxy) */
    const char *profile_codes_json; /* Ror-Profil-Utilisateur codes -> access profiles */
    bool validation;                /* managers' descriptive changes wait for the ARS */
    const char *web_root;           /* the web interface's files; NULL: no web interface */
    const char *tile_url;           /* map tiles ({z}/{x}/{y}); "" none */
    const char *tile_attribution;
    const char *unit_types_json; /* the unit types of the bed views (capacity.json), for the pages */
} ApiOptions;

/** NULL (with d set) when the authentication settings are unusable. */
Api *api_new(const ApiOptions *o, Diag *d);
void api_free(Api *a);
/** Stop the background work that writes to the store (subscription deliveries: what is in
 *  flight is finished and saved, briefly). Call before the store stops taking writes; api_free
 *  does it too. NULL is a no-op. */
void api_stop(Api *a);
/** Register the routes on the server. */
void api_routes(Api *a, HttpServer *s);
/** The CapabilityStatement this server publishes (JSON text, owned by Api). */
const char *api_capability_text(const Api *a);

#endif
