/* gate.h: one frontend's connection limit shared by the workers (see
 * gate-t.h). Every function but init/destroy may be called from any worker
 * thread at once; each costs one or two atomic operations on the gate when
 * no worker waits. */
#ifndef SURGEGATE_GATE_H
#define SURGEGATE_GATE_H

#include "surgegate/gate-t.h"

/* Sets up g for maxconn connections (0 counts as 1) over nworkers workers,
 * none of them with a wake function yet. Main thread, before the workers
 * run. */
void sg_gate_init(struct sg_gate *g, uint32_t maxconn, uint32_t nworkers);
void sg_gate_destroy(struct sg_gate *g);

/* How worker `id` is woken when it waits and a slot comes free. Main
 * thread (sg_worker_new), before the workers run. */
void sg_gate_set_wake(struct sg_gate *g, uint32_t id, void (*wake)(void *arg), void *arg);

/* Takes a slot: true, or false when all maxconn are taken. */
bool sg_gate_take(struct sg_gate *g);

/* After a failed sg_gate_take, worker `id` (which has stopped accepting)
 * asks to be woken when a slot comes free. Returns false: it is registered
 * and its wake function will run once a slot is given back. Returns true: a
 * slot came free in the meantime and the registration is withdrawn: take
 * again (the wake function may still run once, harmlessly). */
bool sg_gate_wait(struct sg_gate *g, uint32_t id);

/* Gives a slot back and wakes every waiting worker through its wake
 * function, except worker `self` (UINT32_MAX: none): true when self was
 * waiting, for the caller to resume accepting itself. */
bool sg_gate_put(struct sg_gate *g, uint32_t self);

/* Slots taken now (a snapshot). */
uint32_t sg_gate_count(const struct sg_gate *g);

#endif
