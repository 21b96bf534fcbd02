/*
 * terminology — the NOS CodeSystems (TRE) and ValueSets (JDV) the store holds, in memory:
 * $lookup, $validate-code, ValueSet expansion, folded display search, the communes table
 * (CodeSystem TRE_R13 written by `ror import communes`) and the check of written resources
 * against the value sets the ROR guide binds (data/bindings.json).
 *
 * Source of truth: the store. CodeSystem and ValueSet are ordinary FHIR resources written
 * through the one write path (`ror import nos`, or the API); this module only reads them: all
 * current ones at open, then each one named by a committed change (terminology_note_change,
 * called from the events subscriber that main.c wires to the store's commit hook).
 *
 * Invariants:
 *  - Readers see an immutable Snapshot: code systems indexed by url and url|version, value
 *    sets by url and url|version with their expansion computed when the snapshot is built
 *    (compose.include of concept lists and of whole code systems, compose.exclude). A change
 *    builds a NEW snapshot (unchanged code systems are shared, refcounted) and swaps it in.
 *  - A change noted by the commit hook is applied before the next read that follows it: the
 *    hook only queues (type, id) and raises a flag; the first reader that sees the flag
 *    re-reads the queued resources (store_read) and swaps the snapshot before answering.
 *    Since the hook runs before the writer releases the client, a client that wrote a
 *    ValueSet and then writes a resource bound to it is checked against the new ValueSet.
 *  - Without code systems/value sets in the store every query answers "unknown" and
 *    terminology_check_resource accepts everything: checks need the NOS to be imported.
 *  - A CodeSystem or ValueSet whose url has the stray ".tabs" segment of the 2023 NOS snapshot
 *    (JDV_J237-RegionOM-ROR.tabs/FHIR/..., TRE_R340-TypeCaracteristiqueEquipement.tabs/FHIR/...)
 *    is also known under the url without it, the one the guide and the JDVs use.
 *
 * Threading: every function is thread-safe. Queries hold a reference on the current snapshot
 * (never a lock while they work); terminology_note_change only takes a mutex for a list append
 * and may be called on the store's writer thread. Results are copied into the caller's Arena.
 */
#ifndef ROR_TERMINOLOGY_H
#define ROR_TERMINOLOGY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "fhir/fhir.h"
#include "store/store.h"

/** Canonical url of the communes CodeSystem (INSEE COG, one concept per commune). */
#define TERM_COMMUNES_URL "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"

typedef struct Terminology Terminology;

typedef struct TerminologyOptions {
    Store *store;
    const FhirRegistry *reg;   /* to page through the stored CodeSystem/ValueSet resources */
    const char *bindings_path; /* data/bindings.json; NULL: no binding checks */
} TerminologyOptions;

/** Load the bindings table and every current CodeSystem and ValueSet of the store.
 *  A stored resource that cannot be used (no url, malformed) is skipped with a warning.
 *  ERR_INVALID (bindings file) or ERR_IO with detail in d. Free with terminology_free. */
int terminology_open(const TerminologyOptions *o, Terminology **out, Diag *d);
/** NULL is a no-op. No query may run any more. */
void terminology_free(Terminology *t);

/** A committed change of type/id (any type: others are ignored). Cheap: queued, applied by the
 *  next query. Safe on the store's writer thread. */
void terminology_note_change(Terminology *t, const char *type, const char *id);
/** Apply the queued changes now (queries do it themselves; for logs and tests). */
void terminology_refresh(Terminology *t);

/** What is loaded (after applying queued changes). Any pointer may be NULL. */
void terminology_counts(Terminology *t, size_t *code_systems, size_t *value_sets, size_t *concepts);

/* ---------------------------------------------------------------- concepts */

typedef struct TermDesignation {
    const char *language;   /* NULL when absent */
    const char *use_system; /* use Coding, NULL when absent */
    const char *use_code;
    const char *use_display;
    const char *value;
} TermDesignation;

typedef struct TermProperty {
    const char *code;
    const char *type;  /* the FHIR value member: "valueString", "valueDecimal", "valueCode"... */
    const char *value; /* that member's value as compact JSON text ("\"75001\"", "48.85") */
} TermProperty;

typedef struct TermConcept {
    const char *system;
    const char *version; /* of the code system; NULL when it has none */
    const char *name;    /* CodeSystem.name (title when no name) */
    const char *code;
    const char *display;
    TermDesignation *designations;
    size_t ndesignations;
    TermProperty *properties;
    size_t nproperties;
} TermConcept;

