/*
 * fhir — the resource model of the ROR FHIR R4 interface.
 *
 *  - Resource types the server knows and the interactions each supports.
 *  - The SearchParameter registry: SearchParameter resources (FHIR core + the ROR guide) are
 *    DATA loaded at start, with a documented correction table for the guide's defects; each
 *    expression is compiled once (fhirpath module).
 *  - Index extraction: the rows a resource contributes to the search indexes, computed by
 *    evaluating every SearchParameter of its type.
 *  - Search-query parsing into a SearchPlan (typed values, modifiers, prefixes, chains,
 *    reverse chains, _include/_revinclude, _sort, _count, _total, _summary, page cursor).
 *  - Validation of a resource against the server's structural rules and the ROR profiles'
 *    cardinalities (data/profiles/rules.json).
 *  - OperationOutcome and Bundle text building (stored bodies are concatenated, never
 *    re-serialised).
 *
 * Threading: a loaded FhirRegistry is immutable and shared by all threads. Plans, index rows
 * and builders belong to one thread.
 */
#ifndef ROR_FHIR_H
#define ROR_FHIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "fhirpath/fhirpath.h"

/* ---------------------------------------------------------------- resource types */

enum {
    FHIR_READ = 1 << 0,
    FHIR_VREAD = 1 << 1,
    FHIR_SEARCH = 1 << 2,
    FHIR_CREATE = 1 << 3,
    FHIR_UPDATE = 1 << 4,
    FHIR_PATCH = 1 << 5,
    FHIR_DELETE = 1 << 6,
    FHIR_HISTORY = 1 << 7,
};

typedef struct FhirType {
    const char *name;      /* "Location" */
    const char *profile;   /* canonical of the ROR profile, or NULL */
    unsigned interactions; /* FHIR_* bits */
} FhirType;

/** The type named `name` (exact, case-sensitive), or NULL when the server does not serve it. */
const FhirType *fhir_type_find(const char *name, size_t len);
/** All served types, NULL-terminated by a zero entry. */
const FhirType *fhir_types(void);

/* ---------------------------------------------------------------- search parameters */

typedef enum SpType {
    SP_NUMBER,
    SP_DATE,
    SP_STRING,
    SP_TOKEN,
    SP_REFERENCE,
    SP_COMPOSITE,
    SP_QUANTITY,
    SP_URI,
    SP_SPECIAL,
} SpType;

typedef struct SearchParam {
    char *code; /* "capacity-status" */
    char *url;  /* canonical */
    char *base; /* the one resource type this entry applies to */
    SpType type;
    char *expression; /* after corrections */
    FhirPath *path;   /* compiled expression; NULL for special parameters we do not index */
    char **targets;   /* reference targets */
    size_t ntargets;
    bool corrected; /* expression replaced by the correction table */
    /* Correlation group (0 = none). Parameters of one group are evaluated per instance of the
     * group's element (e.g. each ror-location-supported-capacity extension): their index rows
     * carry the instance number, and criteria of one group must hold on the same instance. */
    int group;
    FhirPath *group_path; /* the group's element, from the resource */
    FhirPath *rel_path;   /* this parameter's value, from one group element */
} SearchParam;

typedef struct FhirRegistry FhirRegistry;

FhirRegistry *fhir_registry_new(void);
void fhir_registry_free(FhirRegistry *r);
/** Load a SearchParameter resource or a Bundle of them from a JSON file. Parameters whose base
 *  is not a served type are skipped. A later definition of the same (base, code) replaces an
 *  earlier one. ERR_INVALID/ERR_IO with the file and reason in d. */
int fhir_registry_load_file(FhirRegistry *r, const char *path, Diag *d);
/** Load every *.json file of a directory (sorted by name). */
int fhir_registry_load_dir(FhirRegistry *r, const char *dir, Diag *d);
/** Apply a correction table ({"corrections":[{url,expression,reason,type?}],
 *  "disabled":[{url}], "aliases":[{url,code}], "groups":[{name,base,path,params:[code]}]})
 *  and compile every expression. Must be called once after loading. */
int fhir_registry_finish(FhirRegistry *r, const char *corrections_path, Diag *d);
/** The parameter `code` of type `type`, or NULL. */
const SearchParam *fhir_registry_param(const FhirRegistry *r, const char *type, const char *code);
/** The parameters of `type`, in load order; *n receives the count. */
const SearchParam *const *fhir_registry_params(const FhirRegistry *r, const char *type, size_t *n);
const char *sp_type_name(SpType t);
/** True for a position parameter (special type with an expression, such as Location `near`):
 *  indexed as a point, searched by great-circle radius. */
bool sp_is_geo(const SearchParam *sp);

/* ---------------------------------------------------------------- index extraction */

/** One search-index row. Strings live in the IndexRows arena. */
typedef struct IndexRow {
    const char *param; /* index key: the parameter code, or "code:identifier"/"code:of-type" */
    SpType kind;       /* which index table */
    const char *s1;    /* token: system | string: folded | reference: target type | uri */
    const char *s2; /* token: code   | string: raw    | reference: target id | quantity: system */
    const char *s3; /* token: folded display/text | reference: raw reference | quantity: code */
    double num;     /* number, quantity value; position (special `near`): latitude */
    double num2;    /* position: longitude */
    int64_t lo, hi; /* date range, epoch ms inclusive */
    int grp;        /* correlation-group instance (1-based), 0 outside any group */
} IndexRow;

typedef struct IndexRows {
    IndexRow *rows;
    size_t n, cap;
    Arena arena;
} IndexRows;

