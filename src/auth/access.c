/*
 * access.c — grants, access profiles and the write rules of auth.h.
 *
 * The rules are data-light on purpose: the HTTP layer resolves who owns a resource (it reads
 * the store), this file decides from owner keys only, so that the whole matrix is testable
 * without a server.
 */
#include <jansson.h>
#include <string.h>

#include "auth.h"

const AuthRoleInfo auth_roles[AUTH_ROLES] = {
    [AUTH_ROLE_ARS_ADMIN] = {"ars-admin", AUTH_SCOPE_NONE, 1,
                             "administrateur ARS (toute la région)"},
    [AUTH_ROLE_MANAGER] = {"establishment-manager", AUTH_SCOPE_ORGANIZATION, 2,
                           "gestionnaire d'établissement (ses organisations)"},
    [AUTH_ROLE_BED_DECLARER] = {"bed-declarer", AUTH_SCOPE_ORGANIZATION, 2,
                                "déclarant de lits (les unités de son organisation)"},
    [AUTH_ROLE_READER] = {"reader", AUTH_SCOPE_PROFILE, 4, "lecteur orientation / régulation"},
    [AUTH_ROLE_SYSTEM] = {"system", AUTH_SCOPE_PROFILE, 2, "client système (lecture)"},
};

int auth_role_find(const char *name)
{
    for (int i = 0; i < AUTH_ROLES; i++)
        if (name && strcmp(auth_roles[i].name, name) == 0)
            return i;
    return -1;
}

void auth_grants_parse(Arena *a, const char *roles_json, AuthGrant **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *arr = roles_json ? json_loads(roles_json, 0, NULL) : NULL;
    if (!json_is_array(arr)) {
        json_decref(arr);
        return;
    }
    AuthGrant *g = arena_alloc(a, (json_array_size(arr) + 1) * sizeof *g);
    size_t i, k = 0;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        int r = auth_role_find(json_string_value(json_object_get(e, "role")));
        if (r < 0)
            continue;
        const char *org = json_string_value(json_object_get(e, "organization"));
        json_t *prof = json_object_get(e, "profile");
        g[k] = (AuthGrant){.role = (AuthRole)r, .profile = auth_roles[r].profile};
        if (auth_roles[r].scope == AUTH_SCOPE_ORGANIZATION) {
            if (!org || !org[0])
                continue; /* a scoped role without its scope gives nothing */
            g[k].organization = arena_strdup(a, org);
        } else if (auth_roles[r].scope == AUTH_SCOPE_PROFILE && prof) {
            json_int_t v = json_is_integer(prof) ? json_integer_value(prof) : -1;
            if (v < 0 || v >= AUTH_PROFILES)
                continue;
            g[k].profile = (int)v;
        }
        k++;
    }
    json_decref(arr);
    *out = g;
    *n = k;
}

bool auth_has_role(const AuthPrincipal *p, AuthRole role)
{
    for (size_t i = 0; p && i < p->ngrants; i++)
        if (p->grants[i].role == role)
            return true;
    return false;
}

bool auth_profile_allowed(const AuthPrincipal *p, int profile)
{
    if (profile < 0 || profile >= AUTH_PROFILES)
        return false;
    if (profile == 0 || auth_has_role(p, AUTH_ROLE_ARS_ADMIN))
        return true; /* anyone may read as the public; the ARS may read as anyone */
    for (size_t i = 0; p && i < p->ngrants; i++)
        if (p->grants[i].profile == profile)
            return true;
    return false;
}

int auth_profile_default(const AuthPrincipal *p)
{
    static const int order[] = {1, 4, 2, 3, 5};
    if (!p || !p->login)
        return 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        for (size_t k = 0; k < p->ngrants; k++)
            if (p->grants[k].profile == order[i])
                return order[i];
    return 0;
}

static bool owner_has(const AuthOwner *o, const char *org)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (strcmp(o->keys[i], org) == 0)
            return true;
    return false;
}

/* Does one of p's grants of `role` cover every version involved (the one replaced, the one
 * written)? */
static bool scoped_grant_covers(const AuthPrincipal *p, AuthRole role, const AuthWriteRequest *w)
{
    for (size_t i = 0; i < p->ngrants; i++) {
        const AuthGrant *g = &p->grants[i];
        if (g->role != role || !g->organization)
            continue;
        if ((!w->before || owner_has(w->before, g->organization)) &&
            (!w->after || owner_has(w->after, g->organization)))
            return true;
    }
    return false;
}

static const char *op_name(AuthWrite op)
{
    return op == AUTH_WRITE_CREATE ? "créer" : op == AUTH_WRITE_UPDATE ? "modifier" : "supprimer";
}

static bool is_offer_type(const char *t)
{
    return strcmp(t, "Organization") == 0 || strcmp(t, "HealthcareService") == 0 ||
           strcmp(t, "Location") == 0 || strcmp(t, "PractitionerRole") == 0;
}

