/* throttle.c — login failure counting per account and per client address, with lockouts.
 *
 * One table holds both kinds of record, keyed by a keyed BLAKE2b-128 of (kind, name): entries
 * have a fixed size whatever the name, the table never holds account names or addresses in
 * clear, and a client cannot aim names at one hash bucket (the key is random per table).
 *
 * An entry remembers the times of its failures still inside the window (an exact sliding
 * window: the array grows only as failures come, up to the threshold), when its lockout ends,
 * and how many lockouts it has had (for the doubling). An entry with nothing left to remember
 * is freed when next touched; when the table is full the least recently used entry goes.
 *
 * Invariants (under `lock`): count <= p.max_entries; every entry is in exactly one bucket chain
 * and in the LRU list; nfails < the kind's threshold (reaching it locks and empties the list).
 */
#include "auth/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ID_BYTES 16
#define TIME_CAP ((int64_t)10 * 366 * 86400) /* policy durations are clamped to 10 years */
#define THRESHOLD_CAP 1000000

enum { KIND_ACCOUNT = 'c', KIND_ADDRESS = 'a' };

typedef struct Entry {
    unsigned char id[ID_BYTES];
    struct Entry *next;          /* bucket chain */
    struct Entry *newer, *older; /* LRU list */
    int64_t locked_until;        /* attempts allowed from then on; 0 when never locked */
    int64_t *fails;              /* times of the failures inside the window, unordered */
    uint32_t nfails, cap;
    uint32_t level; /* lockouts so far: the next one lasts lockout_s * 2^level */
} Entry;

struct AuthThrottle {
    pthread_mutex_t lock;
    AuthThrottlePolicy p;
    unsigned char key[crypto_generichash_KEYBYTES];
    Entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    Entry *newest, *oldest;
};

static int64_t clamp64(int64_t v, int64_t dflt)
{
    return v <= 0 ? dflt : v > TIME_CAP ? TIME_CAP : v;
}

static int clampi(int v, int dflt)
{
    return v <= 0 ? dflt : v > THRESHOLD_CAP ? THRESHOLD_CAP : v;
}

AuthThrottle *auth_throttle_new(const AuthThrottlePolicy *p)
{
    AuthThrottlePolicy q = p ? *p : (AuthThrottlePolicy){0};
    AuthThrottle *t = xcalloc(1, sizeof *t);
    t->p.max_failures = clampi(q.max_failures, 5);
    t->p.window_s = clamp64(q.window_s, 900);
    t->p.lockout_s = clamp64(q.lockout_s, 900);
    t->p.max_lockout_s = clamp64(q.max_lockout_s, 86400);
    if (t->p.max_lockout_s < t->p.lockout_s)
        t->p.max_lockout_s = t->p.lockout_s;
    t->p.max_per_address = clampi(q.max_per_address, 50);
    t->p.max_entries = q.max_entries ? q.max_entries : 100000;
    pthread_mutex_init(&t->lock, NULL);
    randombytes_buf(t->key, sizeof t->key);
    t->nbuckets = 64;
    t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
    return t;
}

void auth_throttle_free(AuthThrottle *t)
{
    if (!t)
        return;
    for (Entry *e = t->newest, *older; e; e = older) {
        older = e->older;
        free(e->fails);
        free(e);
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    sodium_memzero(t->key, sizeof t->key);
    free(t);
}

/* The id of an account or an address; false when there is none to count. Accounts are folded
 * (case, accents, compatibility forms, spaces: core's search folding) because the throttle
 * must be at least as coarse as any account lookup: were it finer, "Alice", "ALICE" and
 * "alice" would each get their own failure budget against one account. Merging two distinct
 * accounts only lets a failure on one count against the other, which anyone could do by
 * naming the other. Addresses are taken as given (the caller canonicalises them). */
static bool entry_id(const AuthThrottle *t, int kind, const char *name, unsigned char *id)
{
    if (!name || !*name)
        return false;
    char *folded = NULL;
    const char *s = name;
    if (kind == KIND_ACCOUNT) {
        folded = text_fold(name, strlen(name));
        if (!folded) { /* not UTF-8: fold ASCII case only */
            folded = xstrdup(name);
            for (char *c = folded; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
        }
        s = folded;
    }
    crypto_generichash_state st;
    unsigned char k = (unsigned char)kind;
    crypto_generichash_init(&st, t->key, sizeof t->key, ID_BYTES);
    crypto_generichash_update(&st, &k, 1);
    crypto_generichash_update(&st, (const unsigned char *)s, strlen(s));
    crypto_generichash_final(&st, id, ID_BYTES);
    free(folded);
    return true;
}

static size_t bucket_of(const AuthThrottle *t, const unsigned char *id)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)(h & (t->nbuckets - 1));
}

static Entry *entry_find(AuthThrottle *t, const unsigned char *id)
{
    for (Entry *e = t->buckets[bucket_of(t, id)]; e; e = e->next)
        if (memcmp(e->id, id, ID_BYTES) == 0)
            return e;
    return NULL;
}

static void lru_unlink(AuthThrottle *t, Entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(AuthThrottle *t, Entry *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest)
        t->newest->newer = e;
    t->newest = e;
    if (!t->oldest)
        t->oldest = e;
}

