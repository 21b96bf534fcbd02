/*
 * events — in-process publish/subscribe of committed changes.
 *
 * The store's commit hook publishes each durable batch here; subscribers (the orientation
 * index, capacity state, SSE streams, subscriptions) are called synchronously on the
 * publishing (writer) thread, in subscription order, and must be quick and non-blocking.
 * Every change gets a strictly increasing sequence number (for SSE Last-Event-ID).
 *
 * Threading: subscribe/unsubscribe/publish are thread-safe.
 */
#ifndef ROR_EVENTS_H
#define ROR_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct EventChange {
    uint64_t seq;
    const char *type;
    const char *id;
    int64_t version;
    int64_t last_updated;
    bool deleted;
} EventChange;

typedef void (*EventFn)(void *ctx, const EventChange *changes, size_t n);
typedef struct Events Events;

Events *events_new(void);
void events_free(Events *e);
/** Register fn; returns a subscription id (> 0) for events_unsubscribe. */
int events_subscribe(Events *e, EventFn fn, void *ctx);
void events_unsubscribe(Events *e, int id);
/** Number changes (sets seq) and deliver them to every subscriber. */
void events_publish(Events *e, EventChange *changes, size_t n);
/** Sequence number of the last published change (0 before any). */
uint64_t events_last_seq(Events *e);

#endif
