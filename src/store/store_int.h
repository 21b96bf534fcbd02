/* store private interface shared by the SQLite backend's files. */
#ifndef ROR_STORE_INT_H
#define ROR_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

typedef struct Conn Conn;

/* Search-index keys ("Location.capacity-status", "HealthcareService.organization:identifier")
 * interned as small integers (table sp_param), so index entries carry 1-2 bytes instead of the
 * key text. Built once at open from the registry, immutable afterwards: shared without locks. */
typedef struct ParamMap {
    char **keys; /* sorted */
    int64_t *ids;
    size_t n;
} ParamMap;

/** The id of "type.code", or -1 when the key is unknown (it then matches nothing). */
int64_t param_id(const ParamMap *m, const char *type, const char *code);
/** The param map shared by the connection's store. */
const ParamMap *conn_params(Conn *c);

/** A prepared statement from the connection's cache, reset and unbound. NULL on error. */
sqlite3_stmt *conn_stmt(Conn *c, const char *sql, Diag *d);
/** Current version of type/id on this connection (see store_read). */
int conn_read(Conn *c, Arena *a, const char *type, const char *id, StoredResource *out, Diag *d);
/** Interrupt this connection's statements `ms` from now (0: no limit). */
void conn_deadline(Conn *c, int64_t ms);
/** The error of the last failed step: ERR_TOO_LARGE when interrupted, else ERR_IO. */
int conn_error(Conn *c, Diag *d);
/** Execute a search plan on this connection (store_search.c). */
int search_run(Conn *c, Arena *a, const SearchPlan *plan, StorePage *out, Diag *d);

#endif
