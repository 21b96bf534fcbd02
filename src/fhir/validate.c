/* fhir validation: structure checks and the ROR profiles' required elements. */
#include "fhir/fhir.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define ROR_SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"
#define EXT(name) "extension.where(url='" ROR_SD name "')"
#define CAPA "Location." EXT("ror-location-supported-capacity")

/*
 * A rule either requires `expr` to select at least `min` items (min > 0), or, with min == 0,
 * flags every item `expr` selects as a violation. Rules with `profile` set apply only to
 * resources that claim that profile in meta.profile (FHIR validates against declared
 * profiles; plain FHIR resources, e.g. the FINESS open data, are accepted as base FHIR).
 *
 * Deliberately not enforced: HealthcareService.characteristic:careMode 1..1 — the guide's own
 * example (HealthcareService/1234564) omits it, and the example must be accepted.
 */
typedef struct Rule {
    const char *type;
    const char *profile;
    const char *expr;
    int min;
    const char *msg;
    FhirPath *path;
} Rule;

static Rule rules[] = {
    {"Task", NULL, "Task.status", 1, "Task.status est obligatoire", NULL},
    {"Task", NULL, "Task.intent", 1, "Task.intent est obligatoire", NULL},
    {"CodeSystem", NULL, "CodeSystem.status", 1, "CodeSystem.status est obligatoire", NULL},
    {"CodeSystem", NULL, "CodeSystem.content", 1, "CodeSystem.content est obligatoire", NULL},
    {"ValueSet", NULL, "ValueSet.status", 1, "ValueSet.status est obligatoire", NULL},
    {"PractitionerRole", ROR_SD "ror-practitionerrole", "PractitionerRole.practitioner", 1,
     "RORPractitionerRole : practitioner est obligatoire", NULL},
    {"PractitionerRole", ROR_SD "ror-practitionerrole", "PractitionerRole.healthcareService", 1,
     "RORPractitionerRole : healthcareService est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice", "HealthcareService.identifier", 1,
     "RORHealthcareService : identifier est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice", "HealthcareService.providedBy", 1,
     "RORHealthcareService : providedBy est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice", "HealthcareService.type", 1,
     "RORHealthcareService : type (champ d'activité) est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice", "HealthcareService.specialty", 1,
     "RORHealthcareService : specialty (activité opérationnelle) est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice",
     "HealthcareService." EXT("ror-healthcareservice-sensitive-unit"), 1,
     "RORHealthcareService : l'extension unité sensible est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice",
     "HealthcareService." EXT("ror-healthcareservice-patient-type"), 1,
     "RORHealthcareService : l'extension patient-type (tranche d'âge) est obligatoire", NULL},
    {"HealthcareService", ROR_SD "ror-healthcareservice",
     "HealthcareService." EXT("ror-meta-creation-date"), 1,
     "RORHealthcareService : ror-meta-creation-date est obligatoire", NULL},
    {"Location", ROR_SD "ror-location", "Location." EXT("ror-commune-cog"), 1,
     "RORLocation : ror-commune-cog (commune) est obligatoire", NULL},
    {"Location", ROR_SD "ror-location", "Location." EXT("ror-meta-creation-date"), 1,
     "RORLocation : ror-meta-creation-date est obligatoire", NULL},
    /* Each capacity indicator carries its mandatory dimensions (ror-location-supported-capacity
     * differential: 1..1), whatever the profile claimed: a capacity is never half-described. */
    {"Location", NULL, CAPA ".where(extension.where(url='capacityType').empty())", 0,
     "capacité sans capacityType (nature)", NULL},
    {"Location", NULL, CAPA ".where(extension.where(url='capacityStatus').empty())", 0,
     "capacité sans capacityStatus (statut)", NULL},
    {"Location", NULL, CAPA ".where(extension.where(url='temporalityCapacity').empty())", 0,
     "capacité sans temporalityCapacity (temporalité)", NULL},
    {"Location", NULL, CAPA ".where(extension.where(url='nbCapacity').empty())", 0,
     "capacité sans nbCapacity (nombre)", NULL},
    {"Location", NULL, CAPA ".where(extension.where(url='capacityUpdateDate').empty())", 0,
     "capacité sans capacityUpdateDate (date de mise à jour)", NULL},
};

static pthread_once_t rules_once = PTHREAD_ONCE_INIT;
static bool rules_ok = true;

static void rules_compile(void)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        Diag d = {{0}, {0}};
        if (fhirpath_compile(rules[i].expr, &rules[i].path, &d) != 0) {
            log_error("validation rule '%s' does not compile: %s", rules[i].expr, d.msg);
            rules_ok = false;
        }
    }
}

static bool claims_profile(json_t *res, const char *profile)
{
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(res, "meta"), "profile"), i, p)
    {
        const char *s = json_string_value(p);
        /* a versioned canonical "url|0.7.0" claims the same profile */
        if (s && strncmp(s, profile, strlen(profile)) == 0 &&
            (s[strlen(profile)] == 0 || s[strlen(profile)] == '|'))
            return true;
    }
    return false;
}

