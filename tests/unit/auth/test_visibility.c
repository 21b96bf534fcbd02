/* auth: the access-profile filter. Hand-made resources carry a marker ("@...", in Element.id)
 * on every element a profile might lose; each case lists, per profile, the markers that must
 * remain, as read from the guide's mapping comments. The guide's examples and the demo region
 * are then run through every profile and context to check the filter's general promises: it only
 * prunes, profile 1 changes nothing, a hidden resource is left as it was, a second pass changes
 * nothing, no empty array is left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/auth.h"

#define SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"
#define NOS "https://mos.esante.gouv.fr/NOS/"
#define R200 NOS "TRE_R200-CanalCommunication/FHIR/TRE-R200-CanalCommunication"
#define R210 NOS "TRE_R210-ActeSpecifique/FHIR/TRE-R210-ActeSpecifique"
#define R213 NOS "TRE_R213-ModePriseEnCharge/FHIR/TRE-R213-ModePriseEnCharge"
#define R227 NOS "TRE_R227-ChampActivite/FHIR/TRE-R227-ChampActivite"
#define R244 NOS "TRE_R244-CategorieOrganisation/FHIR/TRE-R244-CategorieOrganisation"
#define R283 NOS "TRE_R283-NiveauConfidentialite/FHIR/TRE-R283-NiveauConfidentialite"
#define R287 NOS "TRE_R287-NatureContact/FHIR/TRE-R287-NatureContact"
#define R329 NOS "TRE_R329-NatureCapacite/FHIR/TRE-R329-NatureCapacite"
#define R330 NOS "TRE_R330-TypeStatutCapacite/FHIR/TRE-R330-TypeStatutCapacite"
#define R331 NOS "TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite"
#define R336 NOS "TRE_R336-TypeCrise/FHIR/TRE-R336-TypeCrise"
#define R212 NOS "TRE_R212-Equipement/FHIR/TRE-R212-Equipement"
#define R242 NOS "TRE_R242-TypeHabitation/FHIR/TRE-R242-TypeHabitation"

static const AuthVisContext NONE = {false, false, false};
static const AuthVisContext SENSITIVE = {true, false, false};
static const AuthVisContext MS = {false, true, false};
static const AuthVisContext VILLE = {false, false, true};

/* ---------------------------------------------------------------- builders */

static json_t *cc(const char *system, const char *code)
{
    return json_pack("{s:[{s:s,s:s}]}", "coding", "system", system, "code", code);
}

static json_t *ext_cc(const char *url, const char *system, const char *code)
{
    return json_pack("{s:s,s:o}", "url", url, "valueCodeableConcept", cc(system, code));
}

/* The extensions of a ContactPoint: channel, then the level when given. */
static json_t *telecom_exts(const char *level)
{
    json_t *a = json_array();
    json_array_append_new(a, ext_cc(SD "ror-telecom-communication-channel", R200, "2"));
    if (level)
        json_array_append_new(a, ext_cc(SD "ror-telecom-confidentiality-level", R283, level));
    return a;
}

static json_t *contact_point(const char *marker, const char *level)
{
    return json_pack("{s:s,s:o,s:s,s:s}", "id", marker, "extension", telecom_exts(level), "system",
                     "phone", "value", "0100000000");
}

/* ror-healthcareservice-contact-telecom */
static json_t *hs_contact_telecom(const char *marker, const char *level)
{
    json_t *exts = telecom_exts(level);
    json_array_append_new(
        exts, json_pack("{s:s,s:s}", "url", "telecomAddress", "valueString", "0100000000"));
    return json_pack("{s:s,s:o,s:s}", "id", marker, "extension", exts, "url",
                     SD "ror-healthcareservice-contact-telecom");
}

/* ror-healthcareservice-contact with its telecoms (stolen, NULL-terminated). */
static json_t *hs_contact(const char *marker, const char *level, ...)
{
    json_t *exts = json_array();
    json_array_append_new(exts, ext_cc("purposeContact", R287, "06"));
    if (level)
        json_array_append_new(exts, ext_cc(SD "ror-confidentiality-level", R283, level));
    va_list ap;
    va_start(ap, level);
    for (json_t *t; (t = va_arg(ap, json_t *));)
        json_array_append_new(exts, t);
    va_end(ap);
    return json_pack("{s:s,s:o,s:s}", "id", marker, "extension", exts, "url",
                     SD "ror-healthcareservice-contact");
}

static json_t *sensitive_ext(bool on)
{
    return json_pack("{s:s,s:b}", "url", SD "ror-healthcareservice-sensitive-unit", "valueBoolean",
                     on);
}

static json_t *characteristic(const char *marker, const char *system, const char *code,
                              const char *act_type)
{
    json_t *c = cc(system, code);
    json_object_set_new(c, "id", json_string(marker));
    if (act_type)
        json_object_set_new(
            c, "extension",
            json_pack("[{s:s,s:s}]", "url", SD "ror-act-type", "valueCode", act_type));
    return c;
}

