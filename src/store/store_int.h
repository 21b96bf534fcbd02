/* store private interface shared by the SQLite backend's files. */
#ifndef ROR_STORE_INT_H
#define ROR_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

typedef struct Conn Conn;

/** A prepared statement from the connection's cache, reset and unbound. NULL on error. */
sqlite3_stmt *conn_stmt(Conn *c, const char *sql, Diag *d);
/** Current version of type/id on this connection (see store_read). */
int conn_read(Conn *c, Arena *a, const char *type, const char *id, StoredResource *out, Diag *d);
/** Execute a search plan on this connection (store_search_sql.c). */
int search_run(Conn *c, Arena *a, const SearchPlan *plan, StorePage *out, Diag *d);

#endif
