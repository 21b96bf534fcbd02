/* `ror user`: accounts on the command line (issue 6). Works on a data directory that no server
 * holds (the ror.lock of cli_data_dir_lock), like `ror import`.
 *
 *   ror user add LOGIN [--name NAME] [--role ROLE[:ORGANIZATION]]... [--password-stdin]
 *   ror user passwd LOGIN [--password-stdin]
 *   ror user disable LOGIN | enable LOGIN
 *   ror user grant LOGIN ROLE [ORGANIZATION] | revoke LOGIN ROLE [ORGANIZATION]
 *   ror user key LOGIN [--label TEXT]        a new API key, printed once
 *   ror user check LOGIN --password-stdin    exit 0 when the password is right (for scripts)
 *   ror user list
 * Without --password-stdin, add and passwd make a random password and print it once.
 * Every change is recorded with its author (--author, default cli:$USER).
 * Exit status: 0 done, 1 failed (nothing changed), 2 usage error.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli.h"
#include "json/json.h"
#include "store/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ror user add LOGIN [--name NAME] [--role ROLE[:ORG]]... [--password-stdin]\n"
               "       ror user passwd LOGIN [--password-stdin]\n"
               "       ror user disable|enable LOGIN\n"
               "       ror user grant|revoke LOGIN ROLE [ORGANIZATION]\n"
               "       ror user key LOGIN [--label TEXT]\n"
               "       ror user check LOGIN --password-stdin\n"
               "       ror user list\n"
               "options: --data DIR (default ./ror-data), --spec DIR, --author NAME\n"
               "roles:");
    for (int i = 0; i < AUTH_ROLES; i++)
        fprintf(f, " %s%s", auth_roles[i].name,
                auth_roles[i].scope == AUTH_SCOPE_ORGANIZATION ? ":ORG"
                : auth_roles[i].scope == AUTH_SCOPE_PROFILE    ? "[:PROFILE]"
                                                               : "");
    fprintf(f,
            "\n  ORG: an organisation's FINESS number (or Organization/<id>); PROFILE: the access\n"
            "  profile 0-5 it reads with (reader: 4, system: 2 by default)\n");
}

/* A role and its qualifier as stored: {"role", "organization"} or {"role", "profile"}. NULL
 * when the qualifier does not suit the role (missing organisation, bad profile number). */