/* An offer of champ d'activité `champ` with every kind of contact, telecom and
 * characteristic. */
static json_t *hs_full(const char *champ, bool sensitive)
{
    json_t *hs = json_pack("{s:s,s:s,s:[o]}", "resourceType", "HealthcareService", "id", "hs1",
                           "type", cc(R227, champ));
    json_object_set_new(hs, "telecom",
                        json_pack("[o,o,o,o]", contact_point("@h1", "1"), contact_point("@h2", "2"),
                                  contact_point("@h3", "3"), contact_point("@hm", NULL)));
    json_t *exts = json_array();
    json_array_append_new(exts, sensitive_ext(sensitive));
    json_array_append_new(exts, hs_contact("@c1", "1", hs_contact_telecom("@c1t1", "1"),
                                           hs_contact_telecom("@c1t2", "2"),
                                           hs_contact_telecom("@c1t3", "3"),
                                           hs_contact_telecom("@c1tm", NULL), NULL));
    json_array_append_new(exts, hs_contact("@c2", "2", hs_contact_telecom("@c2t1", "1"),
                                           hs_contact_telecom("@c2t2", "2"), NULL));
    json_array_append_new(exts, hs_contact("@c3", "3", hs_contact_telecom("@c3t1", "1"), NULL));
    json_array_append_new(exts, hs_contact("@cm", NULL, hs_contact_telecom("@cmt1", "1"), NULL));
    json_object_set_new(hs, "extension", exts);
    json_object_set_new(hs, "characteristic",
                        json_pack("[o,o,o]", characteristic("@mode", R213, "07", NULL),
                                  characteristic("@sa", R210, "0131", "specificAct"),
                                  characteristic("@oa", R210, "0145", "outsideOfficeAct")));
    return hs;
}

/* A capacity indicator; crisis may be NULL. */
static json_t *capacity(const char *marker, const char *status, const char *crisis)
{
    json_t *subs = json_array();
    json_array_append_new(subs, ext_cc("capacityType", R329, "01"));
    if (status)
        json_array_append_new(subs, ext_cc("capacityStatus", R330, status));
    json_array_append_new(subs, ext_cc("temporalityCapacity", R331, "01"));
    json_array_append_new(subs, json_pack("{s:s,s:i}", "url", "nbCapacity", "valueInteger", 4));
    if (crisis)
        json_array_append_new(subs, ext_cc("crisisType", R336, crisis));
    return json_pack("{s:s,s:o,s:s}", "id", marker, "extension", subs, "url",
                     SD "ror-location-supported-capacity");
}

static json_t *location_full(void)
{
    json_t *exts = json_array();
    json_array_append_new(exts,
                          json_pack("{s:s,s:s,s:o}", "id", "@cog", "url", SD "ror-commune-cog",
                                    "valueCodeableConcept", cc(NOS "TRE_R13-CommuneOM", "78646")));
    json_array_append_new(exts, capacity("@k01", "01", NULL));
    json_array_append_new(exts, capacity("@k02", "02", NULL));
    json_array_append_new(exts, capacity("@k06", "06", NULL));
    json_array_append_new(exts, capacity("@kcr", "02", "02"));
    json_array_append_new(exts, capacity("@kns", NULL, NULL));
    json_array_append_new(exts,
                          json_pack("{s:s,s:[o,{s:s,s:i}],s:s}", "id", "@eq", "extension",
                                    ext_cc("equipmentType", R212, "088"), "url", "nbInService",
                                    "valueInteger", 2, "url", SD "ror-location-equipment"));
    json_array_append_new(exts, json_pack("{s:s,s:[o],s:s}", "id", "@res", "extension",
                                          ext_cc("residentialType", R242, "01"), "url",
                                          SD "ror-location-residential-capacity"));
    return json_pack("{s:s,s:s,s:o,s:[o,o,o,o]}", "resourceType", "Location", "id", "loc1",
                     "extension", exts, "telecom", contact_point("@l1", "1"),
                     contact_point("@l2", "2"), contact_point("@l3", "3"),
                     contact_point("@lm", NULL));
}

/* Organization.contact with its own level (ror-contact-confidentiality-level). */
static json_t *org_contact(const char *marker, const char *level, json_t *telecoms)
{
    json_t *c =
        json_pack("{s:s,s:o,s:o}", "id", marker, "purpose", cc(R287, "06"), "telecom", telecoms);
    if (level)
        json_object_set_new(
            c, "extension",
            json_pack("[o]", ext_cc(SD "ror-contact-confidentiality-level", R283, level)));
    return c;
}

