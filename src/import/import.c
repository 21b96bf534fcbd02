/*
 * import.c — the sink that parsers feed, the import run, and the table of kinds.
 */
#include "import/import.h"

#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import_int.h"
#include "json/json.h"

/* ------------------------------------------------------------------ the sink
 *
 * Store mode is a pipeline of three stages over a ring of slots, in input order:
 *   parser thread (the caller) --emit--> slot RAW
 *   workers: parse text, check, tag, serialise, hash, extract index rows --> slot READY
 *   writer thread (a store job, inside the one transaction): compare with the feed state,
 *   write what changed, in input order --> slot free.
 * One mutex guards the ring counters; a slot's content belongs to exactly one stage at a time
 * (the one its state names), so it is touched without the lock. */

enum { SLOT_RAW, SLOT_READY };

/* A slot's buffers are allocated once and reused, record after record: a pipeline that
 * mallocs in one thread and frees in another makes glibc's arenas contend (measured: it
 * doubled the time per record). Only rare things (reject messages) are allocated per record. */
typedef struct Slot {
    int state;
    json_t *res;     /* RAW: the mapped resource, or NULL with text */
    Buf text;        /* RAW: JSON text (an NDJSON line); kept as the body when set */
    char where[320]; /* "file:line" for messages */
    /* READY */
    char *reject;     /* non-NULL: rejected, with this reason */
    const char *type; /* static (fhir type table) */
    char id[72];
    Buf body;     /* serialised resource (when it came as a parsed value) */
    json_t *meta; /* its meta, as stored (feed tag added, version/lastUpdated removed) */
    IndexRows rows;
    uint8_t hash[STORE_HASH_LEN];
    json_t *pending; /* references by identifier to resolve in the writer: the resource */
} Slot;

typedef enum SinkMode { SINK_COLLECT, SINK_STORE } SinkMode;

#define RING 4096
#define BATCH 64
#define MAX_PRINTED 10000

struct ImportSink {
    SinkMode mode;
    bool strict;
    /* collector */
    json_t *resources, *rejects, *warnings;

    /* store mode */
    const FhirRegistry *reg;
    const ImportKind *kind;
    const ImportOptions *o;
    const char *feed;
    pthread_mutex_t mu;
    pthread_cond_t space, work, ready, finished;
    Slot *ring;
    uint64_t head, prep, tail;  /* published to workers, next to prepare, next to write */
    uint64_t filled, tail_seen; /* parser thread only: slots filled, last tail it read */
    bool input_done;
    atomic_bool stop; /* abort: strict reject, fatal error */
    bool writer_done;
    int writer_rc;
    Diag writer_diag;
    pthread_t *workers;
    int nworkers;

    pthread_mutex_t print_mu;
    atomic_llong rejected, warned, emitted;
    ImportSummary sum; /* created/updated/unchanged/closed: the writer's */
    bool dry_rollback;

    /* progress */
    int64_t t0, last_draw;
    const char *cur_file;
    size_t file_index, nfiles;
    uint64_t file_done, file_total;
};

ImportSink *import_collector_new(bool strict)
{
    ImportSink *k = xcalloc(1, sizeof *k);
    k->mode = SINK_COLLECT;
    k->strict = strict;
    k->resources = json_array();
    k->rejects = json_array();
    k->warnings = json_array();
    return k;
}

json_t *import_collector_resources(ImportSink *k)
{
    return k->resources;
}
json_t *import_collector_rejects(ImportSink *k)
{
    return k->rejects;
}
json_t *import_collector_warnings(ImportSink *k)
{
    return k->warnings;
}

void import_collector_free(ImportSink *k)
{
    if (!k)
        return;
    json_decref(k->resources);
    json_decref(k->rejects);
    json_decref(k->warnings);
    free(k);
}

__attribute__((format(printf, 3, 0))) static char *where_vfmt(const char *file, long line,
                                                              const char *fmt, va_list ap)
{
    char raw[1024];
    vsnprintf(raw, sizeof raw, fmt, ap);
    /* a reason may quote raw input, or be cut inside a character: always valid UTF-8 out */
    char msg[3 * sizeof raw];
    if (text_is_utf8(raw, strlen(raw))) {
        snprintf(msg, sizeof msg, "%s", raw);
    } else {
        Buf b;
        buf_init(&b, sizeof msg - 1);
        text_latin1_to_utf8(raw, strlen(raw), &b);
        snprintf(msg, sizeof msg, "%s", b.p ? b.p : "");
        buf_cleanup(&b);
    }
    return line > 0 ? xasprintf("%s:%ld: %s", file, line, msg) : xasprintf("%s: %s", file, msg);
}

