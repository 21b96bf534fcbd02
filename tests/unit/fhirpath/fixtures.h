/*
 * Test fixtures shared by test_fhirpath.c and test_patch.c. JSON is written with single
 * quotes to stay readable in C; jq() turns them into double quotes (no value contains one).
 */
#ifndef ROR_TEST_FHIRPATH_FIXTURES_H
#define ROR_TEST_FHIRPATH_FIXTURES_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"
#define CAP SD "ror-location-supported-capacity"

#define CC(code) "{'coding':[{'system':'https://mos.esante.gouv.fr/NOS','code':'" code "'}]}"

/* A realistic RORLocation: two capacity indicators, equipment with a nested limit, residential
 * capacity, commune COG, INSEE code on the address. */
#define LOC                                                                                     \
    "{'resourceType':'Location','id':'loc1',"                                                   \
    "'meta':{'lastUpdated':'2024-01-02T03:04:05Z','tag':[{'system':'urn:r30','code':'06'}]},"   \
    "'identifier':[{'system':'urn:x','value':'A1'},{'system':'urn:y','value':'B2'}],"           \
    "'name':'Unite A','alias':['UA','Unite A'],"                                                \
    "'extension':["                                                                             \
    "{'url':'" CAP "','extension':["                                                            \
    "{'url':'capacityType','valueCodeableConcept':" CC("01") "},"                               \
    "{'url':'capacityStatus','valueCodeableConcept':" CC("02") "},"                             \
    "{'url':'temporalityCapacity','valueCodeableConcept':" CC("01") "},"                        \
    "{'url':'nbCapacity','valueInteger':5},"                                                    \
    "{'url':'capacityUpdateDate','valueDateTime':'2024-01-02T03:04:05Z'},"                      \
    "{'url':'temporaryAssignement','valueCodeableConcept':" CC("01") "},"                       \
    "{'url':'genderCapacityAvailable','valueCodeableConcept':" CC("03") "}]},"                  \
    "{'url':'" CAP "','extension':["                                                            \
    "{'url':'capacityType','valueCodeableConcept':" CC("01") "},"                               \
    "{'url':'capacityStatus','valueCodeableConcept':" CC("05") "},"                             \
    "{'url':'temporalityCapacity','valueCodeableConcept':" CC("01") "},"                        \
    "{'url':'capacityClosingType','valueCodeableConcept':" CC("01") "},"                        \
    "{'url':'additionalBedType','valueCodeableConcept':" CC("02") "},"                          \
    "{'url':'crisisType','valueCodeableConcept':" CC("02") "},"                                 \
    "{'url':'nbCapacity','valueInteger':7},"                                                    \
    "{'url':'capacityUpdateDate','valueDateTime':'2024-01-03T00:00:00Z'},"                      \
    "{'url':'temporaryAssignement','valueCodeableConcept':" CC("02") "}]},"                     \
    "{'url':'" SD "ror-location-equipment','extension':["                                       \
    "{'url':'equipmentType','valueCodeableConcept':" CC("089") "},"                             \
    "{'url':'nbInService','valueInteger':2},"                                                   \
    "{'url':'" SD "ror-location-equipment-limit','extension':["                                 \
    "{'url':'equipmentFeature','valueCodeableConcept':" CC("001") "},"                          \
    "{'url':'limitValue','valueQuantity':{'value':300,'unit':'kg',"                             \
    "'system':'http://unitsofmeasure.org','code':'kg'}}]}]},"                                   \
    "{'url':'" SD "ror-location-residential-capacity','extension':["                            \
    "{'url':'residentialType','valueCodeableConcept':" CC("01") "},"                            \
    "{'url':'residentialNumber','valueInteger':12}]},"                                          \
    "{'url':'" SD "ror-commune-cog','valueCodeableConcept':" CC("78646") "}],"                  \
    "'type':[" CC("001") "],"                                                                   \
    "'address':{'city':'Versailles','postalCode':'78000','line':['7 rue de Buc'],"              \
    "'extension':[{'url':'https://interop.esante.gouv.fr/ig/fhir/ror/structuredefinition/"      \
    "datatype/fr-address-insee-code','valueCode':'78646'}]},"                                   \
    "'position':{'longitude':2.13,'latitude':48.8},"                                            \
    "'managingOrganization':{'reference':'Organization/org1'}}"

#define ORG                                                                                     \
    "{'resourceType':'Organization','id':'org1','name':'CH Versailles','alias':['CHV'],"        \
    "'extension':["                                                                             \
    "{'url':'" SD "ror-organization-closing-type','valueCodeableConcept':" CC("02") "},"        \
    "{'url':'" SD "ror-organization-drop-zone','valueBoolean':true},"                           \
    "{'url':'" SD "ror-organization-oi-name','valueString':'OI Nord'},"                         \
    "{'url':'http://hl7.org/fhir/StructureDefinition/organization-period',"                     \
    "'valuePeriod':{'start':'2020-01-01','end':'2030-12-31'}},"                                 \
    "{'url':'" SD "ror-organization','extension':[{'url':'startDate','valueDate':'2019-05-01'}]},"\
    "{'url':'" SD "ror-organization-price','extension':["                                       \
    "{'url':'amount','valueMoney':{'value':85.5,'currency':'EUR'}},"                            \
    "{'url':'dependencyLevel','valueCodeableConcept':" CC("D1") "},"                            \
    "{'url':'residentialType','valueCodeableConcept':" CC("R1") "},"                            \
    "{'url':'priceType','valueCodeableConcept':" CC("P1") "},"                                  \
    "{'url':'priceUnit','valueCodeableConcept':" CC("U1") "},"                                  \
    "{'url':'welcomeType','valueCodeableConcept':" CC("W1") "}]}],"                             \
    "'address':[{'city':'Versailles','postalCode':'78000'},{'city':'Paris','postalCode':'75001'}]}"

#define HS                                                                                      \
    "{'resourceType':'HealthcareService','id':'hs1','providedBy':{'reference':'Organization/org1'},"\
    "'extension':["                                                                             \
    "{'url':'" SD "ror-healthcareservice-patient-type','extension':["                           \
    "{'url':'ageRange','valueRange':{'low':{'value':15,'code':'a'},'high':{'value':150,'code':'a'}}},"\
    "{'url':'supportedPatientInfo','valueCodeableConcept':" CC("SP") "}]},"                     \
    "{'url':'http://interop.esante.gouv.fr/ig/fhir/ror30/StructureDefinition/"                  \
    "ror-healthcareservice-equipement','extension':[{'url':'equipmentType','valueCodeableConcept':"\
    CC("E1") "}]},"                                                                             \
    "{'url':'" SD "ror-territorial-division','extension':["                                     \
    "{'url':'codeTerritorialDivision','valueCodeableConcept':" CC("T1") "}]},"                  \
    "{'url':'" SD "ror-healthcareservice-psychiatric-sector','valueString':'92G01'}],"          \
    "'notAvailable':[{'id':'closingReopeningDate','description':'travaux',"                     \
    "'during':{'start':'2024-06-01','end':'2024-09-01'}},{'id':'other','description':'x'}]}"

static inline json_t *jq(const char *s)
{
    char *c = strdup(s);
    for (char *p = c; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *j = json_loads(c, 0, &e);
    free(c);
    return j;
}

#endif