static json_t *organization_full(void)
{
    return json_pack(
        "{s:s,s:s,s:[o,o,o,o],s:[o,o,o]}", "resourceType", "Organization", "id", "eg1", "telecom",
        contact_point("@o1", "1"), contact_point("@o2", "2"), contact_point("@o3", "3"),
        contact_point("@om", NULL), "contact",
        org_contact("@oc1", "1",
                    json_pack("[o,o]", contact_point("@oc1t1", "1"), contact_point("@oc1t3", "3"))),
        org_contact("@oc2", "2", json_pack("[o]", contact_point("@oc2t2", "2"))),
        org_contact("@ocm", NULL, json_pack("[o]", contact_point("@ocmt1", "1"))));
}

static json_t *with_telecoms(const char *type, const char *prefix)
{
    char m[4][16];
    const char *lv[4] = {"1", "2", "3", NULL};
    const char *sfx[4] = {"1", "2", "3", "m"};
    json_t *t = json_array();
    for (int i = 0; i < 4; i++) {
        snprintf(m[i], sizeof m[i], "@%s%s", prefix, sfx[i]);
        json_array_append_new(t, contact_point(m[i], lv[i]));
    }
    return json_pack("{s:s,s:s,s:o}", "resourceType", type, "id", "x1", "telecom", t);
}

/* ---------------------------------------------------------------- checks */

static void collect(const json_t *v, char *out, size_t cap)
{
    if (json_is_object(v)) {
        const char *id = json_string_value(json_object_get(v, "id"));
        if (id && id[0] == '@') {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", n ? " " : "", id);
        }
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) collect(m, out, cap);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) collect(m, out, cap);
    }
}

/* The markers left in `v`, in document order, space-separated. */
static const char *markers(const json_t *v)
{
    static char buf[2048];
    buf[0] = '\0';
    collect(v, buf, sizeof buf);
    return buf;
}

/* True when `out` is `in` with object members and array elements removed, nothing else. */
static bool pruned_of(const json_t *out, const json_t *in)
{
    if (json_typeof(out) != json_typeof(in))
        return false;
    if (json_is_object(out)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)out, k, m)
        {
            json_t *o = json_object_get(in, k);
            if (!o || !pruned_of(m, o))
                return false;
        }
        return true;
    }
    if (json_is_array(out)) {
        size_t j = 0;
        for (size_t i = 0; i < json_array_size(out); i++, j++) {
            while (j < json_array_size(in) &&
                   !pruned_of(json_array_get(out, i), json_array_get(in, j)))
                j++;
            if (j == json_array_size(in))
                return false;
        }
        return true;
    }
    return json_equal(out, in);
}

static bool has_empty_array(const json_t *v)
{
    size_t i;
    const char *k;
    json_t *m;
    if (json_is_array(v)) {
        if (json_array_size(v) == 0)
            return true;
        json_array_foreach(v, i, m) if (has_empty_array(m)) return true;
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, m) if (has_empty_array(m)) return true;
    }
    return false;
}

/* Filter a copy of `res`; NULL when hidden (after checking it was left untouched). */
static json_t *filtered(const json_t *res, int profile, const AuthVisContext *ctx)
{
    json_t *copy = json_deep_copy(res);
    if (!auth_visibility_apply(copy, profile, ctx)) {
        assert_true(json_equal(copy, res));
        json_decref(copy);
        return NULL;
    }
    assert_true(pruned_of(copy, res));
    assert_false(has_empty_array(copy));
    return copy;
}

/* expect[p] is the markers profile p sees, or NULL when the resource is hidden from it. */
static void check_profiles(const json_t *res, const AuthVisContext *ctx,
                           const char *const expect[AUTH_PROFILES])
{
    for (int p = 0; p < AUTH_PROFILES; p++) {
        json_t *out = filtered(res, p, ctx);
        if (!expect[p] || !out) {
            if (expect[p] || out)
                fail_msg("profile %d: %s expected, got %s", p, expect[p] ? "visible" : "hidden",
                         out ? "visible" : "hidden");
            continue;
        }
        if (strcmp(markers(out), expect[p]) != 0)
            fail_msg("profile %d:\n  expected %s\n  got      %s", p, expect[p], markers(out));
        if (p == 1)
            assert_true(json_equal(out, res));
        json_decref(out);
    }
}

/* ---------------------------------------------------------------- HealthcareService */

#define HS_ALL                                                                                     \
    "@h1 @h2 @h3 @hm @c1 @c1t1 @c1t2 @c1t3 @c1tm @c2 @c2t1 @c2t2 @c3 @c3t1 @cm @cmt1 @mode @sa "   \
    "@oa"
#define HS_NOT_VERY "@h1 @h2 @c1 @c1t1 @c1t2 @c2 @c2t1 @c2t2 @mode @sa @oa"
#define HS_PUBLIC "@h1 @c1 @c1t1 @mode @sa @oa"

static void t_hs_mco(void **state)
{
    (void)state;
    json_t *hs = hs_full("01", false);
    const char *expect[AUTH_PROFILES] = {
        "@h1 @c1 @c1t1 @mode @oa", /* 0: public contacts, no specific act */
        HS_ALL,                    /* 1 */
        HS_NOT_VERY,               /* 2 */
        NULL,                      /* 3: not médico-social */
        HS_PUBLIC,                 /* 4 */
        HS_NOT_VERY,               /* 5 */
    };
    check_profiles(hs, NULL, expect);
    check_profiles(hs, &NONE, expect);
    /* a caller's context cannot make an offer médico-social */
    check_profiles(hs, &MS, expect);
    json_decref(hs);
}

