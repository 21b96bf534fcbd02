/*
 * auth_api.c — who is asking: the HTTP gate (sessions, API keys, bearer tokens, anonymous),
 * sign-in and sign-out for the web interface, the access profile of each request (the guide's
 * Ror-* headers) and the audit trail (queued here, written in batches; GET /audit).
 *
 *   POST /auth/login   {"login", "password"} -> session cookie + CSRF token
 *   POST /auth/logout  ends the session
 *   GET  /auth/session who am I (login, roles, profile, CSRF token of the session)
 *   GET  /audit        the audit trail as a Bundle of AuditEvent (ARS administrators)
 *
 * Credentials, in order: `Authorization: Bearer ror_…` (an API key), `Authorization: Bearer
 * <JWT>` (OIDC access token of the configured issuer; its subject, else its client_id, names
 * the account), the `ror_session` cookie (web sessions; unsafe methods also need the session's
 * X-CSRF-Token header and, when the browser sends one, a same-origin Origin). No credentials:
 * the anonymous reader (profile 0). Bad credentials are refused (401), never downgraded to
 * anonymous — except an expired session cookie, which is simply no session.
 *
 * Threading: the gate and handlers run on HTTP workers; the audit queue is locked and drained
 * by one thread of its own.
 */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_int.h"
#include "json/json.h"

#define SESSION_COOKIE "ror_session"
#define SESSION_TTL_MS (12LL * 3600 * 1000) /* one shift */
#define AUDIT_BATCH 512
#define AUDIT_QUEUE_MAX 100000 /* beyond, entries are counted as lost rather than kept */
#define LOCAL_PROFILE_SYSTEM "urn:ror:profil-acces"

typedef struct ProfileCode {
    char *system, *code;
    int profile;
} ProfileCode;

struct AuthApi {
    Store *store;
    const AuthJwks *jwks;
    char *issuer, *audience;
    bool cookie_secure;
    AuthThrottle *throttle;
    ProfileCode *codes;
    size_t ncodes;
    char dummy_hash[AUTH_HASH_MAX]; /* verified for unknown logins: same cost as a real one */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
    StoreAudit *queue;
    size_t nqueue, cap;
    int writing; /* batches taken from the queue and not yet committed */
    uint64_t lost;
};

/* What the gate attaches to a request: the principal first (api_principal casts). */
typedef struct Caller {
    AuthPrincipal p;
    AuthApi *auth;
    int64_t account;
    const char *session_hash; /* web session: its token's hash */
    const char *csrf;
    const char *role_metier; /* Ror-Role-Metier-System|Code, for the audit of sensitive reads */
} Caller;

static const AuthPrincipal anonymous = {
    .login = NULL, .name = "", .author = "anonyme", .method = "anonymous", .profile = 0};

const AuthPrincipal *api_principal(HttpRequest *r)
{
    return r->principal ? &((const Caller *)r->principal)->p : &anonymous;
}

/* ------------------------------------------------------------------ audit queue */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void audit_entry_free(StoreAudit *e)
{
    free((char *)e->actor);
    free((char *)e->action);
    free((char *)e->outcome);
    free((char *)e->type);
    free((char *)e->rid);
    free((char *)e->address);
    free((char *)e->detail);
}

typedef struct AuditBatch {
    StoreAudit *e;
    size_t n;
} AuditBatch;