static void lru_touch(AuthThrottle *t, Entry *e)
{
    if (t->newest != e) {
        lru_unlink(t, e);
        lru_push(t, e);
    }
}

static void entry_drop(AuthThrottle *t, Entry *e)
{
    Entry **pp = &t->buckets[bucket_of(t, e->id)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    lru_unlink(t, e);
    t->count--;
    free(e->fails);
    free(e);
}

static void table_grow(AuthThrottle *t)
{
    size_t n = t->nbuckets * 2;
    Entry **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++)
        for (Entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            uint64_t h;
            memcpy(&h, e->id, sizeof h);
            size_t j = (size_t)(h & (n - 1));
            e->next = b[j];
            b[j] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static Entry *entry_get(AuthThrottle *t, const unsigned char *id)
{
    Entry *e = entry_find(t, id);
    if (e) {
        lru_touch(t, e);
        return e;
    }
    if (t->count >= t->p.max_entries)
        entry_drop(t, t->oldest);
    if (t->count >= t->nbuckets)
        table_grow(t);
    e = xcalloc(1, sizeof *e);
    memcpy(e->id, id, ID_BYTES);
    size_t b = bucket_of(t, id);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    lru_push(t, e);
    t->count++;
    return e;
}

/* Forget the failures that left the window (now - time >= window_s). */
static void entry_prune(const AuthThrottle *t, Entry *e, int64_t now)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->nfails; i++)
        if (now - e->fails[i] < t->p.window_s)
            e->fails[k++] = e->fails[i];
    e->nfails = k;
}

/* The doubling restarts once a whole max_lockout_s has passed since the last lockout ended:
 * without it, one bad day would double a shared address's (a hospital's NAT) next lockout
 * forever. Accounts are also reset by a success. */
static bool level_expired(const AuthThrottle *t, const Entry *e, int64_t now)
{
    return e->level == 0 || now - e->locked_until >= t->p.max_lockout_s;
}

static bool entry_idle(const AuthThrottle *t, const Entry *e, int64_t now)
{
    return e->nfails == 0 && now >= e->locked_until && level_expired(t, e, now);
}

static void entry_fail(AuthThrottle *t, Entry *e, int threshold, int64_t now)
{
    entry_prune(t, e, now);
    if (e->nfails + 1 >= (uint32_t)threshold) {
        if (level_expired(t, e, now))
            e->level = 0;
        int64_t dur = t->p.lockout_s;
        for (uint32_t i = 0; i < e->level && dur < t->p.max_lockout_s; i++)
            dur *= 2;
        if (dur > t->p.max_lockout_s)
            dur = t->p.max_lockout_s;
        if (e->level < 64)
            e->level++;
        /* Failures recorded during a lockout (attempts that passed the check just before it)
         * count towards the next one, which never ends earlier than the current one. */
        if (now + dur > e->locked_until)
            e->locked_until = now + dur;
        e->nfails = 0;
        return;
    }
    if (e->nfails == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 4;
        if (cap > (uint32_t)threshold - 1)
            cap = (uint32_t)threshold - 1;
        e->fails = xrealloc(e->fails, cap * sizeof *e->fails);
        e->cap = cap;
    }
    e->fails[e->nfails++] = now;
}

/* Seconds until `id` may try again (0 when now), forgetting it when nothing is left. */
static int64_t entry_wait(AuthThrottle *t, const unsigned char *id, int64_t now)
{
    Entry *e = entry_find(t, id);
    if (!e)
        return 0;
    entry_prune(t, e, now);
    if (entry_idle(t, e, now)) {
        entry_drop(t, e);
        return 0;
    }
    lru_touch(t, e);
    return e->locked_until > now ? e->locked_until - now : 0;
}

int auth_throttle_check(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                        int64_t *retry_after_s)
{
    unsigned char acc[ID_BYTES], addr[ID_BYTES];
    bool has_acc = entry_id(t, KIND_ACCOUNT, account, acc);
    bool has_addr = entry_id(t, KIND_ADDRESS, address, addr);
    int64_t wait = 0;
    pthread_mutex_lock(&t->lock);
    if (has_acc)
        wait = entry_wait(t, acc, now_s);
    if (has_addr) {
        int64_t w = entry_wait(t, addr, now_s);
        if (w > wait)
            wait = w;
    }
    pthread_mutex_unlock(&t->lock);
    if (retry_after_s)
        *retry_after_s = wait;
    return wait > 0 ? ERR_FORBIDDEN : 0;
}

void auth_throttle_record(AuthThrottle *t, const char *account, const char *address, int64_t now_s,
                          bool success)
{
    unsigned char acc[ID_BYTES], addr[ID_BYTES];
    bool has_acc = entry_id(t, KIND_ACCOUNT, account, acc);
    bool has_addr = !success && entry_id(t, KIND_ADDRESS, address, addr);
    pthread_mutex_lock(&t->lock);
    if (has_acc) {
        if (success) {
            Entry *e = entry_find(t, acc);
            if (e)
                entry_drop(t, e);
        } else {
            entry_fail(t, entry_get(t, acc), t->p.max_failures, now_s);
        }
    }
    /* A success leaves the address alone: a sprayer holding one valid account could otherwise
     * wipe the address's count with it between guesses. */
    if (has_addr)
        entry_fail(t, entry_get(t, addr), t->p.max_per_address, now_s);
    pthread_mutex_unlock(&t->lock);
}
