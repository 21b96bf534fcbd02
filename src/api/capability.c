/* api capability: the CapabilityStatement, generated from what the server really serves. */
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "json/json.h"

char *capability_build(const FhirRegistry *reg, const char *version);

static void add_interactions(json_t *res, unsigned bits)
{
    static const struct {
        unsigned bit;
        const char *code;
    } map[] = {{FHIR_READ, "read"},          {FHIR_VREAD, "vread"},
               {FHIR_SEARCH, "search-type"}, {FHIR_CREATE, "create"},
               {FHIR_UPDATE, "update"},      {FHIR_PATCH, "patch"},
               {FHIR_DELETE, "delete"},      {FHIR_HISTORY, "history-instance"}};
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (bits & map[i].bit)
            json_array_append_new(arr, json_pack("{ss}", "code", map[i].code));
    json_object_set_new(res, "interaction", arr);
}

/* Terminology operations (terminology_api.c). */
static void add_operations(json_t *res, const char *type)
{
#define OPDEF "http://hl7.org/fhir/OperationDefinition/"
    if (strcmp(type, "CodeSystem") == 0)
        json_object_set_new(res, "operation",
                            json_pack("[{ss ss} {ss ss}]", "name", "lookup", "definition",
                                      OPDEF "CodeSystem-lookup", "name", "validate-code",
                                      "definition", OPDEF "CodeSystem-validate-code"));
    else if (strcmp(type, "ValueSet") == 0)
        json_object_set_new(res, "operation",
                            json_pack("[{ss ss}]", "name", "validate-code", "definition",
                                      OPDEF "ValueSet-validate-code"));
#undef OPDEF
}

/* What the server does beyond, or differently from, the bare FHIR rules: said in French, to
 * the people who read the CapabilityStatement. Keep it true when behaviour changes. */
static const char rest_doc[] =
    "API FHIR R4 du ROR (guide ans.fhir.fr.ror). "
    "Recherche : tous les types de paramètres ; modificateurs :exact :contains :not :missing "
    ":text :of-type :identifier :Type, :above/:below (uri) ; préfixes eq ne gt lt ge le sa eb "
    "ap ; chaînage (jusqu'à 3 niveaux) ; _has ; _include/_revinclude (avec :iterate) ; _sort ; "
    "_count (défaut et maximum 200) ; _total ; _summary=count. "
    "Pagination par curseur stable (liens next) : aucune ressource répétée ni omise quand "
    "d'autres sont écrites entre deux pages. "
    "Paramètres inconnus : ignorés et signalés (OperationOutcome dans le Bundle) sauf avec "
    "Prefer: handling=strict (400). "
    "Corrélation : les critères de capacité (capacity-*, nb-capacity, temporality-capacity, "
    "gender-capacity-available, crisis-type...) portent sur la MÊME extension "
    "ror-location-supported-capacity, ceux d'équipement (equipment-type, equipment-feature, "
    "limit-value) sur le même équipement ; les critères chaînés par la même référence "
    "(location.a=…&location.b=…) portent sur la même ressource cible. "
    "Un _include dont le type source n'est pas le type recherché s'applique aux ressources déjà "
    "incluses (comme :iterate). "
    "near=latitude|longitude|distance|unité (km par défaut, m, [mi_i] ; 50 km sans distance) : "
    "rayon VRAI (distance orthodromique, sphère de 6 371 008,8 m) autour du point, sur "
    "Location.position ; chaîné sur HealthcareService (location.near) ; _sort=near trie par "
    "distance croissante (pour un chaînage : le lieu référencé le plus proche dans le rayon) ; "
    "chaque résultat porte sa distance en km (search.extension location-distance). "
    "near-insee-code=code : égalité sur le code INSEE de la commune de l'adresse ; "
    "near-insee-code=code|distance|unité : rayon autour du centre de la commune (table des "
    "communes importée), comme near. "
    "Patch : FHIRPath Patch (Parameters), y compris conditionnel (PATCH [type]?critères). "
    "Mise à jour : If-Match (412 si la version diffère) ; un corps dont meta.versionId n'est pas "
    "la version actuelle est refusé (409). "
    "Une recherche trop coûteuse est interrompue (413 too-costly). "
    "Terminologie : CodeSystem/$lookup, CodeSystem/$validate-code et ValueSet/$validate-code sur "
    "les TRE/JDV de la NOS chargés (ror import nos) ; à l'écriture, les codes des éléments liés "
    "par le guide à un JDV chargé (liaison required) doivent appartenir au JDV (sinon 400 "
    "business-rule). "
    "Abonnements (Subscription, backport R4 des abonnements par sujet, canal rest-hook) : "
    "criteria = https://ror.esante.local/SubscriptionTopic/capacity (chaque changement de "
    "capacité), filtres backport-filter-criteria location=, organization=, departement= ; "
    "notifications dans l'ordre des validations, numérotées sans trou, renvoyées après une "
    "panne du destinataire (statut error entre-temps), reprises après un redémarrage ; "
    "Subscription/[id]/$status. "
    "Non pris en charge : _filter, _content, _text, _elements, XML.";

