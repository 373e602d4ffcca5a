/* outlier.h: passive outlier detection. Workers report every response or
 * failed attempt; consecutive 5xx / gateway errors eject a backend for a
 * while (longer each time it happens again), within a per-pool cap on how
 * many backends may be ejected at once. The control thread ends ejections.
 *
 * Who writes what (struct sg_backend, struct sg_pool):
 *  - b->consec_errors: any worker (atomics).
 *  - b->eject_until 0 -> end time: the one worker whose compare-and-swap wins,
 *    after it reserved a place in pool->nejected. Non-zero -> 0, and the
 *    release of that place: the control thread only (sg_outlier_tick,
 *    sg_outlier_end). So a non-zero eject_until always holds one place.
 *  - b->nejections: although declared with the control-thread fields, it is
 *    incremented by the ejecting worker and reset by the control thread while
 *    the backend is not ejected; both sides use atomic builtins on it. Read it
 *    with sg_outlier_nejections(), not directly.
 *  - b->state_since_ms, b->reason: the control thread only. */
#ifndef SURGEGATE_OUTLIER_H
#define SURGEGATE_OUTLIER_H

#include <stdbool.h>
#include <stdint.h>

#include "surgegate/pool-t.h"

/* Records the outcome of one request or attempt on b. failure: a 5xx
 * response or a gateway error (connect failure, reset, timeout). A success
 * clears the run of consecutive errors; a failure extends it, and when the
 * run reaches the pool's outlier.consecutive_errors (0 = detection off) and
 * the pool's max_ejection_percent allows it (one backend may always be
 * ejected), ejects b until now_ms + min(base_ejection x (ejections so far
 * + 1), max_ejection) and logs it. Any thread; lock-free; never blocks
 * except for the one log line of an ejection. Returns true when this call
 * ejected b. */
bool sg_outlier_observe(struct sg_backend *b, bool failure, uint64_t now_ms);

/* Control thread, periodically (health.c runs it every 100 ms):
 *  - an ejected backend whose time is up returns (sg_outlier_end), then
 *    on_change(b, arg), unless its pool has health checks: then it stays
 *    out until health.c sees a check pass after that time (so a backend
 *    that stopped answering while ejected does not return);
 *  - an ejection a worker made since the last tick is recorded in
 *    b->state_since_ms and b->reason ("ejected: 5 consecutive errors"), then
 *    on_change(b, arg);
 *  - a backend with no state change for 5 x max_ejection has its ejection
 *    count reset, so the next ejection is short again.
 * on_change may be NULL. now_ms: sg_now_ms(). */
void sg_outlier_tick(struct sg_pools *pools, uint64_t now_ms,
                     void (*on_change)(struct sg_backend *b, void *arg), void *arg);

/* Ends b's ejection now, if it is ejected: eject_until = 0, releases its
 * place in pool->nejected, sets state_since_ms and reason (`why`, e.g.
 * "health check passed"), logs "backend X of pool 'p' returns after
 * ejection". Returns true when b was ejected; the caller then tells whoever
 * needs to know (on_change). Control thread only. */
bool sg_outlier_end(struct sg_backend *b, const char *why);

/* Number of ejections counted for b (the multiplier of the next ejection's
 * length, minus one). Any thread. */
uint32_t sg_outlier_nejections(const struct sg_backend *b);

#endif
