/*
 * store — persistence of FHIR resources behind one interface.
 *
 * Every resource has a current version (table `resource`) and its superseded versions
 * (`resource_history`, append-only); deletion is a new version marked deleted. Each version
 * records when and by whom it was written. Search-index rows (computed by fhir_index_extract)
 * are replaced in the same transaction as the version they describe.
 *
 * ONE WRITE PATH: every change (API create/update/patch/delete, imports, capacity updates)
 * runs as a StoreTxnFn on the single writer thread, inside a transaction. The writer groups
 * the jobs waiting in its queue into one transaction (group commit; each job in its own
 * savepoint, so one failing job does not affect the others) and returns only after the commit
 * is durable (WAL, synchronous=FULL). The commit hook then sees the committed changes, before
 * any waiting caller is released.
 *
 * Reads use a pool of reader connections and see the last committed state.
 *
 * Threading: all functions are thread-safe except that a StoreTxn may only be used inside the
 * StoreTxnFn it was given to. store_write must not be called from inside a StoreTxnFn.
 * Backends: SQLite (store_sqlite.c). Only this module includes sqlite3.h.
 */
#ifndef ROR_STORE_H
#define ROR_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "fhir/fhir.h"

typedef struct Store Store;
typedef struct StoreTxn StoreTxn;

typedef struct StoreOptions {
    const char *path;        /* database file (created if missing) */
    const FhirRegistry *reg; /* search parameters for index extraction */
    int readers;             /* reader connections (default 8) */
    int max_batch;           /* jobs per group commit (default 256) */
    int query_timeout_ms;    /* a search running longer is interrupted: ERR_TOO_LARGE
                                (default 10000) */
} StoreOptions;

/** Open (creating and migrating as needed) the store. ERR_IO with detail in d. */
int store_open(const StoreOptions *o, Store **out, Diag *d);
/** Stop the writer (after draining its queue) and close every connection. NULL is a no-op. */
void store_close(Store *s);

/** One version of a resource. Strings point into the Arena given to the call that filled it. */
typedef struct StoredResource {
    int64_t pk; /* internal row number (stable for the life of the resource) */
    const char *type;
    const char *id;
    int64_t version;
    int64_t last_updated; /* epoch ms */
    bool deleted;
    const char *author;
    const char *body; /* JSON text with id and meta set; "" for a deleted version */
    size_t len;
    double distance; /* search matches of a plan with `near`: great-circle metres to the point
                        (for a chained near, to the nearest referenced position); else NaN */
    json_t *doc;     /* version hooks only: the new version already parsed (borrowed), or NULL */
} StoredResource;

/** Current version of type/id. ERR_NOT_FOUND if it never existed; ERR_GONE (out filled) if
 *  its current version is a deletion. */
int store_read(Store *s, Arena *a, const char *type, const char *id, StoredResource *out, Diag *d);
/** A given version. ERR_NOT_FOUND if there is no such version. */
int store_vread(Store *s, Arena *a, const char *type, const char *id, int64_t version,
                StoredResource *out, Diag *d);
/** All versions, newest first (at most `max`). ERR_NOT_FOUND if it never existed. */
int store_history(Store *s, Arena *a, const char *type, const char *id, size_t max,
                  StoredResource **out, size_t *n, Diag *d);

/** A page of search results. */
typedef struct StorePage {
    StoredResource *matches;
    size_t nmatches;
    StoredResource *included; /* by _include / _revinclude, without duplicates */
    size_t nincluded;
    int64_t total;           /* -1 when not computed (_total=none) */
    const char *next_cursor; /* NULL on the last page */
} StorePage;

/** Call fn for the current version of every live resource of `type` (pk order), from one
 *  read snapshot; the StoredResource's strings are valid during the call only. Stops at fn's
 *  first non-zero result and returns it. For building in-memory views at start. */
int store_each(Store *s, const char *type, int (*fn)(void *ctx, const StoredResource *r), void *ctx,
               Diag *d);

/** Run a search plan. Paging is keyset-based on the sort keys then the internal row number,
 *  so a page never repeats or skips a resource that existed through the paging.
 *  ERR_TOO_LARGE when it runs past the store's query timeout. */
