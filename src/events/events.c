/* events: synchronous in-process fan-out of committed changes. */
#include "events/events.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"

typedef struct Sub {
    int id;
    EventFn fn;
    void *ctx;
} Sub;

struct Events {
    pthread_mutex_t lock;
    Sub *subs;
    size_t n, cap;
    int next_id;
    uint64_t seq;
};

Events *events_new(void)
{
    Events *e = xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    return e;
}

void events_free(Events *e)
{
    if (!e)
        return;
    pthread_mutex_destroy(&e->lock);
    free(e->subs);
    free(e);
}

int events_subscribe(Events *e, EventFn fn, void *ctx)
{
    pthread_mutex_lock(&e->lock);
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->subs = xrealloc(e->subs, e->cap * sizeof *e->subs);
    }
    int id = ++e->next_id;
    e->subs[e->n++] = (Sub){id, fn, ctx};
    pthread_mutex_unlock(&e->lock);
    return id;
}

void events_unsubscribe(Events *e, int id)
{
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n; i++)
        if (e->subs[i].id == id) {
            e->subs[i] = e->subs[--e->n];
            break;
        }
    pthread_mutex_unlock(&e->lock);
}

void events_publish(Events *e, EventChange *changes, size_t n)
{
    /* the lock also orders deliveries: subscribers see batches in sequence order */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < n; i++)
        changes[i].seq = ++e->seq;
    for (size_t i = 0; i < e->n; i++)
        e->subs[i].fn(e->subs[i].ctx, changes, n);
    pthread_mutex_unlock(&e->lock);
}

uint64_t events_last_seq(Events *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t s = e->seq;
    pthread_mutex_unlock(&e->lock);
    return s;
}