static void t_hs_medico_social(void **state)
{
    (void)state;
    json_t *hs = hs_full("04", false);
    const char *expect[AUTH_PROFILES] = {
        "@h1 @c1 @c1t1 @mode @oa", HS_ALL, HS_NOT_VERY, HS_NOT_VERY, HS_PUBLIC, HS_NOT_VERY,
    };
    check_profiles(hs, NULL, expect);
    json_decref(hs);
}

static void t_hs_sensitive(void **state)
{
    (void)state;
    const char *expect[AUTH_PROFILES] = {NULL, HS_ALL, NULL, NULL, HS_PUBLIC, NULL};
    json_t *hs = hs_full("04", true);
    check_profiles(hs, NULL, expect);
    json_decref(hs);
    /* sensitive by the context only */
    hs = hs_full("04", false);
    check_profiles(hs, &SENSITIVE, expect);
    json_decref(hs);
}

/* A sensitive-unit flag that cannot be read counts as set; an explicit false does not. */
static void t_hs_sensitive_unreadable(void **state)
{
    (void)state;
    json_t *hs = hs_full("04", false);
    json_t *flag = json_array_get(json_object_get(hs, "extension"), 0);
    json_object_set_new(flag, "valueBoolean", json_string("false"));
    const char *expect[AUTH_PROFILES] = {NULL, HS_ALL, NULL, NULL, HS_PUBLIC, NULL};
    check_profiles(hs, NULL, expect);
    json_object_del(flag, "valueBoolean");
    check_profiles(hs, NULL, expect);
    json_decref(hs);
}

/* Levels whose code or system cannot be read count as "très restreint". */
static void t_hs_unreadable_levels(void **state)
{
    (void)state;
    json_t *hs = json_pack(
        "{s:s,s:[o],s:[o,o,o,o,o]}", "resourceType", "HealthcareService", "type", cc(R227, "01"),
        "extension", sensitive_ext(false), hs_contact("@x9", "9", NULL), /* not a TRE_R283 code */
        hs_contact("@x01", "01", NULL), hs_contact("@x1", "1", NULL), hs_contact("@x2", "2", NULL));
    /* @x1s: level 1 but under another code system */
    json_t *other = hs_contact("@x1s", NULL, NULL);
    json_array_append_new(json_object_get(other, "extension"),
                          ext_cc(SD "ror-confidentiality-level", R287, "1"));
    json_array_append_new(json_object_get(hs, "extension"), other);
    /* @x12: two levels, the most restricted wins */
    json_t *two = hs_contact("@x12", "1", NULL);
    json_array_append_new(json_object_get(two, "extension"),
                          ext_cc(SD "ror-confidentiality-level", R283, "2"));
    json_array_append_new(json_object_get(hs, "extension"), two);
    /* @x1u: a readable level 1 and an unreadable one */
    json_t *unread = hs_contact("@x1u", "1", NULL);
    json_array_append_new(json_object_get(unread, "extension"),
                          ext_cc(SD "ror-confidentiality-level", R287, "1"));
    json_array_append_new(json_object_get(hs, "extension"), unread);
    /* @x21: one CodeableConcept with codes 2 and 1 */
    json_t *codings = hs_contact("@x21", "2", NULL);
    json_t *lv = json_array_get(json_object_get(codings, "extension"), 1);
    json_array_append_new(json_object_get(json_object_get(lv, "valueCodeableConcept"), "coding"),
                          json_pack("{s:s,s:s}", "system", R283, "code", "1"));
    json_array_append_new(json_object_get(hs, "extension"), codings);
    /* @xc: the level as a Coding rather than a CodeableConcept */
    json_t *coding = hs_contact("@xc", NULL, NULL);
    json_array_append_new(json_object_get(coding, "extension"),
                          json_pack("{s:s,s:{s:s,s:s}}", "url", SD "ror-confidentiality-level",
                                    "valueCoding", "system", R283, "code", "1"));
    json_array_append_new(json_object_get(hs, "extension"), coding);
    const char *expect[AUTH_PROFILES] = {
        "@x1 @xc",
        "@x9 @x01 @x1 @x2 @x1s @x12 @x1u @x21 @xc",
        "@x1 @x2 @x12 @x21 @xc",
        NULL,
        "@x1 @xc",
        "@x1 @x2 @x12 @x21 @xc",
    };
    check_profiles(hs, NULL, expect);
    json_decref(hs);
}

