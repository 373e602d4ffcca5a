/* queue.c: admission. When no backend of a pool has room under its maxconn,
 * a request waits in the pool's queue (a FIFO per priority, served critical
 * first). Whoever frees a slot (any worker) or
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
 * Overload control (a pool's "queue" group): the wait of each request granted
 * a slot feeds a CoDel-style detector (sg_qstand_observe). The queue
 * "stands" when the waits stayed at or above `target` for `interval`. A
 * request that finds no free slot is refused at once (503, Retry-After from
 * the drain rate) when its expected wait, the requests that would be served
 * before it divided by the pool's measured drain rate (slots given back per
 * second while saturated), exceeds timeouts.queue, or, while the queue
 * stands, its priority's limit (sg_queue_verdict). With `lifo`, a standing
 * queue serves the newest request of a priority first. The detector watches
 * the age of the oldest request waiting at each grant.
 *
 * Lock order: pool->queue.mu, then an inbox's mu. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "surgegate/backend.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
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

/* ------------------------------------------------------------ policy */

static const char *const queue_prio_names[SG_PRIO_N] = {[SG_PRIO_NORMAL] = "normal",
                                                        [SG_PRIO_CRITICAL] = "critical",
                                                        [SG_PRIO_SHEDDABLE] = "sheddable"};
static const char *const queue_shed_names[SG_SHED_N] = {
    [SG_SHED_OVERLOAD] = "overload", [SG_SHED_FULL] = "queue_full", [SG_SHED_TIMEOUT] = "timeout"};

/* Serving order of the lists. */
static const int queue_order[SG_PRIO_N] = {SG_PRIO_CRITICAL, SG_PRIO_NORMAL, SG_PRIO_SHEDDABLE};

#define QUEUE_RATE_WINDOW_MS 200u  /* drain rate: shortest window measured */
#define QUEUE_RATE_STALE_MS  1000u /* a longer window restarts, keeping the last rate */
#define QUEUE_GROW_WINDOW_MS 50u   /* a surge is seen after this much of a window */
#define QUEUE_GROW_MIN       8u    /* ... and this many requests without a slot */

const char *sg_prio_name(int prio)
{
    return prio >= 0 && prio < SG_PRIO_N ? queue_prio_names[prio] : "?";
}

const char *sg_shed_name(int reason)
{
    return reason >= 0 && reason < SG_SHED_N ? queue_shed_names[reason] : "?";
}

bool sg_qstand_observe(struct sg_qstand *s, uint64_t now_ms, uint64_t wait_ms, bool empty,
                       uint32_t target_ms, uint32_t interval_ms)
{
    if (!s->standing) {
        if (empty || wait_ms < target_ms) {
            s->above_since_ms = 0;
            return false;
        }
        if (s->above_since_ms == 0 || s->above_since_ms > now_ms) {
            s->above_since_ms = now_ms;
            if (interval_ms > 0 && !s->growing)
                return false;
        }
        if (s->growing)
            interval_ms = 0;
        if (now_ms - s->above_since_ms < interval_ms)
            return false;
        s->standing = true;
        s->above_since_ms = 0;
        s->calm_since_ms = 0;
        return true;
    }
    if (!empty && wait_ms * 2 >= target_ms) {
        s->calm_since_ms = 0;
        return false;
    }
    if (s->calm_since_ms == 0 || s->calm_since_ms > now_ms) {
        s->calm_since_ms = now_ms;
        if (interval_ms > 0)
            return false;
    }
    if (now_ms - s->calm_since_ms < interval_ms)
        return false;
    s->standing = false;
    s->calm_since_ms = 0;
    s->above_since_ms = 0;
    return true;
}