static int txn_audit(StoreTxn *t, void *ctx, Diag *d)
{
    AuditBatch *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        int rc = store_txn_audit_add(t, &b->e[i], d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Write what is queued (the caller holds g->mu; it is released during the write). */
static void audit_flush_locked(AuthApi *g)
{
    while (g->nqueue > 0) {
        AuditBatch b = {g->queue, g->nqueue};
        g->queue = NULL;
        g->nqueue = g->cap = 0;
        g->writing++;
        pthread_mutex_unlock(&g->mu);
        Diag d = {{0}, {0}};
        if (store_write(g->store, txn_audit, &b, &d) != 0)
            log_msg(LOG_ERROR, "audit: %zu entrées non écrites: %s", b.n, d.msg);
        for (size_t i = 0; i < b.n; i++)
            audit_entry_free(&b.e[i]);
        free(b.e);
        pthread_mutex_lock(&g->mu);
        g->writing--;
        pthread_cond_broadcast(&g->cv);
    }
}

static void *audit_thread(void *arg)
{
    AuthApi *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        if (g->nqueue == 0) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* let a burst gather for up to half a second: one commit for many entries */
        if (g->nqueue < AUDIT_BATCH) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
        audit_flush_locked(g);
    }
    audit_flush_locked(g);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void audit_push(AuthApi *g, const StoreAudit *e)
{
    pthread_mutex_lock(&g->mu);
    if (g->nqueue >= AUDIT_QUEUE_MAX) {
        g->lost++;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (g->nqueue == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->queue = xrealloc(g->queue, g->cap * sizeof *g->queue);
    }
    g->queue[g->nqueue++] = (StoreAudit){.at = e->at ? e->at : time_now_ms(),
                                         .actor = xstrdup(e->actor ? e->actor : "inconnu"),
                                         .action = xstrdup(e->action),
                                         .outcome = xstrdup(e->outcome ? e->outcome : "success"),
                                         .type = dup_or_null(e->type),
                                         .rid = dup_or_null(e->rid),
                                         .version = e->version,
                                         .address = dup_or_null(e->address),
                                         .detail = dup_or_null(e->detail ? e->detail : "")};
    if (g->nqueue >= AUDIT_BATCH || g->nqueue == 1)
        pthread_cond_broadcast(&g->cv); /* readers of /audit may wait on it too */
    pthread_mutex_unlock(&g->mu);
}

void api_audit_note(HttpRequest *r, const char *action, const char *outcome, const char *type,
                    const char *id, int64_t version, const char *detail)
{
    const Caller *c = r->principal;
    if (!c)
        return;
    const char *detail2 = detail;
    if (c->role_metier && strcmp(action, "read") == 0)
        detail2 = arena_printf(&r->arena, "%s%srôle métier %s", detail ? detail : "",
                               detail && detail[0] ? " ; " : "", c->role_metier);
    StoreAudit e = {.actor = c->p.login ? c->p.login : c->p.author,
                    .action = action,
                    .outcome = outcome,
                    .type = type,
                    .rid = id,
                    .version = version,
                    .address = r->remote,
                    .detail = detail2};
    audit_push(c->auth, &e);
}

/* ------------------------------------------------------------------ access profiles */

static int profile_codes_load(AuthApi *g, const char *json_text, Diag *d)
{
    /* the local system, always understood: codes "0".."5" are the profiles themselves */
    size_t extra = 0;
    json_t *doc = NULL, *rows = NULL;
    if (json_text) {
        if (json_parse(json_text, strlen(json_text), &doc, d) != 0)
            return ERR_INVALID;
        rows = json_object_get(doc, "codes");
        if (!json_is_array(rows)) {
            json_decref(doc);
            return diag_set(d, ERR_INVALID, "profils d'accès : tableau \"codes\" attendu");
        }
        extra = json_array_size(rows);
    }
    g->codes = xcalloc(AUTH_PROFILES + extra, sizeof *g->codes);
    for (int i = 0; i < AUTH_PROFILES; i++) {
        g->codes[g->ncodes].system = xstrdup(LOCAL_PROFILE_SYSTEM);
        g->codes[g->ncodes].code = xasprintf("%d", i);
        g->codes[g->ncodes++].profile = i;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *sys = json_str(row, "system"), *code = json_str(row, "code");
        json_t *pv = json_object_get(row, "profile");
        if (!sys || !code || !json_is_integer(pv) || json_integer_value(pv) < 0 ||
            json_integer_value(pv) >= AUTH_PROFILES) {
            json_decref(doc);
            return diag_set(d, ERR_INVALID,
                            "profils d'accès : entrée %zu invalide (system, code, profile 0..5)",
                            i + 1);
        }
        if (strncmp(sys, "urn:oid:", 8) == 0)
            sys += 8;
        g->codes[g->ncodes].system = xstrdup(sys);
        g->codes[g->ncodes].code = xstrdup(code);
        g->codes[g->ncodes++].profile = (int)json_integer_value(pv);
    }
    json_decref(doc);
    return 0;
}

static int profile_of_code(const AuthApi *g, const char *system, const char *code)
{
    if (strncmp(system, "urn:oid:", 8) == 0)
        system += 8;
    for (size_t i = 0; i < g->ncodes; i++)
        if (strcmp(g->codes[i].system, system) == 0 && strcmp(g->codes[i].code, code) == 0)
            return g->codes[i].profile;
    return -1;
}

/* The profile of this request: the Ror-Profil-Utilisateur headers when sent (a profile the
 * principal holds), else the principal's default. */
static int profile_select(AuthApi *g, HttpRequest *r, Caller *c, Diag *d)
{
    const char *code = http_header(r, "Ror-Profil-Utilisateur-Code");
    const char *sys = http_header(r, "Ror-Profil-Utilisateur-System");
    const char *mcode = http_header(r, "Ror-Role-Metier-Code");
    const char *msys = http_header(r, "Ror-Role-Metier-System");
    if (mcode || msys)
        c->role_metier = arena_printf(&r->arena, "%s|%s", msys ? msys : "", mcode ? mcode : "");
    c->p.profile = auth_profile_default(&c->p);
    if (!code && !sys)
        return 0;
    if (!code || !sys || !code[0] || !sys[0])
        return diag_set(d, ERR_INVALID,
                        "les en-têtes Ror-Profil-Utilisateur-Code et "
                        "Ror-Profil-Utilisateur-System vont ensemble");
    int prof = profile_of_code(g, sys, code);
    if (prof < 0)
        return diag_set(d, ERR_FORBIDDEN, "profil utilisateur %s|%s non reconnu par ce serveur",
                        sys, code);
    if (!auth_profile_allowed(&c->p, prof))
        return diag_set(d, ERR_FORBIDDEN, "le profil d'accès %d n'est pas accordé à ce compte",
                        prof);
    c->p.profile = prof;
    return 0;
}

/* ------------------------------------------------------------------ credentials */

static void principal_from_account(HttpRequest *r, Caller *c, const StoreAccount *acc,
                                   const char *method)
{
    AuthGrant *grants;
    size_t n;
    auth_grants_parse(&r->arena, acc->roles, &grants, &n);
    c->p.login = acc->login;
    c->p.name = acc->name ? acc->name : "";
    c->p.author = acc->login;
    c->p.method = method;
    c->p.grants = grants;
    c->p.ngrants = n;
    c->account = acc->id;
}

/* Is `word` one of the space-separated words of `list`? */
static bool has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += wl)
        if ((p == list || p[-1] == ' ') && (p[wl] == 0 || p[wl] == ' '))
            return true;
    return false;
}

static int bearer_login(AuthApi *g, HttpRequest *r, const char *token, Caller *c, Diag *d)
{
    StoreAccount acc;
    if (strncmp(token, "ror_", 4) == 0) {
        char hash[AUTH_KEY_HASH];
        if (auth_apikey_hash(token, hash) != 0 ||
            store_apikey_account(g->store, &r->arena, hash, &acc, NULL) != 0)
            return diag_set(d, ERR_UNAUTHORIZED, "clé d'API invalide ou révoquée");
        if (acc.disabled)
            return diag_set(d, ERR_UNAUTHORIZED, "compte désactivé");
        principal_from_account(r, c, &acc, "apikey");
        return 0;
    }
    if (!g->jwks)
        return diag_set(d, ERR_UNAUTHORIZED,
                        "jeton non reconnu : ce serveur n'accepte pas de jeton OIDC (aucun "
                        "émetteur configuré) ; utilisez une clé d'API");
    AuthClaims cl;
    AuthJwtPolicy pol = {.issuer = g->issuer,
                         .audience = g->audience,
                         .now_s = time_now_ms() / 1000,
                         .leeway_s = 30};
    int rc = auth_jwt_verify(g->jwks, &pol, token, &cl, d);
    if (rc != 0)
        return ERR_UNAUTHORIZED;
    const char *names[2] = {cl.subject, cl.client_id};
    bool found = false;
    for (int i = 0; i < 2 && !found; i++)
        found = names[i][0] && store_account_get(g->store, &r->arena, names[i], &acc, NULL) == 0;
    if (!found)
        return diag_set(d, ERR_FORBIDDEN,
                        "jeton valide, mais aucun compte de ce serveur ne correspond à son sujet");
    if (acc.disabled)
        return diag_set(d, ERR_UNAUTHORIZED, "compte désactivé");
    principal_from_account(r, c, &acc, "jwt");
    if (has_word(cl.scope, "ror.read") || has_word(cl.scope, "ror.write"))
        c->p.read_only = !has_word(cl.scope, "ror.write");
    return 0;
}

/* The value of cookie `name` (in the arena), or NULL. */
static const char *cookie_value(HttpRequest *r, const char *name)
{
    const char *h = http_header(r, "Cookie");
    size_t nl = strlen(name);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return arena_strndup(&r->arena, p + nl + 1, len - nl - 1);
        p = end;
    }
    return NULL;
}