/* Removing every element of an array removes the array. */
static void t_hs_no_empty_array(void **state)
{
    (void)state;
    json_t *hs = json_pack("{s:s,s:[o],s:[o],s:[o],s:[o]}", "resourceType", "HealthcareService",
                           "type", cc(R227, "05"), "extension", sensitive_ext(false), "telecom",
                           contact_point("@t3", "3"), "characteristic",
                           characteristic("@sa", R210, "0131", "specificAct"));
    /* a level-1 contact whose only telecom is "très restreint" */
    json_array_append_new(json_object_get(hs, "extension"),
                          hs_contact("@c1", "1", hs_contact_telecom("@c1t3", "3"), NULL));
    json_t *out = filtered(hs, 0, NULL);
    assert_non_null(out);
    assert_null(json_object_get(out, "telecom"));
    assert_null(json_object_get(out, "characteristic"));
    assert_string_equal(markers(out), "@c1");
    /* the contact keeps its purpose and level */
    json_t *c1 = json_array_get(json_object_get(out, "extension"), 1);
    assert_int_equal(json_array_size(json_object_get(c1, "extension")), 2);
    json_decref(out);
    out = filtered(hs, 2, NULL);
    assert_string_equal(markers(out), "@c1 @sa");
    json_decref(out);
    json_decref(hs);
}

static void t_offer_context(void **state)
{
    (void)state;
    AuthVisContext c = {0};
    json_t *mco = hs_full("01", false), *ms = hs_full("04", false), *ville = hs_full("05", true);
    auth_visibility_offer(mco, &c);
    assert_false(c.sensitive || c.medico_social || c.ville);
    auth_visibility_offer(ms, &c);
    assert_true(c.medico_social);
    assert_false(c.sensitive || c.ville);
    auth_visibility_offer(ville, &c);
    assert_true(c.sensitive && c.medico_social && c.ville);
    /* flags are only ever added */
    auth_visibility_offer(mco, &c);
    assert_true(c.sensitive && c.medico_social && c.ville);
    /* code 04 of another code system is not the médico-social champ */
    AuthVisContext d = {0};
    json_t *cat =
        json_pack("{s:s,s:[o]}", "resourceType", "HealthcareService", "type", cc(R244, "04"));
    auth_visibility_offer(cat, &d);
    auth_visibility_offer(NULL, &d);
    auth_visibility_offer(cat, NULL);
    assert_false(d.sensitive || d.medico_social || d.ville);
    json_decref(cat);
    json_decref(mco);
    json_decref(ms);
    json_decref(ville);
}

/* ---------------------------------------------------------------- Location */

static void t_location(void **state)
{
    (void)state;
    json_t *loc = location_full();
    const char *all = "@cog @k01 @k02 @k06 @kcr @kns @eq @res @l1 @l2 @l3 @lm";
    const char *plain[AUTH_PROFILES] = {
        "@cog @res @l1",                   /* 0: no capacity, no equipment */
        all,                               /* 1 */
        "@cog @k01 @k02 @eq @res @l1 @l2", /* 2: no extra beds, no crisis */
        "@cog @res @l1",                   /* 3, not MS: neither capacity nor equipment */
        "@cog @k01 @k02 @k06 @kcr @kns @eq @res @l1", /* 4: all but public telecom only */
        "@cog @k01 @eq @res @l1 @l2",                 /* 5: installed beds only */
    };
    check_profiles(loc, NULL, plain);
    check_profiles(loc, &NONE, plain);
    check_profiles(loc, &VILLE, plain);
    const char *ms[AUTH_PROFILES] = {
        plain[0], all, plain[2], "@cog @k01 @k02 @eq @res @l1 @l2", plain[4], plain[5],
    };
    check_profiles(loc, &MS, ms);
    const char *sensitive[AUTH_PROFILES] = {NULL, all, NULL, NULL, plain[4], NULL};
    check_profiles(loc, &SENSITIVE, sensitive);
    json_decref(loc);
}

static void t_location_no_empty_array(void **state)
{
    (void)state;
    json_t *loc = json_pack("{s:s,s:[o,o],s:[o]}", "resourceType", "Location", "extension",
                            capacity("@k01", "01", NULL), capacity("@k06", "06", NULL), "telecom",
                            contact_point("@lm", NULL));
    json_t *out = filtered(loc, 0, NULL);
    assert_non_null(out);
    assert_int_equal(json_object_size(out), 1); /* resourceType alone */
    json_decref(out);
    out = filtered(loc, 5, NULL);
    assert_string_equal(markers(out), "@k01");
    assert_null(json_object_get(out, "telecom"));
    json_decref(out);
    json_decref(loc);
}

/* ---------------------------------------------------------------- others */

static void t_organization(void **state)
{
    (void)state;
    json_t *org = organization_full();
    const char *all = "@o1 @o2 @o3 @om @oc1 @oc1t1 @oc1t3 @oc2 @oc2t2 @ocm @ocmt1";
    const char *restricted = "@o1 @o2 @oc1 @oc1t1 @oc2 @oc2t2";
    const char *expect[AUTH_PROFILES] = {
        "@o1 @oc1 @oc1t1", all, restricted, restricted, "@o1 @oc1 @oc1t1", restricted,
    };
    check_profiles(org, NULL, expect);
    check_profiles(org, &SENSITIVE, expect); /* an Organization is never hidden */
    json_decref(org);
}

