/*
 * capacity — bed and place availability: the guide's `ror-location-supported-capacity`
 * indicators of RORLocation, and the immutable history of their changes.
 *
 * An indicator is one extension instance; its identity is the tuple of its dimension codes
 * (capacityType, capacityStatus, temporalityCapacity, genderCapacityAvailable,
 * capacityClosingType, additionalBedType, crisisType, temporaryAssignement — "-" for an absent
 * dimension), written "01|02|01|03|-|-|-|01" (the key). A Location may not carry two
 * indicators with the same key.
 *
 * Every new version of a Location — API create/update/patch/delete, import, seed — goes
 * through capacity_version_hook inside the store transaction that writes it: each indicator
 * added, removed, or whose count, source or declared update date changed becomes one
 * CapacityEvent (who, when, source, before -> after), committed atomically with the version.
 * Past states are folded from those events; they are never rewritten.
 *
 * Threading: the hook runs on the store's writer thread; queries are thread-safe.
 */
#ifndef ROR_CAPACITY_H
#define ROR_CAPACITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

#define CAPACITY_EXT_URL                                                                           \
    "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"                              \
    "ror-location-supported-capacity"
#define CAPACITY_DIMENSIONS 8
#define CAPACITY_KEY_MAX 96

/** The dimension sub-extensions, in key order. */
extern const char *const capacity_dimensions[CAPACITY_DIMENSIONS];

/** One indicator of a Location. Strings point into the Location's JSON. */
typedef struct CapacityIndicator {
    char key[CAPACITY_KEY_MAX];
    bool has_count;
    int64_t count;           /* nbCapacity */
    const char *source;      /* capacitySourceType code, or NULL */
    const char *update_date; /* capacityUpdateDate, or NULL */
    const char *comment;     /* or NULL */
} CapacityIndicator;

/** The indicators of a Location (malloc'd array in *out, free it). ERR_BUSINESS when two
 *  carry the same key or one lacks nbCapacity / a dimension is not a code (reason in d). */
int capacity_indicators(json_t *location, CapacityIndicator **out, size_t *n, Diag *d);

/** The store version hook for Location (see store_set_version_hook): records the events. */
int capacity_version_hook(void *ctx, StoreTxn *t, const StoredResource *old,
                          const StoredResource *cur, Diag *d);
/** Register capacity_version_hook on the store (before serving or importing). */
void capacity_attach(Store *s);

/** The indicators of Location `id` as they were at `at` (epoch ms), folded from its events:
 *  a JSON array of {indicator, nbCapacity, source, updateDate, comment, author, changedAt,
 *  version}. ERR_NOT_FOUND when the Location never had an indicator. */
int capacity_state_at(Store *s, const char *id, int64_t at, json_t **out, Diag *d);
/** JSON object of an event ({id, location, indicator, dimensions{...}, before, after, ...}). */
json_t *capacity_event_json(const CapacityEvent *e);

/* ---------------------------------------------------------------- staleness */

/** How long an indicator stays fresh, by capacityStatus (data/capacity.json). */
typedef struct CapacityExpiry CapacityExpiry;

/** Load the expiry table. ERR_INVALID / ERR_IO with the reason in d. */
int capacity_expiry_load(const char *path, CapacityExpiry **out, Diag *d);
/** NULL is a no-op. */
void capacity_expiry_free(CapacityExpiry *e);
/** Expiry of an indicator (by the status in its key), in hours; 24 without a table. */
double capacity_expiry_hours(const CapacityExpiry *e, const char *indicator_key);
/** Where a Location is: its managing organisation's id (after "Organization/"; "" when none),
 *  its commune's INSEE code (ror-commune-cog; NULL when none) and its département (2
 *  characters, 3 overseas; "" when unknown). The strings point into loc. */
void capacity_location_place(json_t *loc, const char **org, const char **insee, char dep[4]);
/** The same, read from the current version of Location `id` (strings copied into a); "", NULL
 *  and "" when it cannot be read. */
void capacity_location_where(Store *s, Arena *a, const char *id, const char **org,
                             const char **insee, char dep[4]);
/** False for an extra-bed (status 06) or crisis indicator of a unit in département `dep` when
 *  no crisis among `open` (ended ones are skipped) covers it: once the ARS closed the crisis,
 *  such figures are history, not current capacity (they stay in the events). */
bool capacity_indicator_live(const char *key, const char *dep, const Crisis *open, size_t n);
/** The unit type (data/capacity.json `unitTypes`: "reanimation", "soins-intensifs", "usc"...)
 *  of an activité opérationnelle code (TRE_R211), and its French label; NULL when none. */
const char *capacity_unit_type(const CapacityExpiry *e, const char *activity, const char **label);
/** True when `type` is a key of `unitTypes`. */
bool capacity_unit_type_known(const CapacityExpiry *e, const char *type);
/** The French label of unit type `type` into *label; false when unknown. */
bool capacity_unit_type_label(const CapacityExpiry *e, const char *type, const char **label);
/** When the figure was last declared (epoch ms): its capacityUpdateDate when it parses, else
 *  `changed_at` (the time of the version that changed it). */
int64_t capacity_declared_at(const char *update_date, int64_t changed_at);

#endif