static bool unsafe_method(const HttpRequest *r)
{
    return r->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH | HTTP_DELETE);
}

static int session_login(AuthApi *g, HttpRequest *r, const char *token, Caller *c, Diag *d)
{
    char hash[AUTH_KEY_HASH];
    StoreAccount acc;
    const char *csrf;
    int64_t expires;
    if (auth_apikey_hash(token, hash) != 0 ||
        store_session_get(g->store, &r->arena, hash, time_now_ms(), &acc, &csrf, &expires, NULL) !=
            0 ||
        acc.disabled)
        return 0; /* no (longer a) session: anonymous */
    if (unsafe_method(r)) {
        const char *sent = http_header(r, "X-CSRF-Token");
        if (!sent || strlen(sent) != strlen(csrf) || sodium_memcmp(sent, csrf, strlen(csrf)) != 0)
            return diag_set(d, ERR_FORBIDDEN, "jeton anti-CSRF (X-CSRF-Token) absent ou invalide");
        const char *origin = http_header(r, "Origin");
        if (origin && strcmp(origin, r->base_url) != 0)
            return diag_set(d, ERR_FORBIDDEN, "origine de la requête refusée (%s)", origin);
    }
    principal_from_account(r, c, &acc, "session");
    c->session_hash = arena_strdup(&r->arena, hash);
    c->csrf = csrf;
    return 0;
}