int auth_may_write(const AuthPrincipal *p, const AuthWriteRequest *w, Diag *d)
{
    if (!p || !p->login)
        return diag_set(d, ERR_UNAUTHORIZED, "authentification requise pour %s une ressource %s",
                        op_name(w->op), w->type);
    if (p->read_only)
        return diag_set(d, ERR_FORBIDDEN, "le jeton présenté ne permet que la lecture (scope)");
    if (auth_has_role(p, AUTH_ROLE_ARS_ADMIN))
        return 0;
    const char *t = w->type;
    if (strcmp(t, "Task") == 0) {
        if (w->op == AUTH_WRITE_CREATE)
            return 0; /* any signed-in user or client may report an anomaly */
        if (w->op == AUTH_WRITE_UPDATE && (scoped_grant_covers(p, AUTH_ROLE_MANAGER, w) ||
                                           scoped_grant_covers(p, AUTH_ROLE_BED_DECLARER, w)))
            return 0;
        return diag_set(d, ERR_FORBIDDEN,
                        "seuls le responsable de la ressource signalée et l'ARS peuvent %s "
                        "cette anomalie",
                        op_name(w->op));
    }
    if (is_offer_type(t) && scoped_grant_covers(p, AUTH_ROLE_MANAGER, w))
        return 0;
    if (strcmp(t, "Practitioner") == 0 && w->op == AUTH_WRITE_CREATE &&
        auth_has_role(p, AUTH_ROLE_MANAGER))
        return 0; /* a manager enters the professionals of its offers; the ARS curates them */
    if (strcmp(t, "Location") == 0 && w->op == AUTH_WRITE_UPDATE && w->capacity_only &&
        scoped_grant_covers(p, AUTH_ROLE_BED_DECLARER, w))
        return 0;
    /* Say why, without telling more than the caller may know. */
    if (strcmp(t, "Location") == 0 && auth_has_role(p, AUTH_ROLE_BED_DECLARER) &&
        !auth_has_role(p, AUTH_ROLE_MANAGER)) {
        if (w->op == AUTH_WRITE_UPDATE && !w->capacity_only &&
            scoped_grant_covers(p, AUTH_ROLE_BED_DECLARER, w))
            return diag_set(d, ERR_FORBIDDEN,
                            "un déclarant de lits ne modifie que les capacités de ses unités");
        return diag_set(d, ERR_FORBIDDEN, "ce lieu n'est pas une unité de votre organisation");
    }
    if (is_offer_type(t) && auth_has_role(p, AUTH_ROLE_MANAGER))
        return diag_set(d, ERR_FORBIDDEN,
                        "cette ressource %s n'appartient pas à une organisation que vous gérez "
                        "(ou la modification la ferait sortir de votre périmètre)",
                        t);
    return diag_set(d, ERR_FORBIDDEN, "vos droits ne permettent pas de %s une ressource %s",
                    op_name(w->op), t);
}

json_t *auth_roles_normalise(const json_t *roles, Diag *d)
{
    if (!json_is_array(roles) || json_array_size(roles) > 64) {
        diag_set(d, ERR_INVALID, "roles : tableau de 0 à 64 rôles attendu");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(roles, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "role"));
        int r = auth_role_find(name);
        json_t *org = json_object_get(e, "organization"), *prof = json_object_get(e, "profile");
        bool ok = json_is_object(e) && r >= 0 && json_object_size(e) <= 2;
        json_t *n = NULL;
        if (ok && auth_roles[r].scope == AUTH_SCOPE_ORGANIZATION) {
            const char *o = json_string_value(org);
            ok = o && o[0] && strlen(o) <= 256 && !prof;
            if (ok)
                n = json_pack("{s:s, s:s}", "role", name, "organization", o);
        } else if (ok && auth_roles[r].scope == AUTH_SCOPE_PROFILE) {
            ok = !org && (!prof || (json_is_integer(prof) && json_integer_value(prof) >= 0 &&
                                    json_integer_value(prof) < AUTH_PROFILES));
            if (ok)
                n = prof ? json_pack("{s:s, s:I}", "role", name, "profile",
                                     (json_int_t)json_integer_value(prof))
                         : json_pack("{s:s}", "role", name);
        } else if (ok) {
            ok = !org && !prof;
            if (ok)
                n = json_pack("{s:s}", "role", name);
        }
        for (size_t k = 0; ok && k < json_array_size(out); k++)
            ok = !json_equal(json_array_get(out, k), n);
        if (!ok) {
            json_decref(n);
            json_decref(out);
            diag_set(d, ERR_INVALID,
                     "roles[%zu] : rôle inconnu, qualificatif manquant ou en trop, ou doublon "
                     "(ars-admin, establishment-manager + organization, bed-declarer + "
                     "organization, reader [+ profile], system [+ profile])",
                     i);
            return NULL;
        }
        json_array_append_new(out, n);
    }
    return out;
}