enum sg_qverdict sg_queue_verdict(const struct sg_qpolicy *pol, int prio, bool standing,
                                  uint32_t depth, uint32_t ahead, double drain)
{
    if (depth >= pol->maxqueue)
        return SG_QV_FULL;
    if (pol->target_ms == 0 || !(drain > 0))
        return SG_QV_ADMIT;
    /* Standing, a sheddable request waits for nothing: served after every
     * normal and critical one, it would starve until timeouts.queue. */
    if (standing && prio == SG_PRIO_SHEDDABLE)
        return SG_QV_OVERLOAD;
    /* Standing, a normal request is admitted when its expected wait is
     * within three quarters of the target: the waits scatter around the
     * estimate (service times, the rate's own error), and three quarters
     * keeps nearly all of them under the target. */
    double limit = pol->timeout_ms;
    if (standing && prio == SG_PRIO_NORMAL)
        limit = pol->target_ms * 0.75;
    if (limit > pol->timeout_ms)
        limit = pol->timeout_ms;
    double wait_ms = ((double)ahead + 1.0) * 1000.0 / drain;
    return wait_ms <= limit ? SG_QV_ADMIT : SG_QV_OVERLOAD;
}

uint32_t sg_queue_retry_after(uint32_t depth, double drain)
{
    if (!(drain > 0))
        return 1;
    double s = ceil((double)depth / drain);
    return s < 1 ? 1 : s > 60 ? 60 : (uint32_t)s;
}

uint32_t sg_queue_retry_after_now(const struct sg_pool *pool)
{
    const struct sg_pqueue *q = &pool->queue;
    return sg_queue_retry_after(atomic_load_explicit(&q->depth, memory_order_relaxed),
                                atomic_load_explicit(&q->drain_rps, memory_order_relaxed));
}

/* Detector observation under the pool lock; publishes the state. Returns
 * true when the queue began to stand. */
static bool queue_observe(struct sg_pool *pool, uint64_t now, uint64_t wait_ms, bool empty)
{
    struct sg_pqueue *q = &pool->queue;
    const struct sg_cfg_queue *qc = &pool->cfg->queue;
    if (qc->target_ms == 0)
        return false;
    if (!sg_qstand_observe(&q->st, now, wait_ms, empty, qc->target_ms, qc->interval_ms))
        return false;
    atomic_store_explicit(&q->standing, q->st.standing, memory_order_relaxed);
    if (q->st.standing)
        atomic_fetch_add_explicit(&q->episodes, 1, memory_order_relaxed);
    return q->st.standing;
}

static void queue_unlink(struct sg_pqueue *q, struct sg_qentry *e);
static bool queue_can_grow(const struct sg_pool *pool);
static int queue_prio(const struct sg_qentry *e);

/* Takes e out of the queue and hands it to its owner without a slot
 * (granted NULL: refused with 503), counted as shed for `reason`. Pool lock
 * held. */
static void queue_refuse(struct sg_worker *w, struct sg_pqueue *q, struct sg_qentry *e, int reason)
{
    queue_unlink(q, e);
    atomic_fetch_add_explicit(&q->shed[queue_prio(e)][reason], 1, memory_order_relaxed);
    struct sg_inbox *ib = e->inbox;
    pthread_mutex_lock(&ib->mu);
    e->st = SG_Q_GRANTED;
    e->granted = NULL;
    TAILQ_INSERT_TAIL(&ib->q, e, link);
    pthread_mutex_unlock(&ib->mu);
    ib->notify(ib->arg, ib == &w->inbox);
}

/* The queue began to stand: the sheddable requests waiting would starve
 * behind every other until timeouts.queue, so they are refused now (handed
 * to their owners without a slot: granted NULL). Pool lock held. */
static void queue_refuse_sheddable(struct sg_worker *w, struct sg_pool *pool)
{
    struct sg_pqueue *q = &pool->queue;
    struct sg_qentry *e;
    if (queue_can_grow(pool))
        return;
    while ((e = TAILQ_FIRST(&q->q[SG_PRIO_SHEDDABLE])) != NULL)
        queue_refuse(w, q, e, SG_SHED_OVERLOAD);
}