static bool gate(HttpRequest *r, void *ctx)
{
    AuthApi *g = ctx;
    Caller *c = arena_alloc(&r->arena, sizeof *c);
    *c = (Caller){.p = anonymous, .auth = g};
    c->p.author = arena_printf(&r->arena, "anonyme@%s", r->remote);
    r->principal = c;
    Diag d = {{0}, {0}};
    int rc = 0;
    const char *authz = http_header(r, "Authorization");
    if (authz) {
        if (strncasecmp(authz, "Bearer ", 7) != 0)
            rc = diag_set(&d, ERR_UNAUTHORIZED,
                          "schéma d'authentification non pris en charge (Bearer attendu)");
        else
            rc = bearer_login(g, r, authz + 7 + strspn(authz + 7, " "), c, &d);
    } else {
        const char *tok = cookie_value(r, SESSION_COOKIE);
        if (tok)
            rc = session_login(g, r, tok, c, &d);
    }
    if (rc == 0)
        rc = profile_select(g, r, c, &d);
    if (rc == 0)
        return true;
    if (rc == ERR_UNAUTHORIZED) {
        http_header_set(r, "WWW-Authenticate", "Bearer realm=\"ror\", error=\"invalid_token\"");
        api_audit_note(r, "authenticate", "failure", NULL, NULL, 0, d.msg);
    }
    http_fail(r, rc, &d);
    return false;
}

