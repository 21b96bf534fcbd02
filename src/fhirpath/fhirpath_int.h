/*
 * fhirpath_int.h — what fhirpath.c shares with patch.c; not for other modules.
 *
 * FHIR type names are static strings from one table: primitives start lower-case ("code",
 * "dateTime"), complex types upper-case ("CodeableConcept"). A choice member "valueXxx" is a
 * known type only when Xxx (first letter upper-cased for primitives) is in that table.
 */
#ifndef ROR_FHIRPATH_INT_H
#define ROR_FHIRPATH_INT_H

#include <stdbool.h>

#include "fhirpath/fhirpath.h"

/* Outside input (patch paths come from clients) is bounded before any work. */
#define FP_MAX_EXPR 8192 /* bytes of FHIRPath source */
#define FP_MAX_NEST 64   /* nested parentheses, function arguments, unary operators */
#define FP_MAX_DEPTH 128 /* syntax-tree depth, which bounds evaluation recursion */

/** The FHIR type named by a choice suffix ("CodeableConcept", "Integer" -> "integer"),
 *  or NULL when it names no FHIR data type. `len` bytes of `suffix` are read. */
const char *fp_type_from_suffix(const char *suffix, size_t len);

/** The FHIR type a JSON value's shape suggests (integer, boolean, CodeableConcept, Coding,
 *  Quantity...), or NULL when the shape says nothing. Static string. */
const char *fp_type_infer(const json_t *v);

/** True when `name` is the prefix of a choice element the module knows ("value", "effective"...).
 */
bool fp_is_choice_prefix(const char *name, size_t len);

#endif
