#include "import/import.h"
int import_parse_communes(ImportSink *k, const char *const *p, size_t n, Diag *d){(void)k;(void)p;(void)n;return diag_set(d, ERR_UNSUPPORTED, "x");}
