/*
 * validation_api.c — the ARS's validation of establishment managers' changes (ror serve
 * --validation): a manager's change to descriptive data is recorded as pending (202) instead of
 * being applied; the ARS lists, approves (the change is then written as the manager's, "validé
 * par" the ARS) or rejects it with a reason.
 *
 *   GET  /validation[?status=pending|approved|rejected]  the changes, newest first
 *   POST /validation/{id}/approve                        apply it (409 when the resource has
 *                                                        changed since it was made)
 *   POST /validation/{id}/reject  {"reason": "..."}      refuse it
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "json/json.h"

typedef struct Decision {
    HttpRequest *req;
    int64_t id;
    bool approve;
    const char *reason;
    StorePending p;
    StoredResource out;
} Decision;

static int txn_decide(StoreTxn *t, void *ctx, Diag *d)
{
    Decision *x = ctx;
    Arena *a = &x->req->arena;
    int rc = store_txn_pending_get(t, a, x->id, &x->p, d);
    if (rc != 0)
        return rc;
    if (strcmp(x->p.status, "pending") != 0)
        return diag_set(d, ERR_CONFLICT, "modification %lld déjà traitée (%s)", (long long)x->id,
                        x->p.status);
    const char *by = api_principal(x->req)->author;
    if (!x->approve)
        return store_txn_pending_decide(t, x->id, "rejected", by, x->reason, d);

    const char *author = arena_printf(a, "%s (validé par %s)", x->p.author, by);
    if (!x->p.body[0]) { /* a deletion */
        rc = store_txn_delete(t, a, x->p.type, x->p.rid, x->p.base_version, author, &x->out, d);
    } else {
        json_t *res = NULL;
        if (json_parse(x->p.body, strlen(x->p.body), &res, d) != 0)
            return ERR_INTERNAL;
        StorePut put = {.type = x->p.type,
                        .id = x->p.rid[0] ? x->p.rid : NULL,
                        .res = res,
                        .if_match = x->p.base_version,
                        .create_only = x->p.base_version == 0 && x->p.rid[0],
                        .author = author};
        rc = store_txn_put(t, a, &put, &x->out, d);
        json_decref(res);
    }
    if (rc == ERR_PRECONDITION || rc == ERR_CONFLICT)
        return diag_set(d, ERR_CONFLICT,
                        "%s/%s a changé depuis cette modification (version %lld) : la refuser, "
                        "le gestionnaire la refera sur la version actuelle",
                        x->p.type, x->p.rid, (long long)x->p.base_version);
    if (rc == 0)
        rc = store_txn_pending_decide(t, x->id, "approved", by, NULL, d);
    return rc;
}

static json_t *pending_json(const StorePending *p)
{
    char at[32];
    time_format_instant(p->at, at);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "id", (json_int_t)p->id, "at", at,
                          "author", p->author, "type", p->type, "status", p->status, "baseVersion",
                          (json_int_t)p->base_version, "operation",
                          !p->body[0]           ? "delete"
                          : p->base_version > 0 ? "update"
                                                : "create");
    if (p->rid[0])
        json_object_set_new(o, "resourceId", json_string(p->rid));
    json_t *res = NULL;
    if (p->body[0] && json_parse(p->body, strlen(p->body), &res, NULL) == 0)
        json_object_set_new(o, "resource", res);
    if (p->decided_by) {
        char when[32];
        time_format_instant(p->decided_at, when);
        json_object_set_new(o, "decidedAt", json_string(when));
        json_object_set_new(o, "decidedBy", json_string(p->decided_by));
    }
    if (p->reason)
        json_object_set_new(o, "reason", json_string(p->reason));
    return o;
}

static void h_list(HttpRequest *r, void *ctx)
{
    Store *store = ctx;
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "valider les modifications"))
        return;
    const char *status = api_query(r, "status");
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "approved") != 0 &&
        strcmp(status, "rejected") != 0) {
        api_fail(r, ERR_INVALID, "%s", "status : pending, approved ou rejected");
        return;
    }
    StorePending *rows;
    size_t n;
    Diag d = {{0}, {0}};
    if (store_pendings(store, &r->arena, status, 500, &rows, &n, &d) != 0) {
        http_fail(r, ERR_IO, &d);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, pending_json(&rows[i]));
    api_respond_json(r, json_pack("{s:o}", "changes", arr));
}

static void decide(HttpRequest *r, Store *store, bool approve)
{
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN), "valider les modifications"))
        return;
    char *end;
    int64_t id = strtoll(r->params[0], &end, 10);
    if (*end || id <= 0) {
        api_fail(r, ERR_INVALID, "numéro de modification invalide : '%s'", r->params[0]);
        return;
    }
    Decision x = {.req = r, .id = id, .approve = approve};
    Diag d = {{0}, {0}};
    if (!approve) {
        json_t *body = NULL;
        if (json_parse(r->body, r->body_len, &body, &d) != 0 || !json_str(body, "reason") ||
            !json_str(body, "reason")[0] || strlen(json_str(body, "reason")) > 2000) {
            json_decref(body);
            api_fail(r, ERR_INVALID, "%s", "un motif de refus est attendu : {\"reason\": …}");
            return;
        }
        x.reason = arena_strdup(&r->arena, json_str(body, "reason"));
        json_decref(body);
    }
    int rc = store_write(store, txn_decide, &x, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    api_audit_note(r, "validate", "success", x.p.type, x.p.rid[0] ? x.p.rid : x.out.id,
                   x.out.version, approve ? "approuvée" : x.reason);
    x.p.status = approve ? "approved" : "rejected";
    x.p.decided_by = api_principal(r)->author;
    x.p.decided_at = time_now_ms();
    x.p.reason = x.reason;
    json_t *o = pending_json(&x.p);
    if (approve) {
        json_object_set_new(o, "resourceId", json_string(x.out.id));
        json_object_set_new(o, "version", json_integer(x.out.version));
    }
    api_respond_json(r, o);
}

static void h_approve(HttpRequest *r, void *ctx)
{
    decide(r, ctx, true);
}

static void h_reject(HttpRequest *r, void *ctx)
{
    decide(r, ctx, false);
}

void validation_api_routes(HttpServer *s, Store *store)
{
    http_route(s, HTTP_GET, "/validation", h_list, store);
    http_route(s, HTTP_POST, "/validation/{id}/approve", h_approve, store);
    http_route(s, HTTP_POST, "/validation/{id}/reject", h_reject, store);
}