/* Print a reject or warning (store mode), at most MAX_PRINTED of them. */
static void report(ImportSink *k, const char *what, const char *msg, long long nth)
{
    if (k->o && k->o->on_problem) {
        pthread_mutex_lock(&k->print_mu);
        k->o->on_problem(k->o->problem_ctx, what[0] == 'r', msg);
        pthread_mutex_unlock(&k->print_mu);
        return;
    }
    if (nth > MAX_PRINTED)
        return;
    pthread_mutex_lock(&k->print_mu);
    if (k->o && k->o->progress)
        fputs("\r\033[K", stderr);
    if (nth == MAX_PRINTED)
        fprintf(stderr, "%s (%s) ; les suivants ne sont plus affichés\n", msg, what);
    else
        fprintf(stderr, "%s (%s)\n", msg, what);
    pthread_mutex_unlock(&k->print_mu);
}

static void reject_record(ImportSink *k, char *msg)
{
    long long n = ++k->rejected;
    report(k, "rejeté", msg, n);
    free(msg);
    if (k->strict)
        k->stop = true;
}

static void progress_draw(ImportSink *k, bool final);

/* Publish the slots filled since the last call to the workers (parser thread). Slots are
 * handed over in batches: one lock and one wake-up per BATCH records, not per record. */
static void publish(ImportSink *k)
{
    pthread_mutex_lock(&k->mu);
    k->head = k->filled;
    pthread_cond_broadcast(&k->work);
    pthread_mutex_unlock(&k->mu);
}

/* Hand a record to the pipeline (parser thread). */
static int push(ImportSink *k, json_t *res, const char *text, size_t len, const char *file,
                long line)
{
    if (k->filled - k->tail_seen >= RING) { /* full: publish and wait for the writer */
        pthread_mutex_lock(&k->mu);
        k->head = k->filled;
        pthread_cond_broadcast(&k->work);
        while (k->filled - k->tail >= RING && !k->stop)
            pthread_cond_wait(&k->space, &k->mu);
        k->tail_seen = k->tail;
        pthread_mutex_unlock(&k->mu);
    }
    if (k->stop) {
        json_decref(res);
        return ERR_INVALID;
    }
    Slot *sl = &k->ring[k->filled % RING]; /* free, and only this thread fills slots */
    sl->state = SLOT_RAW;
    sl->res = res;
    buf_reset(&sl->text);
    if (text)
        buf_add(&sl->text, text, len);
    if (line > 0)
        snprintf(sl->where, sizeof sl->where, "%s:%ld", file, line);
    else
        snprintf(sl->where, sizeof sl->where, "%s", file);
    k->filled++;
    k->emitted++;
    if (k->filled % BATCH == 0)
        publish(k);
    if ((k->emitted & 1023) == 0)
        progress_draw(k, false);
    return 0;
}

int import_emit(ImportSink *k, json_t *res, const char *file, long line)
{
    if (k->mode == SINK_COLLECT) {
        json_array_append_new(k->resources, res);
        return 0;
    }
    return push(k, res, NULL, 0, file, line);
}

int import_emit_text(ImportSink *k, const char *text, size_t len, const char *file, long line)
{
    if (k->mode == SINK_COLLECT) {
        Diag d = {0};
        json_t *res = NULL;
        if (json_parse(text, len, &res, &d) != 0)
            return import_reject(k, file, line, "JSON invalide : %s", d.msg);
        return import_emit(k, res, file, line);
    }
    return push(k, NULL, text, len, file, line);
}

int import_reject(ImportSink *k, const char *file, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = where_vfmt(file, line, fmt, ap);
    va_end(ap);
    if (k->mode == SINK_COLLECT) {
        json_array_append_new(k->rejects, json_string(msg));
        free(msg);
        return k->strict ? ERR_INVALID : 0;
    }
    reject_record(k, msg);
    return k->stop ? ERR_INVALID : 0;
}

void import_warn(ImportSink *k, const char *file, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = where_vfmt(file, line, fmt, ap);
    va_end(ap);
    if (k->mode == SINK_COLLECT) {
        json_array_append_new(k->warnings, json_string(msg));
    } else {
        long long n = ++k->warned;
        report(k, "avertissement", msg, n);
    }
    free(msg);
}

void import_progress(ImportSink *k, uint64_t done, uint64_t total)
{
    if (k->mode == SINK_COLLECT)
        return;
    k->file_done = done;
    k->file_total = total;
    progress_draw(k, false);
}

/* ------------------------------------------------------------------ progress */

