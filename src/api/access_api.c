/*
 * access_api.c — the access rules applied to stored resources: who owns a resource (for
 * writes) and what the reader's access profile shows of it (for reads).
 *
 * Owners: the organisations a resource belongs to, with their whole partOf chain — an
 * Organization itself, a HealthcareService's providedBy, a Location's managingOrganization, a
 * PractitionerRole's organization and offers, a Task's focus. Each is named by
 * "Organization/<id>" and by its identifier values (FINESS...), the forms a grant may use.
 *
 * Visibility context: a HealthcareService carries its own (sensitive flag, champ d'activité);
 * a Location takes the offers delivered there, a PractitionerRole its offers, a Practitioner
 * the offers of its roles (one indexed search each).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "json/json.h"

#define CHAIN_MAX 12 /* partOf levels followed (EJ > EG > OI > ... ; a cycle stops earlier) */
typedef int (*ReadFn)(void *ctx, Arena *a, const char *type, const char *id, StoredResource *out);

/* A set of strings in the request arena, growable up to IDS_MAX (owner keys; the ids of an
 * establishment's organisations and units, which may be hundreds). */
typedef struct Ids {
    const char **v;
    size_t n, cap;
} Ids;

#define IDS_MAX 20000

static bool ids_has(const Ids *x, const char *id)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i], id) == 0)
            return true;
    return false;
}

static void ids_add(Ids *x, Arena *a, const char *id)
{
    if (!id || !id[0] || x->n >= IDS_MAX || ids_has(x, id))
        return;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 32;
        const char **v = arena_alloc(a, cap * sizeof *v);
        if (x->n)
            memcpy(v, x->v, x->n * sizeof *v);
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = arena_strdup(a, id);
}

/* "Organization/x", "http://host/fhir/Organization/x", "Organization/x/_history/2" -> x when
 * the type is `type`; else NULL. */
static const char *ref_id(Arena *a, const json_t *ref, const char *type)
{
    const char *s = json_str(ref, "reference");
    if (!s)
        return NULL;
    const char *h = strstr(s, "/_history/");
    size_t len = h ? (size_t)(h - s) : strlen(s);
    const char *slash = NULL, *prev = NULL;
    for (const char *c = s; c < s + len; c++)
        if (*c == '/') {
            prev = slash;
            slash = c;
        }
    if (!slash)
        return NULL;
    const char *seg = prev ? prev + 1 : s;
    if ((size_t)(slash - seg) != strlen(type) || strncmp(seg, type, strlen(type)) != 0 ||
        slash + 1 == s + len)
        return NULL;
    return arena_strndup(a, slash + 1, (size_t)(s + len - slash - 1));
}

static json_t *read_doc(ReadFn rd, void *rctx, Arena *a, const char *type, const char *id)
{
    StoredResource s;
    json_t *doc = NULL;
    if (!id || rd(rctx, a, type, id, &s) != 0 || s.deleted)
        return NULL;
    if (json_parse(s.body, s.len, &doc, NULL) != 0)
        return NULL;
    return doc;
}

static void org_keys(Ids *k, Arena *a, const json_t *org, const char *id)
{
    ids_add(k, a, arena_printf(a, "Organization/%s", id));
    size_t i;
    json_t *ident;
    json_array_foreach(json_object_get(org, "identifier"), i, ident)
        ids_add(k, a, json_str(ident, "value"));
}

/* The organisation `id` (NULL: none) and its partOf chain. */
static void org_chain(ReadFn rd, void *rctx, Arena *a, const char *id, Ids *k)
{
    for (int depth = 0; id && depth < CHAIN_MAX; depth++) {
        if (ids_has(k, arena_printf(a, "Organization/%s", id)))
            return; /* a cycle, or a branch already walked */
        json_t *org = read_doc(rd, rctx, a, "Organization", id);
        if (!org) {
            ids_add(k, a, arena_printf(a, "Organization/%s", id));
            return;
        }
        org_keys(k, a, org, id);
        id = ref_id(a, json_object_get(org, "partOf"), "Organization");
        json_decref(org);
    }
}

/* What the owner lookups may search (the offers delivered at a Location). */
typedef struct OwnerCtx {
    StoreTxn *txn; /* inside a write; else */
    Store *store;  /* for a read */
} OwnerCtx;

