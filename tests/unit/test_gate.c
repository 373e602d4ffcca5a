/* Unit tests for gate.c: one frontend's connection limit shared by the
 * workers. Take and give back up to the limit; a worker that waits is woken
 * (its wake function) by a slot given back on another worker, or told to
 * take again itself; a slot freed between a failed take and the wait is
 * never lost; and, with threads, the count never passes maxconn while
 * workers race for the last slots and no waiter is left asleep. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/gate.h"

static unsigned woken[4];

static void wake(void *arg)
{
    woken[(uintptr_t)arg]++;
}

static void gate_setup(struct sg_gate *g, uint32_t maxconn, uint32_t nworkers)
{
    memset(woken, 0, sizeof(woken));
    sg_gate_init(g, maxconn, nworkers);
    for (uint32_t i = 0; i < nworkers; i++)
        sg_gate_set_wake(g, i, wake, (void *)(uintptr_t)i);
}

/* The limit is the frontend's, whichever worker takes. */
static void test_limit_across_workers(void **state)
{
    struct sg_gate g;
    gate_setup(&g, 3, 2);
    assert_true(sg_gate_take(&g));
    assert_true(sg_gate_take(&g));
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g));
    assert_int_equal(sg_gate_count(&g), 3);
    assert_false(sg_gate_put(&g, 0)); /* nobody waits: nobody woken */
    assert_int_equal(woken[0] + woken[1], 0);
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g));
    sg_gate_destroy(&g);
}

/* maxconn 0 would accept nothing: it counts as 1. */
static void test_zero_is_one(void **state)
{
    struct sg_gate g;
    gate_setup(&g, 0, 1);
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g));
    sg_gate_destroy(&g);
}

/* Worker 1 finds the gate full and waits; worker 0 gives a slot back: 1 is
 * woken once, 0 is not (it did not wait), and the slot is there to take. */
static void test_put_wakes_other_waiter(void **state)
{
    struct sg_gate g;
    gate_setup(&g, 2, 3);
    assert_true(sg_gate_take(&g));
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g));
    assert_false(sg_gate_wait(&g, 1)); /* registered */
    assert_false(sg_gate_wait(&g, 2));
    assert_false(sg_gate_wait(&g, 1)); /* again: still one registration */
    assert_false(sg_gate_put(&g, 0));
    assert_int_equal(woken[0], 0);
    assert_int_equal(woken[1], 1);
    assert_int_equal(woken[2], 1); /* every waiter: any may hold the waiting connection */
    assert_true(sg_gate_take(&g));
    /* Woken once: a later slot given back wakes nobody. */
    assert_false(sg_gate_put(&g, 0));
    assert_int_equal(woken[1], 1);
    assert_int_equal(woken[2], 1);
    assert_int_equal(atomic_load(&g.nwaiting), 0);
    sg_gate_destroy(&g);
}

/* A worker that waits and then gives back a slot itself is told so (it
 * resumes on its own), not woken through its wake function. */
static void test_put_by_waiter_itself(void **state)
{
    struct sg_gate g;
    gate_setup(&g, 1, 2);
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g));
    assert_false(sg_gate_wait(&g, 0));
    assert_true(sg_gate_put(&g, 0));
    assert_int_equal(woken[0], 0);
    assert_int_equal(woken[1], 0);
    assert_true(sg_gate_take(&g));
    sg_gate_destroy(&g);
}

/* A slot given back between the failed take and the wait: the wait sees
 * it, withdraws the registration and says take again. */
static void test_slot_freed_before_wait(void **state)
{
    struct sg_gate g;
    gate_setup(&g, 1, 2);
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_take(&g)); /* worker 1 */
    assert_false(sg_gate_put(&g, 0));
    assert_true(sg_gate_wait(&g, 1));
    assert_int_equal(atomic_load(&g.nwaiting), 0);
    assert_true(sg_gate_take(&g));
    assert_false(sg_gate_put(&g, 0)); /* no registration left: nobody woken */
    assert_int_equal(woken[1], 0);
    sg_gate_destroy(&g);
}

/* Threads as workers, each running the accept rule (take; when full, wait,
 * and when woken or told to take again, take) on a gate of 3 slots, holding
 * each slot a moment: the count never exceeds 3, and every thread gets all
 * its connections (none is left waiting with a slot free). */
#define RACE_WORKERS 4
#define RACE_CONNS   2000
#define RACE_MAX     3

struct racer {
    struct sg_gate *g;
    uint32_t id;
    _Atomic bool woken;
    _Atomic uint32_t *peak;
};

static void race_wake(void *arg)
{
    struct racer *r = arg;
    atomic_store(&r->woken, true);
}

static void *race_main(void *arg)
{
    struct racer *r = arg;
    for (unsigned n = 0; n < RACE_CONNS;) {
        if (!sg_gate_take(r->g)) {
            if (sg_gate_wait(r->g, r->id))
                continue;
            /* paused: wait for the wake (bounded: 10 s) */
            for (unsigned spin = 0; !atomic_exchange(&r->woken, false); spin++) {
                if (spin > 10 * 1000 * 1000)
                    return (void *)1;
                sched_yield();
            }
            continue;
        }
        uint32_t c = sg_gate_count(r->g);
        uint32_t p = atomic_load(r->peak);
        while (c > p && !atomic_compare_exchange_weak(r->peak, &p, c))
            ;
        n++;
        if (sg_gate_put(r->g, r->id))
            atomic_store(&r->woken, true);
    }
    return NULL;
}

static void test_race(void **state)
{
    struct sg_gate g;
    sg_gate_init(&g, RACE_MAX, RACE_WORKERS);
    _Atomic uint32_t peak = 0;
    struct racer rs[RACE_WORKERS];
    pthread_t th[RACE_WORKERS];
    for (uint32_t i = 0; i < RACE_WORKERS; i++) {
        rs[i] = (struct racer){.g = &g, .id = i, .peak = &peak};
        sg_gate_set_wake(&g, i, race_wake, &rs[i]);
    }
    for (uint32_t i = 0; i < RACE_WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &rs[i]), 0);
    for (uint32_t i = 0; i < RACE_WORKERS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv); /* a thread left asleep would time out */
    }
    assert_true(atomic_load(&peak) <= RACE_MAX);
    assert_int_equal(sg_gate_count(&g), 0);
    sg_gate_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_across_workers),   cmocka_unit_test(test_zero_is_one),
        cmocka_unit_test(test_put_wakes_other_waiter), cmocka_unit_test(test_put_by_waiter_itself),
        cmocka_unit_test(test_slot_freed_before_wait), cmocka_unit_test(test_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