int store_search(Store *s, Arena *a, const SearchPlan *plan, StorePage *out, Diag *d);

/* ------------------------------------------------------------------ writes */

typedef int (*StoreTxnFn)(StoreTxn *t, void *ctx, Diag *d);

/** Run fn on the writer thread inside a transaction and wait for the durable commit.
 *  Returns fn's result (its changes are rolled back when it fails), or ERR_IO if the commit
 *  itself failed, or ERR_UNAVAILABLE when the store is closing. */
int store_write(Store *s, StoreTxnFn fn, void *ctx, Diag *d);

/** Called on the writer thread once the job's fate is sealed: rc is fn's result, or ERR_IO if
 *  the commit failed. The change is durable when rc == 0. Must be quick. */
typedef void (*StoreDoneFn)(void *done_ctx, int rc);

/** Queue fn for the writer and return at once; done(done_ctx, rc) follows on the writer thread
 *  after the durable commit. `ctx` and `d` must stay valid until then. Returns 0 when queued,
 *  or ERR_UNAVAILABLE (done is then NOT called) when the store no longer takes writes. */
int store_write_async(Store *s, StoreTxnFn fn, void *ctx, Diag *d, StoreDoneFn done,
                      void *done_ctx);

/** Stop taking writes (store_write* then answer ERR_UNAVAILABLE) and wait until every queued
 *  job is committed and its caller told. Reads keep working. Idempotent. */
void store_drain(Store *s);

/** Current version as seen inside the transaction (same errors as store_read). */
int store_txn_read(StoreTxn *t, Arena *a, const char *type, const char *id, StoredResource *out,
                   Diag *d);
/** Search inside the transaction (for conditional create/update/patch). */
int store_txn_search(StoreTxn *t, Arena *a, const SearchPlan *plan, StorePage *out, Diag *d);

#define STORE_HASH_LEN 16

/** What an import feed last delivered for a resource. */
typedef struct StoreFeedState {
    int64_t pk;      /* 0: type/id does not exist */
    int64_t version; /* current version, and when it was written (epoch ms) */
    int64_t last_updated;
    bool deleted; /* its current version is a deletion */
    bool known;   /* a feed delivered it (the fields below are set) */
    bool closed;  /* ... and later closed it (it disappeared from the feed) */
    char feed[64];
    uint8_t hash[STORE_HASH_LEN];
} StoreFeedState;

typedef struct StorePut {
    const char *type;
    const char *id;   /* NULL: a new server-assigned id (create) */
    json_t *res;      /* parsed resource: indexed; its id/meta are ignored */
    const char *text; /* the client's text, kept byte for byte (see json_resource_rewrite);
                         NULL: serialise `res` */
    size_t len;
    json_t *meta;                  /* with res == NULL: the resource's meta (tags, profiles) */
    const IndexRows *rows;         /* precomputed index rows (with res == NULL and text set), from
                                      fhir_index_extract on the resource with its id; _lastUpdated
                                      rows are the store's */
    const StoreFeedState *current; /* the state store_txn_feed_get gave for type/id in this
                                      transaction, when the caller has it (saves a lookup) */
    int64_t if_match;   /* > 0: the current version must be this one (ERR_PRECONDITION) */
    bool create_only;   /* ERR_CONFLICT if type/id exists (even deleted) */
    const char *author; /* who writes: recorded with the version */
} StorePut;

/** Write a new version of a resource (or its first). `out` receives the stored version (in a).
 *  Errors: ERR_PRECONDITION, ERR_CONFLICT, ERR_INVALID (index extraction), ERR_IO. */
int store_txn_put(StoreTxn *t, Arena *a, const StorePut *p, StoredResource *out, Diag *d);
/** Delete: a new version marked deleted. ERR_NOT_FOUND if absent; deleting a deleted resource
 *  is a no-op that returns its deleted version. */
int store_txn_delete(StoreTxn *t, Arena *a, const char *type, const char *id, int64_t if_match,
                     const char *author, StoredResource *out, Diag *d);

/* ------------------------------------------------------------------ imports */

