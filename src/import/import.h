/*
 * import — reference data and FHIR files into the store, through the one write path.
 *
 * `ror import <kind> FILE...` reads every file with the kind's parser, which maps each record
 * to a FHIR resource and hands it to an ImportSink. The sink validates it, compares it with the
 * stored current version (by a content hash that ignores meta.versionId/lastUpdated) and writes
 * a new version only when it changed. Resources of the same feed that the files no longer hold
 * are closed (a new version marked inactive; history is never deleted). The whole import is ONE
 * store transaction: it commits entirely, or (bad row with --strict, error, interruption) leaves
 * the store as it was.
 *
 * Every resource written by an import carries the tag {system IMPORT_FEED_SYSTEM, code feed}
 * in meta.tag: that is how a later import of the same feed knows what it owns.
 *
 * Parsers (finess.c, rpps.c, communes.c, ndjson.c, ...) only read and map: they never touch
 * the store. Each one reports bad records with file:line and a reason and goes on, unless the
 * sink tells it to stop (strict mode, cancellation): every emit/reject returns non-zero then,
 * and the parser must return that value at once.
 *
 * Threading: a parser runs on one thread; the sink may process resources on others.
 */
#ifndef ROR_IMPORT_H
#define ROR_IMPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "fhir/fhir.h"
#include "store/store.h"
#include "terminology/terminology.h"

#define IMPORT_FEED_SYSTEM "urn:ror:import-feed"

typedef struct ImportSink ImportSink;

/** Hand one mapped resource (resourceType and id set) to the sink; `res` is taken over.
 *  `file`/`line` say where it came from (for messages). 0, or non-zero: stop and return it. */
int import_emit(ImportSink *k, json_t *res, const char *file, long line);
/** Same for a resource still in JSON text (an NDJSON line): parsed and checked by the sink. */
int import_emit_text(ImportSink *k, const char *text, size_t len, const char *file, long line);
/** Report a rejected record. 0, or non-zero when the import must stop (strict mode). */
int import_reject(ImportSink *k, const char *file, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Report a problem that does not reject the record (e.g. a position dropped because its
 *  projection is unknown): printed as `file:line: reason`, counted apart. Never stops. */
void import_warn(ImportSink *k, const char *file, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Report progress through the current file: `done` of `total` bytes (total 0: unknown). */
void import_progress(ImportSink *k, uint64_t done, uint64_t total);

/** A parser: read `path` and emit what it holds. 0, or ERR_* (unreadable file, or the
 *  non-zero value an emit/reject returned). A bad record is not an error: it is rejected. */
typedef int (*ImportParseFn)(ImportSink *k, const char *path, Diag *d);

/** A parser that needs every file of the import at once (one resource built from several
 *  sources, e.g. communes). Same contract as ImportParseFn. */
typedef int (*ImportParseSetFn)(ImportSink *k, const char *const *paths, size_t n, Diag *d);

/** One kind of import: `ror import <name>`. Exactly one of parse / parse_set is set. */
typedef struct ImportKind {
    const char *name; /* command-line name: finess, rpps, communes, nos, ndjson */
    const char *feed; /* default feed tag */
    const char *help; /* one line, French */
    ImportParseFn parse;
    ImportParseSetFn parse_set;
} ImportKind;

/** The kind named `name`, or NULL. */
const ImportKind *import_kind_find(const char *name);
/** All kinds, NULL-terminated (for usage messages). */
const ImportKind *const *import_kinds(void);

typedef struct ImportOptions {
    const char *feed;   /* NULL: the kind's default */
    const char *author; /* recorded with every version written */
    bool strict;        /* the first rejected record aborts the import (nothing is written) */
    bool no_close;      /* partial extract: do not close what the files do not hold */
    int max_close_pct;  /* a run that would close more than this share of its feed (and more
                           than 100 resources) fails instead: a truncated extract must not
                           close half a region. 0: 10 %; 100: no limit */
    bool dry_run;       /* do everything, then roll back */
    bool progress;      /* draw a progress bar on stderr (a terminal) */
    int threads;        /* workers that parse/validate/index (0: number of CPUs) */
    Terminology *term;  /* codes checked against the guide's bindings, as API writes are
                           (NULL: no check; a check needs the NOS imported) */
    /* Each rejected record (reject = true) or warning, as "file:line: reason". NULL: printed
     * on stderr (the first 10,000). Called from any of the import's threads, one at a time. */
    void (*on_problem)(void *ctx, bool reject, const char *msg);
    void *problem_ctx;
} ImportOptions;

typedef struct ImportSummary {
    int64_t read, created, updated, unchanged, closed, rejected, warnings;
    double seconds;
} ImportSummary;

/** Run an import of `files` into the store. Rejected records are reported on stderr as
 *  `file:line: reason`. 0 when committed (or rolled back by dry_run); ERR_INVALID when strict
 *  and a record was rejected; ERR_IO etc. otherwise — in every failure the store is unchanged. */
int import_run(Store *s, const FhirRegistry *reg, const ImportKind *kind, const char *const *files,
               size_t nfiles, const ImportOptions *o, ImportSummary *sum, Diag *d);

/** A sink that only collects what a parser hands it (unit tests of parsers, `--check`):
 *  emitted resources in order, and rejects/warnings as "file:line: reason" strings. With
 *  `strict`, the first reject makes import_reject return ERR_INVALID. */
ImportSink *import_collector_new(bool strict);
json_t *import_collector_resources(ImportSink *k); /* borrowed array */
json_t *import_collector_rejects(ImportSink *k);   /* borrowed array of strings */
json_t *import_collector_warnings(ImportSink *k);  /* borrowed array of strings */
/** Free a collector; NULL is a no-op. */
void import_collector_free(ImportSink *k);

/* ------------------------------------------------------------------ parsers */

int import_parse_ndjson(ImportSink *k, const char *path, Diag *d); /* ndjson.c: NDJSON,
                                     Bundle or single resource; .gz; .tar/.tar.gz of them */
int import_parse_finess(ImportSink *k, const char *path, Diag *d); /* finess.c */
int import_parse_rpps(ImportSink *k, const char *path, Diag *d);   /* rpps.c */
int import_parse_communes(ImportSink *k, const char *const *paths, size_t n,
                          Diag *d); /* communes.c */

#endif
