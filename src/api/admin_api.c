/*
 * admin_api.c — accounts, managed by the ARS while the server runs (`ror user` needs the data
 * directory to itself). Every change is recorded with its author in the account's history.
 *
 *   GET  /admin/users                        every account (no secret: no hash, no key)
 *   POST /admin/users {"login", "name", "roles": [...]}
 *                                            a new account; its password is made here and
 *                                            shown once in the answer
 *   PUT  /admin/users/{login}/roles {"roles": [...]}
 *   POST /admin/users/{login}/disable|enable  disabling also ends its sessions
 *   POST /admin/users/{login}/password       a new password, shown once; sessions ended
 *
 * Roles are as `ror user` takes them: [{"role": "bed-declarer", "organization": "750999039"},
 * {"role": "reader", "profile": 4}, ...].
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "json/json.h"

#define LOGIN_MAX 128

typedef struct AccountOp {
    HttpRequest *req;
    const char *verb; /* add, roles, disable, enable, password */
    const char *login, *name;
    const char *roles;    /* JSON text (add, roles) */
    const char *password; /* encoded hash (add, password) */
} AccountOp;

static int txn_account(StoreTxn *t, void *ctx, Diag *d)
{
    AccountOp *op = ctx;
    Arena *a = &op->req->arena;
    const char *author = api_principal(op->req)->author;
    StoreAccount acc = {0};
    if (strcmp(op->verb, "add") == 0) {
        acc = (StoreAccount){
            .login = op->login, .name = op->name, .password = op->password, .roles = op->roles};
        return store_txn_account_put(t, &acc, author, "add", op->roles, NULL, d);
    }
    int rc = store_txn_account_get(t, a, op->login, &acc, d);
    if (rc != 0)
        return rc;
    const char *detail = NULL;
    if (strcmp(op->verb, "roles") == 0) {
        acc.roles = op->roles;
        detail = op->roles;
    } else if (strcmp(op->verb, "password") == 0) {
        acc.password = op->password;
        rc = store_txn_sessions_end(t, acc.id, d);
    } else {
        acc.disabled = strcmp(op->verb, "disable") == 0;
        if (acc.disabled)
            rc = store_txn_sessions_end(t, acc.id, d);
    }
    return rc ? rc : store_txn_account_put(t, &acc, author, op->verb, detail, NULL, d);
}

static json_t *account_json(const StoreAccount *acc)
{
    char updated[32];
    time_format_instant(acc->updated, updated);
    json_t *roles = NULL;
    if (json_parse(acc->roles, strlen(acc->roles), &roles, NULL) != 0)
        roles = json_array();
    return json_pack("{s:s, s:s, s:o, s:b, s:b, s:I, s:s, s:s}", "login", acc->login, "name",
                     acc->name ? acc->name : "", "roles", roles, "disabled", acc->disabled,
                     "password", acc->password != NULL, "apiKeys", (json_int_t)acc->nkeys,
                     "updated", updated, "updatedBy", acc->updated_by ? acc->updated_by : "");
}

static bool admin_or_respond(HttpRequest *r)
{
    return api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "administrer les comptes");
}

static void h_list(HttpRequest *r, void *ctx)
{
    Store *store = ctx;
    if (!admin_or_respond(r))
        return;
    StoreAccount *v;
    size_t n;
    Diag d = {{0}, {0}};
    if (store_accounts(store, &r->arena, &v, &n, &d) != 0) {
        http_fail(r, ERR_IO, &d);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, account_json(&v[i]));
    api_respond_json(r, json_pack("{s:o}", "users", arr));
}

/* A new random password (shown once) and its hash. */
static int new_password(char pw[32], char hash[AUTH_HASH_MAX], Diag *d)
{
    char key[AUTH_KEY_MAX], unused[AUTH_KEY_HASH];
    auth_apikey_new(key, unused);
    snprintf(pw, 32, "%.24s", key + 4);
    return auth_password_hash(pw, hash, d);
}

static bool login_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) > LOGIN_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-' || *c == '@'))
            return false;
    return true;
}

/* Parse the body's "roles" into normalised JSON text in the arena; has answered otherwise. */
static const char *roles_or_respond(HttpRequest *r, json_t *body)
{
    Diag d = {{0}, {0}};
    json_t *roles = json_object_get(body, "roles");
    json_t *empty = roles ? NULL : json_array();
    json_t *norm = auth_roles_normalise(roles ? roles : empty, &d);
    json_decref(empty);
    if (!norm) {
        http_fail(r, ERR_INVALID, &d);
        return NULL;
    }
    char *text = json_dumps(norm, JSON_COMPACT);
    json_decref(norm);
    const char *out = arena_strdup(&r->arena, text);
    free(text);
    return out;
}