bool api_role_or_respond(HttpRequest *r, unsigned mask, const char *what)
{
    const AuthPrincipal *p = api_principal(r);
    if (!p->login) {
        http_header_set(r, "WWW-Authenticate", "Bearer realm=\"ror\"");
        api_fail(r, ERR_UNAUTHORIZED, "authentification requise : %s", what);
        return false;
    }
    for (size_t i = 0; i < p->ngrants; i++)
        if (mask & API_ROLE(p->grants[i].role))
            return true;
    api_audit_note(r, "access", "failure", NULL, NULL, 0, r->path);
    api_fail(r, ERR_FORBIDDEN, "vos droits ne permettent pas : %s", what);
    return false;
}

bool api_capacity_reader_or_respond(HttpRequest *r)
{
    const AuthPrincipal *p = api_principal(r);
    if (p->login && (p->profile == 1 || p->profile == 4))
        return true;
    return api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN) | API_ROLE(AUTH_ROLE_READER),
                               "consulter les capacités en lits de la région");
}

bool api_capacity_unit_reader_or_respond(HttpRequest *r, Store *store, const char *location_id)
{
    const AuthPrincipal *p = api_principal(r);
    if (p->login && (p->profile == 1 || p->profile == 4))
        return true;
    if (!auth_has_role(p, AUTH_ROLE_MANAGER) && !auth_has_role(p, AUTH_ROLE_BED_DECLARER))
        return api_capacity_reader_or_respond(r);
    StoredResource s;
    json_t *doc = NULL;
    bool owned = store_read(store, &r->arena, "Location", location_id, &s, NULL) == 0 &&
                 json_parse(s.body, s.len, &doc, NULL) == 0 && api_owned(r, store, "Location", doc);
    json_decref(doc);
    if (owned)
        return true;
    api_audit_note(r, "access", "failure", "Location", location_id, 0, r->path);
    api_fail(r, ERR_FORBIDDEN, "%s", "ce lieu n'est pas une unité de votre organisation");
    return false;
}

/* ------------------------------------------------------------------ sign-in */

static void set_cookie(HttpRequest *r, AuthApi *g, const char *value, int64_t max_age_s)
{
    bool secure = g->cookie_secure || strncmp(r->base_url, "https://", 8) == 0;
    char *v = arena_printf(&r->arena, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                           SESSION_COOKIE, value, (long long)max_age_s, secure ? "; Secure" : "");
    http_header_set(r, "Set-Cookie", v);
}

static json_t *whoami(const Caller *c)
{
    const AuthPrincipal *p = &c->p;
    json_t *roles = json_array();
    for (size_t i = 0; i < p->ngrants; i++) {
        const AuthGrant *gr = &p->grants[i];
        json_t *o = json_pack("{s:s, s:s, s:i}", "role", auth_roles[gr->role].name, "label",
                              auth_roles[gr->role].label, "profile", gr->profile);
        if (gr->organization)
            json_object_set_new(o, "organization", json_string(gr->organization));
        json_array_append_new(roles, o);
    }
    json_t *o = json_pack(
        "{s:o, s:s, s:s, s:o, s:i}", "login", p->login ? json_string(p->login) : json_null(),
        "name", p->name ? p->name : "", "method", p->method, "roles", roles, "profile", p->profile);
    if (c->csrf)
        json_object_set_new(o, "csrf", json_string(c->csrf));
    return o;
}

typedef struct SessionNew {
    const char *hash, *csrf, *address;
    int64_t account, expires;
} SessionNew;

static int txn_session_add(StoreTxn *t, void *ctx, Diag *d)
{
    SessionNew *s = ctx;
    return store_txn_session_add(t, s->hash, s->account, s->csrf, s->expires, s->address, d);
}

