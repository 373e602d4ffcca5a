/* Unit tests for queue.c: admission FIFO, grants through the owner's inbox,
 * cancel (waiting or granted), maxqueue, kicks; priorities, the overload
 * control's pure parts (standing detection, verdict, Retry-After), adaptive
 * LIFO and drain-rate admission. The workers here are bare
 * struct sg_worker with an inbox whose notify callback records the wakeups
 * (no event loop, no thread): queue.c needs nothing else of a worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/queue.h"
#include "surgegate/worker-t.h"
#include "surgegate/wpool.h"
#include "unit_pool.h"

struct fake_worker {
    struct sg_worker w;
    unsigned notified, same_thread; /* notify calls, of which same-thread */
};

static void fake_notify(void *arg, bool same_thread)
{
    struct fake_worker *fw = arg;
    fw->notified++;
    if (same_thread)
        fw->same_thread++;
}

static void fake_worker_init(struct fake_worker *fw, struct unit_pool *up)
{
    memset(fw, 0, sizeof(*fw));
    fw->w.magic = SG_WORKER_MAGIC;
    fw->w.pools = &up->pools;
    fw->w.wpools = sg_xcalloc(1, sizeof(struct sg_wpool));
    assert_int_equal(sg_wpool_init(&fw->w.wpools[0], &up->pool), SG_OK);
    sg_inbox_init(&fw->w.inbox, fake_notify, fw);
}

static void fake_worker_destroy(struct fake_worker *fw)
{
    assert_true(TAILQ_EMPTY(&fw->w.inbox.q));
    sg_inbox_destroy(&fw->w.inbox);
    sg_wpool_destroy(&fw->w.wpools[0]);
    free(fw->w.wpools);
}

/* on_grant records the order of grants and the slot each one got. */
static struct sg_qentry *granted_order[16];
static struct sg_backend *granted_slot[16];
static unsigned ngranted;

static void rec_on_grant(struct sg_qentry *e)
{
    assert_true(ngranted < 16);
    assert_int_equal(e->st, SG_Q_NONE); /* out of the inbox before it runs */
    granted_order[ngranted] = e;
    granted_slot[ngranted] = e->granted;
    ngranted++;
    e->granted = NULL; /* the owner takes the slot over */
}

static void entry_init(struct sg_qentry *e, struct unit_pool *up, struct sg_backend *pref,
                       uint64_t since_ms)
{
    memset(e, 0, sizeof(*e));
    e->pool = &up->pool;
    e->pref = pref;
    e->since_ms = since_ms;
    e->on_grant = rec_on_grant;
}

static uint32_t depth(struct unit_pool *up)
{
    return atomic_load(&up->pool.queue.depth);
}

static uint32_t inflight(struct sg_backend *b)
{
    return atomic_load(&b->inflight);
}

static int setup(void **state)
{
    ngranted = 0;
    memset(granted_order, 0, sizeof(granted_order));
    memset(granted_slot, 0, sizeof(granted_slot));
    return 0;
}

/* One backend, maxconn 1, held: three entries wait; each freed slot goes to
 * the head, through the owner's inbox, and on_grant runs only when the
 * owner runs its inbox. */
static void test_grant_fifo_through_inbox(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));

    struct sg_qentry e[3];
    for (int i = 0; i < 3; i++) {
        entry_init(&e[i], &up, b, 100 + (uint64_t)i);
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
        assert_int_equal(e[i].st, SG_Q_WAITING);
        assert_ptr_equal(e[i].inbox, &fw.w.inbox);
    }
    assert_int_equal(depth(&up), 3);
    assert_int_equal(atomic_load(&b->queue_depth), 3);
    assert_int_equal(atomic_load(&up.pool.queue.depth_max), 3);
    assert_int_equal(fw.notified, 0);

    for (unsigned k = 0; k < 3; k++) {
        sg_queue_put_slot(&fw.w, b);      /* the request holding the slot ends */
        assert_int_equal(inflight(b), 1); /* taken again at once for the head */
        assert_int_equal(e[k].st, SG_Q_GRANTED);
        assert_ptr_equal(e[k].granted, b);
        assert_int_equal(depth(&up), 2 - k);
        assert_int_equal(atomic_load(&b->queue_depth), 2 - k);
        assert_int_equal(fw.notified, k + 1);
        assert_int_equal(fw.same_thread, k + 1); /* granted by the owner itself */
        assert_int_equal(ngranted, k);           /* not run inside the kick */
        sg_queue_run_inbox(&fw.w);
        assert_int_equal(ngranted, k + 1);
        assert_ptr_equal(granted_order[k], &e[k]);
        assert_ptr_equal(granted_slot[k], b);
        assert_int_equal(e[k].st, SG_Q_NONE);
    }
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(inflight(b), 0);
    sg_queue_run_inbox(&fw.w); /* empty: nothing runs */
    assert_int_equal(ngranted, 3);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* Several slots open at once: one kick grants them in FIFO order. */
