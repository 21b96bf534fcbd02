/*
 * orient — the orientation engine: "where can this patient go, now, near here?".
 *
 * An in-memory index of the health offer, built from the store at open and kept current from
 * committed changes (no polling):
 *  - establishments (Organization), with their codes (category, type...) and names;
 *  - sites (Location): position, commune, codes (equipment, type...), current capacity
 *    indicators (the capacity module's reading of ror-location-supported-capacity);
 *  - offers (HealthcareService): codes (activité opérationnelle, champ d'activité, mode de prise
 *    en charge, actes...), sites, provider, age range, sensitive flag, opening hours.
 * Codes are every token of the resource's search-index rows (the guide's SearchParameters), so
 * a code the guide can search is a code the engine can match: no per-field code list here.
 *
 * Results are "units": an offer (HealthcareService), or an establishment (Organization) with a
 * positioned site. A unit's distance is that of its nearest positioned site (an offer without
 * site of its own is placed at its provider's sites).
 *
 * Invariants:
 *  - A change noted by orient_note_change (called by the events subscriber on the store's writer
 *    thread, before the writer releases the client) is visible to every orient_search that starts
 *    after orient_note_change returned: searches wait for the updater thread to apply what was
 *    noted before them (read-your-writes, usually no wait at all).
 *  - Entities are never freed while the index lives: a deleted resource keeps its slot, marked
 *    absent, with no codes, words or position (references to it from other resources resolve to
 *    the slot and find nothing).
 *
 * Threading: every function is thread-safe. Searches share a read lock; the updater thread takes
 * the write lock per batch of changes.
 */
#ifndef ROR_ORIENT_H
#define ROR_ORIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capacity/capacity.h"
#include "core/core.h"
#include "fhir/fhir.h"
#include "store/store.h"

typedef struct Orient Orient;

typedef struct OrientOptions {
    Store *store;
    const FhirRegistry *reg;
    const CapacityExpiry *expiry; /* staleness of capacity figures; NULL: 24 h */
} OrientOptions;

/** Start the updater thread, which first builds the index from every current Organization,
 *  Location and HealthcareService of the store (searches wait until it is built; the rest of
 *  the server does not). ERR_IO with detail in d. */
int orient_open(const OrientOptions *o, Orient **out, Diag *d);
/** Stop the updater and free everything. NULL is a no-op. */
void orient_free(Orient *o);

/** A committed change of type/id (other types are ignored). Queued for the updater; cheap and
 *  safe on the store's writer thread. */
void orient_note_change(Orient *o, const char *type, const char *id);
/** Wait until every change noted before this call has been applied. */
void orient_sync(Orient *o);

/** One need: a unit matches when it carries one of the codes (its own, its sites' or, for an
 *  establishment, its organisation's), or when every word of `text` prefixes a word of its name
 *  (or its establishment's name). Needs are AND-ed. */
typedef struct OrientNeed {
    const char *const *codes; /* "system|code", or a bare "code" of any system */
    size_t ncodes;
    const char *text; /* NULL: codes only */
} OrientNeed;

typedef struct OrientQuery {
    const OrientNeed *needs;
    size_t nneeds;
    double lat, lon;      /* the place (WGS84) */
    double radius_km;     /* > 0 */
    double max_radius_km; /* widen up to this radius (doubling) while fewer than min_results */
    size_t min_results;   /* 0: never widen */
    int age;              /* patient age in years; < 0: any */
    bool open_now;        /* only offers open at now_ms (opening hours in local time) */
    bool beds_now;        /* only units with fresh available beds (status 02, now) > 0 */
    bool with_sensitive;  /* include sensitive units (unité sensible) */
    int64_t now_ms;
    size_t limit; /* results returned (the total is counted beyond it) */
} OrientQuery;

/** Why a unit matched one need. */
typedef struct OrientWhy {
    const char *source; /* "offre", "lieu", "établissement" */
    const char *param;  /* the search parameter that carries the code ("specialty"), or "nom" */
    const char *system; /* the code's system (NULL for a name match) */
    const char *code;   /* the code, or the matched name */
} OrientWhy;

typedef struct OrientHit {
    const char *type; /* "HealthcareService" or "Organization" */
    const char *id;
    const char *name;
    const char *org_id; /* provider / the establishment itself; NULL when unknown */
    const char *org_name;
    const char *location_id; /* the nearest positioned site */
    double lat, lon, distance_km;
    int64_t beds;    /* fresh available beds now on its sites (sum); -1 when unknown */
    int64_t beds_at; /* the oldest declaration time among those figures (epoch ms), 0 if none */
    bool sensitive;
    int open; /* 1 open now, 0 closed now, -1 no opening hours known */
    OrientWhy *why;
    size_t nwhy;
} OrientHit;

typedef struct OrientResult {
    OrientHit *hits; /* nearest first (ties: more available beds, then name) */
    size_t nhits;
    size_t total;         /* units matching within radius_km */
    double radius_km;     /* the radius finally used */
    int widened;          /* how many times the radius was doubled */
    size_t scanned_units; /* candidates examined (for the statistics of a query) */
} OrientResult;

/** Run a query. Everything in *out is copied into a. ERR_INVALID for a bad query (reason in d). */
int orient_search(Orient *o, Arena *a, const OrientQuery *q, OrientResult *out, Diag *d);

typedef struct OrientName {
    const char *type, *id, *name;
} OrientName;

/** Type-ahead over names: units (present, not sensitive) whose words the words of `text`
 *  prefix, exact word matches first; at most max written to out (strings in a). */
size_t orient_names(Orient *o, Arena *a, const char *text, size_t max, OrientName *out);

/** The codes ("system|code") that the offers delivered at Location `location_id` carry under
 *  search parameter `param` (e.g. "specialty": their activités opérationnelles), at most max,
 *  copied into a. 0 when the site is unknown or has no offer. */
size_t orient_site_offer_codes(Orient *o, Arena *a, const char *location_id, const char *param,
                               const char **out, size_t max);

typedef struct OrientStats {
    size_t organizations, locations, services; /* present */
    size_t positioned;                         /* locations with a position */
    size_t codes;                              /* distinct codes */
    size_t words;                              /* distinct name words */
    uint64_t applied;                          /* changes applied since open */
    double build_ms;                           /* time of the initial build */
} OrientStats;

void orient_stats(Orient *o, OrientStats *s);

#endif