/** Look up type/id and its import state. */
int store_txn_feed_get(StoreTxn *t, const char *type, const char *id, StoreFeedState *out, Diag *d);
/** Record that `feed` delivered resource `pk` with content `hash` (closed: it no longer does). */
int store_txn_feed_set(StoreTxn *t, int64_t pk, const char *feed, const uint8_t *hash, bool closed,
                       Diag *d);
/** Call fn for every resource that `feed` delivered and has not closed. Stops at fn's first
 *  non-zero result and returns it. fn must not write to the store (collect, then write). */
int store_txn_feed_each(StoreTxn *t, const char *feed,
                        int (*fn)(void *ctx, int64_t pk, const char *type, const char *id),
                        void *ctx, Diag *d);
/** The id of the live resource of `type` whose identifier is system|value: 1 and *id (in a)
 *  when exactly one, 0 when none, ERR_MULTIPLE when several. */
int store_txn_find_by_identifier(StoreTxn *t, Arena *a, const char *type, const char *system,
                                 const char *value, const char **id, Diag *d);
/** Record an import run (audit): kind, feed, author, times (epoch ms), summary (JSON text). */
int store_txn_import_run(StoreTxn *t, const char *kind, const char *feed, const char *author,
                         int64_t started, int64_t finished, const char *summary, Diag *d);

/* ------------------------------------------------------------------ derived writes */

/** Called inside the transaction after each new version of a resource of the hooked type
 *  (create, update, patch, delete, import): `old` is the version it replaces (NULL when there
 *  was none or it was a deletion), `cur` the new one (deleted: empty body). It may write
 *  derived rows with store_txn_* (same transaction: atomic with the version). A non-zero
 *  result fails the write. */
typedef int (*StoreVersionHook)(void *ctx, StoreTxn *t, const StoredResource *old,
                                const StoredResource *cur, Diag *d);
/** Set the version hook for resources of `type` (one hook; set before serving). */
void store_set_version_hook(Store *s, const char *type, StoreVersionHook hook, void *ctx);

/** One change of a bed/place capacity indicator of a Location (see the capacity module). */
typedef struct CapacityEvent {
    int64_t id;              /* commit order (set by the store) */
    int64_t loc_pk;          /* the Location's row */
    const char *location_id; /* filled by queries */
    int64_t version;         /* the Location version that made the change */
    int64_t at;              /* its time, epoch ms */
    const char *author;
    const char *indicator; /* the indicator's key (its dimension codes) */
    bool has_before, has_after;
    int64_t before, after;   /* counts; absent = the indicator did not exist / was removed */
    const char *source;      /* capacitySourceType code */
    const char *update_date; /* capacityUpdateDate as declared */
    const char *comment;
} CapacityEvent;

/** Record a capacity event (inside the transaction of the version that made it). */
int store_txn_capacity_add(StoreTxn *t, const CapacityEvent *e, Diag *d);

typedef struct StoreCapacityQuery {
    const char *location_id; /* NULL: every Location */
    const char *indicator;   /* NULL: every indicator */
    int64_t from, to;        /* time range, epoch ms inclusive (to 0: no limit) */
    int64_t after_id;        /* only events with a larger id (resuming a stream) */
    size_t max;              /* at most this many (0: 1000) */
} StoreCapacityQuery;

/** Capacity events matching q, in commit order; *out in a. */
int store_capacity_events(Store *s, Arena *a, const StoreCapacityQuery *q, CapacityEvent **out,
                          size_t *n, Diag *d);

/** The latest event of every indicator that exists now (its `after` is set): the current
 *  capacity state of every Location, with who changed it last and when. *out in a. */
int store_capacity_current(Store *s, Arena *a, CapacityEvent **out, size_t *n, Diag *d);
/** The id of the last committed capacity event (0 when none). */
int store_capacity_last_id(Store *s, int64_t *id, Diag *d);

/** A crisis opened by the ARS: type (TRE_R336 code), territory ("national" or a comma-separated
 *  list of département codes), when and by whom it was opened and closed (ended 0: open). */
typedef struct Crisis {
    int64_t id;
    const char *type, *territory, *opened_by, *closed_by, *comment;
    int64_t started, ended;
} Crisis;