static void progress_draw(ImportSink *k, bool final)
{
    if (!k->o || !k->o->progress)
        return;
    int64_t now = time_mono_ns();
    if (!final && now - k->last_draw < 200000000)
        return;
    k->last_draw = now;
    double el = (double)(now - k->t0) / 1e9;
    double frac = k->file_total ? (double)k->file_done / (double)k->file_total : 0;
    if (frac > 1)
        frac = 1;
    double all = k->nfiles ? ((double)k->file_index + frac) / (double)k->nfiles : 0;
    double rate = el > 0 ? (double)k->emitted / el : 0;
    char eta[32] = "?";
    if (all > 0.01 && !final)
        snprintf(eta, sizeof eta, "%.0f s", el / all - el);
    else if (final)
        snprintf(eta, sizeof eta, "0 s");
    int bar = (int)(all * 30);
    char b[31];
    for (int i = 0; i < 30; i++)
        b[i] = i < bar ? '#' : '.';
    b[30] = '\0';
    pthread_mutex_lock(&k->print_mu);
    fprintf(stderr, "\r\033[K[%s] %3.0f %%  %lld ressources  %.0f/s  reste %s  %s", b, all * 100,
            (long long)k->emitted, rate, eta, k->cur_file ? k->cur_file : "");
    if (final)
        fputc('\n', stderr);
    pthread_mutex_unlock(&k->print_mu);
}

/* ------------------------------------------------------------------ workers */

/* The target type of a reference found under `key` when it does not say. */
static const char *ref_target(const char *key)
{
    static const char *const map[][2] = {
        {"organization", "Organization"},
        {"managingOrganization", "Organization"},
        {"partOf", "Organization"},
        {"providedBy", "Organization"},
        {"practitioner", "Practitioner"},
        {"location", "Location"},
        {"healthcareService", "HealthcareService"},
    };
    for (size_t i = 0; key && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(key, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* A Reference given by identifier only (no `reference`), whose target we can look up. */
static bool is_identifier_ref(json_t *v, const char *key, const char **ttype)
{
    json_t *ident = json_object_get(v, "identifier");
    if (!json_is_object(ident) || json_object_get(v, "reference"))
        return false;
    if (!json_is_string(json_object_get(ident, "value")))
        return false;
    const char *t = json_string_value(json_object_get(v, "type"));
    *ttype = t ? t : ref_target(key);
    return *ttype && fhir_type_find(*ttype, strlen(*ttype));
}

static bool has_identifier_refs(json_t *v, const char *key)
{
    const char *tt;
    if (json_is_object(v)) {
        if (is_identifier_ref(v, key, &tt))
            return true;
        const char *k2;
        json_t *c;
        json_object_foreach(v, k2, c) if (has_identifier_refs(c, k2)) return true;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) if (has_identifier_refs(c, key)) return true;
    }
    return false;
}

static int dump_to_buf(const char *p, size_t n, void *data)
{
    return buf_add(data, p, n) == 0 ? 0 : -1;
}

/* Hash and index a checked resource into the slot; serialise it unless its text is there. */
static int finish_slot(ImportSink *k, Slot *sl, json_t *res, bool have_text, Diag *d)
{
    buf_reset(&sl->body);
    if (have_text) {
        buf_add(&sl->body, sl->text.p, sl->text.len);
    } else if (json_dump_callback(res, dump_to_buf, &sl->body, JSON_COMPACT) != 0) {
        return diag_set(d, ERR_INVALID, "ressource non sérialisable");
    }
    /* the hash covers what the feed delivered plus the feed it came from */
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, STORE_HASH_LEN);
    crypto_generichash_update(&h, (const unsigned char *)sl->body.p, sl->body.len);
    crypto_generichash_update(&h, (const unsigned char *)k->feed, strlen(k->feed));
    crypto_generichash_final(&h, sl->hash, STORE_HASH_LEN);
    json_decref(sl->meta);
    sl->meta = json_incref(json_object_get(res, "meta"));
    index_rows_reset(&sl->rows);
    return fhir_index_extract(k->reg, sl->type, res, &sl->rows, d);
}

/* Everything that does not need the store: parse, check, tag, then finish_slot. */
static void prepare(ImportSink *k, Slot *sl)
{
    Diag d = {0};
    json_t *res = sl->res;
    bool have_text = !res;
    sl->res = NULL;
    sl->reject = NULL;
    sl->pending = NULL;
    sl->type = NULL;
    sl->id[0] = '\0';
    if (!res && json_parse(sl->text.p, sl->text.len, &res, &d) != 0) {
        sl->reject = xasprintf("%s: JSON invalide : %s", sl->where, d.msg);
        goto out;
    }
    const char *rt = json_string_value(json_object_get(res, "resourceType"));
    const FhirType *ft = rt ? fhir_type_find(rt, strlen(rt)) : NULL;
    if (!ft) {
        sl->reject = xasprintf("%s: type de ressource absent ou non pris en charge (%s)", sl->where,
                               rt ? rt : "resourceType manquant");
        goto out;
    }
    sl->type = ft->name;
    const char *id = json_string_value(json_object_get(res, "id"));
    if (!id || !fhir_id_valid(id, strlen(id)) || strlen(id) >= sizeof sl->id) {
        sl->reject = xasprintf("%s: %s sans id valide (un import a besoin d'ids stables)",
                               sl->where, sl->type);
        goto out;
    }
    snprintf(sl->id, sizeof sl->id, "%s", id);
    if (fhir_resource_check(sl->type, res, &d) != 0 ||
        (k->o->term && terminology_check_resource(k->o->term, sl->type, res, &d) != 0)) {
        sl->reject = d.expr[0]
                         ? xasprintf("%s: %s/%s : %s (%s)", sl->where, sl->type, id, d.msg, d.expr)
                         : xasprintf("%s: %s/%s : %s", sl->where, sl->type, id, d.msg);
        goto out;
    }
    /* server-owned meta goes; the feed tag comes */
    json_t *meta = json_object_get(res, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(res, "meta", meta);
    }
    json_object_del(meta, "versionId");
    json_object_del(meta, "lastUpdated");
    json_t *tags = json_object_get(meta, "tag");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(meta, "tag", tags);
    }
    bool tagged = false;
    size_t i;
    json_t *tg;
    json_array_foreach(tags, i, tg)
    {
        const char *sys = json_string_value(json_object_get(tg, "system"));
        if (sys && strcmp(sys, IMPORT_FEED_SYSTEM) == 0) {
            json_object_set_new(tg, "code", json_string(k->feed));
            tagged = true;
        }
    }
    if (!tagged)
        json_array_append_new(
            tags, json_pack("{s:s,s:s}", "system", IMPORT_FEED_SYSTEM, "code", k->feed));
    if (has_identifier_refs(res, NULL)) {
        sl->pending = res; /* the writer resolves, then finishes */
        return;
    }
    if (finish_slot(k, sl, res, have_text, &d) != 0)
        sl->reject = xasprintf("%s: %s/%s : %s", sl->where, sl->type, id, d.msg);
out:
    json_decref(res);
}