char *capability_build(const FhirRegistry *reg, const char *version)
{
    char now[32];
    time_format_instant(time_now_ms(), now);
    json_t *cs =
        json_pack("{ss ss ss ss ss ss ss s{ss ss} ss s[ss] s[s] s[s]}", "resourceType",
                  "CapabilityStatement", "id", "ror", "name", "RORServeur", "title",
                  "ror — serveur ROR (Répertoire Opérationnel des Ressources)", "status", "active",
                  "date", now, "kind", "instance", "software", "name", "ror", "version", version,
                  "fhirVersion", "4.0.1", "format", "application/fhir+json", "json", "patchFormat",
                  "application/fhir+json", "instantiates",
                  "https://interop.esante.gouv.fr/ig/fhir/ror/CapabilityStatement/ror-serveur");
    json_t *rest = json_pack("{ss ss}", "mode", "server", "documentation", rest_doc);
    json_t *resources = json_array();
    for (const FhirType *t = fhir_types(); t->name; t++) {
        json_t *res = json_pack("{ss}", "type", t->name);
        if (t->profile)
            json_object_set_new(res, "supportedProfile", json_pack("[s]", t->profile));
        add_interactions(res, t->interactions);
        add_operations(res, t->name);
        json_object_set_new(res, "versioning", json_string("versioned-update"));
        json_object_set_new(res, "readHistory", json_true());
        json_object_set_new(res, "updateCreate", json_true());
        json_object_set_new(res, "conditionalCreate", json_true());
        json_object_set_new(res, "conditionalUpdate", json_false());
        json_object_set_new(res, "conditionalDelete", json_string("not-supported"));
        size_t n;
        const SearchParam *const *params = fhir_registry_params(reg, t->name, &n);
        json_t *sps = json_array(), *inc = json_array();
        for (size_t i = 0; i < n; i++) {
            const SearchParam *sp = params[i];
            if (!sp->path)
                continue; /* special parameters we do not evaluate are not claimed */
            json_t *e = json_pack("{ss ss ss}", "name", sp->code, "definition", sp->url, "type",
                                  sp_type_name(sp->type));
            if (sp->corrected)
                json_object_set_new(e, "documentation",
                                    json_pack("s+", "Expression corrigée : ", sp->expression));
            json_array_append_new(sps, e);
            if (sp->type == SP_REFERENCE)
                json_array_append_new(inc, json_pack("s++", t->name, ":", sp->code));
        }
        json_array_append_new(sps, json_pack("{ss ss ss ss}", "name", "_has", "definition",
                                             "http://hl7.org/fhir/SearchParameter/Resource-has",
                                             "type", "special", "documentation",
                                             "Chaînage inverse _has:Type:référence:paramètre"));
        json_object_set_new(res, "searchParam", sps);
        json_object_set_new(res, "searchInclude", inc);
        /* revincludes: reference parameters of any type that can point at this one */
        json_t *rev = json_array();
        for (const FhirType *s = fhir_types(); s->name; s++) {
            size_t m;
            const SearchParam *const *sp2 = fhir_registry_params(reg, s->name, &m);
            for (size_t i = 0; i < m; i++) {
                const SearchParam *sp = sp2[i];
                if (sp->type != SP_REFERENCE || !sp->path)
                    continue;
                bool targets = sp->ntargets == 0;
                for (size_t k = 0; k < sp->ntargets; k++)
                    targets |= strcmp(sp->targets[k], t->name) == 0;
                if (targets)
                    json_array_append_new(rev, json_pack("s++", s->name, ":", sp->code));
            }
        }
        json_object_set_new(res, "searchRevInclude", rev);
        json_array_append_new(resources, res);
    }
    json_object_set_new(rest, "resource", resources);
    json_object_set_new(rest, "searchParam",
                        json_pack("[{ss ss} {ss ss} {ss ss} {ss ss} {ss ss} {ss ss}]", "name",
                                  "_count", "type", "number", "name", "_sort", "type", "special",
                                  "name", "_include", "type", "special", "name", "_revinclude",
                                  "type", "special", "name", "_total", "type", "token", "name",
                                  "_summary", "type", "token"));
    json_object_set_new(cs, "rest", json_pack("[o]", rest));
    char *text = json_dump_compact(cs, NULL);
    json_decref(cs);
    return text;
}