static json_t *body_or_respond(HttpRequest *r)
{
    json_t *body = NULL;
    Diag d = {{0}, {0}};
    if (json_parse(r->body, r->body_len, &body, &d) != 0 || !json_is_object(body)) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "%s", "corps JSON (objet) attendu");
        return NULL;
    }
    return body;
}

static void run(HttpRequest *r, Store *store, AccountOp *op, const char *password);

/* Run op with a new random password (its hash in op), shown once in the answer. */
static void run_with_new_password(HttpRequest *r, Store *store, AccountOp *op)
{
    char pw[32], hash[AUTH_HASH_MAX];
    Diag d = {{0}, {0}};
    if (new_password(pw, hash, &d) != 0) {
        http_fail(r, ERR_INTERNAL, &d);
        return;
    }
    op->password = hash;
    run(r, store, op, pw);
    explicit_bzero(pw, sizeof pw);
}

static void run(HttpRequest *r, Store *store, AccountOp *op, const char *password)
{
    Diag d = {{0}, {0}};
    int rc = store_write(store, txn_account, op, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    api_audit_note(r, "account", "success", NULL, NULL, 0,
                   arena_printf(&r->arena, "%s %s", op->verb, op->login));
    StoreAccount acc;
    if (store_account_get(store, &r->arena, op->login, &acc, &d) != 0) {
        http_fail(r, ERR_IO, &d);
        return;
    }
    json_t *o = account_json(&acc);
    if (password) /* shown once: kept nowhere */
        json_object_set_new(o, "newPassword", json_string(password));
    api_respond_json(r, o);
}

static void h_add(HttpRequest *r, void *ctx)
{
    Store *store = ctx;
    if (!admin_or_respond(r))
        return;
    json_t *body = body_or_respond(r);
    if (!body)
        return;
    const char *login = json_str(body, "login"), *name = json_str(body, "name");
    if (!login_ok(login) || (name && strlen(name) > 256)) {
        json_decref(body);
        api_fail(r, ERR_INVALID, "%s",
                 "login : 1 à 128 caractères parmi lettres, chiffres, . _ - @ ; name : 256 au "
                 "plus");
        return;
    }
    AccountOp op = {.req = r,
                    .verb = "add",
                    .login = arena_strdup(&r->arena, login),
                    .name = arena_strdup(&r->arena, name ? name : "")};
    op.roles = roles_or_respond(r, body);
    json_decref(body);
    if (op.roles)
        run_with_new_password(r, store, &op);
}

static void h_roles(HttpRequest *r, void *ctx)
{
    Store *store = ctx;
    if (!admin_or_respond(r))
        return;
    json_t *body = body_or_respond(r);
    if (!body)
        return;
    AccountOp op = {.req = r, .verb = "roles", .login = r->params[0]};
    op.roles = roles_or_respond(r, body);
    json_decref(body);
    if (op.roles)
        run(r, store, &op, NULL);
}

static void h_state(HttpRequest *r, Store *store, const char *verb)
{
    if (!admin_or_respond(r))
        return;
    if (strcmp(r->params[0], api_principal(r)->login) == 0 && strcmp(verb, "disable") == 0) {
        api_fail(r, ERR_BUSINESS, "%s",
                 "un administrateur ne peut pas désactiver son propre compte");
        return;
    }
    AccountOp op = {.req = r, .verb = verb, .login = r->params[0]};
    if (strcmp(verb, "password") == 0)
        run_with_new_password(r, store, &op);
    else
        run(r, store, &op, NULL);
}

static void h_disable(HttpRequest *r, void *ctx)
{
    h_state(r, ctx, "disable");
}

static void h_enable(HttpRequest *r, void *ctx)
{
    h_state(r, ctx, "enable");
}

static void h_password(HttpRequest *r, void *ctx)
{
    h_state(r, ctx, "password");
}

void admin_api_routes(HttpServer *s, Store *store)
{
    http_route(s, HTTP_GET, "/admin/users", h_list, store);
    http_route(s, HTTP_POST, "/admin/users", h_add, store);
    http_route(s, HTTP_PUT, "/admin/users/{login}/roles", h_roles, store);
    http_route(s, HTTP_POST, "/admin/users/{login}/disable", h_disable, store);
    http_route(s, HTTP_POST, "/admin/users/{login}/enable", h_enable, store);
    http_route(s, HTTP_POST, "/admin/users/{login}/password", h_password, store);
}
