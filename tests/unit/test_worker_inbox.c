/* Unit tests for the worker inbox: queue grants that cross threads. Real
 * workers (sg_worker_new, no frontend) over a pool built by hand: a grant
 * made on another thread wakes the owner through its eventfd and on_grant
 * runs on the owner's loop; a grant made by the owner itself runs on its
 * next loop turn; a cancel racing with a grant gives the slot back exactly
 * once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "surgegate/cfg-t.h"
#include "surgegate/common.h"
#include "surgegate/queue.h"
#include "surgegate/worker.h"
#include "unit_pool.h"

static struct sg_cfg cfg;
static struct unit_pool up;

static int setup(void **state)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.timeouts.connect_ms = 1000;
    cfg.timeouts.client_ms = 1000;
    cfg.timeouts.server_ms = 1000;
    cfg.timeouts.upstream_idle_ms = 1000;
    cfg.timeouts.grace_ms = 1000;
    cfg.timeouts.queue_ms = 1000;
    cfg.io_uring = false;
    cfg.sched_batch = false;
    unit_pool_init(&up, 1, 1, NULL);
    return 0;
}

static int teardown(void **state)
{
    unit_pool_destroy(&up);
    return 0;
}

/* What on_grant saw. */
static _Atomic unsigned ngrants;
static pthread_t grant_thread;
static struct sg_backend *grant_slot;

static void rec_on_grant(struct sg_qentry *e)
{
    grant_thread = pthread_self();
    grant_slot = e->granted;
    e->granted = NULL;
    atomic_fetch_add_explicit(&ngrants, 1, memory_order_release);
}

static void entry_init(struct sg_qentry *e)
{
    memset(e, 0, sizeof(*e));
    e->pool = &up.pool;
    e->pref = &up.b[0];
    e->on_grant = rec_on_grant;
}

/* Waits (at most 5 s) for n grants to have run. */
static bool wait_grants(unsigned n)
{
    for (int i = 0; i < 5000; i++) {
        if (atomic_load_explicit(&ngrants, memory_order_acquire) >= n)
            return true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Worker a runs its loop on its own thread; this thread, acting as worker b,
 * frees the slot: the grant reaches a's loop and on_grant runs there. */
static void test_grant_from_other_thread(void **state)
{
    atomic_store(&ngrants, 0);
    struct sg_worker *a = sg_worker_new(0, 2, &cfg, &up.pools, NULL, NULL);
    struct sg_worker *b = sg_worker_new(1, 2, &cfg, &up.pools, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    struct sg_backend *be = &up.b[0];
    assert_true(sg_backend_take_slot(be, sg_now_ms()));
    struct sg_qentry e;
    entry_init(&e);
    assert_true(sg_queue_push(a, &e, 10)); /* before a's thread starts: a's side */
    assert_int_equal(sg_worker_start(a), SG_OK);

    sg_queue_put_slot(b, be);
    assert_true(wait_grants(1));
    assert_true(pthread_equal(grant_thread, a->thread));
    assert_ptr_equal(grant_slot, be);
    assert_int_equal(atomic_load(&be->inflight), 1);
    assert_int_equal(e.st, SG_Q_NONE);

    sg_worker_stop(a);
    sg_worker_join(a);
    assert_true(atomic_load(&a->done));
    assert_int_equal(atomic_load(&ngrants), 1);
    sg_backend_put_slot(be);
    sg_worker_free(a);
    sg_worker_free(b);
}

/* A grant made by the owner itself is not run inside the call that made it
 * (the caller may be in the middle of a session's teardown): it runs on
 * the owner's next loop turn. */
static void test_grant_on_own_thread_runs_next_turn(void **state)
{
    atomic_store(&ngrants, 0);
    struct sg_worker *a = sg_worker_new(0, 1, &cfg, &up.pools, NULL, NULL);
    assert_non_null(a);
    struct sg_backend *be = &up.b[0];
    assert_true(sg_backend_take_slot(be, sg_now_ms()));
    struct sg_qentry e;
    entry_init(&e);
    assert_true(sg_queue_push(a, &e, 10));
    sg_queue_put_slot(a, be);
    assert_int_equal(e.st, SG_Q_GRANTED);
    assert_int_equal(atomic_load(&ngrants), 0);
    event_base_loop(a->base, EVLOOP_NONBLOCK);
    assert_int_equal(atomic_load(&ngrants), 1);
    assert_ptr_equal(grant_slot, be);
    assert_true(pthread_equal(grant_thread, pthread_self()));
    sg_backend_put_slot(be);
    sg_worker_free(a);
}

/* The other side of the race: worker b's thread frees the slot (and so
 * grants it to a's entry) while a cancels the entry. */
struct racer {
    struct sg_worker *b;
    pthread_barrier_t go, done;
    unsigned rounds;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    for (unsigned i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->go);
        sg_queue_put_slot(r->b, &up.b[0]);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

/* Whichever wins, the slot comes back exactly once: the cancel either takes
 * the entry out of the queue before the grant (the freed slot stays free)
 * or out of a's inbox after it (and gives the granted slot back); on_grant
 * never runs. */
static void test_cancel_races_grant(void **state)
{
    atomic_store(&ngrants, 0);
    struct sg_worker *a = sg_worker_new(0, 2, &cfg, &up.pools, NULL, NULL);
    struct racer r = {.b = sg_worker_new(1, 2, &cfg, &up.pools, NULL, NULL), .rounds = 1000};
    assert_non_null(a);
    assert_non_null(r.b);
    pthread_barrier_init(&r.go, NULL, 2);
    pthread_barrier_init(&r.done, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, racer_main, &r), 0);
    struct sg_backend *be = &up.b[0];
    struct sg_qentry e;
    entry_init(&e);
    for (unsigned i = 0; i < r.rounds; i++) {
        assert_true(sg_backend_take_slot(be, sg_now_ms()));
        assert_true(sg_queue_push(a, &e, 10));
        assert_int_equal(e.st, SG_Q_WAITING);
        pthread_barrier_wait(&r.go);
        sg_queue_cancel(a, &e);
        pthread_barrier_wait(&r.done);
        assert_int_equal(e.st, SG_Q_NONE);
        assert_int_equal(atomic_load(&be->inflight), 0);
        assert_int_equal(atomic_load(&up.pool.queue.depth), 0);
        assert_int_equal(atomic_load(&be->queue_depth), 0);
    }
    pthread_join(t, NULL);
    /* Each grant that beat the cancel woke a once (its eventfd counts them). */
    uint64_t wakes = 0;
    (void)!read(a->wake_fd, &wakes, sizeof(wakes));
    print_message("grant before cancel in %llu of %u rounds\n", (unsigned long long)wakes,
                  r.rounds);
    assert_true(wakes <= r.rounds);
    sg_queue_run_inbox(a);
    assert_true(TAILQ_EMPTY(&a->inbox.q));
    assert_int_equal(atomic_load(&ngrants), 0);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    sg_worker_free(a);
    sg_worker_free(r.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grant_from_other_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grant_on_own_thread_runs_next_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_races_grant, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
