/* visibility.c — what a reader of each access profile may see of a resource.
 *
 * The rules are the mapping comments of the ROR profiles ("Politique d'accès aux données
 * ME 3.0"): whole resources hidden (sensitive units, non médico-social offers for profile 3,
 * professionals outside "Ville" offers for the public), and inside a visible resource the
 * contacts and telecoms above the reader's confidentiality level (TRE_R283), the capacities
 * (TRE_R330 statuses, crisis indicators), the equipment and the specific acts it may not see.
 *
 * Extensions are recognised by the last segment of their url, so that the guide's canonical
 * and a relative sub-extension name both match; codes by the TRE number in their system.
 * Whatever cannot be read (no confidentiality level, an unknown code, no capacity status) is
 * taken as the most restricted value: a filter that cannot decide must fail closed.
 *
 * The resource is only pruned: an element is kept whole or removed, and an array emptied by
 * removals is removed too (FHIR forbids empty arrays).
 */
#include "auth/auth.h"

#include <string.h>

#include "json/json.h"

enum { LEVEL_PUBLIC = 1, LEVEL_RESTRICTED = 2, LEVEL_VERY_RESTRICTED = 3 };

/* What the reader may see inside a visible resource. */
typedef struct Filter {
    int profile;
    bool medico_social; /* the offer (or one offer of the Location) is médico-social */
    int max_level;      /* most restricted confidentiality level shown */
} Filter;

typedef bool (*KeepFn)(json_t *el, const Filter *f);

/* ---------------------------------------------------------------- reading */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The url is `name`, or ends with "/name" (a canonical of the guide). */
static bool url_is(const json_t *ext, const char *name)
{
    const char *url = json_str(ext, "url");
    if (!url)
        return false;
    size_t n = strlen(url), k = strlen(name);
    return n >= k && memcmp(url + n - k, name, k) == 0 && (n == k || url[n - k - 1] == '/');
}

/* The first sub-extension of `ext` named `name`, or NULL. */
static json_t *sub_ext(const json_t *ext, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(ext, "extension"), i, s)
    {
        if (url_is(s, name))
            return s;
    }
    return NULL;
}

/* The code of the first coding of CodeableConcept `cc` whose system names `tre` ("R330"). */
static const char *cc_code(const json_t *cc, const char *tre)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(cc, "coding"), i, c)
    {
        const char *sys = json_str(c, "system"), *code = json_str(c, "code");
        if (sys && code && strstr(sys, tre))
            return code;
    }
    return NULL;
}

static bool cc_has(const json_t *cc, const char *tre, const char *code)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(cc, "coding"), i, c)
    {
        const char *sys = json_str(c, "system"), *cd = json_str(c, "code");
        if (sys && cd && strstr(sys, tre) && strcmp(cd, code) == 0)
            return true;
    }
    return false;
}

/* Level of one Coding: 0 when it is not of TRE_R283, "très restreint" for an unknown code. */
static int coding_level(const json_t *c)
{
    const char *sys = json_str(c, "system"), *code = json_str(c, "code");
    if (!sys || !strstr(sys, "R283"))
        return 0;
    if (code && code[0] >= '1' && code[0] <= '3' && code[1] == '\0')
        return code[0] - '0';
    return LEVEL_VERY_RESTRICTED;
}

/* Confidentiality level (TRE_R283) carried by the extensions `exts` of a contact or a
 * ContactPoint. The url differs by context (ror-confidentiality-level,
 * ror-telecom-confidentiality-level, ror-contact-confidentiality-level...): any of them counts,
 * the most restricted wins, and no readable level means "très restreint". */
static int level_of(const json_t *exts)
{
    int level = 0;
    size_t i, j;
    json_t *e, *c;
    json_array_foreach(exts, i, e)
    {
        const char *url = json_str(e, "url");
        if (!url || !has_suffix(url, "confidentiality-level"))
            continue;
        int found = coding_level(json_object_get(e, "valueCoding"));
        json_array_foreach(json_object_get(json_object_get(e, "valueCodeableConcept"), "coding"), j,
                           c)
        {
            int v = coding_level(c);
            found = v > found ? v : found;
        }
        if (!found)
            found = LEVEL_VERY_RESTRICTED;
        level = found > level ? found : level;
    }
    return level ? level : LEVEL_VERY_RESTRICTED;
}

static bool is_specific_act(const json_t *characteristic)
{
    json_t *t = sub_ext(characteristic, "ror-act-type");
    const char *code = json_str(t, "valueCode");
    return code && strcmp(code, "specificAct") == 0;
}

/* ---------------------------------------------------------------- pruning */

/* Remove the elements of array member `key` of `obj` that `keep` refuses (keep may also prune
 * an element it keeps); remove the member when that empties it. */
static void prune(json_t *obj, const char *key, KeepFn keep, const Filter *f)
{
    json_t *a = json_object_get(obj, key);
    if (!json_is_array(a) || json_array_size(a) == 0)
        return;
    for (size_t i = 0; i < json_array_size(a);) {
        if (keep(json_array_get(a, i), f))
            i++;
        else
            json_array_remove(a, i);
    }
    if (json_array_size(a) == 0)
        json_object_del(obj, key);
}

static int max_level(int profile, bool medico_social)
{
    switch (profile) {
    case 1: return LEVEL_VERY_RESTRICTED;
    case 2:
    case 5: return LEVEL_RESTRICTED;
    case 3: return medico_social ? LEVEL_RESTRICTED : LEVEL_PUBLIC;
    default: return LEVEL_PUBLIC; /* 4 (regulation) and 0 (public) */
    }
}