static json_t *role_json(const char *role, const char *qualifier)
{
    int ri = auth_role_find(role);
    if (ri < 0)
        return NULL;
    AuthScope scope = auth_roles[ri].scope;
    json_t *r = json_pack("{s:s}", "role", role);
    if (scope == AUTH_SCOPE_ORGANIZATION && qualifier && qualifier[0]) {
        json_object_set_new(r, "organization", json_string(qualifier));
    } else if (scope == AUTH_SCOPE_PROFILE && qualifier) {
        if (strlen(qualifier) != 1 || qualifier[0] < '0' || qualifier[0] > '5') {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "profile", json_integer(qualifier[0] - '0'));
    } else if (scope == AUTH_SCOPE_ORGANIZATION || qualifier) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* A password: one line of stdin (trailing newline removed), or a random one printed once. */
static int password_get(bool from_stdin, char *out, size_t cap, bool *generated, Diag *d)
{
    *generated = false;
    if (from_stdin) {
        if (!fgets(out, (int)cap, stdin))
            return diag_set(d, ERR_INVALID, "mot de passe attendu sur l'entrée standard");
        out[strcspn(out, "\r\n")] = 0;
        return out[0] ? 0 : diag_set(d, ERR_INVALID, "mot de passe vide");
    }
    char key[AUTH_KEY_MAX], hash[AUTH_KEY_HASH];
    auth_apikey_new(key, hash); /* 32 random bytes, base64url */
    snprintf(out, cap, "%.24s", key + 4);
    *generated = true;
    return 0;
}

typedef struct UserOp {
    const char *verb, *login, *name, *author, *label;
    const char *role, *organization; /* grant / revoke */
    json_t *add_roles;               /* add */
    const char *password_hash;       /* add / passwd */
    const char *key_hash;            /* key */
} UserOp;

static bool role_eq(json_t *r, const json_t *want)
{
    return json_equal(r, (json_t *)want);
}

static int txn_user(StoreTxn *t, void *ctx, Diag *d)
{
    UserOp *u = ctx;
    Arena a;
    arena_init(&a);
    StoreAccount acc = {0};
    int rc = 0;
    json_t *rs = NULL;
    char *roles_text = NULL, *detail = NULL;
    if (strcmp(u->verb, "add") == 0) {
        acc.login = u->login;
        acc.name = u->name;
        acc.password = u->password_hash;
        roles_text = json_dumps(u->add_roles, JSON_COMPACT);
        acc.roles = roles_text;
        rc = store_txn_account_put(t, &acc, u->author, "add", roles_text, NULL, d);
        goto done;
    }
    if ((rc = store_txn_account_get(t, &a, u->login, &acc, d)) != 0)
        goto done;
    if (strcmp(u->verb, "passwd") == 0) {
        acc.password = u->password_hash;
        rc = store_txn_sessions_end(t, acc.id, d); /* a changed password signs everyone out */
    } else if (strcmp(u->verb, "disable") == 0 || strcmp(u->verb, "enable") == 0) {
        acc.disabled = strcmp(u->verb, "disable") == 0;
        if (acc.disabled)
            rc = store_txn_sessions_end(t, acc.id, d);
    } else if (strcmp(u->verb, "grant") == 0 || strcmp(u->verb, "revoke") == 0) {
        if (json_parse(acc.roles, strlen(acc.roles), &rs, d) != 0 || !json_is_array(rs)) {
            rc = diag_set(d, ERR_INTERNAL, "rôles illisibles pour '%s'", u->login);
            goto done;
        }
        size_t i, found = SIZE_MAX;
        json_t *r;
        json_t *want = role_json(u->role, u->organization);
        json_array_foreach(rs, i, r) if (role_eq(r, want)) found = i;
        if (strcmp(u->verb, "grant") == 0) {
            if (found != SIZE_MAX) {
                json_decref(want);
                rc = diag_set(d, ERR_CONFLICT, "'%s' a déjà ce rôle", u->login);
                goto done;
            }
            json_array_append(rs, want);
        } else {
            if (found == SIZE_MAX) {
                json_decref(want);
                rc = diag_set(d, ERR_NOT_FOUND, "'%s' n'a pas ce rôle", u->login);
                goto done;
            }
            json_array_remove(rs, found);
        }
        json_decref(want);
        roles_text = json_dumps(rs, JSON_COMPACT);
        acc.roles = roles_text;
    } else if (strcmp(u->verb, "key") == 0) {
        rc = store_txn_apikey_add(t, acc.id, u->key_hash, u->label, u->author, d);
        goto done;
    }
    if (rc != 0)
        goto done;
    detail = u->role ? xasprintf("%s%s%s", u->role, u->organization ? ":" : "",
                                 u->organization ? u->organization : "")
                     : NULL;
    rc = store_txn_account_put(t, &acc, u->author, u->verb, detail, NULL, d);
done:
    json_decref(rs);
    free(roles_text);
    free(detail);
    arena_cleanup(&a);
    return rc;
}

static int list(Store *store)
{
    Arena a;
    arena_init(&a);
    StoreAccount *v;
    size_t n;
    Diag d = {{0}, {0}};
    int rc = store_accounts(store, &a, &v, &n, &d);
    for (size_t i = 0; rc == 0 && i < n; i++)
        printf("%s\t%s\t%s\t%s\t%lld clé(s)\t%s\n", v[i].login,
               v[i].disabled ? "désactivé" : "actif",
               v[i].password ? "mot de passe" : "sans mot de passe", v[i].roles,
               (long long)v[i].nkeys, v[i].name);
    if (rc != 0)
        fprintf(stderr, "ror user: %s\n", d.msg);
    arena_cleanup(&a);
    return rc == 0 ? 0 : 1;
}

int cli_user(int argc, char **argv)
{
    const char *data = "ror-data", *name = "", *label = "";
    const char *spec = getenv("ROR_DATA_DIR") ? getenv("ROR_DATA_DIR") : ROR_DATA_DIR;
    char *author = NULL;
    bool pw_stdin = false;
    json_t *add_roles = json_array();
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"spec", required_argument, NULL, 'S'},
        {"author", required_argument, NULL, 'a'},
        {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"label", required_argument, NULL, 'l'},
        {"password-stdin", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, status = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'S': spec = optarg; break;
        case 'a':
            free(author);
            author = xstrdup(optarg);
            break;
        case 'n': name = optarg; break;
        case 'l': label = optarg; break;
        case 'p': pw_stdin = true; break;
        case 'r': {
            char *colon = strchr(optarg, ':');
            char *role = colon ? xstrndup(optarg, (size_t)(colon - optarg)) : xstrdup(optarg);
            json_t *r = role_json(role, colon ? colon + 1 : NULL);
            if (!r) {
                fprintf(stderr, "ror user: rôle invalide '%s'\n", optarg);
                free(role);
                goto out;
            }
            json_array_append_new(add_roles, r);
            free(role);
            break;
        }
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default: usage(stderr); goto out;
        }
    }
    const char *verb = optind < argc ? argv[optind] : NULL;
    const char *login = optind + 1 < argc ? argv[optind + 1] : NULL;
    static const char *const verbs[] = {"add",    "passwd", "disable", "enable", "grant",
                                        "revoke", "key",    "check",   "list"};
    bool known = false;
    for (size_t i = 0; verb && i < sizeof verbs / sizeof verbs[0]; i++)
        known |= strcmp(verb, verbs[i]) == 0;
    if (!known || (strcmp(verb, "list") != 0 && (!login || !*login || strlen(login) > 128))) {
        usage(stderr);
        goto out;
    }
    UserOp u = {.verb = verb, .login = login, .name = name, .label = label, .add_roles = add_roles};
    if (strcmp(verb, "grant") == 0 || strcmp(verb, "revoke") == 0) {
        u.role = optind + 2 < argc ? argv[optind + 2] : NULL;
        u.organization = optind + 3 < argc ? argv[optind + 3] : NULL;
        json_t *check = u.role ? role_json(u.role, u.organization) : NULL;
        bool valid = check != NULL;
        json_decref(check);
        if (!valid) {
            fprintf(stderr, "ror user: rôle invalide (%s)\n", u.role ? u.role : "absent");
            goto out;
        }
    }
    if (!author) {
        const char *user = getenv("USER");
        author = xasprintf("cli:%s", user && *user ? user : "inconnu");
    }
    u.author = author;

    Diag d = {{0}, {0}};
    FhirRegistry *reg = NULL;
    Store *store = NULL;
    char password[1100] = "", hash[AUTH_HASH_MAX], key[AUTH_KEY_MAX], key_hash[AUTH_KEY_HASH];
    bool generated = false;
    status = 1;
    int rc = auth_init();
    if (rc == 0 &&
        (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0 || strcmp(verb, "check") == 0)) {
        if (strcmp(verb, "check") == 0 && !pw_stdin)
            rc = diag_set(&d, ERR_INVALID, "check demande --password-stdin");
        if (rc == 0)
            rc = password_get(pw_stdin, password, sizeof password, &generated, &d);
        if (rc == 0 && strcmp(verb, "check") != 0 &&
            (rc = auth_password_hash(password, hash, &d)) == 0)
            u.password_hash = hash;
    }
    if (rc == 0 && strcmp(verb, "key") == 0) {
        auth_apikey_new(key, key_hash);
        u.key_hash = key_hash;
    }
    if (rc == 0)
        rc = cli_store_open(data, spec, &reg, &store, &d);
    if (rc == 0 && strcmp(verb, "list") == 0) {
        status = list(store);
    } else if (rc == 0 && strcmp(verb, "check") == 0) {
        Arena a;
        arena_init(&a);
        StoreAccount acc;
        rc = store_account_get(store, &a, login, &acc, &d);
        bool ok = rc == 0 && !acc.disabled && acc.password &&
                  auth_password_verify(acc.password, password);
        arena_cleanup(&a);
        if (rc == 0)
            fprintf(stderr, "ror user: %s\n", ok ? "mot de passe correct" : "refusé");
        status = ok ? 0 : 1;
    } else if (rc == 0) {
        rc = store_write(store, txn_user, &u, &d);
        if (rc == 0) {
            status = 0;
            if (generated)
                printf("%s\n", password); /* shown once: not kept anywhere */
            if (strcmp(verb, "key") == 0)
                printf("%s\n", key);
        }
    }
    if (rc != 0 && status != 0)
        fprintf(stderr, "ror user: %s\n", d.msg);
    store_close(store);
    fhir_registry_free(reg);
    explicit_bzero(password, sizeof password);
out:
    json_decref(add_roles);
    free(author);
    return status;
}
