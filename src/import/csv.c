#include "import/import_int.h"
