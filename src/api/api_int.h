/*
 * api_int.h — helpers shared by the handler files of the api module (private to it).
 */
#ifndef ROR_API_INT_H
#define ROR_API_INT_H

#include <jansson.h>

#include "auth/auth.h"
#include "http/http.h"
#include "store/store.h"

/** Answer an error: ERR_* with a French message (an OperationOutcome, through http_fail). */
void api_fail(HttpRequest *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Answer 200 with `v` as compact JSON (application/json); takes the reference to v. */
void api_respond_json(HttpRequest *r, json_t *v);
/** The value of query parameter `name` (the first one), or NULL. */
const char *api_query(HttpRequest *r, const char *name);

/* ---------------------------------------------------------------- who is asking (auth_api.c) */

/** The principal of the request (set by the gate; the anonymous principal when none). */
const AuthPrincipal *api_principal(HttpRequest *r);
/** Has answered 401 (anonymous) or 403 unless the principal holds one of the roles in `mask`
 *  (bits 1 << AuthRole). Returns true when the request may go on. */
bool api_role_or_respond(HttpRequest *r, unsigned mask, const char *what);
#define API_ROLE(x) (1u << (x))
/** Readers of the regional capacity views (aggregates, stale units, the event feed and stream):
 *  whoever reads with access profile 1 (the ARS) or 4 (regulation). */
bool api_capacity_reader_or_respond(HttpRequest *r);
/** Readers of one unit's capacities: those of the regional views, and the establishment staff
 *  (managers, bed declarers) whose organisation owns the unit. */
bool api_capacity_unit_reader_or_respond(HttpRequest *r, Store *store, const char *location_id);
/** Does one of the principal's establishment grants (manager, bed declarer) cover the owners
 *  of `doc` (a resource of `type`)? Its own units are shown to it in full. */
bool api_owned(HttpRequest *r, Store *store, const char *type, const json_t *doc);
/** Queue an audit entry for this request's principal and address (written in batches by a
 *  background thread, within about a second; lost only if the process dies before). */
void api_audit_note(HttpRequest *r, const char *action, const char *outcome, const char *type,
                    const char *id, int64_t version, const char *detail);

/* ---------------------------------------------------------------- access rules (access_api.c) */

/** May the principal make this write? Resolves the owners of `before` (the current version,
 *  NULL for a create) and `after` (NULL for a delete) inside the transaction, then asks
 *  auth_may_write. A refusal is also noted in the audit trail. 0, ERR_UNAUTHORIZED,
 *  ERR_FORBIDDEN (d says why). */
int api_write_check(HttpRequest *r, StoreTxn *t, const char *type, AuthWrite op,
                    const json_t *before, const json_t *after, Diag *d);
/** The body the principal may see of stored resource `s` (its own text when nothing is
 *  filtered, else a filtered copy in the request arena; *len set), or NULL when its profile may
 *  not see it at all. Reads of sensitive units are noted in the audit trail. */
const char *api_visible_body(HttpRequest *r, Store *store, const StoredResource *s, size_t *len);
/** May the principal read resources of `type` at all (Subscriptions: ARS and system clients;
 *  Tasks: signed-in users)? Has answered 401/403 otherwise. */
bool api_type_readable_or_respond(HttpRequest *r, const char *type);

/* ---------------------------------------------------------------- the gate (auth_api.c) */

typedef struct AuthApi AuthApi;
typedef struct AuthApiOptions {
    Store *store;
    const AuthJwks *jwks;           /* NULL: bearer JWTs are refused */
    const char *issuer, *audience;  /* required with jwks */
    bool cookie_secure;             /* Secure cookies even over plain HTTP (behind TLS proxy) */
    const char *profile_codes_json; /* Ror-Profil-Utilisateur codes -> profiles; may be NULL */
} AuthApiOptions;

AuthApi *auth_api_new(const AuthApiOptions *o, Diag *d);
/** Install the gate and the /auth and /audit routes. */
void auth_api_routes(AuthApi *g, HttpServer *s);
/** Write what the audit queue holds and stop its thread (before the store stops). */
void auth_api_stop(AuthApi *g);
void auth_api_free(AuthApi *g);

/** Must this write wait for the ARS's validation (`validation` on, the principal an
 *  establishment manager and not an ARS administrator, descriptive data of an organisation,
 *  offer, location or role — a Location's capacity indicators never wait)? */
bool api_needs_validation(HttpRequest *r, bool validation, const char *type, const json_t *before,
                          const json_t *after);
/** Hold a write for validation: the change (after: the new version, NULL for a deletion) is
 *  recorded in the transaction; *id receives its number. */
int api_pending_add(HttpRequest *r, StoreTxn *t, const char *type, const char *id,
                    int64_t base_version, const json_t *after, int64_t *pending, Diag *d);

/** An anomaly report (RORTask) being written: its focus must be a resource of the ROR; the
 *  server stamps lastModified (and on creation authoredOn when absent), routes a new report to
 *  the organisation responsible for the element (owner) and names who raised it (requester).
 *  ERR_BUSINESS when the focus is missing or unknown. */
int api_task_prepare(HttpRequest *r, StoreTxn *t, json_t *task, bool create, Diag *d);

/** GET /capacity/mine (answers): the units whose capacities the principal may declare. */
void api_units_mine(HttpRequest *r, Store *store, const FhirRegistry *reg);

/** /admin/users: accounts managed by the ARS while the server runs (admin_api.c). */
void admin_api_routes(HttpServer *s, Store *store);

/* ---------------------------------------------------------------- web interface (web_api.c) */

/** Serve the web interface's files from `root` (NULL: none); free with web_api_free. */
void *web_api_routes(HttpServer *s, const char *root, const char *tile_url,
                     const char *tile_attribution, const char *unit_types_json);
void web_api_free(void *w);

/* ---------------------------------------------------------------- validation (validation_api.c) */

/** GET /validation, POST /validation/{id}/approve|reject (ARS administrators). */
void validation_api_routes(HttpServer *s, Store *store);

#endif