static void owners_of(ReadFn rd, void *rctx, const OwnerCtx *oc, Arena *a, const char *type,
                      const json_t *doc, Ids *k, int depth);

static void offers_owners(ReadFn rd, void *rctx, const OwnerCtx *oc, Arena *a, const char *loc_id,
                          Ids *k, int depth)
{
    StoreText *hs;
    size_t n;
    if ((oc->txn ? store_txn_referrers(oc->txn, a, "HealthcareService", "Location", loc_id, 200,
                                       &hs, &n, NULL)
                 : store_referrers(oc->store, a, "HealthcareService", "Location", loc_id, 200, &hs,
                                   &n, NULL)) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *doc = NULL;
        if (json_parse(hs[i].text, hs[i].len, &doc, NULL) != 0)
            continue;
        owners_of(rd, rctx, oc, a, "HealthcareService", doc, k, depth + 1);
        json_decref(doc);
    }
}

static void owners_of(ReadFn rd, void *rctx, const OwnerCtx *oc, Arena *a, const char *type,
                      const json_t *doc, Ids *k, int depth)
{
    if (!doc)
        return;
    if (strcmp(type, "Organization") == 0) {
        const char *id = json_str(doc, "id");
        if (id)
            org_keys(k, a, doc, id);
        else /* a creation: its identifiers name it */
            org_keys(k, a, doc, "");
        org_chain(rd, rctx, a, ref_id(a, json_object_get(doc, "partOf"), "Organization"), k);
    } else if (strcmp(type, "HealthcareService") == 0) {
        org_chain(rd, rctx, a, ref_id(a, json_object_get(doc, "providedBy"), "Organization"), k);
    } else if (strcmp(type, "Location") == 0) {
        const char *mo = ref_id(a, json_object_get(doc, "managingOrganization"), "Organization");
        if (mo)
            org_chain(rd, rctx, a, mo, k);
        else if (oc && json_str(doc, "id")) /* no manager named: the providers of its offers */
            offers_owners(rd, rctx, oc, a, json_str(doc, "id"), k, depth);
    } else if (strcmp(type, "PractitionerRole") == 0) {
        org_chain(rd, rctx, a, ref_id(a, json_object_get(doc, "organization"), "Organization"), k);
        size_t i;
        json_t *ref;
        json_array_foreach(json_object_get(doc, "healthcareService"), i, ref)
        {
            json_t *hs =
                read_doc(rd, rctx, a, "HealthcareService", ref_id(a, ref, "HealthcareService"));
            owners_of(rd, rctx, oc, a, "HealthcareService", hs, k, depth + 1);
            json_decref(hs);
        }
    } else if (strcmp(type, "Task") == 0 && depth == 0) {
        static const char *const focus_types[] = {"Organization", "HealthcareService", "Location",
                                                  "PractitionerRole"};
        const json_t *focus = json_object_get(doc, "focus");
        for (size_t i = 0; i < sizeof focus_types / sizeof focus_types[0]; i++) {
            const char *fid = ref_id(a, focus, focus_types[i]);
            if (!fid)
                continue;
            json_t *target = read_doc(rd, rctx, a, focus_types[i], fid);
            owners_of(rd, rctx, oc, a, focus_types[i], target, k, depth + 1);
            json_decref(target);
        }
    }
}

static int txn_reader(void *ctx, Arena *a, const char *type, const char *id, StoredResource *out)
{
    return store_txn_read(ctx, a, type, id, out, NULL);
}

static int store_reader(void *ctx, Arena *a, const char *type, const char *id, StoredResource *out)
{
    return store_read(ctx, a, type, id, out, NULL);
}

/* A copy of a Location without what a bed declarer may change (its capacity indicators) nor
 * what the server sets (meta, text). */
static json_t *without_capacity(const json_t *loc)
{
    json_t *c = json_deep_copy(loc);
    json_object_del(c, "meta");
    json_object_del(c, "text");
    json_t *ext = json_object_get(c, "extension");
    for (size_t i = json_array_size(ext); i > 0; i--) {
        const char *url = json_str(json_array_get(ext, i - 1), "url");
        if (url && strstr(url, "/ror-location-supported-capacity"))
            json_array_remove(ext, i - 1);
    }
    if (ext && json_array_size(ext) == 0)
        json_object_del(c, "extension");
    return c;
}