/** Record a new crisis; *id receives its number. */
int store_txn_crisis_open(StoreTxn *t, const Crisis *c, int64_t *id, Diag *d);
/** Close crisis `id`. ERR_NOT_FOUND when unknown or already closed. */
int store_txn_crisis_close(StoreTxn *t, int64_t id, int64_t ended, const char *by, Diag *d);
/** Every crisis, newest first (*out in a). */
int store_crises(Store *s, Arena *a, Crisis **out, size_t *n, Diag *d);
/** The open crises as the transaction sees them. */
int store_txn_crises_open(StoreTxn *t, Arena *a, Crisis **out, size_t *n, Diag *d);

/** An orientation search that found nothing (a "gap" in the offer, for the ARS to review). */
typedef struct StoreGap {
    int64_t id;
    int64_t at; /* epoch ms */
    const char *author;
    const char *query; /* the search as a JSON object text */
} StoreGap;

/** Record a gap. */
int store_txn_gap_add(StoreTxn *t, int64_t at, const char *author, const char *query, Diag *d);
/** Gaps recorded at or after `since` (epoch ms), newest first, at most `max` (*out in a). */
int store_gaps(Store *s, Arena *a, int64_t since, size_t max, StoreGap **out, size_t *n, Diag *d);

/** Where the rest-hook notifications of a live Subscription stand (its row is made with the
 *  Subscription, by the store, at the last capacity event committed before it; deleting the
 *  Subscription deletes it). */
typedef struct SubscriptionState {
    int64_t res;                    /* the Subscription's pk */
    int64_t start_event;            /* the last capacity event committed before the Subscription */
    int64_t last_event;             /* the last event delivered or passed over by its filter */
    int64_t events;                 /* events notified since the start (the last event number) */
    bool handshake;                 /* a handshake was acknowledged */
    int64_t failures;               /* failed attempts in a row */
    const char *last_error;         /* NULL: none */
    int64_t error_at, delivered_at; /* epoch ms; 0: never */
} SubscriptionState;

/** The delivery state of Subscription `id` (strings in a). ERR_NOT_FOUND when it has none
 *  (unknown or deleted). */
int store_subscription_state(Store *s, Arena *a, const char *id, SubscriptionState *out, Diag *d);
/** Save the delivery state (all fields but start_event). ERR_NOT_FOUND when the Subscription
 *  was deleted meanwhile (nothing written). */
int store_txn_subscription_state_set(StoreTxn *t, const SubscriptionState *v, Diag *d);

/** An account: a local user or a system client (its API keys are kept as hashes apart). */
typedef struct StoreAccount {
    int64_t id; /* 0: a new account */
    const char *login, *name;
    const char *password; /* encoded argon2id hash, or NULL (no password login) */
    const char *roles;    /* JSON array text: [{"role": ..., "organization": ...}] */
    bool disabled;
    int64_t created, updated; /* epoch ms */
    const char *updated_by;
    int64_t nkeys; /* active API keys (store_accounts only) */
} StoreAccount;

/** The account of `login` (case-insensitive). ERR_NOT_FOUND. */
int store_account_get(Store *s, Arena *a, const char *login, StoreAccount *out, Diag *d);
int store_txn_account_get(StoreTxn *t, Arena *a, const char *login, StoreAccount *out, Diag *d);
/** Create (id 0) or update an account, recording `action` (and `detail`) by `author` in its
 *  append-only history. *id receives its id. ERR_CONFLICT when the login is taken. */
int store_txn_account_put(StoreTxn *t, const StoreAccount *acc, const char *author,
                          const char *action, const char *detail, int64_t *id, Diag *d);
/** Record a new API key (its hash) for an account. */
int store_txn_apikey_add(StoreTxn *t, int64_t account, const char *hash, const char *label,
                         const char *author, Diag *d);
/** Every account, by login (*out in a; nkeys filled). */
int store_accounts(Store *s, Arena *a, StoreAccount **out, size_t *n, Diag *d);

/** The (enabled or not) account holding the API key whose hash is `hash`, if the key is not
 *  revoked. ERR_NOT_FOUND. */
int store_apikey_account(Store *s, Arena *a, const char *hash, StoreAccount *out, Diag *d);

/** A web session: the hash of its token (the token itself is only in the user's cookie).
 *  Sessions expired by now are removed first. */
int store_txn_session_add(StoreTxn *t, const char *hash, int64_t account, const char *csrf,
                          int64_t expires, const char *address, Diag *d);
