/*
 * fhirpath — the FHIRPath subset the ROR needs, evaluated over jansson trees, and FHIRPath
 * Patch (FHIR R4 "fhirpatch") applied with it.
 *
 * The subset covers every expression of the ROR guide's SearchParameters, the FHIR core
 * SearchParameters the ror-serveur CapabilityStatement lists, and the paths bed-management
 * clients send in FHIRPath Patch (see README of the project, section "FHIRPath subset").
 *
 * Evaluation never copies the resource: each result item points into the tree and remembers
 * where it hangs (owner object, member name, array index), so a patch can replace or delete it.
 * Literals and computed values live in the FpResult and die with fp_result_cleanup.
 *
 * Threading: a compiled FhirPath is immutable and may be shared by threads; an FpResult
 * belongs to one thread.
 */
#ifndef ROR_FHIRPATH_H
#define ROR_FHIRPATH_H

#include <jansson.h>
#include <stddef.h>

#include "core/core.h"

typedef struct FhirPath FhirPath;

#define FP_NO_INDEX ((size_t)-1)

/** One item of a FHIRPath collection. */
typedef struct FpItem {
    json_t *node;     /* the value; borrowed from the tree (or owned by the FpResult) */
    json_t *owner;    /* JSON object holding the member, NULL for the root or a computed value */
    const char *key;  /* member name in owner ("valueCodeableConcept", "extension"...) */
    size_t index;     /* index in the array owner[key], or FP_NO_INDEX when owner[key] == node */
    const char *type; /* FHIR type when known ("CodeableConcept" from valueCodeableConcept,
                         "boolean" from a literal...), else NULL. Static or result-owned. */
} FpItem;

/** A collection, as FHIRPath defines it (ordered, may repeat). */
typedef struct FpResult {
    FpItem *items;
    size_t n;
    size_t cap;
    /* private */
    json_t **owned;
    size_t nowned, capowned;
} FpResult;

/** Compile `expr`. ERR_INVALID with a French message in d on a syntax error or an unsupported
 *  function. The caller frees *out with fhirpath_free. */
int fhirpath_compile(const char *expr, FhirPath **out, Diag *d);
void fhirpath_free(FhirPath *fp);
/** The source text the expression was compiled from. */
const char *fhirpath_source(const FhirPath *fp);

/** Evaluate `fp` with `root` as both %resource and the initial focus. The leading type name
 *  of an expression ("Location.identifier") selects the root only when root.resourceType
 *  equals it (or it is Resource/DomainResource); otherwise the result is empty.
 *  `out` must be zero-initialised (or cleaned up) by the caller; cleanup with fp_result_cleanup.
 *  ERR_INVALID on an evaluation error (e.g. a singleton was required). */
int fhirpath_eval(const FhirPath *fp, json_t *root, FpResult *out, Diag *d);
void fp_result_cleanup(FpResult *r);

/** Evaluate in one call (compile + eval + free). Convenience for tests and one-off paths. */
int fhirpath_eval_str(const char *expr, json_t *root, FpResult *out, Diag *d);

/**
 * Apply a FHIRPath Patch (a FHIR Parameters resource, R4 fhirpatch.html) to `resource` in place.
 * All operations are applied in order; on any failure the resource may be partly modified, so
 * callers patch a copy. Errors:
 *  - ERR_INVALID: the Parameters is malformed (unknown type, missing path/name/value...).
 *  - ERR_NOT_FOUND: `replace`, `add`, `insert` or `move` whose path selects nothing
 *    (d->expr = the path), as the ROR guide's bed-update protocol expects a 404 not-found then.
 *    A `delete` whose path selects nothing is a no-op, as the FHIR specification says.
 *  - ERR_MULTIPLE: a path that must select one element selects several.
 */
int fhirpath_patch_apply(json_t *resource, json_t *parameters, Diag *d);

#endif
