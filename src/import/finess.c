#include "import/import.h"
int import_parse_finess(ImportSink *k, const char *path, Diag *d){(void)k;(void)path;return diag_set(d, ERR_UNSUPPORTED, "x");}
