/* queue.h: admission. A request whose pool has no backend with room waits in
 * the pool's FIFO; a freed slot goes to the head of the queue at once, on
 * whichever worker owns it (the grant travels through the worker's inbox). */
#ifndef SURGEGATE_QUEUE_H
#define SURGEGATE_QUEUE_H

#include <stdbool.h>

#include "surgegate/pool-t.h"
#include "surgegate/queue-t.h"

void sg_pqueue_init(struct sg_pqueue *q);
void sg_pqueue_destroy(struct sg_pqueue *q);

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

#endif