static bool keep_contact_point(json_t *cp, const Filter *f)
{
    return level_of(json_object_get(cp, "extension")) <= f->max_level;
}

/* A sub-extension of a HealthcareService contact: its telecoms carry their own level. */
static bool keep_hs_contact_part(json_t *part, const Filter *f)
{
    if (!url_is(part, "ror-healthcareservice-contact-telecom"))
        return true;
    return level_of(json_object_get(part, "extension")) <= f->max_level;
}

static bool keep_hs_extension(json_t *ext, const Filter *f)
{
    if (!url_is(ext, "ror-healthcareservice-contact"))
        return true;
    if (level_of(json_object_get(ext, "extension")) > f->max_level)
        return false;
    prune(ext, "extension", keep_hs_contact_part, f);
    return true;
}

static bool keep_characteristic(json_t *ch, const Filter *f)
{
    return f->profile != 0 || !is_specific_act(ch);
}

/* A capacity indicator (ror-location-supported-capacity). Status 06 is extra beds; an
 * indicator without a readable status is shown only to those who see every status. */
static bool keep_capacity(const json_t *ext, const Filter *f)
{
    if (f->profile == 4)
        return true;
    if (f->profile == 0 || (f->profile == 3 && !f->medico_social))
        return false;
    const char *status =
        cc_code(json_object_get(sub_ext(ext, "capacityStatus"), "valueCodeableConcept"), "R330");
    if (!status)
        return false;
    if (f->profile == 5)
        return strcmp(status, "01") == 0;
    return strcmp(status, "06") != 0 && !sub_ext(ext, "crisisType"); /* 2, 3 */
}

static bool keep_location_extension(json_t *ext, const Filter *f)
{
    if (url_is(ext, "ror-location-equipment"))
        return f->profile != 0 && (f->profile != 3 || f->medico_social);
    if (url_is(ext, "ror-location-supported-capacity"))
        return keep_capacity(ext, f);
    return true;
}

/* Organization.contact: its own level (ror-contact-confidentiality-level, 1..1 in the profile),
 * then its telecoms by theirs. */
static bool keep_org_contact(json_t *contact, const Filter *f)
{
    if (level_of(json_object_get(contact, "extension")) > f->max_level)
        return false;
    prune(contact, "telecom", keep_contact_point, f);
    return true;
}

/* ---------------------------------------------------------------- public */

void auth_visibility_offer(const json_t *hs, AuthVisContext *ctx)
{
    if (!ctx || !json_is_object(hs))
        return;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(hs, "extension"), i, v)
    {
        /* the flag is 1..1: present but unreadable counts as sensitive */
        if (url_is(v, "ror-healthcareservice-sensitive-unit") &&
            !json_is_false(json_object_get(v, "valueBoolean")))
            ctx->sensitive = true;
    }
    json_array_foreach(json_object_get(hs, "type"), i, v)
    {
        if (cc_has(v, "R227", "04"))
            ctx->medico_social = true;
        if (cc_has(v, "R227", "05"))
            ctx->ville = true;
    }
}

bool auth_visibility_apply(json_t *res, int profile, const AuthVisContext *ctx)
{
    if (!json_is_object(res))
        return false;
    if (profile < 0 || profile >= AUTH_PROFILES)
        profile = 0;
    if (profile == 1)
        return true;
    AuthVisContext c = ctx ? *ctx : (AuthVisContext){0};
    const char *type = json_str(res, "resourceType");
    if (!type)
        return false; /* not a resource: nothing to decide on, so nothing shown */
    Filter f = {.profile = profile};

    if (strcmp(type, "HealthcareService") == 0) {
        /* an offer tells its own champ d'activité: a caller's context may only restrict it */
        AuthVisContext own = {0};
        auth_visibility_offer(res, &own);
        if ((own.sensitive || c.sensitive) && profile != 4)
            return false;
        if (profile == 3 && !own.medico_social)
            return false;
        f.medico_social = own.medico_social;
        f.max_level = max_level(profile, f.medico_social);
        prune(res, "telecom", keep_contact_point, &f);
        prune(res, "extension", keep_hs_extension, &f);
        prune(res, "characteristic", keep_characteristic, &f);
    } else if (strcmp(type, "Location") == 0) {
        if (c.sensitive && profile != 4)
            return false;
        f.medico_social = c.medico_social;
        f.max_level = max_level(profile, f.medico_social);
        prune(res, "extension", keep_location_extension, &f);
        prune(res, "telecom", keep_contact_point, &f);
    } else if (strcmp(type, "Organization") == 0) {
        /* no champ d'activité at this level: profile 3 reads as profile 2 */
        f.medico_social = true;
        f.max_level = max_level(profile, true);
        prune(res, "telecom", keep_contact_point, &f);
        prune(res, "contact", keep_org_contact, &f);
    } else if (strcmp(type, "PractitionerRole") == 0) {
        if ((c.sensitive && profile != 4) || (profile == 3 && !c.medico_social) ||
            (profile == 0 && !c.ville))
            return false;
        f.medico_social = c.medico_social;
        f.max_level = max_level(profile, f.medico_social);
        prune(res, "telecom", keep_contact_point, &f);
    } else if (strcmp(type, "Practitioner") == 0) {
        if (profile == 0 && !c.ville)
            return false;
        f.medico_social = c.medico_social;
        f.max_level = max_level(profile, f.medico_social);
        prune(res, "telecom", keep_contact_point, &f);
    } else if (strcmp(type, "Task") == 0) {
        if (profile == 0)
            return false;
    }
    return true;
}