static void t_practitioner_role(void **state)
{
    (void)state;
    json_t *pr = with_telecoms("PractitionerRole", "r");
    const char *all = "@r1 @r2 @r3 @rm";
    const char *plain[AUTH_PROFILES] = {NULL, all, "@r1 @r2", NULL, "@r1", "@r1 @r2"};
    check_profiles(pr, NULL, plain);
    const char *ms[AUTH_PROFILES] = {NULL, all, "@r1 @r2", "@r1 @r2", "@r1", "@r1 @r2"};
    check_profiles(pr, &MS, ms);
    const char *ville[AUTH_PROFILES] = {"@r1", all, "@r1 @r2", NULL, "@r1", "@r1 @r2"};
    check_profiles(pr, &VILLE, ville);
    const char *sensitive[AUTH_PROFILES] = {NULL, all, NULL, NULL, "@r1", NULL};
    check_profiles(pr, &SENSITIVE, sensitive);
    AuthVisContext every = {true, true, true};
    check_profiles(pr, &every, sensitive);
    json_decref(pr);
}

static void t_practitioner(void **state)
{
    (void)state;
    json_t *p = with_telecoms("Practitioner", "p");
    const char *all = "@p1 @p2 @p3 @pm";
    const char *plain[AUTH_PROFILES] = {NULL, all, "@p1 @p2", "@p1", "@p1", "@p1 @p2"};
    check_profiles(p, NULL, plain);
    check_profiles(p, &SENSITIVE, plain);
    const char *ville[AUTH_PROFILES] = {"@p1", all, "@p1 @p2", "@p1", "@p1", "@p1 @p2"};
    check_profiles(p, &VILLE, ville);
    const char *ms[AUTH_PROFILES] = {NULL, all, "@p1 @p2", "@p1 @p2", "@p1", "@p1 @p2"};
    check_profiles(p, &MS, ms);
    json_decref(p);
}

static void t_task_and_others(void **state)
{
    (void)state;
    json_t *task = json_pack("{s:s,s:s}", "resourceType", "Task", "id", "@task");
    const char *t[AUTH_PROFILES] = {NULL, "@task", "@task", "@task", "@task", "@task"};
    check_profiles(task, NULL, t);
    json_decref(task);
    /* a type with no rule is shown unchanged, telecoms included */
    json_t *ep = with_telecoms("Endpoint", "e");
    const char *all = "@e1 @e2 @e3 @em";
    const char *e[AUTH_PROFILES] = {all, all, all, all, all, all};
    check_profiles(ep, &SENSITIVE, e);
    json_decref(ep);
}

/* Profile numbers outside 0..5 read as 0 (public); what is not a resource is not shown. */
static void t_unknown_profile(void **state)
{
    (void)state;
    const int odd[] = {-1, 6, 7, 100, -2147483647 - 1};
    json_t *samples[] = {hs_full("05", false),
                         location_full(),
                         organization_full(),
                         with_telecoms("Practitioner", "p"),
                         with_telecoms("PractitionerRole", "r"),
                         json_pack("{s:s}", "resourceType", "Task")};
    const AuthVisContext *ctxs[] = {&NONE, &VILLE, &SENSITIVE};
    for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
        for (size_t c = 0; c < sizeof ctxs / sizeof *ctxs; c++) {
            json_t *zero = json_deep_copy(samples[s]);
            bool v0 = auth_visibility_apply(zero, 0, ctxs[c]);
            for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
                json_t *x = json_deep_copy(samples[s]);
                assert_int_equal(auth_visibility_apply(x, odd[i], ctxs[c]), v0);
                assert_true(json_equal(x, zero));
                json_decref(x);
            }
            json_decref(zero);
        }
        json_decref(samples[s]);
    }
    assert_false(auth_visibility_apply(NULL, 0, NULL));
    json_t *arr = json_array(), *bare = json_object();
    assert_false(auth_visibility_apply(arr, 2, NULL));
    assert_false(auth_visibility_apply(bare, 2, NULL));
    json_decref(arr);
    json_decref(bare);
}

/* ---------------------------------------------------------------- the guide's examples */

