/* queue.h: admission. A request whose pool has no backend with room waits in
 * the pool's queue (one FIFO per priority, critical first), unless the
 * queue's overload control refuses it at once (sg_queue_verdict); a freed
 * slot goes to the next in order at once, on whichever worker owns it (the
 * grant travels through the owner's inbox, which wakes the owner through the
 * notify callback the owner installed). queue.c calls nothing in worker.c:
 * of a struct sg_worker it uses only its inbox and its per-pool state
 * (w->inbox, w->wpools). */
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
    for (int i = 0; i < SG_PRIO_N; i++) {
        TAILQ_INIT(&q->q[i]);
        q->nq[i] = 0;
    }
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

/* The name of a priority ("critical", "normal", "sheddable"), of a shed
 * reason ("overload", "queue_full", "timeout"). */
const char *sg_prio_name(int prio);
const char *sg_shed_name(int reason);

/* Feeds the standing-queue detector one observation at now_ms: the age of
 * the oldest request waiting when one is granted a slot (`empty` false), or
 * an empty queue (`empty` true, wait ignored). Not standing, it starts standing once every wait
 * seen for `interval_ms` was >= target_ms, or at once when a wait is >= target_ms while
 * s->growing says requests arrive faster than they drain (a surge: waiting an interval would
 * only let the queue grow); standing, it stops once every observation for `interval_ms` was
 * calm (an empty queue, or a wait under target_ms / 2). Returns true when the state changed.
 * Pure. */
bool sg_qstand_observe(struct sg_qstand *s, uint64_t now_ms, uint64_t wait_ms, bool empty,
                       uint32_t target_ms, uint32_t interval_ms);

/* Whether a request of priority `prio` that found no free slot may wait:
 * `depth` requests wait in the pool, `ahead` of them would be served before
 * it, `drain` is the pool's measured completions per second (0: unknown).
 * FULL when depth >= maxqueue. With the control on (target_ms > 0) and a
 * known drain, its expected wait (ahead + 1) / drain must not exceed
 * timeouts.queue, and while the queue stands, not its priority's limit:
 * target for normal, timeouts.queue for critical; a sheddable request is
 * refused whenever the queue stands. Else OVERLOAD (503 at once). Pure. */
enum sg_qverdict sg_queue_verdict(const struct sg_qpolicy *pol, int prio, bool standing,
                                  uint32_t depth, uint32_t ahead, double drain);

/* The Retry-After, in seconds, of a refusal: the time the pool takes to
 * serve the `depth` requests waiting at `drain` per second, rounded up and
 * clamped to 1..60 (1 when the drain is unknown). Pure. */
uint32_t sg_queue_retry_after(uint32_t depth, double drain);

/* Appends e (owner w) unless the pool already holds `maxqueue` entries:
 * false then (answer 503 at once). No overload control. Worker thread. */
bool sg_queue_push(struct sg_worker *w, struct sg_qentry *e, uint32_t maxqueue);

/* Admission with the pool's overload control (its cfg->queue, timeouts.queue
 * = timeout_ms): queues e and returns SG_QV_ADMIT, or counts the refusal
 * (shed by reason and priority) and returns why. *retry_after gets the
 * Retry-After of a refusal. Worker thread. */
enum sg_qverdict sg_queue_admit(struct sg_worker *w, struct sg_qentry *e, uint32_t timeout_ms,
                                uint32_t *retry_after);

/* Counts a request of priority prio refused after waiting timeouts.queue;
 * one admitted (given a slot at once or a place in the queue). Any thread. */
void sg_queue_count_timeout(struct sg_pool *pool, int prio);
void sg_queue_count_admitted(struct sg_pool *pool, int prio);

/* The Retry-After (seconds) the pool's queue suggests now. Any thread. */
uint32_t sg_queue_retry_after_now(const struct sg_pool *pool);

/* Control thread, once a tick: lets the detector see an empty queue (a
 * standing episode ends when traffic stops) and restarts a stale drain-rate
 * window. */
void sg_queue_tick(struct sg_pool *pool);

/* Takes e out of the queue, or out of its owner's inbox when a slot was
 * granted meanwhile (the slot is then given back). Idempotent. Owner's thread. */
void sg_queue_cancel(struct sg_worker *w, struct sg_qentry *e);

/* A slot may have opened in `pool` (a request ended, a backend came up):
 * grants slots to queued entries in FIFO order while the balancer finds
 * room. Worker thread (uses w's balancer state). */
void sg_queue_kick(struct sg_worker *w, struct sg_pool *pool);

/* Gives a slot back and kicks the pool's queue when it is not empty. */
void sg_queue_put_slot(struct sg_worker *w, struct sg_backend *b);

/* Runs the on_grant callbacks of entries granted to w (e->granted NULL: the
 * queue refused the entry when it began to stand). w's thread. */
void sg_queue_run_inbox(struct sg_worker *w);
/* The same for one inbox. Its owner's thread. */
void sg_inbox_run(struct sg_inbox *ib);

#endif
