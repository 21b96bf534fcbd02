/* auth: grants as stored (malformed entries give nothing), access profiles, and the write rules
 * decided from owner keys — including the moves into and out of a principal's scope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/auth.h"

static AuthPrincipal principal(Arena *a, const char *roles_json)
{
    AuthPrincipal p = {.login = "u", .author = "u", .method = "apikey"};
    AuthGrant *g;
    auth_grants_parse(a, roles_json, &g, &p.ngrants);
    p.grants = g;
    p.profile = auth_profile_default(&p);
    return p;
}

static void test_grants_parse(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    AuthPrincipal p = principal(&a, "[{\"role\":\"establishment-manager\"},"   /* no scope */
                                    "{\"role\":\"nobody\"},"                   /* unknown */
                                    "{\"role\":\"reader\",\"profile\":9},"     /* bad profile */
                                    "{\"role\":\"system\",\"profile\":\"2\"}," /* not a number */
                                    "42,"
                                    "{\"role\":\"bed-declarer\",\"organization\":\"750999039\"},"
                                    "{\"role\":\"system\",\"profile\":5}]");
    assert_int_equal(p.ngrants, 2);
    assert_int_equal(p.grants[0].role, AUTH_ROLE_BED_DECLARER);
    assert_string_equal(p.grants[0].organization, "750999039");
    assert_int_equal(p.grants[1].role, AUTH_ROLE_SYSTEM);
    assert_int_equal(p.grants[1].profile, 5);
    assert_int_equal(p.profile, 2); /* the declarer's 2 comes before the system's 5 */
    AuthGrant *g;
    size_t n = 7;
    auth_grants_parse(&a, "not json", &g, &n);
    assert_int_equal(n, 0);
    auth_grants_parse(&a, NULL, &g, &n);
    assert_int_equal(n, 0);
    arena_cleanup(&a);
}

static void test_profiles(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    AuthPrincipal anon = {.login = NULL};
    assert_int_equal(auth_profile_default(&anon), 0);
    AuthPrincipal admin = principal(&a, "[{\"role\":\"ars-admin\"}]");
    assert_int_equal(admin.profile, 1);
    for (int i = 0; i < AUTH_PROFILES; i++)
        assert_true(auth_profile_allowed(&admin, i));
    assert_false(auth_profile_allowed(&admin, 6));
    AuthPrincipal reader = principal(&a, "[{\"role\":\"reader\"}]");
    assert_int_equal(reader.profile, 4);
    assert_true(auth_profile_allowed(&reader, 4));
    assert_true(auth_profile_allowed(&reader, 0));
    assert_false(auth_profile_allowed(&reader, 1));
    assert_false(auth_profile_allowed(&reader, 2));
    arena_cleanup(&a);
}

static int may(const AuthPrincipal *p, const char *type, AuthWrite op, const char *before,
               const char *after, bool capacity_only)
{
    const char *const kb[] = {"Organization/eg", before ? before : "", "Organization/ej"};
    const char *const ka[] = {"Organization/eg2", after ? after : "", "Organization/ej2"};
    AuthOwner ob = {kb, 3}, oa = {ka, 3};
    AuthWriteRequest w = {.type = type,
                          .op = op,
                          .before = before ? &ob : NULL,
                          .after = after ? &oa : NULL,
                          .capacity_only = capacity_only};
    Diag d = {{0}, {0}};
    int rc = auth_may_write(p, &w, &d);
    if (rc != 0)
        assert_true(d.msg[0] != 0); /* every refusal says why */
    return rc;
}

static void test_write_rules(void **state)
{
    (void)state;
    Arena a;
    arena_init(&a);
    AuthPrincipal anon = {.login = NULL};
    assert_int_equal(may(&anon, "Location", AUTH_WRITE_UPDATE, "750", "750", true),
                     ERR_UNAUTHORIZED);
    AuthPrincipal mgr =
        principal(&a, "[{\"role\":\"establishment-manager\",\"organization\":\"750\"}]");
    assert_int_equal(may(&mgr, "HealthcareService", AUTH_WRITE_UPDATE, "750", "750", false), 0);
    assert_int_equal(may(&mgr, "HealthcareService", AUTH_WRITE_CREATE, NULL, "750", false), 0);
    assert_int_equal(may(&mgr, "HealthcareService", AUTH_WRITE_DELETE, "750", NULL, false), 0);
    /* out of its scope, into it from elsewhere, or elsewhere */
    assert_int_equal(may(&mgr, "HealthcareService", AUTH_WRITE_UPDATE, "750", "780", false),
                     ERR_FORBIDDEN);
    assert_int_equal(may(&mgr, "HealthcareService", AUTH_WRITE_UPDATE, "780", "750", false),
                     ERR_FORBIDDEN);
    assert_int_equal(may(&mgr, "Location", AUTH_WRITE_CREATE, NULL, "780", false), ERR_FORBIDDEN);
    assert_int_equal(may(&mgr, "Practitioner", AUTH_WRITE_CREATE, NULL, NULL, false), 0);
    assert_int_equal(may(&mgr, "Practitioner", AUTH_WRITE_UPDATE, "x", "x", false), ERR_FORBIDDEN);
    assert_int_equal(may(&mgr, "Subscription", AUTH_WRITE_CREATE, NULL, "750", false),
                     ERR_FORBIDDEN);
    /* owner keys are compared exactly: a prefix is not an organisation */
    assert_int_equal(may(&mgr, "Location", AUTH_WRITE_UPDATE, "7500", "7500", false),
                     ERR_FORBIDDEN);

    AuthPrincipal decl = principal(&a, "[{\"role\":\"bed-declarer\",\"organization\":\"750\"}]");
    assert_int_equal(may(&decl, "Location", AUTH_WRITE_UPDATE, "750", "750", true), 0);
    assert_int_equal(may(&decl, "Location", AUTH_WRITE_UPDATE, "750", "750", false), ERR_FORBIDDEN);
    assert_int_equal(may(&decl, "Location", AUTH_WRITE_UPDATE, "780", "780", true), ERR_FORBIDDEN);
    assert_int_equal(may(&decl, "Location", AUTH_WRITE_DELETE, "750", NULL, false), ERR_FORBIDDEN);
    assert_int_equal(may(&decl, "HealthcareService", AUTH_WRITE_UPDATE, "750", "750", true),
                     ERR_FORBIDDEN);

    AuthPrincipal reader = principal(&a, "[{\"role\":\"reader\"}]");
    assert_int_equal(may(&reader, "Task", AUTH_WRITE_CREATE, NULL, "750", false), 0);
    assert_int_equal(may(&reader, "Task", AUTH_WRITE_UPDATE, "750", "750", false), ERR_FORBIDDEN);
    assert_int_equal(may(&mgr, "Task", AUTH_WRITE_UPDATE, "750", "750", false), 0);
    assert_int_equal(may(&mgr, "Task", AUTH_WRITE_DELETE, "750", NULL, false), ERR_FORBIDDEN);
    assert_int_equal(may(&reader, "Location", AUTH_WRITE_UPDATE, "750", "750", true),
                     ERR_FORBIDDEN);

    AuthPrincipal admin = principal(&a, "[{\"role\":\"ars-admin\"}]");
    assert_int_equal(may(&admin, "Subscription", AUTH_WRITE_DELETE, "x", NULL, false), 0);
    admin.read_only = true; /* a token with a read-only scope */
    assert_int_equal(may(&admin, "Location", AUTH_WRITE_UPDATE, "750", "750", true), ERR_FORBIDDEN);
    arena_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grants_parse),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_write_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