static void *worker_main(void *arg)
{
    ImportSink *k = arg;
    pthread_setname_np(pthread_self(), "ror-import");
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (k->prep == k->head && !k->input_done && !k->stop)
            pthread_cond_wait(&k->work, &k->mu);
        if (k->stop || (k->prep == k->head && k->input_done))
            break;
        uint64_t first = k->prep, n = k->head - k->prep;
        if (n > BATCH)
            n = BATCH;
        k->prep += n;
        pthread_mutex_unlock(&k->mu);
        for (uint64_t i = 0; i < n; i++)
            prepare(k, &k->ring[(first + i) % RING]);
        pthread_mutex_lock(&k->mu);
        for (uint64_t i = 0; i < n; i++)
            k->ring[(first + i) % RING].state = SLOT_READY;
        if (first <= k->tail && k->tail < first + n)
            pthread_cond_signal(&k->ready);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* After the writer: drop what belongs to this record (its buffers stay for the next). */
static void slot_release(Slot *sl)
{
    json_decref(sl->res);
    json_decref(sl->pending);
    free(sl->reject);
    sl->res = sl->pending = NULL;
    sl->reject = NULL;
}

static void slot_free(Slot *sl)
{
    slot_release(sl);
    json_decref(sl->meta);
    buf_cleanup(&sl->text);
    buf_cleanup(&sl->body);
    index_rows_cleanup(&sl->rows);
}

/* ------------------------------------------------------------------ writer */

/* A set of row numbers (open addressing): what this import delivered. */
typedef struct PkSet {
    int64_t *v;
    size_t cap, n;
} PkSet;

static void pkset_add(PkSet *s, int64_t pk)
{
    if (s->n * 2 >= s->cap) {
        PkSet b = {xcalloc(s->cap ? s->cap * 2 : 1024, sizeof(int64_t)), s->cap ? s->cap * 2 : 1024,
                   0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                pkset_add(&b, s->v[i]);
        free(s->v);
        *s = b;
    }
    size_t i = (size_t)((uint64_t)pk * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->v[i] && s->v[i] != pk)
        i = (i + 1) & (s->cap - 1);
    if (!s->v[i])
        s->v[i] = pk, s->n++;
}

static bool pkset_has(const PkSet *s, int64_t pk)
{
    if (!s->cap)
        return false;
    size_t i = (size_t)((uint64_t)pk * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->v[i]) {
        if (s->v[i] == pk)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

typedef struct Writer {
    ImportSink *k;
    StoreTxn *t;
    Arena a;
    PkSet seen;
    /* resources to close, collected from the feed state */
    struct {
        int64_t pk;
        char *type, *id;
    } * gone;
    size_t ngone, capgone;
} Writer;

/* The forms a structure identifier takes in the data we import. The guide writes FINESS as
 * https://finess.esante.gouv.fr|X and SIRET as https://sirene.fr|X, and the national structure
 * id as urn:oid:1.2.250.1.71.4.2.2|<prefix>X ("1" + FINESS, "3" + SIRET); the 2021 FINESS
 * FHIR extract (and many older systems) put the bare FINESS number under that OID and SIRET
 * under http://sirene.fr. A reference given in one form finds a resource carrying another. */
typedef struct IdClass {
    const char *system; /* the guide's system for the bare number */
    const char *legacy; /* another system seen with the bare number, or NULL */
    char natprefix;     /* prefix of the number in the national structure id */
    size_t len;         /* digits of the bare number */
} IdClass;

#define IDNATST_SYSTEM "urn:oid:1.2.250.1.71.4.2.2"

static const IdClass id_classes[] = {
    {"https://finess.esante.gouv.fr", IDNATST_SYSTEM, '1', 9},
    {"https://sirene.fr", "http://sirene.fr", '3', 14},
};

static int identifier_forms(const char *system, const char *value, char forms[3][2][64])
{
    if (!system)
        return 0;
    size_t len = strlen(value);
    for (size_t c = 0; c < sizeof id_classes / sizeof id_classes[0]; c++) {
        const IdClass *k = &id_classes[c];
        const char *bare = NULL;
        if (len == k->len &&
            (strcmp(system, k->system) == 0 || (k->legacy && strcmp(system, k->legacy) == 0)))
            bare = value;
        else if (strcmp(system, IDNATST_SYSTEM) == 0 && len == k->len + 1 &&
                 value[0] == k->natprefix)
            bare = value + 1;
        if (!bare)
            continue;
        int n = 0;
        snprintf(forms[n][0], sizeof forms[n][0], "%s", k->system);
        snprintf(forms[n++][1], sizeof forms[0][1], "%s", bare);
        snprintf(forms[n][0], sizeof forms[n][0], "%s", IDNATST_SYSTEM);
        snprintf(forms[n++][1], sizeof forms[0][1], "%c%s", k->natprefix, bare);
        if (k->legacy) {
            snprintf(forms[n][0], sizeof forms[n][0], "%s", k->legacy);
            snprintf(forms[n++][1], sizeof forms[0][1], "%s", bare);
        }
        return n;
    }
    return 0;
}

/* The id of the `type` resource carrying system|value (or an equivalent form): 1, 0, < 0. */
static int find_target(Writer *w, const char *type, const char *system, const char *value,
                       const char **id, Diag *d)
{
    int n = store_txn_find_by_identifier(w->t, &w->a, type, system, value, id, d);
    if (n != 0)
        return n;
    char forms[3][2][64];
    int nf = identifier_forms(system, value, forms);
    for (int i = 0; i < nf && n == 0; i++)
        if (strcmp(forms[i][0], system) != 0 || strcmp(forms[i][1], value) != 0)
            n = store_txn_find_by_identifier(w->t, &w->a, type, forms[i][0], forms[i][1], id, d);
    return n;
}

/* Resolve References given by identifier to the resource that carries that identifier. */
static int resolve_refs(Writer *w, json_t *v, const char *key, Diag *d)
{
    const char *tt;
    if (json_is_object(v)) {
        if (is_identifier_ref(v, key, &tt)) {
            json_t *ident = json_object_get(v, "identifier");
            const char *id = NULL;
            int n = find_target(w, tt, json_string_value(json_object_get(ident, "system")),
                                json_string_value(json_object_get(ident, "value")), &id, d);
            if (n < 0 && n != ERR_MULTIPLE)
                return n;
            if (n == 1) {
                char *ref = xasprintf("%s/%s", tt, id);
                json_object_set_new(v, "reference", json_string(ref));
                free(ref);
            }
            return 0;
        }
        const char *k2;
        json_t *c;
        json_object_foreach(v, k2, c)
        {
            int rc = resolve_refs(w, c, k2, d);
            if (rc != 0)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            int rc = resolve_refs(w, c, key, d);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int write_slot(Writer *w, Slot *sl, Diag *d)
{
    ImportSink *k = w->k;
    if (sl->pending) {
        int rc = resolve_refs(w, sl->pending, NULL, d);
        if (rc != 0)
            return rc;
        Diag dd = {0};
        if (finish_slot(k, sl, sl->pending, false, &dd) != 0)
            sl->reject = xasprintf("%s: %s/%s : %s", sl->where, sl->type, sl->id, dd.msg);
    }
    if (sl->reject) {
        reject_record(k, sl->reject);
        sl->reject = NULL;
        return k->stop ? ERR_INVALID : 0;
    }
    StoreFeedState st;
    int rc = store_txn_feed_get(w->t, sl->type, sl->id, &st, d);
    if (rc != 0)
        return rc;
    if (st.pk && st.known && !st.closed && memcmp(st.hash, sl->hash, STORE_HASH_LEN) == 0) {
        k->sum.unchanged++; /* what the feed delivers did not change (even if edited since) */
        pkset_add(&w->seen, st.pk);
        if (strcmp(st.feed, k->feed) != 0)
            return store_txn_feed_set(w->t, st.pk, k->feed, sl->hash, false, d);
        return 0;
    }
    StorePut p = {.type = sl->type,
                  .id = sl->id,
                  .text = sl->body.p,
                  .len = sl->body.len,
                  .meta = sl->meta,
                  .rows = &sl->rows,
                  .current = &st,
                  .author = k->o->author};
    StoredResource out;
    arena_cleanup(&w->a);
    if ((rc = store_txn_put(w->t, &w->a, &p, &out, d)) != 0) {
        char msg[sizeof d->msg];
        snprintf(msg, sizeof msg, "%s", d->msg);
        diag_set(d, rc, "%s: %s/%s : %s", sl->where, sl->type, sl->id, msg);
        return rc;
    }
    if (st.pk)
        k->sum.updated++;
    else
        k->sum.created++;
    pkset_add(&w->seen, out.pk);
    return store_txn_feed_set(w->t, out.pk, k->feed, sl->hash, false, d);
}

static int collect_gone(void *ctx, int64_t pk, const char *type, const char *id)
{
    Writer *w = ctx;
    if (pkset_has(&w->seen, pk))
        return 0;
    if (w->ngone == w->capgone) {
        w->capgone = w->capgone ? w->capgone * 2 : 256;
        w->gone = xrealloc(w->gone, w->capgone * sizeof *w->gone);
    }
    w->gone[w->ngone].pk = pk;
    w->gone[w->ngone].type = xstrdup(type);
    w->gone[w->ngone].id = xstrdup(id);
    w->ngone++;
    return 0;
}

/* How a resource that disappeared from its feed is closed: an element set to a value. Types
 * without such an element are deleted (a new version marked deleted: history stays). */
static bool close_element(const char *type, const char **key, json_t **value)
{
    static const char *const active[] = {
        "Organization", "HealthcareService", "Practitioner",  "PractitionerRole",
        "Endpoint",     "Patient",           "RelatedPerson", "Group"};
    static const char *const retired[] = {"CodeSystem",          "ValueSet",        "ConceptMap",
                                          "StructureDefinition", "SearchParameter", "Questionnaire",
                                          "NamingSystem"};
    for (size_t i = 0; i < sizeof active / sizeof active[0]; i++)
        if (strcmp(type, active[i]) == 0) {
            *key = "active", *value = json_false();
            return true;
        }
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++)
        if (strcmp(type, retired[i]) == 0) {
            *key = "status", *value = json_string("retired");
            return true;
        }
    if (strcmp(type, "Location") == 0) {
        *key = "status", *value = json_string("inactive");
        return true;
    }
    return false;
}

static int close_one(Writer *w, int64_t pk, const char *type, const char *id, Diag *d)
{
    ImportSink *k = w->k;
    static const uint8_t zero[STORE_HASH_LEN];
    arena_cleanup(&w->a);
    StoredResource cur;
    int rc = store_txn_read(w->t, &w->a, type, id, &cur, d);
    if (rc == ERR_GONE || rc == ERR_NOT_FOUND) /* deleted since: only the state changes */
        return store_txn_feed_set(w->t, pk, k->feed, zero, true, d);
    if (rc != 0)
        return rc;
    const char *key;
    json_t *value;
    StoredResource out;
    if (!close_element(type, &key, &value)) {
        rc = store_txn_delete(w->t, &w->a, type, id, 0, k->o->author, &out, d);
    } else {
        json_t *res = NULL;
        if ((rc = json_parse(cur.body, cur.len, &res, d)) != 0) {
            json_decref(value);
            return rc;
        }
        json_object_set_new(res, key, value);
        StorePut p = {.type = type, .id = id, .res = res, .author = k->o->author};
        rc = store_txn_put(w->t, &w->a, &p, &out, d);
        json_decref(res);
    }
    if (rc != 0)
        return rc;
    k->sum.closed++;
    return store_txn_feed_set(w->t, pk, k->feed, zero, true, d);
}

/* The import's store job: runs on the writer thread, inside the one transaction. */
static int import_txn(StoreTxn *t, void *ctx, Diag *d)
{
    ImportSink *k = ctx;
    Writer w = {.k = k, .t = t};
    arena_init(&w.a);
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        while (!k->stop &&
               (k->tail == k->head ? !k->input_done : k->ring[k->tail % RING].state != SLOT_READY))
            pthread_cond_wait(&k->ready, &k->mu);
        bool end = k->stop || (k->tail == k->head && k->input_done);
        uint64_t first = k->tail, n = 0;
        while (!end && first + n < k->head && n < BATCH &&
               k->ring[(first + n) % RING].state == SLOT_READY)
            n++;
        pthread_mutex_unlock(&k->mu);
        if (end)
            break;
        for (uint64_t i = 0; i < n; i++) {
            Slot *sl = &k->ring[(first + i) % RING];
            if (rc == 0)
                rc = write_slot(&w, sl, d);
            slot_release(sl);
        }
        pthread_mutex_lock(&k->mu);
        k->tail += n;
        pthread_cond_signal(&k->space);
        pthread_mutex_unlock(&k->mu);
        if (rc != 0)
            break;
    }
    if (rc == 0 && k->stop)
        rc = k->rejected > 0 ? diag_set(d, ERR_INVALID,
                                        "import interrompu : enregistrement "
                                        "rejeté en mode strict")
                             : diag_set(d, ERR_INVALID, "import interrompu");
    if (rc == 0 && !k->o->no_close) {
        rc = store_txn_feed_each(t, k->feed, collect_gone, &w, d);
        int pct = k->o->max_close_pct > 0 ? k->o->max_close_pct : 10;
        size_t owned = w.ngone + w.seen.n;
        if (rc == 0 && pct < 100 && w.ngone > 100 && w.ngone * 100 > owned * (size_t)pct)
            rc = diag_set(d, ERR_BUSINESS,
                          "cet import fermerait %zu des %zu ressources du flux « %s » (plus de "
                          "%d %%) : extraction tronquée ou partielle ? Rien n'a été écrit. "
                          "Utilisez --no-close pour une extraction partielle, ou --max-close "
                          "pour accepter",
                          w.ngone, owned, k->feed, pct);
        for (size_t i = 0; rc == 0 && i < w.ngone; i++)
            rc = close_one(&w, w.gone[i].pk, w.gone[i].type, w.gone[i].id, d);
    }
    for (size_t i = 0; i < w.ngone; i++)
        free(w.gone[i].type), free(w.gone[i].id);
    free(w.gone);
    free(w.seen.v);
    arena_cleanup(&w.a);
    if (rc == 0) {
        char *summary =
            xasprintf("{\"read\":%lld,\"created\":%lld,\"updated\":%lld,\"unchanged\":%lld,"
                      "\"closed\":%lld,\"rejected\":%lld,\"warnings\":%lld}",
                      (long long)k->emitted, (long long)k->sum.created, (long long)k->sum.updated,
                      (long long)k->sum.unchanged, (long long)k->sum.closed, (long long)k->rejected,
                      (long long)k->warned);
        rc = store_txn_import_run(t, k->kind->name, k->feed, k->o->author, k->t0 / 1000000,
                                  time_now_ms(), summary, d);
        free(summary);
    }
    if (rc == 0 && k->o->dry_run) { /* everything done: now undo it */
        k->dry_rollback = true;
        rc = ERR_CONFLICT;
    }
    if (rc != 0) { /* release the parser and the workers */
        pthread_mutex_lock(&k->mu);
        k->stop = true;
        pthread_cond_broadcast(&k->space);
        pthread_cond_broadcast(&k->work);
        pthread_mutex_unlock(&k->mu);
    }
    return rc;
}

static void import_done(void *ctx, int rc)
{
    ImportSink *k = ctx;
    pthread_mutex_lock(&k->mu);
    k->writer_done = true;
    k->writer_rc = rc;
    pthread_cond_broadcast(&k->finished);
    pthread_mutex_unlock(&k->mu);
}

/* ------------------------------------------------------------------ the run */

int import_run(Store *s, const FhirRegistry *reg, const ImportKind *kind, const char *const *files,
               size_t nfiles, const ImportOptions *o, ImportSummary *sum, Diag *d)
{
    if (sodium_init() < 0)
        return diag_set(d, ERR_INTERNAL, "libsodium indisponible");
    /* The pipeline allocates and frees at a high rate; by default glibc gives freed memory back
     * to the kernel at once and takes it again (page faults were a fifth of the time). */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    ImportSink *k = xcalloc(1, sizeof *k);
    k->mode = SINK_STORE;
    k->strict = o->strict;
    k->reg = reg;
    k->kind = kind;
    k->o = o;
    k->feed = o->feed ? o->feed : kind->feed;
    k->ring = xcalloc(RING, sizeof *k->ring);
    for (size_t i = 0; i < RING; i++) {
        buf_init(&k->ring[i].text, 64u << 20);
        buf_init(&k->ring[i].body, 64u << 20);
        index_rows_init(&k->ring[i].rows);
    }
    k->t0 = time_mono_ns();
    k->nfiles = kind->parse_set ? 1 : nfiles;
    pthread_mutex_init(&k->mu, NULL);
    pthread_mutex_init(&k->print_mu, NULL);
    pthread_cond_init(&k->space, NULL);
    pthread_cond_init(&k->work, NULL);
    pthread_cond_init(&k->ready, NULL);
    pthread_cond_init(&k->finished, NULL);
    int64_t started_ms = time_now_ms();
    (void)started_ms;

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    k->nworkers = o->threads > 0 ? o->threads : (int)(ncpu > 0 ? ncpu : 2);
    if (k->nworkers > 64)
        k->nworkers = 64;
    k->workers = xcalloc((size_t)k->nworkers, sizeof *k->workers);
    for (int i = 0; i < k->nworkers; i++)
        pthread_create(&k->workers[i], NULL, worker_main, k);

    Diag wd = {0};
    int rc = store_write_async(s, import_txn, k, &k->writer_diag, import_done, k);
    (void)wd;
    if (rc != 0) {
        diag_set(d, rc, "le stockage n'accepte pas d'écriture");
        k->stop = true;
    }
    int prc = 0;
    if (rc == 0) {
        if (kind->parse_set) {
            k->cur_file = nfiles ? files[0] : "";
            prc = kind->parse_set(k, files, nfiles, d);
        } else {
            for (size_t i = 0; i < nfiles && prc == 0 && !k->stop; i++) {
                k->file_index = i;
                k->cur_file = files[i];
                k->file_done = k->file_total = 0;
                prc = kind->parse(k, files[i], d);
            }
        }
    }
    pthread_mutex_lock(&k->mu);
    if (prc != 0 && !(prc == ERR_INVALID && k->stop)) /* a file could not be read: abort all */
        k->stop = true;
    k->head = k->filled;
    k->input_done = true;
    pthread_cond_broadcast(&k->work);
    pthread_cond_broadcast(&k->ready);
    if (rc == 0)
        while (!k->writer_done)
            pthread_cond_wait(&k->finished, &k->mu);
    pthread_mutex_unlock(&k->mu);
    for (int i = 0; i < k->nworkers; i++)
        pthread_join(k->workers[i], NULL);
    progress_draw(k, true);

    if (rc == 0) {
        if (prc != 0 && !(prc == ERR_INVALID && k->strict))
            rc = prc; /* d already says which file */
        else if (k->dry_rollback)
            rc = 0;
        else if (k->writer_rc != 0) {
            rc = k->writer_rc;
            snprintf(d->msg, sizeof d->msg, "%s", k->writer_diag.msg);
        }
    }
    for (size_t i = 0; i < RING; i++)
        slot_free(&k->ring[i]);
    *sum = k->sum;
    sum->read = k->emitted;
    sum->rejected = k->rejected;
    sum->warnings = k->warned;
    sum->seconds = (double)(time_mono_ns() - k->t0) / 1e9;
    if (rc != 0) /* nothing was written (a dry run reports what it would have done) */
        sum->created = sum->updated = sum->closed = 0;
    free(k->workers);
    free(k->ring);
    pthread_mutex_destroy(&k->mu);
    pthread_mutex_destroy(&k->print_mu);
    pthread_cond_destroy(&k->space);
    pthread_cond_destroy(&k->work);
    pthread_cond_destroy(&k->ready);
    pthread_cond_destroy(&k->finished);
    free(k);
    return rc;
}

/* ------------------------------------------------------------------ kinds */

static const ImportKind kinds[] = {
    {"ndjson", "ndjson",
     "ressources FHIR : NDJSON, Bundle ou ressource JSON, .gz, archives .tar/.tar.gz",
     import_parse_ndjson, NULL},
    {"bundle", "ndjson", "synonyme de ndjson", import_parse_ndjson, NULL},
    {"nos", "nos", "terminologies NOS : CodeSystem / ValueSet FHIR (fichiers ou dossiers JSON)",
     import_parse_ndjson, NULL},
    {"finess", "finess", "extraction etalab FINESS (cs1100507, cs1100502, cs1100501), CSV ';'",
     import_parse_finess, NULL},
    {"rpps", "rpps", "extraction RPPS PS_LibreAcces_Personne_activite, CSV '|'", import_parse_rpps,
     NULL},
    {"communes", "communes",
     "communes INSEE (COG, decoupage-administratif) + centres géo.api + base La Poste", NULL,
     import_parse_communes},
};

const ImportKind *import_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

const ImportKind *const *import_kinds(void)
{
    static const ImportKind *list[sizeof kinds / sizeof kinds[0] + 1];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        list[i] = &kinds[i];
    return list;
}