static bool capacity_only_change(const json_t *before, const json_t *after)
{
    if (!before || !after)
        return false;
    json_t *b = without_capacity(before), *a = without_capacity(after);
    bool same = json_equal(b, a);
    json_decref(b);
    json_decref(a);
    return same;
}

int api_write_check(HttpRequest *r, StoreTxn *t, const char *type, AuthWrite op,
                    const json_t *before, const json_t *after, Diag *d)
{
    const AuthPrincipal *p = api_principal(r);
    Ids kb = {0}, ka = {0};
    bool admin = auth_has_role(p, AUTH_ROLE_ARS_ADMIN) && !p->read_only;
    if (!admin) { /* the ARS may write anything: no need to know the owners */
        OwnerCtx oc = {t, NULL};
        owners_of(txn_reader, t, &oc, &r->arena, type, before, &kb, 0);
        owners_of(txn_reader, t, &oc, &r->arena, type, after, &ka, 0);
    }
    AuthOwner ob = {kb.v, kb.n}, oa = {ka.v, ka.n};
    AuthWriteRequest w = {.type = type,
                          .op = op,
                          .before = before ? &ob : NULL,
                          .after = after ? &oa : NULL,
                          .capacity_only =
                              strcmp(type, "Location") == 0 && capacity_only_change(before, after)};
    int rc = auth_may_write(p, &w, d);
    if (rc != 0)
        api_audit_note(r,
                       op == AUTH_WRITE_CREATE   ? "create"
                       : op == AUTH_WRITE_UPDATE ? "update"
                                                 : "delete",
                       "failure", type, json_str(after ? after : before, "id"), 0, d->msg);
    return rc;
}