/* A full queue and a request of priority pr: the newest waiting request of
 * the lowest priority below pr makes room for it (refused now, so its
 * client hears at once). Returns false when none waits below pr. Pool
 * lock held. */
static bool queue_evict_below(struct sg_worker *w, struct sg_pqueue *q, int pr)
{
    for (int i = SG_PRIO_N - 1; i >= 0 && queue_order[i] != pr; i--) {
        struct sg_qentry *e = TAILQ_LAST(&q->q[queue_order[i]], sg_qlist);
        if (e != NULL) {
            queue_refuse(w, q, e, SG_SHED_FULL);
            return true;
        }
    }
    return false;
}

/* Measures the drain rate (completions per second) over windows of at least
 * QUEUE_RATE_WINDOW_MS while the pool is saturated, and whether the queue
 * grows (more requests find no slot than complete; judged from
 * QUEUE_GROW_WINDOW_MS into a window); pool lock held. A window longer than
 * QUEUE_RATE_STALE_MS (the pool was not saturated meanwhile) says little of
 * its capacity: it restarts and the last rate stays. */
static void queue_drain_update(struct sg_pqueue *q, uint64_t now)
{
    uint64_t done = atomic_load_explicit(&q->done, memory_order_relaxed);
    if (q->rate_t0_ms == 0 || now < q->rate_t0_ms || now - q->rate_t0_ms > QUEUE_RATE_STALE_MS) {
        q->rate_t0_ms = now;
        q->rate_n0 = done;
        memcpy(q->demand_n0, q->demand, sizeof(q->demand_n0));
        q->st.growing = false;
        return;
    }
    uint64_t dt = now - q->rate_t0_ms;
    if (dt < QUEUE_GROW_WINDOW_MS)
        return;
    uint64_t served = done - q->rate_n0;
    if (dt < QUEUE_RATE_WINDOW_MS) {
        /* Early in a window: enough to see a surge, and a first rate. */
        uint64_t demand = 0;
        for (int i = 0; i < SG_PRIO_N; i++)
            demand += q->demand[i] - q->demand_n0[i];
        q->st.growing = demand >= QUEUE_GROW_MIN && (double)demand > 1.1 * (double)served;
        if (!(q->drain > 0) && served > 0) {
            q->drain = (double)served * 1000.0 / (double)dt;
            atomic_store_explicit(&q->drain_rps, (uint32_t)(q->drain + 0.5), memory_order_relaxed);
        }
        return;
    }
    double r = (double)served * 1000.0 / (double)dt;
    q->drain = q->drain > 0 ? 0.5 * q->drain + 0.5 * r : r;
    /* Requests of a higher priority cut in ahead of those already waiting:
     * a request's wait is what is ahead of it over what the pool drains
     * minus that rate (sg_queue_admit). */
    uint64_t demand = 0;
    double before = 0;
    for (int i = 0; i < SG_PRIO_N; i++) {
        int pr = queue_order[i];
        uint64_t n = q->demand[pr] - q->demand_n0[pr];
        double rate = (double)n * 1000.0 / (double)dt;
        q->cuts_in[pr] = q->cuts_in[pr] > 0 ? 0.5 * q->cuts_in[pr] + 0.5 * before : before;
        before += rate;
        demand += n;
    }
    memcpy(q->demand_n0, q->demand, sizeof(q->demand_n0));
    /* A surge: a tenth more requests found no slot in this window than
     * the pool finished (sg_qstand_observe then stands without waiting
     * an interval). */
    q->st.growing = demand >= QUEUE_GROW_MIN && (double)demand > 1.1 * (double)served;
    q->rate_t0_ms = now;
    q->rate_n0 = done;
    atomic_store_explicit(&q->drain_rps, (uint32_t)(q->drain + 0.5), memory_order_relaxed);
}