static void h_login(HttpRequest *r, void *ctx)
{
    AuthApi *g = ctx;
    json_t *body = NULL;
    Diag d = {{0}, {0}};
    if (json_parse(r->body, r->body_len, &body, &d) != 0 || !json_is_object(body)) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "%s", "corps JSON attendu : {\"login\": …, \"password\": …}");
        return;
    }
    const char *login = json_str(body, "login"), *password = json_str(body, "password");
    if (!login || !password || !login[0] || strlen(login) > 256) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "%s", "identifiant et mot de passe attendus");
        return;
    }
    login = arena_strdup(&r->arena, login);
    password = arena_strdup(&r->arena, password);
    json_decref(body);

    int64_t now_s = time_now_ms() / 1000, retry = 0;
    if (auth_throttle_check(g->throttle, login, r->remote, now_s, &retry) != 0) {
        char ra[32];
        snprintf(ra, sizeof ra, "%lld", (long long)retry);
        http_header_set(r, "Retry-After", ra);
        api_audit_note(r, "login", "failure", NULL, NULL, 0,
                       arena_printf(&r->arena, "%s : compte ou adresse verrouillé", login));
        char *msg =
            arena_printf(&r->arena, "trop d'essais : réessayez dans %lld s", (long long)retry);
        char *oo = fhir_outcome_text("error", "throttled", msg, NULL);
        http_respond(r, 429, "application/fhir+json; charset=utf-8", oo, strlen(oo));
        return;
    }
    StoreAccount acc;
    bool known = store_account_get(g->store, &r->arena, login, &acc, NULL) == 0;
    bool ok = auth_password_verify(known && acc.password ? acc.password : g->dummy_hash, password);
    ok = ok && known && acc.password && !acc.disabled;
    auth_throttle_record(g->throttle, login, r->remote, now_s, ok);
    if (!ok) {
        api_audit_note(r, "login", "failure", NULL, NULL, 0, login);
        api_fail(r, ERR_UNAUTHORIZED, "%s", "identifiant ou mot de passe incorrect");
        return;
    }
    char token[AUTH_KEY_MAX], hash[AUTH_KEY_HASH], csrf[AUTH_KEY_MAX], unused[AUTH_KEY_HASH];
    auth_apikey_new(token, hash);
    auth_apikey_new(csrf, unused);
    SessionNew s = {.hash = hash,
                    .csrf = csrf + 4,
                    .address = r->remote,
                    .account = acc.id,
                    .expires = time_now_ms() + SESSION_TTL_MS};
    if (store_write(g->store, txn_session_add, &s, &d) != 0) {
        http_fail(r, ERR_UNAVAILABLE, &d);
        return;
    }
    Caller *c = (Caller *)r->principal;
    principal_from_account(r, c, &acc, "session");
    c->p.profile = auth_profile_default(&c->p);
    c->csrf = arena_strdup(&r->arena, csrf + 4);
    api_audit_note(r, "login", "success", NULL, NULL, 0, NULL);
    set_cookie(r, g, token, SESSION_TTL_MS / 1000);
    api_respond_json(r, whoami(c));
}

typedef struct SessionEnd {
    const char *hash;
} SessionEnd;

static int txn_session_end(StoreTxn *t, void *ctx, Diag *d)
{
    return store_txn_session_delete(t, ((SessionEnd *)ctx)->hash, time_now_ms(), d);
}

static void h_logout(HttpRequest *r, void *ctx)
{
    AuthApi *g = ctx;
    const Caller *c = r->principal;
    if (c && c->session_hash) {
        SessionEnd e = {c->session_hash};
        Diag d = {{0}, {0}};
        if (store_write(g->store, txn_session_end, &e, &d) != 0) {
            http_fail(r, ERR_UNAVAILABLE, &d);
            return;
        }
        api_audit_note(r, "logout", "success", NULL, NULL, 0, NULL);
    }
    set_cookie(r, g, "", 0);
    api_respond_json(r, json_pack("{s:b}", "loggedOut", 1));
}