static json_t *load(const char *env, const char *rel)
{
    const char *dir = getenv(env);
    if (!dir)
        return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static json_t *hs_example(void)
{
    return load("ROR_SHARED_DIR", "spec/ror-ig/examples/HealthcareService-1234564.json");
}

/* The example: MCO, not sensitive, one public contact whose telecom is public, no specific act
 * and no telecom of its own: every profile but 3 sees it whole. */
static void t_example_hs(void **state)
{
    (void)state;
    json_t *hs = hs_example();
    if (!hs)
        skip();
    for (int p = 0; p < AUTH_PROFILES; p++) {
        json_t *out = filtered(hs, p, NULL);
        if (p == 3) {
            assert_null(out);
            continue;
        }
        assert_non_null(out);
        assert_true(json_equal(out, hs));
        json_decref(out);
    }
    AuthVisContext c = {0};
    auth_visibility_offer(hs, &c);
    assert_false(c.sensitive || c.medico_social || c.ville);
    json_decref(hs);
}

static json_t *example_ext(json_t *hs, const char *suffix)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(hs, "extension"), i, e)
    {
        const char *url = json_string_value(json_object_get(e, "url"));
        if (url && strlen(url) >= strlen(suffix) &&
            strcmp(url + strlen(url) - strlen(suffix), suffix) == 0)
            return e;
    }
    return NULL;
}

static json_t *example_contact_level(json_t *hs)
{
    json_t *c = example_ext(hs, "/ror-healthcareservice-contact");
    assert_non_null(c);
    json_t *lv = example_ext(c, "/ror-confidentiality-level");
    assert_non_null(lv);
    json_t *coding =
        json_array_get(json_object_get(json_object_get(lv, "valueCodeableConcept"), "coding"), 0);
    assert_string_equal(json_string_value(json_object_get(coding, "code")), "1");
    return coding;
}