/* Requests of priority prio or higher waiting now; pool lock held. */
static uint32_t queue_ahead(const struct sg_pqueue *q, int prio)
{
    uint32_t n = 0;
    for (int i = 0; i < SG_PRIO_N; i++) {
        n += q->nq[queue_order[i]];
        if (queue_order[i] == prio)
            break;
    }
    return n;
}

static int queue_prio(const struct sg_qentry *e)
{
    return e->prio >= 0 && e->prio < SG_PRIO_N ? e->prio : SG_PRIO_NORMAL;
}

/* Links e in; pool lock held. */
static void queue_link(struct sg_worker *w, struct sg_pqueue *q, struct sg_qentry *e,
                       uint32_t depth)
{
    int pr = queue_prio(e);
    e->inbox = &w->inbox;
    e->st = SG_Q_WAITING;
    e->granted = NULL;
    TAILQ_INSERT_TAIL(&q->q[pr], e, link);
    q->nq[pr]++;
    atomic_fetch_add_explicit(&q->queued[pr], 1, memory_order_relaxed);
    atomic_store_explicit(&q->depth, depth + 1, memory_order_relaxed);
    queue_note_max(&q->depth_max, depth + 1);
    if (e->pref != NULL) {
        uint32_t bd = atomic_fetch_add_explicit(&e->pref->queue_depth, 1, memory_order_relaxed);
        queue_note_max(&e->pref->queue_depth_max, bd + 1);
    }
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
    queue_link(w, q, e, depth);
    pthread_mutex_unlock(&q->mu);
    /* A slot may have freed between the failed pick and the push. */
    sg_queue_kick(w, e->pool);
    return true;
}

/* An autoscaled pool below its max may still get backends: its queue is
 * the scale-up signal and holds what can be served within timeouts.queue,
 * so the standing limits wait until it is at its max (dry_run too: it
 * decides as a real one would). */
static bool queue_can_grow(const struct sg_pool *pool)
{
    const struct sg_cfg_autoscale *as = &pool->cfg->autoscale;
    /* The group the autoscaler scales (not an operator's own additions). */
    return as->enabled && atomic_load_explicit(&pool->ngroup, memory_order_relaxed) < as->max;
}

enum sg_qverdict sg_queue_admit(struct sg_worker *w, struct sg_qentry *e, uint32_t timeout_ms,
                                uint32_t *retry_after)
{
    struct sg_pool *pool = e->pool;
    struct sg_pqueue *q = &pool->queue;
    int pr = queue_prio(e);
    struct sg_qpolicy pol = {.target_ms = pool->cfg->queue.target_ms,
                             .timeout_ms = timeout_ms,
                             .maxqueue = pool->cfg->maxqueue};
    uint64_t now = sg_now_ms();
    pthread_mutex_lock(&q->mu);
    uint32_t depth = atomic_load_explicit(&q->depth, memory_order_relaxed);
    q->demand[pr]++;
    queue_drain_update(q, now);
    if (depth == 0)
        queue_observe(pool, now, 0, true);
    /* What drains for this priority: higher ones are served first. */
    double drain = q->drain - q->cuts_in[pr];
    if (drain < q->drain * 0.05)
        drain = q->drain * 0.05;
    /* A growing queue (a surge under way) is held to the same limits as a
     * standing one: waiting for it to stand would admit requests that wait
     * far past the target. */
    bool standing = (q->st.standing || q->st.growing) && !queue_can_grow(pool);
    enum sg_qverdict v = sg_queue_verdict(&pol, pr, standing, depth, queue_ahead(q, pr), drain);
    if (v == SG_QV_FULL && queue_evict_below(w, q, pr)) {
        depth--;
        v = sg_queue_verdict(&pol, pr, standing, depth, queue_ahead(q, pr), drain);
    }
    if (v != SG_QV_ADMIT) {
        *retry_after = sg_queue_retry_after(depth, q->drain);
        pthread_mutex_unlock(&q->mu);
        if (v == SG_QV_FULL)
            atomic_fetch_add_explicit(&q->overflows, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&q->shed[pr][v == SG_QV_FULL ? SG_SHED_FULL : SG_SHED_OVERLOAD],
                                  1, memory_order_relaxed);
        return v;
    }
    queue_link(w, q, e, depth);
    pthread_mutex_unlock(&q->mu);
    sg_queue_kick(w, pool);
    return SG_QV_ADMIT;
}