static void h_session(HttpRequest *r, void *ctx)
{
    (void)ctx;
    api_respond_json(r, whoami(r->principal));
}

/* ------------------------------------------------------------------ GET /audit */

static const char *audit_action_code(const char *action)
{
    if (strcmp(action, "create") == 0)
        return "C";
    if (strcmp(action, "read") == 0 || strcmp(action, "search") == 0)
        return "R";
    if (strcmp(action, "update") == 0 || strcmp(action, "validate") == 0)
        return "U";
    if (strcmp(action, "delete") == 0)
        return "D";
    return "E";
}

static json_t *audit_event(HttpRequest *r, const StoreAudit *e)
{
    char when[32];
    time_format_instant(e->at, when);
    bool rest = e->type != NULL;
    bool auth = strcmp(e->action, "login") == 0 || strcmp(e->action, "logout") == 0 ||
                strcmp(e->action, "authenticate") == 0;
    json_t *type = rest ? json_pack("{s:s, s:s, s:s}", "system",
                                    "http://terminology.hl7.org/CodeSystem/audit-event-type",
                                    "code", "rest", "display", "RESTful Operation")
                        : json_pack("{s:s, s:s, s:s}", "system",
                                    "http://dicom.nema.org/resources/ontology/DCM", "code",
                                    auth ? "110114" : "110113", "display",
                                    auth ? "User Authentication" : "Security Alert");
    const char *outcome = strcmp(e->outcome, "success") == 0 ? "0" : "4";
    json_t *agent = json_pack("{s:{s:s}, s:b}", "who", "display", e->actor, "requestor", 1);
    if (e->address)
        json_object_set_new(agent, "network",
                            json_pack("{s:s, s:s}", "address", e->address, "type", "2"));
    json_t *ev = json_pack(
        "{s:s, s:s, s:o, s:[{s:s, s:s}], s:s, s:s, s:s, s:[o], s:{s:{s:s}}}", "resourceType",
        "AuditEvent", "id", arena_printf(&r->arena, "%lld", (long long)e->id), "type", type,
        "subtype", "system", "http://hl7.org/fhir/restful-interaction", "code", e->action, "action",
        audit_action_code(e->action), "recorded", when, "outcome", outcome, "agent", agent,
        "source", "observer", "display", "ror");
    if (e->detail && e->detail[0])
        json_object_set_new(ev, "outcomeDesc", json_string(e->detail));
    if (e->type && e->rid) {
        const char *ref = e->version > 0 ? arena_printf(&r->arena, "%s/%s/_history/%lld", e->type,
                                                        e->rid, (long long)e->version)
                                         : arena_printf(&r->arena, "%s/%s", e->type, e->rid);
        json_object_set_new(ev, "entity", json_pack("[{s:{s:s}}]", "what", "reference", ref));
    }
    return ev;
}

static int instant_param(HttpRequest *r, const char *name, int64_t *out, Diag *d)
{
    const char *v = api_query(r, name);
    if (!v)
        return 0;
    int64_t lo, hi;
    if (time_parse_range(v, strlen(v), &lo, &hi) != 0)
        return diag_set(d, ERR_INVALID, "%s : date ou instant attendu (%s)", name, v);
    *out = lo;
    return 0;
}