/** $lookup: the concept `code` of code system `system` (version: NULL = the highest one
 *  loaded). Copied into a. ERR_NOT_FOUND with a French message in d when the code system or
 *  the code is unknown. */
int terminology_lookup(Terminology *t, Arena *a, const char *system, const char *version,
                       const char *code, TermConcept *out, Diag *d);

/* ---------------------------------------------------------------- validation */

typedef struct TermValidation {
    bool result;
    const char *display; /* the concept's display when the code was found, else NULL */
    const char *message; /* French explanation when result is false (or a display warning) */
} TermValidation;

/**
 * ValueSet $validate-code: is system|code in the expansion of value set `url` (NULL version =
 * highest loaded)? `system` NULL: any system of the value set. `display` (optional) must equal,
 * accents and case aside, the display or a designation, otherwise result is false.
 * ERR_NOT_FOUND when the value set is not loaded. A code of a system the value set includes
 * whole but whose CodeSystem is not loaded cannot be decided: ERR_UNSUPPORTED.
 */
int terminology_validate_vs(Terminology *t, Arena *a, const char *url, const char *version,
                            const char *system, const char *code, const char *display,
                            TermValidation *out, Diag *d);
/** CodeSystem $validate-code: is `code` a concept of code system `url`? ERR_NOT_FOUND when the
 *  code system is not loaded. */
int terminology_validate_cs(Terminology *t, Arena *a, const char *url, const char *version,
                            const char *code, const char *display, TermValidation *out, Diag *d);

typedef struct TermCode {
    const char *system;
    const char *code;
    const char *display;
} TermCode;

/** The expansion of value set `url` (copied into a), in compose order without duplicates.
 *  *complete is false when an include could not be expanded (a whole code system that is not
 *  loaded, a filter, an imported value set). ERR_NOT_FOUND when the value set is not loaded. */
int terminology_expand(Terminology *t, Arena *a, const char *url, TermCode **out, size_t *n,
                       bool *complete, Diag *d);

/** True when a value set of that url is loaded. */
bool terminology_has_valueset(Terminology *t, const char *url);

/* ---------------------------------------------------------------- display search */

typedef enum TermMatch {
    TERM_MATCH_PREFIX,   /* the display or a designation starts with the query */
    TERM_MATCH_CONTAINS, /* ... contains it */
} TermMatch;

/** Concepts whose display or designation matches `text` after folding (accents, case, œ/æ,
 *  white space: text_fold) on both sides; `system` NULL searches every code system. Prefix
 *  matches come before other matches; at most `max` are written to out (copied into a).
 *  Returns the number written. */
size_t terminology_search(Terminology *t, Arena *a, const char *system, const char *text,
                          TermMatch mode, TermCode *out, size_t max);

/* ---------------------------------------------------------------- communes */

typedef struct TermCommune {
    const char *code; /* INSEE code */
    const char *name;
    const char *departement; /* NULL when absent */
    const char *region;
    const char **postal_codes;
    size_t npostal;
    double lat, lon; /* valid when has_position */
    bool has_position;
    int64_t population; /* -1 when unknown */
    bool active;        /* false for a merged (retired) commune */
} TermCommune;

/** The commune of INSEE code `insee`. ERR_NOT_FOUND (communes not loaded or unknown code). */
int terminology_commune(Terminology *t, Arena *a, const char *insee, TermCommune *out);
/** Communes served by postal code `postal` (exact), active first then by population. */
size_t terminology_communes_by_postal(Terminology *t, Arena *a, const char *postal,
                                      TermCommune *out, size_t max);
/** Completion: communes whose folded name (hyphens and apostrophes as spaces) starts with the
 *  folded query, or one of whose words does, or — for a query starting with a digit — whose
 *  postal code or INSEE code starts with it. Order: active first, whole-name matches before
 *  word matches, then population (largest first). Returns the number written (<= max). */
size_t terminology_communes_complete(Terminology *t, Arena *a, const char *q, TermCommune *out,
                                     size_t max);

/* ---------------------------------------------------------------- write checks */

/**
 * Check the coded elements of `res` (a resource of `type` about to be written) against the
 * bindings table: for each `required` binding whose value set is loaded (or, when the table
 * names one, whose fallback code system is), every Coding of the element whose system is one
 * of the value set's systems must carry a code of the expansion. Codings of other systems are
 * not judged (a slice of another binding, or a code system the guide does not constrain).
 * ERR_BUSINESS with a French message naming the code and d->expr the element's path.
 */
int terminology_check_resource(Terminology *t, const char *type, json_t *res, Diag *d);

/** Number of bindings read from the bindings file. */
size_t terminology_binding_count(const Terminology *t);

#endif