bool api_owned(HttpRequest *r, Store *store, const char *type, const json_t *doc)
{
    const AuthPrincipal *p = api_principal(r);
    Ids k = {0};
    OwnerCtx oc = {NULL, store};
    owners_of(store_reader, store, &oc, &r->arena, type, doc, &k, 0);
    for (size_t i = 0; i < p->ngrants; i++) {
        const AuthGrant *g = &p->grants[i];
        if ((g->role == AUTH_ROLE_MANAGER || g->role == AUTH_ROLE_BED_DECLARER) &&
            g->organization && ids_has(&k, g->organization))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ reads */

/* Fold into ctx the offers of a PractitionerRole. */
static void role_offers_context(HttpRequest *r, Store *store, const json_t *role,
                                AuthVisContext *ctx)
{
    size_t k;
    json_t *sref;
    json_array_foreach(json_object_get(role, "healthcareService"), k, sref)
    {
        json_t *hs = read_doc(store_reader, store, &r->arena, "HealthcareService",
                              ref_id(&r->arena, sref, "HealthcareService"));
        if (hs)
            auth_visibility_offer(hs, ctx);
        json_decref(hs);
    }
}

/* Fold into ctx the offers that refer to ttype/tid (for a Location), or those of the roles
 * that refer to it (for a Practitioner). */
static void context_from_referrers(HttpRequest *r, Store *store, const char *ttype, const char *tid,
                                   AuthVisContext *ctx)
{
    bool roles = strcmp(ttype, "Practitioner") == 0;
    StoreText *docs;
    size_t n;
    if (store_referrers(store, &r->arena, roles ? "PractitionerRole" : "HealthcareService", ttype,
                        tid, 200, &docs, &n, NULL) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *doc = NULL;
        if (json_parse(docs[i].text, docs[i].len, &doc, NULL) != 0)
            continue;
        if (roles)
            role_offers_context(r, store, doc, ctx);
        else
            auth_visibility_offer(doc, ctx);
        json_decref(doc);
    }
}

static void visibility_context(HttpRequest *r, Store *store, const StoredResource *s,
                               const json_t *doc, AuthVisContext *ctx)
{
    if (strcmp(s->type, "HealthcareService") == 0) {
        auth_visibility_offer(doc, ctx);
    } else if (strcmp(s->type, "Location") == 0) {
        context_from_referrers(r, store, "Location", s->id, ctx);
    } else if (strcmp(s->type, "PractitionerRole") == 0) {
        role_offers_context(r, store, doc, ctx);
    } else if (strcmp(s->type, "Practitioner") == 0) {
        context_from_referrers(r, store, "Practitioner", s->id, ctx);
    }
}

/* Is the offer whose stored text is s[0..len) a sensitive unit, without parsing it (every
 * ROR offer carries the flag, and parsing a 6 KB offer costs ~0.2 ms with jansson)? The flag
 * is a flat extension object {"url": "...ror-healthcareservice-sensitive-unit", "valueBoolean":
 * true|false} in any member order and spacing. 1 sensitive, 0 not, -1 cannot tell (then
 * parse): nested braces in that object, or no such extension. */
static int offer_sensitive_scan(const char *s, size_t len)
{
    static const char url[] = "ror-healthcareservice-sensitive-unit\"";
    static const char key[] = "\"valueBoolean\"";
    const char *end = s + len, *hit = memmem(s, len, url, sizeof url - 1);
    if (!hit || memmem(hit + 1, (size_t)(end - hit - 1), url, sizeof url - 1))
        return -1; /* none, or several: let the parser decide */
    const char *open = hit, *close = hit;
    while (open > s && *open != '{' && *open != '}')
        open--;
    while (close < end && *close != '}' && *close != '{')
        close++;
    if (open <= s || *open != '{' || close >= end || *close != '}')
        return -1;
    const char *v = memmem(open, (size_t)(close - open), key, sizeof key - 1);
    if (!v)
        return -1;
    v += sizeof key - 1;
    while (v < close && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == ':'))
        v++;
    if ((size_t)(close - v) >= 4 && memcmp(v, "true", 4) == 0)
        return 1;
    if ((size_t)(close - v) >= 5 && memcmp(v, "false", 5) == 0)
        return 0;
    return -1;
}

static bool owner_type(const char *t)
{
    return strcmp(t, "HealthcareService") == 0 || strcmp(t, "Location") == 0 ||
           strcmp(t, "PractitionerRole") == 0 || strcmp(t, "Organization") == 0;
}

static bool filtered_type(const char *t)
{
    return strcmp(t, "HealthcareService") == 0 || strcmp(t, "Location") == 0 ||
           strcmp(t, "PractitionerRole") == 0 || strcmp(t, "Practitioner") == 0 ||
           strcmp(t, "Organization") == 0 || strcmp(t, "Task") == 0;
}

const char *api_visible_body(HttpRequest *r, Store *store, const StoredResource *s, size_t *len)
{
    *len = s->len;
    if (s->deleted || !filtered_type(s->type))
        return s->body;
    const AuthPrincipal *p = api_principal(r);
    bool is_offer = strcmp(s->type, "HealthcareService") == 0;
    /* What a Location, a role or a professional shows depends on the offers around it (one
     * search): needed only by the profiles that may be denied sensitive or non-médico-social
     * units. An offer carries its own flag: its reads are logged whatever the profile. */
    bool needs_ctx = is_offer || ((strcmp(s->type, "Location") == 0 ||
                                   strcmp(s->type, "PractitionerRole") == 0 ||
                                   strcmp(s->type, "Practitioner") == 0) &&
                                  p->profile != 1 && p->profile != 4);
    if (p->profile == 1) { /* nothing to filter; a read of a sensitive unit is logged */
        int sensitive = is_offer ? offer_sensitive_scan(s->body, s->len) : 0;
        if (sensitive == 0)
            return s->body;
        if (sensitive > 0) {
            api_audit_note(r, "read", "success", s->type, s->id, s->version, "unité sensible");
            return s->body;
        }
    }
    json_t *doc = NULL;
    if (json_parse(s->body, s->len, &doc, NULL) != 0)
        return p->profile == 1 ? s->body : NULL;
    AuthVisContext ctx = {0};
    if (needs_ctx)
        visibility_context(r, store, s, doc, &ctx);
    /* establishment staff see their own organisations' resources in full (a declarer must see
     * its unit even when a sensitive offer shares it) */
    if (p->profile != 1 && owner_type(s->type) &&
        (auth_has_role(p, AUTH_ROLE_MANAGER) || auth_has_role(p, AUTH_ROLE_BED_DECLARER)) &&
        api_owned(r, store, s->type, doc)) {
        json_decref(doc);
        if (ctx.sensitive)
            api_audit_note(r, "read", "success", s->type, s->id, s->version, "unité sensible");
        return s->body;
    }
    if (!auth_visibility_apply(doc, p->profile, &ctx)) {
        json_decref(doc);
        return NULL;
    }
    if (ctx.sensitive)
        api_audit_note(r, "read", "success", s->type, s->id, s->version, "unité sensible");
    const char *out = s->body;
    if (p->profile != 1) {
        size_t n = 0;
        char *text = json_dump_compact(doc, &n);
        out = arena_strndup(&r->arena, text, n);
        *len = n;
        free(text);
    }
    json_decref(doc);
    return out;
}

bool api_type_readable_or_respond(HttpRequest *r, const char *type)
{
    if (strcmp(type, "Subscription") == 0)
        return api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN) | API_ROLE(AUTH_ROLE_SYSTEM),
                                   "consulter les abonnements");
    if (strcmp(type, "Task") == 0 && !api_principal(r)->login)
        return api_role_or_respond(r, ~0u, "consulter les signalements d'anomalie");
    return true;
}