static void h_audit(HttpRequest *r, void *ctx)
{
    AuthApi *g = ctx;
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "consulter le journal d'audit"))
        return;
    StoreAuditQuery q = {.actor = api_query(r, "actor"),
                         .action = api_query(r, "action"),
                         .outcome = api_query(r, "outcome"),
                         .type = api_query(r, "type"),
                         .rid = api_query(r, "id"),
                         .max = 100};
    Diag d = {{0}, {0}};
    const char *count = api_query(r, "_count"), *before = api_query(r, "before");
    if (count) {
        char *end;
        long n = strtol(count, &end, 10);
        if (*end || n < 1 || n > 1000) {
            api_fail(r, ERR_INVALID, "%s", "_count : entier de 1 à 1000 attendu");
            return;
        }
        q.max = (size_t)n;
    }
    if (before) {
        char *end;
        q.before_id = strtoll(before, &end, 10);
        if (*end || q.before_id <= 0) {
            api_fail(r, ERR_INVALID, "%s", "before : identifiant d'entrée attendu");
            return;
        }
    }
    if (instant_param(r, "since", &q.since, &d) != 0 || instant_param(r, "until", &q.until, &d)) {
        http_fail(r, ERR_INVALID, &d);
        return;
    }
    /* what was noted until now is in the answer: written here, or by the audit thread */
    pthread_mutex_lock(&g->mu);
    audit_flush_locked(g);
    while (g->writing > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    StoreAudit *rows;
    size_t n;
    if (store_audit(g->store, &r->arena, &q, &rows, &n, &d) != 0) {
        http_fail(r, ERR_IO, &d);
        return;
    }
    json_t *entries = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(entries, json_pack("{s:o}", "resource", audit_event(r, &rows[i])));
    json_t *b = json_pack("{s:s, s:s, s:o}", "resourceType", "Bundle", "type", "searchset", "entry",
                          entries);
    if (n == q.max && n > 0)
        json_object_set_new(b, "link",
                            json_pack("[{s:s, s:s}]", "relation", "next", "url",
                                      arena_printf(&r->arena, "%s/audit?before=%lld&_count=%zu",
                                                   r->base_url, (long long)rows[n - 1].id, q.max)));
    size_t len;
    char *text = json_dump_compact(b, &len);
    json_decref(b);
    http_respond(r, 200, "application/fhir+json; charset=utf-8", text, len);
}

/* ------------------------------------------------------------------ life cycle */

AuthApi *auth_api_new(const AuthApiOptions *o, Diag *d)
{
    AuthApi *g = xcalloc(1, sizeof *g);
    g->store = o->store;
    g->jwks = o->jwks;
    g->issuer = o->issuer ? xstrdup(o->issuer) : NULL;
    g->audience = o->audience ? xstrdup(o->audience) : NULL;
    g->cookie_secure = o->cookie_secure;
    g->throttle = auth_throttle_new(NULL);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (g->jwks && (!g->issuer || !g->audience)) {
        diag_set(d, ERR_INVALID, "jetons OIDC : émetteur et audience sont nécessaires");
        auth_api_free(g);
        return NULL;
    }
    if (auth_init() != 0 || profile_codes_load(g, o->profile_codes_json, d) != 0 ||
        auth_password_hash("ror-dummy-password", g->dummy_hash, d) != 0) {
        auth_api_free(g);
        return NULL;
    }
    if (pthread_create(&g->thread, NULL, audit_thread, g) != 0) {
        diag_set(d, ERR_INTERNAL, "audit: thread");
        auth_api_free(g);
        return NULL;
    }
    g->started = true;
    return g;
}

void auth_api_routes(AuthApi *g, HttpServer *s)
{
    http_set_gate(s, gate, g);
    http_route(s, HTTP_POST, "/auth/login", h_login, g);
    http_route(s, HTTP_POST, "/auth/logout", h_logout, g);
    http_route(s, HTTP_GET, "/auth/session", h_session, g);
    http_route(s, HTTP_GET, "/audit", h_audit, g);
}

void auth_api_stop(AuthApi *g)
{
    if (!g || !g->started)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    g->started = false;
    if (g->lost)
        log_msg(LOG_WARN, "audit: %llu entrées perdues (file pleine)", (unsigned long long)g->lost);
}

void auth_api_free(AuthApi *g)
{
    if (!g)
        return;
    auth_api_stop(g);
    for (size_t i = 0; i < g->nqueue; i++)
        audit_entry_free(&g->queue[i]);
    free(g->queue);
    for (size_t i = 0; i < g->ncodes; i++) {
        free(g->codes[i].system);
        free(g->codes[i].code);
    }
    free(g->codes);
    auth_throttle_free(g->throttle);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->issuer);
    free(g->audience);
    free(g);
}