static int check_structure(const char *type, json_t *res, Diag *d)
{
    if (!json_is_object(res))
        return diag_set(d, ERR_INVALID, "le corps doit être un objet JSON (une ressource FHIR)");
    const char *rt = json_str(res, "resourceType");
    if (!rt)
        return diag_set(d, ERR_INVALID, "resourceType manquant");
    if (strcmp(rt, type) != 0) {
        diag_expr(d, "resourceType");
        return diag_set(d, ERR_INVALID, "resourceType '%s' ne correspond pas au type %s de l'URL",
                        rt, type);
    }
    json_t *id = json_object_get(res, "id");
    if (id &&
        (!json_is_string(id) || !fhir_id_valid(json_string_value(id), json_string_length(id)))) {
        diag_expr(d, "%s.id", type);
        return diag_set(d, ERR_INVALID, "id invalide ([A-Za-z0-9-.]{1,64} attendu)");
    }
    json_t *meta = json_object_get(res, "meta");
    if (meta && !json_is_object(meta)) {
        diag_expr(d, "%s.meta", type);
        return diag_set(d, ERR_INVALID, "meta doit être un objet");
    }
    static const char *arrays[] = {"tag", "profile", "security"};
    for (size_t i = 0; meta && i < 3; i++) {
        json_t *a = json_object_get(meta, arrays[i]);
        if (a && !json_is_array(a)) {
            diag_expr(d, "%s.meta.%s", type, arrays[i]);
            return diag_set(d, ERR_INVALID, "meta.%s doit être un tableau", arrays[i]);
        }
    }
    json_t *ext = json_object_get(res, "extension"), *e;
    size_t i;
    if (ext && !json_is_array(ext)) {
        diag_expr(d, "%s.extension", type);
        return diag_set(d, ERR_INVALID, "extension doit être un tableau");
    }
    json_array_foreach(ext, i, e)
    {
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "url"))) {
            diag_expr(d, "%s.extension[%zu]", type, i);
            return diag_set(d, ERR_INVALID, "chaque extension doit avoir une url");
        }
    }
    return 0;
}

int fhir_resource_check(const char *type, json_t *res, Diag *d)
{
    int rc = check_structure(type, res, d);
    if (rc != 0)
        return rc;
    pthread_once(&rules_once, rules_compile);
    if (!rules_ok)
        return diag_set(d, ERR_INTERNAL, "règles de validation invalides");
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const Rule *r = &rules[i];
        if (strcmp(r->type, type) != 0 || (r->profile && !claims_profile(res, r->profile)))
            continue;
        FpResult out = {0};
        rc = fhirpath_eval(r->path, res, &out, d);
        size_t n = out.n;
        fp_result_cleanup(&out);
        if (rc != 0)
            return rc;
        if ((r->min > 0 && n < (size_t)r->min) || (r->min == 0 && n > 0)) {
            diag_expr(d, "%s", r->expr);
            return diag_set(d, ERR_PROFILE, "%s", r->msg);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- outcomes */

const char *fhir_issue_code(int err)
{
    switch (err) {
    case ERR_INVALID: return "invalid";
    case ERR_NOT_FOUND: return "not-found";
    case ERR_GONE: return "deleted";
    case ERR_CONFLICT: return "conflict";
    case ERR_PRECONDITION: return "conflict";
    case ERR_MULTIPLE: return "multiple-matches";
    case ERR_TOO_LARGE: return "too-costly";
    case ERR_URI_TOO_LONG: return "too-costly";
    case ERR_MEDIA_TYPE: return "not-supported";
    case ERR_NOT_ACCEPTABLE: return "not-supported";
    case ERR_METHOD: return "not-supported";
    case ERR_PROFILE: return "processing";
    case ERR_BUSINESS: return "business-rule";
    case ERR_UNSUPPORTED: return "not-supported";
    case ERR_UNAUTHORIZED: return "login";
    case ERR_FORBIDDEN: return "forbidden";
    case ERR_UNAVAILABLE: return "transient";
    default: return "exception";
    }
}

char *fhir_outcome_text(const char *severity, const char *code, const char *diagnostics,
                        const char *expression)
{
    Buf b;
    buf_init(&b, 1 << 20);
    buf_adds(&b, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":");
    buf_add_json_string(&b, severity, strlen(severity));
    buf_adds(&b, ",\"code\":");
    buf_add_json_string(&b, code, strlen(code));
    if (diagnostics && *diagnostics) {
        buf_adds(&b, ",\"diagnostics\":");
        buf_add_json_string(&b, diagnostics, strlen(diagnostics));
    }
    if (expression && *expression) {
        buf_adds(&b, ",\"expression\":[");
        buf_add_json_string(&b, expression, strlen(expression));
        buf_adds(&b, "]");
    }
    buf_adds(&b, "}]}");
    return buf_steal(&b, NULL);
}
