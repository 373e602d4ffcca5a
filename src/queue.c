/* queue.c: admission. When no backend of a pool has room under its maxconn,
 * a request waits in the pool's FIFO. Whoever frees a slot (any worker) or
 * sees a backend come back kicks the queue: the head entries get slots at
 * once and are handed to the worker that owns them through its inbox. The
 * pool mutex is taken only while the pool is saturated; the fast path (room
 * available, empty queue) never touches it.
 *
 * The dependency runs one way: the worker calls the queue, the queue never
 * calls the worker. A grant reaches the owner through the notify callback
 * the owner installed in its inbox (sg_inbox_init); the balancer state comes
 * from wpool.c. Of struct sg_worker this file reads two fields, w->inbox
 * and w->wpools.
 *
 * Lock order: pool->queue.mu, then an inbox's mu. */
#include <pthread.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/backend.h"
#include "surgegate/queue.h"
#include "surgegate/worker-t.h"
#include "surgegate/wpool.h"

void sg_inbox_init(struct sg_inbox *ib, void (*notify)(void *arg, bool same_thread), void *arg)
{
    pthread_mutex_init(&ib->mu, NULL);
    TAILQ_INIT(&ib->q);
    ib->notify = notify;
    ib->arg = arg;
}

void sg_inbox_destroy(struct sg_inbox *ib)
{
    pthread_mutex_destroy(&ib->mu);
}

/* Raises *max to v (the control thread lowers it again each tick). */
static void queue_note_max(_Atomic uint32_t *max, uint32_t v)
{
    uint32_t cur = atomic_load_explicit(max, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(max, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

bool sg_queue_push(struct sg_worker *w, struct sg_qentry *e, uint32_t maxqueue)
{
    struct sg_pqueue *q = &e->pool->queue;
    pthread_mutex_lock(&q->mu);
    uint32_t depth = atomic_load_explicit(&q->depth, memory_order_relaxed);
    if (depth >= maxqueue) {
        pthread_mutex_unlock(&q->mu);
        atomic_fetch_add_explicit(&q->overflows, 1, memory_order_relaxed);
        return false;
    }
    e->inbox = &w->inbox;
    e->st = SG_Q_WAITING;
    e->granted = NULL;
    TAILQ_INSERT_TAIL(&q->q, e, link);
    atomic_store_explicit(&q->depth, depth + 1, memory_order_relaxed);
    queue_note_max(&q->depth_max, depth + 1);
    if (e->pref != NULL) {
        uint32_t bd = atomic_fetch_add_explicit(&e->pref->queue_depth, 1, memory_order_relaxed);
        queue_note_max(&e->pref->queue_depth_max, bd + 1);
    }
    pthread_mutex_unlock(&q->mu);
    /* A slot may have freed between the failed pick and the push. */
    sg_queue_kick(w, e->pool);
    return true;
}

/* Removes a waiting entry; pool lock held. */
static void queue_unlink(struct sg_pqueue *q, struct sg_qentry *e)
{
    TAILQ_REMOVE(&q->q, e, link);
    atomic_fetch_sub_explicit(&q->depth, 1, memory_order_relaxed);
    if (e->pref != NULL)
        atomic_fetch_sub_explicit(&e->pref->queue_depth, 1, memory_order_relaxed);
}

void sg_queue_cancel(struct sg_worker *w, struct sg_qentry *e)
{
    if (e->st == SG_Q_NONE)
        return;
    struct sg_pqueue *q = &e->pool->queue;
    pthread_mutex_lock(&q->mu);
    if (e->st == SG_Q_WAITING) {
        queue_unlink(q, e);
        e->st = SG_Q_NONE;
        pthread_mutex_unlock(&q->mu);
        return;
    }
    pthread_mutex_unlock(&q->mu);
    /* Granted meanwhile: the entry sits in our inbox with a slot. */
    struct sg_inbox *ib = e->inbox;
    struct sg_backend *b = NULL;
    pthread_mutex_lock(&ib->mu);
    if (e->st == SG_Q_GRANTED) {
        TAILQ_REMOVE(&ib->q, e, link);
        b = e->granted;
        e->granted = NULL;
        e->st = SG_Q_NONE;
    }
    pthread_mutex_unlock(&ib->mu);
    if (b != NULL)
        sg_queue_put_slot(w, b);
}

void sg_queue_kick(struct sg_worker *w, struct sg_pool *pool)
{
    struct sg_pqueue *q = &pool->queue;
    if (atomic_load_explicit(&q->depth, memory_order_relaxed) == 0)
        return;
    void *lbst = sg_wpool_lb_state(&w->wpools[pool->id]);
    uint64_t now = sg_now_ms();
    pthread_mutex_lock(&q->mu);
    struct sg_qentry *e;
    while ((e = TAILQ_FIRST(&q->q)) != NULL) {
        struct sg_lb_req req = {
            .exclude = e->exclude,
            .nexclude = e->nexclude ? *e->nexclude : 0,
            .key = e->key,
            .keylen = e->keylen,
            .now_ms = now,
        };
        struct sg_backend *b = pool->lb->pick(lbst, pool, &req);
        if (b == NULL && req.nexclude > 0) {
            req.nexclude = 0; /* every backend tried: any will do */
            b = pool->lb->pick(lbst, pool, &req);
        }
        if (b == NULL || !sg_backend_take_slot(b, now))
            break; /* FIFO: the head waits, and so does everyone behind it */
        queue_unlink(q, e);
        struct sg_inbox *ib = e->inbox;
        pthread_mutex_lock(&ib->mu);
        e->st = SG_Q_GRANTED;
        e->granted = b;
        TAILQ_INSERT_TAIL(&ib->q, e, link);
        pthread_mutex_unlock(&ib->mu);
        ib->notify(ib->arg, ib == &w->inbox);
    }
    pthread_mutex_unlock(&q->mu);
}

void sg_queue_put_slot(struct sg_worker *w, struct sg_backend *b)
{
    sg_backend_put_slot(b);
    if (atomic_load_explicit(&b->pool->queue.depth, memory_order_relaxed) > 0)
        sg_queue_kick(w, b->pool);
}

void sg_inbox_run(struct sg_inbox *ib)
{
    for (;;) {
        pthread_mutex_lock(&ib->mu);
        struct sg_qentry *e = TAILQ_FIRST(&ib->q);
        if (e != NULL) {
            TAILQ_REMOVE(&ib->q, e, link);
            e->st = SG_Q_NONE;
        }
        pthread_mutex_unlock(&ib->mu);
        if (e == NULL)
            return;
        e->on_grant(e); /* e->granted holds the slot; the owner takes it over */
    }
}

void sg_queue_run_inbox(struct sg_worker *w)
{
    sg_inbox_run(&w->inbox);
}
