/*
 * terminology internals: the parsed forms of CodeSystem and ValueSet resources, the snapshot
 * readers share, and a small string-keyed hash map.
 *
 * A TCodeSys / TValueSet is immutable once parsed and refcounted: successive snapshots share
 * the ones that did not change. A snapshot owns its maps and its expansions.
 */
#ifndef ROR_TERM_INT_H
#define ROR_TERM_INT_H

#include <stdatomic.h>

#include "terminology/terminology.h"

/* ---------------------------------------------------------------- string map */

/** Open addressing, string keys (borrowed: they must outlive the map), void * values. */
typedef struct TermMap {
    const char **keys;
    void **vals;
    size_t cap, n;
} TermMap;

void term_map_init(TermMap *m, size_t expected);
void term_map_cleanup(TermMap *m);
/** Insert or replace. */
void term_map_put(TermMap *m, const char *key, void *val);
void *term_map_get(const TermMap *m, const char *key);

/* ---------------------------------------------------------------- code systems */

typedef struct TConcept {
    const char *code;
    const char *display; /* never NULL ("" when absent) */
    const char *folded;  /* folded display */
    TermDesignation *desig;
    const char **desig_folded; /* parallel to desig */
    uint32_t ndesig;
    TermProperty *props;
    uint32_t nprops;
} TConcept;

typedef struct TCommune {
    const TConcept *concept;
    const char *folded; /* folded name, hyphens and apostrophes as spaces */
    const char *departement, *region;
    const char **postal;
    uint32_t npostal;
    double lat, lon;
    bool has_position, active;
    int64_t population;
} TCommune;

typedef struct TCodeSys {
    atomic_int refs;
    Arena arena; /* every string below */
    const char *res_id;
    const char *url, *version, *name;
    const char *alias; /* url without ".tabs", or NULL */
    TConcept *concepts;
    size_t n;
    TermMap by_code;    /* code -> TConcept * */
    TCommune *communes; /* only for TERM_COMMUNES_URL, parallel to concepts */
    size_t ncommunes;
} TCodeSys;

/** Parse a CodeSystem resource (nested concepts are flattened). ERR_INVALID when it has no
 *  url. *out has one reference. */
int term_codesys_parse(const char *res_id, json_t *res, TCodeSys **out, Diag *d);
void term_codesys_unref(TCodeSys *cs);
const TConcept *term_codesys_find(const TCodeSys *cs, const char *code);

/* ---------------------------------------------------------------- value sets */

typedef struct TInclude {
    const char *system;  /* NULL when the include has none (valueSet-only) */
    const char *version; /* NULL: any */
    const char **codes;  /* concept list; NULL/0 with whole = true for a whole system */
    const char **displays;
    size_t ncodes;
    bool whole;
    bool unsupported; /* filter or valueSet import: not expanded */
} TInclude;

typedef struct TValueSet {
    atomic_int refs;
    Arena arena;
    const char *res_id;
    const char *url, *alias, *version, *name; /* alias: url without ".tabs", or NULL */
    TInclude *inc, *exc;
    size_t ninc, nexc;
} TValueSet;

int term_valueset_parse(const char *res_id, json_t *res, TValueSet **out, Diag *d);
void term_valueset_unref(TValueSet *vs);

/* ---------------------------------------------------------------- snapshots */

typedef struct TExpCode {
    const char *system;
    const char *code;
    const char *display;
    const TConcept *concept; /* in the loaded code system, NULL when not loaded */
} TExpCode;

/** A value set expanded against the code systems of one snapshot. */
typedef struct TExpansion {
    const TValueSet *vs;
    TExpCode *codes;
    size_t n;
    TermMap index;        /* "system|code" -> TExpCode * */
    const char **systems; /* every system the value set draws codes from */
    bool *undecided;      /* parallel: included whole but not loaded (codes unknown) */
    size_t nsystems;
    bool complete;
    Arena arena;
} TExpansion;

typedef struct Snapshot {
    atomic_int refs;
    TermMap cs_by_id;  /* resource id -> TCodeSys * (one reference each) */
    TermMap vs_by_id;  /* resource id -> TValueSet * (one reference each) */
    TermMap cs_by_url; /* url and url|version -> TCodeSys * (url: highest version) */
    TermMap vs_by_url; /* url, alias, url|version -> TExpansion * */
    TExpansion **exps;
    size_t nexps;
    size_t nconcepts;
    const TCodeSys *communes;
    const TCodeSys **cs_list; /* the default version of each code system, sorted by url */
    size_t ncs_list;
    Arena arena; /* map keys built here */
} Snapshot;

/** The current snapshot, with a reference (changes noted before are applied first). */
const Snapshot *term_acquire(Terminology *t);
void term_release(const Snapshot *s);
/** Build the url maps and expansions of a snapshot whose *_by_id maps are filled. */
void term_snapshot_index(Snapshot *s);
void term_snapshot_free(Snapshot *s);
const TCodeSys *term_snapshot_cs(const Snapshot *s, const char *url, const char *version);
const TExpansion *term_snapshot_vs(const Snapshot *s, const char *url, const char *version);
const TExpCode *term_expansion_find(const TExpansion *e, const char *system, const char *code);
/** Index of `system` in e->systems, or -1. */
int term_expansion_system(const TExpansion *e, const char *system);

/* ---------------------------------------------------------------- bindings */

typedef struct TBinding TBinding;
typedef struct TBindings TBindings;

int term_bindings_load(const char *path, TBindings **out, Diag *d);
void term_bindings_free(TBindings *b);
size_t term_bindings_count(const TBindings *b);
int term_bindings_check(const TBindings *b, const Snapshot *s, const char *type, json_t *res,
                        Diag *d);

/** The url without the stray ".tabs" segment of some 2023 NOS files (TRE_R340, JDV_J237):
 *  ".../TRE_R340-TypeCaracteristiqueEquipement.tabs/FHIR/..." -> the canonical the guide uses.
 *  NULL when there is none. */
const char *term_url_alias(Arena *a, const char *url);

/** text_fold with hyphens, apostrophes and other punctuation turned into single spaces, into
 *  a (or malloc'd when a is NULL). NULL on invalid UTF-8. */
char *term_fold_words(Arena *a, const char *s);

#endif