static void test_kick_grants_many_in_order(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 2, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    assert_true(sg_backend_take_slot(&up.b[0], sg_now_ms()));
    assert_true(sg_backend_take_slot(&up.b[1], sg_now_ms()));
    struct sg_qentry e[3];
    for (int i = 0; i < 3; i++) {
        entry_init(&e[i], &up, NULL, (uint64_t)i);
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    sg_backend_put_slot(&up.b[0]);
    sg_backend_put_slot(&up.b[1]);
    assert_int_equal(depth(&up), 3); /* nobody kicked yet */
    sg_queue_kick(&fw.w, &up.pool);
    assert_int_equal(depth(&up), 1);
    assert_int_equal(fw.notified, 2);
    assert_int_equal(e[2].st, SG_Q_WAITING); /* the third waits: no room left */
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 2);
    assert_ptr_equal(granted_order[0], &e[0]);
    assert_ptr_equal(granted_order[1], &e[1]);
    assert_ptr_not_equal(granted_slot[0], granted_slot[1]); /* one slot on each backend */
    sg_queue_cancel(&fw.w, &e[2]);
    sg_queue_put_slot(&fw.w, granted_slot[0]);
    sg_queue_put_slot(&fw.w, granted_slot[1]);
    assert_int_equal(inflight(&up.b[0]) + inflight(&up.b[1]), 0);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* Cancel while waiting: out of the queue, depths back, idempotent; the
 * entries behind keep their turn. */
static void test_cancel_waiting(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e[3];
    for (int i = 0; i < 3; i++) {
        entry_init(&e[i], &up, b, (uint64_t)i);
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    sg_queue_cancel(&fw.w, &e[0]);
    assert_int_equal(e[0].st, SG_Q_NONE);
    assert_int_equal(depth(&up), 2);
    assert_int_equal(atomic_load(&b->queue_depth), 2);
    sg_queue_cancel(&fw.w, &e[0]); /* idempotent */
    assert_int_equal(depth(&up), 2);
    assert_int_equal(atomic_load(&b->queue_depth), 2);
    assert_int_equal(inflight(b), 1);

    sg_queue_put_slot(&fw.w, b);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 1);
    assert_ptr_equal(granted_order[0], &e[1]);

    sg_queue_cancel(&fw.w, &e[2]);
    assert_int_equal(depth(&up), 0);
    assert_int_equal(atomic_load(&b->queue_depth), 0);
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(inflight(b), 0);
    assert_int_equal(fw.notified, 1);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* Cancel after the grant, before the inbox ran: the entry leaves the inbox,
 * its slot is given back (and goes on to the next waiter), on_grant never
 * runs. */
static void test_cancel_after_grant(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e[2];
    entry_init(&e[0], &up, b, 1);
    entry_init(&e[1], &up, b, 2);
    assert_true(sg_queue_push(&fw.w, &e[0], 10));
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(e[0].st, SG_Q_GRANTED);
    assert_int_equal(inflight(b), 1);

    sg_queue_cancel(&fw.w, &e[0]);
    assert_int_equal(e[0].st, SG_Q_NONE);
    assert_null(e[0].granted);
    assert_int_equal(inflight(b), 0); /* given back */
    sg_queue_cancel(&fw.w, &e[0]);    /* idempotent: not given back twice */
    assert_int_equal(inflight(b), 0);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 0);

    /* Again with a waiter behind: the slot given back goes to it. */
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    assert_true(sg_queue_push(&fw.w, &e[0], 10));
    assert_true(sg_queue_push(&fw.w, &e[1], 10));
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(e[0].st, SG_Q_GRANTED);
    sg_queue_cancel(&fw.w, &e[0]);
    assert_int_equal(e[1].st, SG_Q_GRANTED);
    assert_int_equal(inflight(b), 1);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 1);
    assert_ptr_equal(granted_order[0], &e[1]);
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(inflight(b), 0);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* maxqueue reached: push refuses, counts an overflow, leaves the entry out. */
static void test_maxqueue_full(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e[3];
    for (int i = 0; i < 3; i++)
        entry_init(&e[i], &up, b, (uint64_t)i);
    assert_true(sg_queue_push(&fw.w, &e[0], 2));
    assert_true(sg_queue_push(&fw.w, &e[1], 2));
    assert_false(sg_queue_push(&fw.w, &e[2], 2));
    assert_int_equal(e[2].st, SG_Q_NONE);
    assert_int_equal(depth(&up), 2);
    assert_int_equal(atomic_load(&b->queue_depth), 2);
    assert_int_equal(atomic_load(&up.pool.queue.overflows), 1);
    sg_queue_cancel(&fw.w, &e[2]); /* never queued: nothing to do */
    assert_int_equal(depth(&up), 2);
    /* room again once one leaves */
    sg_queue_cancel(&fw.w, &e[0]);
    assert_true(sg_queue_push(&fw.w, &e[2], 2));
    assert_int_equal(depth(&up), 2);
    sg_queue_cancel(&fw.w, &e[1]);
    sg_queue_cancel(&fw.w, &e[2]);
    assert_int_equal(depth(&up), 0);
    sg_backend_put_slot(b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* The queue keeps arrival order, so since_ms never decreases from head to
 * tail, and the head is the one whose queue timeout expires first. Taking
 * out timed-out entries (the session's timer cancels them), at the head or
 * in the middle, leaves the others in order, and grants follow that order. */
static void test_timeout_order(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e[5];
    for (int i = 0; i < 5; i++) {
        entry_init(&e[i], &up, b, 1000 + 10 * (uint64_t)i);
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    sg_queue_cancel(&fw.w, &e[0]); /* head timed out */
    sg_queue_cancel(&fw.w, &e[2]); /* one in the middle gave up */
    const struct sg_qentry *want[] = {&e[1], &e[3], &e[4]};
    size_t n = 0;
    uint64_t last = 0;
    struct sg_qentry *it;
    TAILQ_FOREACH(it, &up.pool.queue.q[SG_PRIO_NORMAL], link)
    {
        assert_true(n < 3);
        assert_ptr_equal(it, want[n]);
        assert_true(it->since_ms >= last);
        last = it->since_ms;
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(depth(&up), 3);
    for (unsigned k = 0; k < 3; k++) {
        sg_queue_put_slot(&fw.w, b);
        sg_queue_run_inbox(&fw.w);
    }
    assert_int_equal(ngranted, 3);
    for (unsigned k = 0; k < 3; k++)
        assert_ptr_equal(granted_order[k], want[k]);
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(inflight(b), 0);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* A kick grants only when a slot has opened: not while the backend is full
 * or down; at once when it has room or comes back up. A kick of an empty
 * queue does nothing. */
static void test_kick_when_slot_opens(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    sg_queue_kick(&fw.w, &up.pool); /* empty queue */
    assert_int_equal(fw.notified, 0);

    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e;
    entry_init(&e, &up, b, 1);
    assert_true(sg_queue_push(&fw.w, &e, 10));
    sg_queue_kick(&fw.w, &up.pool);
    assert_int_equal(e.st, SG_Q_WAITING);

    /* room, but the backend is down: nothing */
    sg_backend_put_slot(b);
    atomic_store(&b->health, SG_HEALTH_DOWN);
    sg_queue_kick(&fw.w, &up.pool);
    assert_int_equal(e.st, SG_Q_WAITING);
    assert_int_equal(inflight(b), 0);

    /* back up: the kick (worker_kick does it) grants */
    atomic_store(&b->health, SG_HEALTH_UP);
    sg_queue_kick(&fw.w, &up.pool);
    assert_int_equal(e.st, SG_Q_GRANTED);
    assert_int_equal(inflight(b), 1);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 1);
    sg_queue_put_slot(&fw.w, b);

    /* maxconn raised (slot opens without a request ending) */
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    assert_true(sg_queue_push(&fw.w, &e, 10));
    assert_int_equal(e.st, SG_Q_WAITING);
    atomic_store(&b->maxconn, 2);
    sg_queue_kick(&fw.w, &up.pool);
    assert_int_equal(e.st, SG_Q_GRANTED);
    assert_int_equal(inflight(b), 2);
    sg_queue_cancel(&fw.w, &e);
    assert_int_equal(inflight(b), 1);
    sg_backend_put_slot(b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* The request already tried backend 0: with room on both, the grant is on
 * backend 1; when only the tried one has room, it will do (a retry
 * elsewhere is better than none, as for the first pick). */
static void test_kick_respects_exclude(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 2, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    assert_true(sg_backend_take_slot(&up.b[0], sg_now_ms()));
    assert_true(sg_backend_take_slot(&up.b[1], sg_now_ms()));
    uint32_t tried[1] = {0};
    uint32_t ntried = 1;
    struct sg_qentry e;
    entry_init(&e, &up, NULL, 1);
    e.exclude = tried;
    e.nexclude = &ntried;
    assert_true(sg_queue_push(&fw.w, &e, 10));
    sg_backend_put_slot(&up.b[0]);
    sg_backend_put_slot(&up.b[1]);
    for (int i = 0; i < 4; i++) { /* whatever the round robin's position */
        sg_queue_kick(&fw.w, &up.pool);
        assert_int_equal(e.st, SG_Q_GRANTED);
        assert_ptr_equal(e.granted, &up.b[1]);
        sg_queue_run_inbox(&fw.w);
        sg_queue_put_slot(&fw.w, &up.b[1]);
        assert_true(sg_queue_push(&fw.w, &e, 10)); /* granted at once: room on both */
        assert_int_equal(e.st, SG_Q_GRANTED);
        assert_ptr_equal(e.granted, &up.b[1]);
        sg_queue_cancel(&fw.w, &e);
        assert_int_equal(inflight(&up.b[0]) + inflight(&up.b[1]), 0);
        assert_true(sg_backend_take_slot(&up.b[0], sg_now_ms()));
        assert_true(sg_backend_take_slot(&up.b[1], sg_now_ms()));
        assert_true(sg_queue_push(&fw.w, &e, 10));
        sg_backend_put_slot(&up.b[0]);
        sg_backend_put_slot(&up.b[1]);
    }
    sg_queue_cancel(&fw.w, &e);

    /* only the tried backend has room */
    assert_true(sg_backend_take_slot(&up.b[0], sg_now_ms()));
    assert_true(sg_backend_take_slot(&up.b[1], sg_now_ms()));
    assert_true(sg_queue_push(&fw.w, &e, 10));
    sg_queue_put_slot(&fw.w, &up.b[0]);
    assert_int_equal(e.st, SG_Q_GRANTED);
    assert_ptr_equal(e.granted, &up.b[0]);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 5);
    sg_queue_put_slot(&fw.w, &up.b[0]);
    sg_backend_put_slot(&up.b[1]);
    assert_int_equal(inflight(&up.b[0]) + inflight(&up.b[1]), 0);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* A slot freed by another worker: the grant lands in the owner's inbox and
 * the owner's notify says "another thread"; the granting worker's own inbox
 * is untouched. */
static void test_grant_to_other_worker(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker owner, other;
    fake_worker_init(&owner, &up);
    fake_worker_init(&other, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e;
    entry_init(&e, &up, b, 1);
    assert_true(sg_queue_push(&owner.w, &e, 10));
    sg_queue_put_slot(&other.w, b);
    assert_int_equal(e.st, SG_Q_GRANTED);
    assert_int_equal(owner.notified, 1);
    assert_int_equal(owner.same_thread, 0);
    assert_int_equal(other.notified, 0);
    sg_queue_run_inbox(&other.w);
    assert_int_equal(ngranted, 0);
    sg_queue_run_inbox(&owner.w);
    assert_int_equal(ngranted, 1);
    sg_queue_put_slot(&owner.w, b);
    fake_worker_destroy(&owner);
    fake_worker_destroy(&other);
    unit_pool_destroy(&up);
}

/* A kick picks with the kicking worker's balancer state, rebuilt when the
 * pool's membership changed since it was built (wpool.c). */
static void test_kick_rebuilds_lb_state(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    struct sg_qentry e;
    entry_init(&e, &up, b, 1);
    assert_true(sg_queue_push(&fw.w, &e, 10));
    atomic_fetch_add(&up.pool.members_gen, 1);
    sg_queue_put_slot(&fw.w, b);
    assert_int_equal(fw.w.wpools[0].lb_gen, 1);
    assert_non_null(fw.w.wpools[0].lb_state);
    assert_int_equal(e.st, SG_Q_GRANTED);
    sg_queue_run_inbox(&fw.w);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* Entries are served critical first, then normal, then sheddable, whatever
 * their arrival order; FIFO within a priority. */
static void test_priority_order(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    assert_true(sg_backend_take_slot(b, sg_now_ms()));
    static const int prio[5] = {SG_PRIO_SHEDDABLE, SG_PRIO_NORMAL, SG_PRIO_CRITICAL, SG_PRIO_NORMAL,
                                SG_PRIO_CRITICAL};
    struct sg_qentry e[5];
    for (int i = 0; i < 5; i++) {
        entry_init(&e[i], &up, b, sg_now_ms());
        e[i].prio = prio[i];
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    assert_int_equal(atomic_load(&up.pool.queue.queued[SG_PRIO_CRITICAL]), 2);
    assert_int_equal(atomic_load(&up.pool.queue.queued[SG_PRIO_NORMAL]), 2);
    assert_int_equal(atomic_load(&up.pool.queue.queued[SG_PRIO_SHEDDABLE]), 1);
    const struct sg_qentry *want[] = {&e[2], &e[4], &e[1], &e[3], &e[0]};
    for (unsigned k = 0; k < 5; k++) {
        sg_queue_put_slot(&fw.w, b);
        sg_queue_run_inbox(&fw.w);
        assert_int_equal(ngranted, k + 1);
        assert_ptr_equal(granted_order[k], want[k]);
    }
    assert_int_equal(depth(&up), 0);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* The detector: standing after waits >= target for a whole interval (a
 * shorter wait restarts the run); calm again after an interval of empty
 * queues or waits under target / 2 (a longer wait restarts that run). */
static void test_qstand_observe(void **state)
{
    struct sg_qstand s = {0};
    assert_false(sg_qstand_observe(&s, 1000, 150, false, 100, 1000));
    assert_false(sg_qstand_observe(&s, 1500, 150, false, 100, 1000));
    assert_false(sg_qstand_observe(&s, 1600, 50, false, 100, 1000)); /* run broken */
    assert_false(sg_qstand_observe(&s, 2000, 150, false, 100, 1000));
    assert_false(sg_qstand_observe(&s, 2999, 100, false, 100, 1000));
    assert_false(s.standing);
    assert_true(sg_qstand_observe(&s, 3000, 120, false, 100, 1000));
    assert_true(s.standing);
    assert_false(sg_qstand_observe(&s, 3100, 40, false, 100, 1000)); /* calm from here */
    assert_false(sg_qstand_observe(&s, 3500, 60, false, 100, 1000)); /* not calm: restart */
    assert_false(sg_qstand_observe(&s, 3600, 0, true, 100, 1000));   /* empty: calm */
    assert_false(sg_qstand_observe(&s, 4599, 10, false, 100, 1000));
    assert_true(s.standing);
    assert_true(sg_qstand_observe(&s, 4600, 0, true, 100, 1000));
    assert_false(s.standing);
    /* an empty queue never starts an episode; interval 0 starts at once */
    assert_false(sg_qstand_observe(&s, 5000, 0, true, 100, 0));
    assert_true(sg_qstand_observe(&s, 5001, 100, false, 100, 0));
    assert_true(s.standing);
    /* growing (more arrive than drain): the first wait >= target stands */
    struct sg_qstand g = {.growing = true};
    assert_false(sg_qstand_observe(&g, 1000, 99, false, 100, 1000));
    assert_true(sg_qstand_observe(&g, 1001, 100, false, 100, 1000));
    assert_true(g.standing);
}

/* The drain-rate window also measures demand (requests that found no free
 * slot): more than a tenth above the completions marks the queue growing,
 * so a surge stands at its first wait past the target, without waiting an
 * interval; demand at or under the drain does not. */
static void test_admit_detects_growth(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.queue.target_ms = 100;
    up.cfg.queue.interval_ms = 5000;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_pqueue *q = &up.pool.queue;
    /* 20 completions in the window and 20 arrivals: steady, not growing */
    q->rate_t0_ms = now - 300;
    q->rate_n0 = 0;
    q->demand[SG_PRIO_NORMAL] = 19; /* sg_queue_admit counts the 20th */
    atomic_store(&q->done, 20);
    struct sg_qentry e[3];
    uint32_t ra = 0;
    entry_init(&e[0], &up, b, now - 150); /* waited 150 ms already */
    assert_int_equal(sg_queue_admit(&fw.w, &e[0], 2000, &ra), SG_QV_ADMIT);
    assert_false(q->st.growing);
    /* next window: 40 arrivals against 20 completions */
    q->rate_t0_ms = now - 300;
    q->rate_n0 = 20;
    q->demand[SG_PRIO_NORMAL] += 39;
    atomic_store(&q->done, 40);
    entry_init(&e[1], &up, b, now);
    assert_int_equal(sg_queue_admit(&fw.w, &e[1], 2000, &ra), SG_QV_ADMIT);
    assert_true(q->st.growing);
    assert_false(atomic_load(&q->standing));
    /* the grant sees the oldest wait (150 ms >= target): stands at once */
    sg_queue_put_slot(&fw.w, b);
    assert_true(atomic_load(&q->standing));
    sg_queue_run_inbox(&fw.w);
    assert_ptr_equal(granted_order[0], &e[0]);
    sg_queue_cancel(&fw.w, &e[1]);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* A full queue: a request makes room by refusing the newest waiting request
 * of the lowest priority below its own (counted as shed "queue_full");
 * with nothing below it, it is refused itself. */
static void test_full_evicts_lower_priority(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.maxqueue = 3;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_pqueue *q = &up.pool.queue;
    static const int prio[6] = {SG_PRIO_NORMAL,   SG_PRIO_SHEDDABLE, SG_PRIO_SHEDDABLE,
                                SG_PRIO_CRITICAL, SG_PRIO_CRITICAL,  SG_PRIO_NORMAL};
    struct sg_qentry e[6];
    uint32_t ra = 0;
    for (int i = 0; i < 3; i++) {
        entry_init(&e[i], &up, b, now);
        e[i].prio = prio[i];
        assert_int_equal(sg_queue_admit(&fw.w, &e[i], 2000, &ra), SG_QV_ADMIT);
    }
    /* critical: the newest sheddable (e[2]) goes, then the other (e[1]) */
    for (int i = 3; i < 5; i++) {
        entry_init(&e[i], &up, b, now);
        e[i].prio = prio[i];
        assert_int_equal(sg_queue_admit(&fw.w, &e[i], 2000, &ra), SG_QV_ADMIT);
        assert_int_equal(depth(&up), 3);
    }
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 2);
    assert_ptr_equal(granted_order[0], &e[2]);
    assert_null(granted_slot[0]);
    assert_ptr_equal(granted_order[1], &e[1]);
    assert_null(granted_slot[1]);
    assert_int_equal(atomic_load(&q->shed[SG_PRIO_SHEDDABLE][SG_SHED_FULL]), 2);
    /* normal: nothing below it waits any more */
    entry_init(&e[5], &up, b, now);
    e[5].prio = prio[5];
    assert_int_equal(sg_queue_admit(&fw.w, &e[5], 2000, &ra), SG_QV_FULL);
    assert_int_equal(atomic_load(&q->shed[SG_PRIO_NORMAL][SG_SHED_FULL]), 1);
    /* critical first, then the normal one */
    sg_queue_put_slot(&fw.w, b);
    sg_queue_run_inbox(&fw.w);
    assert_ptr_equal(granted_order[2], &e[3]);
    assert_ptr_equal(granted_slot[2], b);
    sg_queue_cancel(&fw.w, &e[4]);
    sg_queue_cancel(&fw.w, &e[0]);
    assert_int_equal(depth(&up), 0);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* The verdict: maxqueue first; then the expected wait (ahead + 1) / drain
 * against timeouts.queue, and while standing against the priority's limit. */
static void test_verdict(void **state)
{
    struct sg_qpolicy pol = {.target_ms = 100, .timeout_ms = 2000, .maxqueue = 1000};
    /* not standing: anything served within timeouts.queue may wait */
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, false, 100, 100, 400.0), SG_QV_ADMIT);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, false, 799, 799, 400.0), SG_QV_ADMIT);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, false, 800, 800, 400.0),
                     SG_QV_OVERLOAD);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_SHEDDABLE, false, 200, 200, 400.0),
                     SG_QV_ADMIT);
    /* standing: normal within 3/4 of the target (75 ms = 30 at 400/s) */
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, true, 29, 29, 400.0), SG_QV_ADMIT);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, true, 30, 30, 400.0), SG_QV_OVERLOAD);
    /* sheddable: never queued while standing */
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_SHEDDABLE, true, 0, 0, 400.0), SG_QV_OVERLOAD);
    /* critical: only the critical ahead count, within timeouts.queue */
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_CRITICAL, true, 900, 500, 400.0), SG_QV_ADMIT);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_CRITICAL, true, 900, 800, 400.0),
                     SG_QV_OVERLOAD);
    /* full beats everything; unknown drain or control off: admit */
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_CRITICAL, false, 1000, 0, 400.0), SG_QV_FULL);
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, true, 999, 999, 0.0), SG_QV_ADMIT);
    pol.target_ms = 0;
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, true, 999, 999, 400.0), SG_QV_ADMIT);
    pol.maxqueue = 0;
    assert_int_equal(sg_queue_verdict(&pol, SG_PRIO_NORMAL, false, 0, 0, 400.0), SG_QV_FULL);
}

