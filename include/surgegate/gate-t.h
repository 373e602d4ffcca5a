/* gate-t.h: one frontend's connection limit (maxconn), shared by every
 * worker.
 *
 * Each worker accepts from its own SO_REUSEPORT socket, and the kernel picks
 * the socket of a new connection by a hash of its addresses: a limit split
 * into per-worker shares strands connections in the backlog of a worker
 * whose share is used up while another has room. So the limit is one
 * counter for all workers. A worker takes a slot before each accept and
 * gives it back when the connection closes; a worker that finds no slot
 * stops accepting (its connections wait in its kernel backlog) and asks to
 * be woken: the next slot given back, by any worker, wakes every worker
 * that waits, and whichever has a connection waiting takes the slot. */
#ifndef SURGEGATE_GATE_T_H
#define SURGEGATE_GATE_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One worker's place at the gate. */
struct sg_gate_waiter {
    _Atomic bool waiting;    /* waits for a slot (set by the worker, cleared by whoever wakes it) */
    void (*wake)(void *arg); /* wakes the worker (any thread; must not block) */
    void *arg;
};

struct sg_gate {
    _Atomic uint32_t nconn;    /* slots taken: connections open or being accepted */
    _Atomic uint32_t nwaiting; /* waiters[i].waiting set; 0: give back without looking */
    uint32_t maxconn;
    uint32_t nworkers;
    struct sg_gate_waiter *waiters; /* nworkers entries */
};

#endif