void index_rows_init(IndexRows *r);
void index_rows_cleanup(IndexRows *r);
/** Empty, keeping the memory (for reuse). */
void index_rows_reset(IndexRows *r);
/** Compute the index rows of `res` (of type `type`) from every SearchParameter of that type. */
int fhir_index_extract(const FhirRegistry *reg, const char *type, json_t *res, IndexRows *out,
                       Diag *d);
/** The same, for the parameters whose type bit (1u << SpType) is in `types` only. */
int fhir_index_extract_types(const FhirRegistry *reg, const char *type, json_t *res,
                             unsigned types, IndexRows *out, Diag *d);

/* ---------------------------------------------------------------- search plans */

typedef struct QueryParam {
    const char *name;
    const char *value;
} QueryParam;

typedef enum Prefix {
    PFX_EQ,
    PFX_NE,
    PFX_GT,
    PFX_LT,
    PFX_GE,
    PFX_LE,
    PFX_SA,
    PFX_EB,
    PFX_AP
} Prefix;

typedef enum Modifier {
    MOD_NONE,
    MOD_EXACT,
    MOD_CONTAINS,
    MOD_NOT,
    MOD_MISSING,
    MOD_TEXT,
    MOD_TYPE,       /* reference :Type */
    MOD_IDENTIFIER, /* reference :identifier */
    MOD_OF_TYPE,    /* identifier :of-type */
    MOD_ABOVE,
    MOD_BELOW,
} Modifier;

typedef struct SearchValue {
    Prefix prefix;
    const char *system;         /* token/quantity system; NULL = any; "" = no system */
    const char *code;           /* token code / quantity unit code; NULL = any */
    const char *str;            /* string (folded, or raw for :exact), uri, reference target id */
    const char *ref_type;       /* reference target type, NULL = any of the targets */
    double num, num_lo, num_hi; /* number/quantity: value and implicit-precision range */
    int64_t lo, hi;             /* date range */
    double lat, lon, radius_m;  /* near: WGS84 point and great-circle radius */
    bool missing;               /* :missing=true */
} SearchValue;

typedef struct SearchClause {
    const SearchParam *sp; /* the parameter (the reference parameter when chained) */
    const char *param;     /* index key for sp (may carry a ":identifier"/":of-type" suffix) */
    Modifier mod;
    const char *mod_type; /* :Type of a reference */
    SearchValue *values;  /* OR-ed */
    size_t nvalues;
    /* Chains. Forward (`location.commune-cog=...`): sp is the reference, the `nchain` clauses
     * of `chain` apply (AND-ed) to one `chain_type` target: criteria chained through the same
     * reference are merged, so they hold on the same target. Reverse
     * (`_has:PractitionerRole:service:identifier=...`): `reverse` is set, sp is the reference
     * parameter of `chain_type` pointing at us. */
    struct SearchClause *chain;
    size_t nchain;
    const char *chain_type;
    bool reverse;
} SearchClause;

typedef struct SearchInclude {
    const char *src_type;
    const SearchParam *sp;   /* reference parameter of src_type */
    const char *target_type; /* NULL = any */
    bool iterate;
    bool rev;
} SearchInclude;

typedef struct SearchSort {
    const SearchParam *sp; /* NULL for `_sort=near`: by distance to the plan's near point */
    bool desc;
} SearchSort;

typedef enum { TOTAL_ACCURATE, TOTAL_NONE } TotalMode;

#define SEARCH_COUNT_DEFAULT 200
#define SEARCH_COUNT_MAX 200

typedef struct SearchPlan {
    Arena arena;
    const char *type;
    SearchClause *clauses; /* AND-ed */
    size_t nclauses;
    SearchInclude *includes;
    size_t nincludes;
    SearchSort *sorts;
    size_t nsorts;
    int count;
    bool summary_count;
    TotalMode total;
    const char *cursor;   /* opaque page cursor from a `next` link, NULL on page 1 */
    const char **ignored; /* parameters ignored under lenient handling, with a French reason */
    size_t nignored;
    const char *self_query; /* canonical query string of the search (without the cursor) */
    /* The proximity criterion (`near`, or `location.near` chained through one reference), NULL
     * when the search has none. Its distance is returned with each match and `_sort=near`
     * orders by it (for a chain: the nearest of the referenced resources). */
    const SearchClause *near;
    const SearchClause *near_via; /* the chaining clause (its sp is the reference), or NULL */
} SearchPlan;

/**
 * Parse the parameters of a search on `type`. Under strict handling an unknown or unsupported
 * parameter is ERR_INVALID; under lenient handling it is recorded in plan->ignored. Bad values
 * (unknown prefix, malformed date/number/token, too many values) are always ERR_INVALID.
 * On success *out is a new plan (free with search_plan_free).
 */
int fhir_search_parse(const FhirRegistry *reg, const char *type, const QueryParam *params,
                      size_t nparams, bool strict, SearchPlan **out, Diag *d);
void search_plan_free(SearchPlan *p);

/* ---------------------------------------------------------------- validation */

/**
 * Check a resource sent by a client for `type`: JSON object, resourceType equals `type`, id
 * (when present) valid, meta well-formed, and the ROR profile's required elements present.
 * ERR_INVALID for structural errors, ERR_PROFILE for profile violations; d->expr points to the
 * element.
 */
int fhir_resource_check(const char *type, json_t *res, Diag *d);

/* ---------------------------------------------------------------- outcomes and bundles */

/** A complete OperationOutcome JSON text with one issue. Caller frees. */
char *fhir_outcome_text(const char *severity, const char *code, const char *diagnostics,
                        const char *expression);
/** The FHIR issue-type code for an ERR_* ("invalid", "not-found", "conflict"...). */
const char *fhir_issue_code(int err);

#endif
