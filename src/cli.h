/* cli — what the subcommands of `ror` share (main.c, cmd_import.c). */
#ifndef ROR_CLI_H
#define ROR_CLI_H

#include "core/core.h"
#include "fhir/fhir.h"
#include "store/store.h"

#ifndef ROR_DATA_DIR
#define ROR_DATA_DIR "data"
#endif

/** Load the search parameters from the spec data directory (searchparams/). */
int cli_registry_load(const char *dir, FhirRegistry **out, Diag *d);
/** Create the data directory if needed and take its exclusive lock (ror.lock): one process at
 *  a time works on a store. ERR_CONFLICT when another holds it. The lock lives until exit. */
int cli_data_dir_lock(const char *dir, Diag *d);
/** Lock the data directory, load the search parameters, open (and migrate) its store: what a
 *  command working on a store without a server needs. The caller frees *reg and closes *store
 *  (both may be set when a later step failed). */
int cli_store_open(const char *data, const char *spec, FhirRegistry **reg, Store **store, Diag *d);
/** `ror import ...` */
int cli_import(int argc, char **argv);
/** `ror user ...` (accounts) */
int cli_user(int argc, char **argv);

#endif
