/* gate.c: one frontend's connection limit shared by the workers (gate-t.h).
 *
 * No lock: the count is changed by compare-and-swap (so it never exceeds
 * maxconn, not even for a moment that would fail another worker's take),
 * and a worker that finds the gate full is never left asleep with a slot
 * free. That takes a handshake in two steps on each side, all sequentially
 * consistent: a waiter sets its flag, then reads the count; a giver lowers
 * the count, then reads the waiter count. Whichever comes second sees the
 * other's write: either the giver finds the flag and wakes the waiter, or
 * the waiter sees the free slot and takes again. */
#include <stdlib.h>

#include "surgegate/common.h"
#include "surgegate/gate.h"

void sg_gate_init(struct sg_gate *g, uint32_t maxconn, uint32_t nworkers)
{
    atomic_init(&g->nconn, 0);
    atomic_init(&g->nwaiting, 0);
    g->maxconn = maxconn > 0 ? maxconn : 1;
    g->nworkers = nworkers;
    g->waiters = sg_xcalloc(nworkers > 0 ? nworkers : 1, sizeof(*g->waiters));
    for (uint32_t i = 0; i < nworkers; i++)
        atomic_init(&g->waiters[i].waiting, false);
}

void sg_gate_destroy(struct sg_gate *g)
{
    free(g->waiters);
    g->waiters = NULL;
}

void sg_gate_set_wake(struct sg_gate *g, uint32_t id, void (*wake)(void *arg), void *arg)
{
    SG_BUG_ON(id >= g->nworkers);
    g->waiters[id].wake = wake;
    g->waiters[id].arg = arg;
}

bool sg_gate_take(struct sg_gate *g)
{
    uint32_t n = atomic_load(&g->nconn);
    do {
        if (n >= g->maxconn)
            return false;
    } while (!atomic_compare_exchange_weak(&g->nconn, &n, n + 1));
    return true;
}

/* Withdraws worker id's registration when it is still there. */
static void gate_unwait(struct sg_gate *g, uint32_t id)
{
    if (atomic_exchange(&g->waiters[id].waiting, false))
        atomic_fetch_sub(&g->nwaiting, 1);
}

bool sg_gate_wait(struct sg_gate *g, uint32_t id)
{
    SG_BUG_ON(id >= g->nworkers);
    /* Only worker id sets its flag (others clear it): count first, so that
     * nwaiting is never below the flags set. */
    if (!atomic_load(&g->waiters[id].waiting)) {
        atomic_fetch_add(&g->nwaiting, 1);
        atomic_store(&g->waiters[id].waiting, true);
    }
    if (atomic_load(&g->nconn) < g->maxconn) {
        gate_unwait(g, id);
        return true;
    }
    return false;
}

bool sg_gate_put(struct sg_gate *g, uint32_t self)
{
    uint32_t was = atomic_fetch_sub(&g->nconn, 1);
    SG_BUG_ON(was == 0);
    if (atomic_load(&g->nwaiting) == 0)
        return false;
    bool self_waited = false;
    for (uint32_t i = 0; i < g->nworkers; i++) {
        if (!atomic_exchange(&g->waiters[i].waiting, false))
            continue;
        atomic_fetch_sub(&g->nwaiting, 1);
        if (i == self)
            self_waited = true;
        else if (g->waiters[i].wake != NULL)
            g->waiters[i].wake(g->waiters[i].arg);
    }
    return self_waited;
}

uint32_t sg_gate_count(const struct sg_gate *g)
{
    return atomic_load(&g->nconn);
}
