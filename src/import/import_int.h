/* import — private declarations shared by the parsers of the import module. */
#ifndef ROR_IMPORT_INT_H
#define ROR_IMPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* ------------------------------------------------------------------ reader.c */

/* Lines of a text file, plain or gzip-compressed (detected from the content). A line ends at
 * "\n" (a preceding "\r" is dropped); the last line may lack it. Line numbers start at 1. */
typedef struct LineReader LineReader;

#define LINE_READER_MAX_LINE (1u << 20) /* longer lines are an error (ERR_TOO_LARGE) */

/** Open `path`. ERR_IO (with the reason in d) when it cannot be read. */
int line_reader_open(const char *path, LineReader **out, Diag *d);
/** Next line: 1 and *line (valid until the next call; writable, NUL-terminated at len),
 *  0 at the end, ERR_TOO_LARGE for an over-long line (skipped: the next call goes on after
 *  it), ERR_IO on a read error or a truncated gzip stream. */
int line_reader_next(LineReader *r, char **line, size_t *len, Diag *d);
/** Number of the line last returned. */
long line_reader_lineno(const LineReader *r);
/** Bytes of the file consumed so far, and its size (for progress). */
uint64_t line_reader_offset(const LineReader *r);
uint64_t line_reader_size(const LineReader *r);
/** Close; NULL is a no-op. */
void line_reader_free(LineReader *r);

/* ------------------------------------------------------------------ csv.c */

#define CSV_MAX_FIELDS 64

/* Fields of one delimited line. */
typedef struct CsvFields {
    Str f[CSV_MAX_FIELDS];
    int n;
} CsvFields;

/** Split `line` (modified in place) on `sep`. With `quotes`, a field may be enclosed in '"',
 *  with inner quotes doubled; the field is unquoted in place. Fields point into `line`.
 *  ERR_INVALID for an unterminated quote (reason in d), ERR_TOO_LARGE beyond CSV_MAX_FIELDS. */
int csv_split(char *line, size_t len, char sep, bool quotes, CsvFields *out, Diag *d);

/** True when the bytes are valid UTF-8 (no overlongs, no surrogates). */
bool text_is_utf8(const char *p, size_t n);
/** Append single-byte text as UTF-8: ISO-8859-1, with 0x80-0x9F read as Windows-1252 (the
 *  ’ « œ € that French exports carry); bytes undefined in Windows-1252 become U+FFFD. */
void text_latin1_to_utf8(const char *p, size_t n, Buf *out);

/* ------------------------------------------------------------------ projection.c */

/* Projected French coordinates (Lambert-93 and the overseas UTM systems) to WGS84, with PROJ.
 * A Projector belongs to one thread (a PROJ context is not thread-safe). */
typedef struct Projector Projector;

/** New projector. ERR_IO when PROJ or its database (proj-data) is unusable. */
int projector_new(Projector **out, Diag *d);
/** Convert x/y metres in EPSG:`epsg` to WGS84 degrees. ERR_UNSUPPORTED for an unknown CRS,
 *  ERR_INVALID when the point is outside the CRS's area of use (reason in d). */
int projector_to_wgs84(Projector *p, int epsg, double x, double y, double *lat, double *lon,
                       Diag *d);
/** NULL is a no-op. */
void projector_free(Projector *p);

/* ------------------------------------------------------------------ rpps.c */

/* The RPPS extract parser fed line by line: import_parse_rpps drives it from a LineReader, the
 * fuzzer from memory. The first line given must be the header. */
typedef struct ImportSink ImportSink;
typedef struct RppsParser RppsParser;

/** New parser reporting to `k` as `file` (borrowed: must outlive the parser). */
RppsParser *rpps_parser_new(ImportSink *k, const char *file);
/** One line (may be modified), numbered `lineno`. 0; ERR_INVALID when the header is not an
 *  RPPS one (reason in d); or the non-zero value a reject returned. */
int rpps_parser_line(RppsParser *p, char *line, size_t len, long lineno, Diag *d);
/** End of input: emit every Practitioner and PractitionerRole. 0, ERR_INVALID without a
 *  header, or the non-zero value an emit/reject returned. */
int rpps_parser_finish(RppsParser *p, Diag *d);
/** NULL is a no-op. */
void rpps_parser_free(RppsParser *p);

/* ------------------------------------------------------------------ projection.c, finess.c
 * (internals exposed for the FINESS parser and its fuzz target) */

/** 0 when (lat, lon) lies inside the area of use of EPSG:`epsg`; ERR_INVALID outside,
 *  ERR_UNSUPPORTED for a CRS PROJ cannot use (reason in d). */
int projector_check_area(Projector *p, int epsg, double lat, double lon, Diag *d);

typedef struct ImportSink ImportSink;

/* The etalab FINESS parser fed one line at a time (import_parse_finess reads the file with a
 * LineReader and calls these). Rows are mapped and handed to the sink as they come, except
 * the Location of an ET, held until its geolocalisation row (or the end). */
typedef struct FinessParser FinessParser;

/** New parser emitting to `k`, naming `file` in messages. `proj` is borrowed (NULL: one is
 *  created when a position needs it). Never fails. */
FinessParser *finess_parser_new(ImportSink *k, const char *file, Projector *proj);
/** One line (without its end of line; modified). 0, or non-zero: stop and return it (the
 *  sink's answer, or ERR_IO when PROJ is unusable, reason in d). */
int finess_parser_line(FinessParser *p, char *line, size_t len, long lineno, Diag *d);
/** True when the last line seen was short (too few fields or an open quote): whether the
 *  file ended without a final newline then decides if it is reported as truncated. */
bool finess_parser_last_line_short(const FinessParser *p);
/** End of input: report what is pending and emit the Locations still held (no position).
 *  `unterminated`: the input did not end with a newline. 0, or the sink's non-zero answer. */
int finess_parser_finish(FinessParser *p, bool unterminated, Diag *d);
/** Free; NULL is a no-op. */
void finess_parser_free(FinessParser *p);

#endif