/** The account of a session unexpired at `now` (epoch ms), its CSRF token (in a) and expiry.
 *  ERR_NOT_FOUND. */
int store_session_get(Store *s, Arena *a, const char *hash, int64_t now, StoreAccount *out,
                      const char **csrf, int64_t *expires, Diag *d);
/** End a session (none: no error); also removes the sessions expired before `now`. */
int store_txn_session_delete(StoreTxn *t, const char *hash, int64_t now, Diag *d);
/** End every session of an account (password changed, disabled). */
int store_txn_sessions_end(StoreTxn *t, int64_t account, Diag *d);

/** One entry of the audit trail. The store writes one for every version (create, update,
 *  delete; outcome "success"); the server adds sign-ins, refusals and reads of sensitive data. */
typedef struct StoreAudit {
    int64_t id;
    int64_t at; /* epoch ms */
    const char *actor, *action, *outcome;
    const char *type, *rid; /* the resource concerned, or NULL */
    int64_t version;        /* 0: none */
    const char *address, *detail;
} StoreAudit;

int store_txn_audit_add(StoreTxn *t, const StoreAudit *e, Diag *d);

typedef struct StoreAuditQuery {
    const char *actor;      /* NULL: any (case-insensitive) */
    const char *action;     /* NULL: any */
    const char *outcome;    /* NULL: any */
    const char *type, *rid; /* NULL: any */
    int64_t since, until;   /* epoch ms; until 0: no bound */
    int64_t before_id;      /* paging: entries with id < before_id (0: from the newest) */
    size_t max;
} StoreAuditQuery;

/** Audit entries matching q, newest first (*out in a). */
int store_audit(Store *s, Arena *a, const StoreAuditQuery *q, StoreAudit **out, size_t *n, Diag *d);

/** A change awaiting the ARS's validation (the whole new version, or a deletion). */
typedef struct StorePending {
    int64_t id;
    int64_t at;
    const char *author, *type, *rid;
    int64_t base_version; /* the version it was made from (0: a creation) */
    const char *body;     /* the resource JSON text; "" for a deletion */
    const char *status;   /* pending, approved, rejected */
    int64_t decided_at;
    const char *decided_by, *reason;
} StorePending;

int store_txn_pending_add(StoreTxn *t, const StorePending *p, int64_t *id, Diag *d);
int store_txn_pending_get(StoreTxn *t, Arena *a, int64_t id, StorePending *out, Diag *d);
/** Set the decision of a pending change (status approved or rejected). ERR_CONFLICT when it
 *  was decided already. */
int store_txn_pending_decide(StoreTxn *t, int64_t id, const char *status, const char *by,
                             const char *reason, Diag *d);
/** Changes of `status` (NULL: all), newest first, at most max. */
int store_pendings(Store *s, Arena *a, const char *status, size_t max, StorePending **out,
                   size_t *n, Diag *d);

/** A resource's JSON text. */
typedef struct StoreText {
    const char *text;
    size_t len;
} StoreText;

/** The live resources of `type` that refer to ttype/tid through any reference search
 *  parameter (e.g. the HealthcareServices delivered at a Location), at most max, bodies in a.
 *  One indexed lookup: for the access rules, which need it per resource read. */
int store_referrers(Store *s, Arena *a, const char *type, const char *ttype, const char *tid,
                    size_t max, StoreText **out, size_t *n, Diag *d);
int store_txn_referrers(StoreTxn *t, Arena *a, const char *type, const char *ttype, const char *tid,
                        size_t max, StoreText **out, size_t *n, Diag *d);

/** A committed change, as the commit hook sees it. */
typedef struct StoreChange {
    const char *type;
    const char *id;
    int64_t version;
    int64_t last_updated;
    bool deleted;
} StoreChange;

typedef void (*StoreCommitHook)(void *ctx, const StoreChange *changes, size_t n);
/** Called on the writer thread after each durable commit (set before serving). */
void store_set_commit_hook(Store *s, StoreCommitHook hook, void *ctx);

/** Number of live (not deleted) resources of a type (NULL: all types). */
int store_count(Store *s, const char *type, int64_t *n, Diag *d);

#endif