/* Retry-After: the time to drain the queue, rounded up, 1..60 s. */
static void test_retry_after(void **state)
{
    assert_int_equal(sg_queue_retry_after(0, 400.0), 1);
    assert_int_equal(sg_queue_retry_after(800, 400.0), 2);
    assert_int_equal(sg_queue_retry_after(801, 400.0), 3);
    assert_int_equal(sg_queue_retry_after(30, 10.0), 3);
    assert_int_equal(sg_queue_retry_after(100000, 10.0), 60);
    assert_int_equal(sg_queue_retry_after(5, 0.0), 1);
    assert_string_equal(sg_prio_name(SG_PRIO_CRITICAL), "critical");
    assert_string_equal(sg_prio_name(SG_PRIO_SHEDDABLE), "sheddable");
    assert_string_equal(sg_prio_name(SG_PRIO_NORMAL), "normal");
    assert_string_equal(sg_shed_name(SG_SHED_OVERLOAD), "overload");
    assert_string_equal(sg_prio_name(7), "?");
}

/* A queue whose waits pass the target starts standing at the first grant
 * (interval 0 here); with lifo the rest is served newest first, and the
 * episode is counted. */
static void test_lifo_when_standing(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.queue.target_ms = 10;
    up.cfg.queue.interval_ms = 0;
    up.cfg.queue.lifo = true;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_qentry e[4];
    for (int i = 0; i < 4; i++) {
        entry_init(&e[i], &up, b, now - 1000 + (uint64_t)i);
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    assert_false(atomic_load(&up.pool.queue.standing));
    const struct sg_qentry *want[] = {&e[0], &e[3], &e[2], &e[1]};
    for (unsigned k = 0; k < 4; k++) {
        sg_queue_put_slot(&fw.w, b);
        sg_queue_run_inbox(&fw.w);
        assert_ptr_equal(granted_order[k], want[k]);
        assert_true(atomic_load(&up.pool.queue.standing));
    }
    assert_int_equal(atomic_load(&up.pool.queue.episodes), 1);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* sg_queue_admit measures the drain rate (slots given back per second) and,
 * the queue standing, refuses a normal request whose expected wait passes
 * three quarters of the target (counted as shed, Retry-After from depth / drain) while a
 * critical one still gets in. */
static void test_admit_sheds_by_drain_rate(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.queue.target_ms = 100;
    up.cfg.queue.interval_ms = 1000;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_pqueue *q = &up.pool.queue;
    /* 70 completions over the last 500 ms: 140 per second */
    q->rate_t0_ms = now - 500;
    q->rate_n0 = 0;
    atomic_store(&q->done, 70);
    q->st.standing = true;
    atomic_store(&q->standing, true);
    struct sg_qentry e[12];
    uint32_t ra = 0;
    for (int i = 0; i < 10; i++) { /* waits 7 .. 71 ms at 140/s (limit 75) */
        entry_init(&e[i], &up, b, now);
        assert_int_equal(sg_queue_admit(&fw.w, &e[i], 2000, &ra), SG_QV_ADMIT);
    }
    assert_true(q->drain > 135 && q->drain < 145);
    assert_true(atomic_load(&q->drain_rps) >= 135 && atomic_load(&q->drain_rps) <= 145);
    entry_init(&e[10], &up, b, now);
    assert_int_equal(sg_queue_admit(&fw.w, &e[10], 2000, &ra), SG_QV_OVERLOAD);
    assert_int_equal(ra, 1);
    assert_int_equal(e[10].st, SG_Q_NONE);
    assert_int_equal(atomic_load(&q->shed[SG_PRIO_NORMAL][SG_SHED_OVERLOAD]), 1);
    entry_init(&e[11], &up, b, now);
    e[11].prio = SG_PRIO_CRITICAL;
    assert_int_equal(sg_queue_admit(&fw.w, &e[11], 2000, &ra), SG_QV_ADMIT);
    assert_int_equal(depth(&up), 11);
    /* the critical one is served first */
    sg_queue_put_slot(&fw.w, b);
    sg_queue_run_inbox(&fw.w);
    assert_ptr_equal(granted_order[0], &e[11]);
    for (int i = 0; i < 10; i++)
        sg_queue_cancel(&fw.w, &e[i]);
    assert_int_equal(depth(&up), 0);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* An autoscaled pool below its max keeps queueing while standing (its queue
 * is the scale-up signal); at its max the standing limits apply. */
static void test_admit_autoscale_below_max(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.queue.target_ms = 100;
    up.cfg.queue.interval_ms = 1000;
    up.cfg.autoscale.enabled = true;
    up.cfg.autoscale.max = 2;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_pqueue *q = &up.pool.queue;
    q->drain = 10.0; /* 100 ms per request */
    q->st.standing = true;
    struct sg_qentry e[3];
    uint32_t ra = 0;
    for (int i = 0; i < 3; i++) /* waits 100, 200, 300 ms: only the timeout limits */
        entry_init(&e[i], &up, b, now);
    assert_int_equal(sg_queue_admit(&fw.w, &e[0], 2000, &ra), SG_QV_ADMIT);
    assert_int_equal(sg_queue_admit(&fw.w, &e[1], 2000, &ra), SG_QV_ADMIT);
    atomic_store(&up.pool.ngroup, 2); /* at its max */
    assert_int_equal(sg_queue_admit(&fw.w, &e[2], 2000, &ra), SG_QV_OVERLOAD);
    for (int i = 0; i < 2; i++)
        sg_queue_cancel(&fw.w, &e[i]);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

/* When the queue begins to stand, the sheddable requests already waiting are
 * refused at once: handed to their owner without a slot (granted NULL). */
static void test_standing_refuses_sheddable(void **state)
{
    struct unit_pool up;
    unit_pool_init(&up, 1, 1, NULL);
    up.cfg.queue.target_ms = 10;
    up.cfg.queue.interval_ms = 0;
    struct fake_worker fw;
    fake_worker_init(&fw, &up);
    struct sg_backend *b = &up.b[0];
    uint64_t now = sg_now_ms();
    assert_true(sg_backend_take_slot(b, now));
    struct sg_qentry e[3];
    for (int i = 0; i < 3; i++) {
        entry_init(&e[i], &up, b, now - 1000);
        e[i].prio = i == 0 ? SG_PRIO_NORMAL : SG_PRIO_SHEDDABLE;
        assert_true(sg_queue_push(&fw.w, &e[i], 10));
    }
    sg_queue_put_slot(&fw.w, b); /* e[0] served; its wait starts the episode */
    assert_true(atomic_load(&up.pool.queue.standing));
    assert_int_equal(depth(&up), 0);
    sg_queue_run_inbox(&fw.w);
    assert_int_equal(ngranted, 3);
    assert_ptr_equal(granted_order[0], &e[1]); /* the refusals were delivered first */
    assert_null(granted_slot[0]);
    assert_ptr_equal(granted_order[1], &e[2]);
    assert_null(granted_slot[1]);
    assert_ptr_equal(granted_order[2], &e[0]);
    assert_ptr_equal(granted_slot[2], b);
    assert_int_equal(atomic_load(&up.pool.queue.shed[SG_PRIO_SHEDDABLE][SG_SHED_OVERLOAD]), 2);
    assert_int_equal(inflight(b), 1);
    sg_queue_put_slot(&fw.w, b);
    fake_worker_destroy(&fw);
    unit_pool_destroy(&up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_grant_fifo_through_inbox, setup),
        cmocka_unit_test_setup(test_kick_grants_many_in_order, setup),
        cmocka_unit_test_setup(test_cancel_waiting, setup),
        cmocka_unit_test_setup(test_cancel_after_grant, setup),
        cmocka_unit_test_setup(test_maxqueue_full, setup),
        cmocka_unit_test_setup(test_timeout_order, setup),
        cmocka_unit_test_setup(test_kick_when_slot_opens, setup),
        cmocka_unit_test_setup(test_kick_respects_exclude, setup),
        cmocka_unit_test_setup(test_grant_to_other_worker, setup),
        cmocka_unit_test_setup(test_kick_rebuilds_lb_state, setup),
        cmocka_unit_test_setup(test_priority_order, setup),
        cmocka_unit_test(test_qstand_observe),
        cmocka_unit_test_setup(test_admit_detects_growth, setup),
        cmocka_unit_test_setup(test_full_evicts_lower_priority, setup),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test_setup(test_lifo_when_standing, setup),
        cmocka_unit_test_setup(test_admit_sheds_by_drain_rate, setup),
        cmocka_unit_test_setup(test_admit_autoscale_below_max, setup),
        cmocka_unit_test_setup(test_standing_refuses_sheddable, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