static void t_example_hs_variants(void **state)
{
    (void)state;
    json_t *hs = hs_example();
    if (!hs)
        skip();
    /* sensitive: profiles 1 and 4 only */
    json_t *v = json_deep_copy(hs);
    json_t *flag = example_ext(v, "/ror-healthcareservice-sensitive-unit");
    assert_non_null(flag);
    json_object_set_new(flag, "valueBoolean", json_true());
    for (int p = 0; p < AUTH_PROFILES; p++) {
        json_t *out = filtered(v, p, NULL);
        assert_int_equal(out != NULL, p == 1 || p == 4);
        json_decref(out);
    }
    json_decref(v);

    /* médico-social: profile 3 sees it too */
    v = json_deep_copy(hs);
    json_t *coding =
        json_array_get(json_object_get(json_array_get(json_object_get(v, "type"), 0), "coding"), 0);
    json_object_set_new(coding, "code", json_string("04"));
    json_t *out = filtered(v, 3, NULL);
    assert_non_null(out);
    assert_true(json_equal(out, v));
    json_decref(out);
    json_decref(v);

    /* the contact made "restreint", then "très restreint", then without level */
    size_t n = json_array_size(json_object_get(hs, "extension"));
    static const struct {
        const char *level; /* NULL: level extension removed */
        bool seen[AUTH_PROFILES];
    } cases[] = {
        {"2", {false, true, true, true, false, true}}, /* the offer is made MS */
        {"3", {false, true, false, false, false, false}},
        {NULL, {false, true, false, false, false, false}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        v = json_deep_copy(hs);
        json_object_set_new(json_array_get(json_object_get(v, "type"), 0), "coding",
                            json_pack("[{s:s,s:s}]", "system", R227, "code", "04"));
        coding = example_contact_level(v);
        if (cases[k].level) {
            json_object_set_new(coding, "code", json_string(cases[k].level));
        } else {
            json_t *c = example_ext(v, "/ror-healthcareservice-contact");
            json_t *subs = json_object_get(c, "extension");
            for (size_t i = 0; i < json_array_size(subs);) {
                const char *url =
                    json_string_value(json_object_get(json_array_get(subs, i), "url"));
                if (url && strstr(url, "/ror-confidentiality-level"))
                    json_array_remove(subs, i);
                else
                    i++;
            }
        }
        for (int p = 0; p < AUTH_PROFILES; p++) {
            out = filtered(v, p, NULL);
            assert_non_null(out);
            size_t m = json_array_size(json_object_get(out, "extension"));
            if (m != (cases[k].seen[p] ? n : n - 1))
                fail_msg("level %s, profile %d: %zu extensions of %zu",
                         cases[k].level ? cases[k].level : "absent", p, m, n);
            assert_int_equal(example_ext(out, "/ror-healthcareservice-contact") != NULL,
                             cases[k].seen[p]);
            json_decref(out);
        }
        json_decref(v);
    }

    /* a specific act: hidden from profile 0 only */
    v = json_deep_copy(hs);
    size_t nc = json_array_size(json_object_get(v, "characteristic"));
    json_array_append_new(json_object_get(v, "characteristic"),
                          characteristic("@sa", R210, "0131", "specificAct"));
    for (int p = 0; p < AUTH_PROFILES; p++) {
        if (p == 3)
            continue;
        out = filtered(v, p, NULL);
        assert_int_equal(json_array_size(json_object_get(out, "characteristic")),
                         p == 0 ? nc : nc + 1);
        json_decref(out);
    }
    json_decref(v);
    json_decref(hs);
}

/* The Location example has no capacity, equipment nor telecom: unchanged for every profile
 * unless an offer delivered there is sensitive. */
static void t_example_location(void **state)
{
    (void)state;
    json_t *loc = load("ROR_SHARED_DIR", "spec/ror-ig/examples/Location-ror-location-exemple.json");
    if (!loc)
        skip();
    for (int p = 0; p < AUTH_PROFILES; p++) {
        json_t *out = filtered(loc, p, &MS);
        assert_non_null(out);
        assert_true(json_equal(out, loc));
        json_decref(out);
        out = filtered(loc, p, &SENSITIVE);
        assert_int_equal(out != NULL, p == 1 || p == 4);
        json_decref(out);
    }
    /* with capacities of statuses 01, 02, 06 and a crisis one */
    json_t *v = json_deep_copy(loc);
    json_t *exts = json_object_get(v, "extension");
    json_array_append_new(exts, capacity("@k01", "01", NULL));
    json_array_append_new(exts, capacity("@k02", "02", NULL));
    json_array_append_new(exts, capacity("@k06", "06", NULL));
    json_array_append_new(exts, capacity("@kcr", "02", "01"));
    const char *all = "@k01 @k02 @k06 @kcr";
    const char *expect[AUTH_PROFILES] = {"", all, "@k01 @k02", "", all, "@k01"};
    check_profiles(v, NULL, expect);
    const char *ms[AUTH_PROFILES] = {"", all, "@k01 @k02", "@k01 @k02", all, "@k01"};
    check_profiles(v, &MS, ms);
    json_decref(v);
    json_decref(loc);
}

/* ---------------------------------------------------------------- the demo region */

/* Every resource of the demo region, every profile (and out-of-range ones), every context:
 * a hidden resource is untouched, a visible one only pruned, profile 1 changes nothing, a
 * second pass changes nothing more. The counts of hidden offers follow from the region's
 * content (12 offers, all MCO or PSY, one of them sensitive). */
static void t_demo_region(void **state)
{
    (void)state;
    json_t *bundle = load("ROR_SOURCE_DIR", "data/demo/demo-region.json");
    if (!bundle)
        skip();
    json_t *entries = json_object_get(bundle, "entry");
    assert_true(json_array_size(entries) > 0);
    int hs_seen[AUTH_PROFILES] = {0}, n_hs = 0, n_sensitive = 0, changed = 0;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        json_t *res = json_object_get(e, "resource");
        bool is_hs = strcmp(json_string_value(json_object_get(res, "resourceType")),
                            "HealthcareService") == 0;
        if (is_hs) {
            AuthVisContext c = {0};
            auth_visibility_offer(res, &c);
            n_hs++;
            n_sensitive += c.sensitive;
            assert_false(c.medico_social || c.ville);
        }
        for (int ctxbits = 0; ctxbits < 8; ctxbits++) {
            AuthVisContext c = {ctxbits & 1, ctxbits & 2, ctxbits & 4};
            for (int p = -1; p <= AUTH_PROFILES; p++) {
                json_t *out = filtered(res, p, &c);
                if (out) {
                    json_t *again = json_deep_copy(out);
                    assert_true(auth_visibility_apply(again, p, &c));
                    assert_true(json_equal(again, out));
                    json_decref(again);
                    changed += !json_equal(out, res);
                }
                if (p == 1)
                    assert_true(out && json_equal(out, res));
                if (is_hs && ctxbits == 0 && p >= 0 && p < AUTH_PROFILES)
                    hs_seen[p] += out != NULL;
                json_decref(out);
            }
        }
    }
    assert_int_equal(n_hs, 12);
    assert_int_equal(n_sensitive, 1);
    int want[AUTH_PROFILES] = {11, 12, 11, 0, 12, 11};
    for (int p = 0; p < AUTH_PROFILES; p++)
        assert_int_equal(hs_seen[p], want[p]);
    assert_true(changed > 0); /* capacities, equipment and specific acts are there to prune */
    printf("demo region: %zu resources x 8 contexts x 8 profiles, %d filtered outputs differ\n",
           json_array_size(entries), changed);
    json_decref(bundle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_hs_mco),
        cmocka_unit_test(t_hs_medico_social),
        cmocka_unit_test(t_hs_sensitive),
        cmocka_unit_test(t_hs_sensitive_unreadable),
        cmocka_unit_test(t_hs_unreadable_levels),
        cmocka_unit_test(t_hs_no_empty_array),
        cmocka_unit_test(t_offer_context),
        cmocka_unit_test(t_location),
        cmocka_unit_test(t_location_no_empty_array),
        cmocka_unit_test(t_organization),
        cmocka_unit_test(t_practitioner_role),
        cmocka_unit_test(t_practitioner),
        cmocka_unit_test(t_task_and_others),
        cmocka_unit_test(t_unknown_profile),
        cmocka_unit_test(t_example_hs),
        cmocka_unit_test(t_example_hs_variants),
        cmocka_unit_test(t_example_location),
        cmocka_unit_test(t_demo_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
