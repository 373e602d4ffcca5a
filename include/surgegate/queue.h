/* queue.h: admission. A request whose pool has no backend with room waits in
 * the pool's FIFO; a freed slot goes to the head of the queue at once, on
 * whichever worker owns it (the grant travels through the owner's inbox,
 * which wakes the owner through the notify callback the owner installed).
 * queue.c calls nothing in worker.c: of a struct sg_worker it uses only its
 * inbox and its per-pool state (w->inbox, w->wpools). */
#ifndef SURGEGATE_QUEUE_H
#define SURGEGATE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

#include "surgegate/pool-t.h"
#include "surgegate/queue-t.h"

struct sg_worker;

/* Inline so that pool.c, which embeds the queues, needs nothing of queue.c. */
static inline void sg_pqueue_init(struct sg_pqueue *q)
{
    pthread_mutex_init(&q->mu, NULL);
    TAILQ_INIT(&q->q);
    atomic_init(&q->depth, 0);
}

static inline void sg_pqueue_destroy(struct sg_pqueue *q)
{
    pthread_mutex_destroy(&q->mu);
}

/* Sets up an empty inbox whose owner is woken by notify(arg, same_thread)
 * (see struct sg_inbox). Owner, before any entry of its is queued. */
void sg_inbox_init(struct sg_inbox *ib, void (*notify)(void *arg, bool same_thread), void *arg);
/* Frees the inbox; entries still in it are left alone (their owner cancels
 * them before it ends). */
void sg_inbox_destroy(struct sg_inbox *ib);

/* Appends e (owner w) unless the pool already holds `maxqueue` entries:
 * false then (answer 503 at once). Worker thread. */
bool sg_queue_push(struct sg_worker *w, struct sg_qentry *e, uint32_t maxqueue);

/* Takes e out of the queue, or out of its owner's inbox when a slot was
 * granted meanwhile (the slot is then given back). Idempotent. Owner's thread. */
void sg_queue_cancel(struct sg_worker *w, struct sg_qentry *e);

/* A slot may have opened in `pool` (a request ended, a backend came up):
 * grants slots to queued entries in FIFO order while the balancer finds
 * room. Worker thread (uses w's balancer state). */
void sg_queue_kick(struct sg_worker *w, struct sg_pool *pool);

/* Gives a slot back and kicks the pool's queue when it is not empty. */
void sg_queue_put_slot(struct sg_worker *w, struct sg_backend *b);

/* Runs the on_grant callbacks of entries granted to w. w's thread. */
void sg_queue_run_inbox(struct sg_worker *w);
/* The same for one inbox. Its owner's thread. */
void sg_inbox_run(struct sg_inbox *ib);

#endif