void sg_queue_count_timeout(struct sg_pool *pool, int prio)
{
    int pr = prio >= 0 && prio < SG_PRIO_N ? prio : SG_PRIO_NORMAL;
    atomic_fetch_add_explicit(&pool->queue.shed[pr][SG_SHED_TIMEOUT], 1, memory_order_relaxed);
}

void sg_queue_count_admitted(struct sg_pool *pool, int prio)
{
    int pr = prio >= 0 && prio < SG_PRIO_N ? prio : SG_PRIO_NORMAL;
    atomic_fetch_add_explicit(&pool->queue.admitted[pr], 1, memory_order_relaxed);
}

void sg_queue_tick(struct sg_pool *pool)
{
    struct sg_pqueue *q = &pool->queue;
    if (!atomic_load_explicit(&q->standing, memory_order_relaxed))
        return;
    uint64_t now = sg_now_ms();
    pthread_mutex_lock(&q->mu);
    if (atomic_load_explicit(&q->depth, memory_order_relaxed) == 0)
        queue_observe(pool, now, 0, true);
    pthread_mutex_unlock(&q->mu);
}

/* Removes a waiting entry; pool lock held. */
static void queue_unlink(struct sg_pqueue *q, struct sg_qentry *e)
{
    int pr = queue_prio(e);
    TAILQ_REMOVE(&q->q[pr], e, link);
    q->nq[pr]--;
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

/* When the oldest request waiting was queued (monotonic ms); pool lock held,
 * queue not empty. */
static uint64_t queue_oldest(const struct sg_pqueue *q)
{
    uint64_t since = UINT64_MAX;
    for (int i = 0; i < SG_PRIO_N; i++) {
        const struct sg_qentry *h = TAILQ_FIRST(&q->q[i]);
        if (h != NULL && h->since_ms < since)
            since = h->since_ms;
    }
    return since;
}

/* The next entry to serve: the highest priority's oldest, or its newest
 * when `lifo`; pool lock held. */
static struct sg_qentry *queue_next(struct sg_pqueue *q, bool lifo)
{
    for (int i = 0; i < SG_PRIO_N; i++) {
        struct sg_qlist *l = &q->q[queue_order[i]];
        if (!TAILQ_EMPTY(l))
            return lifo ? TAILQ_LAST(l, sg_qlist) : TAILQ_FIRST(l);
    }
    return NULL;
}

void sg_queue_kick(struct sg_worker *w, struct sg_pool *pool)
{
    struct sg_pqueue *q = &pool->queue;
    if (atomic_load_explicit(&q->depth, memory_order_relaxed) == 0)
        return;
    void *lbst = sg_wpool_lb_state(&w->wpools[pool->id]);
    uint64_t now = sg_now_ms();
    pthread_mutex_lock(&q->mu);
    queue_drain_update(q, now);
    struct sg_qentry *e;
    while ((e = queue_next(q, pool->cfg->queue.lifo && q->st.standing)) != NULL) {
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
            break; /* the next in order waits, and so does everyone behind it */
        /* The detector sees the age of the oldest request waiting (this one
         * included): served in FIFO order with one priority that is this
         * one's wait; with priorities or LIFO the request served may have
         * jumped the queue, and its wait says nothing of the others'. */
        uint64_t since = queue_oldest(q);
        queue_unlink(q, e);
        if (queue_observe(pool, now, now > since ? now - since : 0, false))
            queue_refuse_sheddable(w, pool);
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
    atomic_fetch_add_explicit(&b->pool->queue.done, 1, memory_order_relaxed);
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