bool api_needs_validation(HttpRequest *r, bool validation, const char *type, const json_t *before,
                          const json_t *after)
{
    const AuthPrincipal *p = api_principal(r);
    if (!validation || auth_has_role(p, AUTH_ROLE_ARS_ADMIN) ||
        !auth_has_role(p, AUTH_ROLE_MANAGER))
        return false;
    if (strcmp(type, "Location") == 0)
        return !capacity_only_change(before, after); /* beds are operational: never held */
    return strcmp(type, "Organization") == 0 || strcmp(type, "HealthcareService") == 0 ||
           strcmp(type, "PractitionerRole") == 0;
}

int api_pending_add(HttpRequest *r, StoreTxn *t, const char *type, const char *id,
                    int64_t base_version, const json_t *after, int64_t *pending, Diag *d)
{
    char *text = after ? json_dump_compact(after, NULL) : NULL;
    StorePending p = {.at = time_now_ms(),
                      .author = api_principal(r)->author,
                      .type = type,
                      .rid = id ? id : "",
                      .base_version = base_version,
                      .body = text ? text : ""};
    int rc = store_txn_pending_add(t, &p, pending, d);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ anomaly reports (Task) */

/* The organisation directly responsible for `doc` (a resource of `type`), as a reference. */
static const char *direct_owner(Arena *a, StoreTxn *t, const char *type, const json_t *doc)
{
    const char *id = NULL;
    if (strcmp(type, "Organization") == 0)
        id = json_str(doc, "id");
    else if (strcmp(type, "HealthcareService") == 0)
        id = ref_id(a, json_object_get(doc, "providedBy"), "Organization");
    else if (strcmp(type, "PractitionerRole") == 0)
        id = ref_id(a, json_object_get(doc, "organization"), "Organization");
    else if (strcmp(type, "Location") == 0)
        id = ref_id(a, json_object_get(doc, "managingOrganization"), "Organization");
    (void)t;
    return id ? arena_printf(a, "Organization/%s", id) : NULL;
}

int api_task_prepare(HttpRequest *r, StoreTxn *t, json_t *task, bool create, Diag *d)
{
    static const char *const focus_types[] = {"Organization", "HealthcareService", "Location",
                                              "PractitionerRole", "Practitioner"};
    Arena *a = &r->arena;
    const json_t *focus = json_object_get(task, "focus");
    const char *ftype = NULL, *fid = NULL;
    for (size_t i = 0; i < sizeof focus_types / sizeof focus_types[0] && !fid; i++)
        if ((fid = ref_id(a, focus, focus_types[i])) != NULL)
            ftype = focus_types[i];
    if (!fid) {
        diag_expr(d, "Task.focus");
        return diag_set(d, ERR_BUSINESS,
                        "focus : l'anomalie doit porter sur une ressource du ROR (Organization, "
                        "HealthcareService, Location, PractitionerRole ou Practitioner)");
    }
    json_t *target = read_doc(txn_reader, t, a, ftype, fid);
    if (!target) {
        diag_expr(d, "Task.focus");
        return diag_set(d, ERR_BUSINESS, "focus : %s/%s introuvable", ftype, fid);
    }
    char now[32];
    time_format_instant(time_now_ms(), now);
    json_object_set_new(task, "lastModified", json_string(now));
    if (create) {
        if (!json_object_get(task, "authoredOn"))
            json_object_set_new(task, "authoredOn", json_string(now));
        /* routed to the owner: whoever is responsible for the element searches Task?owner= */
        const char *owner = direct_owner(a, t, ftype, target);
        if (!owner && strcmp(ftype, "Location") == 0) {
            Ids k = {0};
            OwnerCtx oc = {t, NULL};
            offers_owners(txn_reader, t, &oc, a, fid, &k, 0);
            for (size_t i = 0; i < k.n && !owner; i++)
                if (strncmp(k.v[i], "Organization/", 13) == 0)
                    owner = k.v[i];
        }
        if (owner && !json_object_get(task, "owner"))
            json_object_set_new(task, "owner", json_pack("{s:s}", "reference", owner));
        if (!json_object_get(task, "requester"))
            json_object_set_new(task, "requester",
                                json_pack("{s:s}", "display", api_principal(r)->author));
    }
    json_decref(target);
    return 0;
}

/* ------------------------------------------------------------------ GET /capacity/mine */

/* The organisations a grant names: "Organization/<id>", or any identifier value. */
static void grant_orgs(HttpRequest *r, Store *store, const FhirRegistry *reg, const char *key,
                       Ids *orgs)
{
    if (strncmp(key, "Organization/", 13) == 0) {
        ids_add(orgs, &r->arena, key + 13);
        return;
    }
    QueryParam q[2] = {{.name = "identifier", .value = key}, {.name = "_count", .value = "50"}};
    SearchPlan *plan = NULL;
    StorePage pg;
    if (fhir_search_parse(reg, "Organization", q, 2, false, &plan, NULL) != 0)
        return;
    if (store_search(store, &r->arena, plan, &pg, NULL) == 0)
        for (size_t i = 0; i < pg.nmatches; i++)
            ids_add(orgs, &r->arena, pg.matches[i].id);
    search_plan_free(plan);
}

static void add_ids(HttpRequest *r, Store *store, const char *type, const char *ttype,
                    const char *tid, Ids *out, Ids *locs_of_offers)
{
    StoreText *docs;
    size_t n;
    if (store_referrers(store, &r->arena, type, ttype, tid, IDS_MAX, &docs, &n, NULL) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *doc = NULL;
        if (json_parse(docs[i].text, docs[i].len, &doc, NULL) != 0)
            continue;
        if (out)
            ids_add(out, &r->arena, json_str(doc, "id"));
        size_t k;
        json_t *ref;
        json_array_foreach(locs_of_offers ? json_object_get(doc, "location") : NULL, k, ref)
            ids_add(locs_of_offers, &r->arena, ref_id(&r->arena, ref, "Location"));
        json_decref(doc);
    }
}

/* GET /capacity/mine: the units (Locations) whose capacities the principal may declare: those
 * of the organisations under its manager or bed-declarer grants (managed by them, or where
 * their offers are delivered). The ARS gets every unit with capacities through the other
 * capacity views; this one is for establishment staff (the mobile form). */
void api_units_mine(HttpRequest *r, Store *store, const FhirRegistry *reg)
{
    const AuthPrincipal *p = api_principal(r);
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_MANAGER) | API_ROLE(AUTH_ROLE_BED_DECLARER),
                             "déclarer des lits"))
        return;
    Ids orgs = {0}, locs = {0};
    for (size_t i = 0; i < p->ngrants; i++)
        if (p->grants[i].organization)
            grant_orgs(r, store, reg, p->grants[i].organization, &orgs);
    for (size_t i = 0; i < orgs.n; i++) /* breadth first down the partOf tree (the set grows) */
        add_ids(r, store, "Organization", "Organization", orgs.v[i], &orgs, NULL);
    for (size_t i = 0; i < orgs.n; i++) {
        add_ids(r, store, "Location", "Organization", orgs.v[i], &locs, NULL);
        add_ids(r, store, "HealthcareService", "Organization", orgs.v[i], NULL, &locs);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < locs.n; i++) {
        StoredResource s;
        json_t *doc = NULL;
        if (store_read(store, &r->arena, "Location", locs.v[i], &s, NULL) != 0 ||
            json_parse(s.body, s.len, &doc, NULL) != 0)
            continue;
        json_t *o = json_pack("{s:s, s:s, s:I}", "id", s.id, "name",
                              json_str(doc, "name") ? json_str(doc, "name") : "", "version",
                              (json_int_t)s.version);
        json_array_append_new(arr, o);
        json_decref(doc);
    }
    api_respond_json(r, json_pack("{s:o, s:b}", "locations", arr, "truncated",
                                  orgs.n == IDS_MAX || locs.n == IDS_MAX));
}
