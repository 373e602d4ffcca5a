/* health.h: active health checks (TCP connect or HTTP status) of every
 * backend of every pool with checks on (the default; `health = { enabled =
 * false; }` turns them off), and the periodic outlier tick (outlier.h), all
 * on the main thread's event_base. */
#ifndef SURGEGATE_HEALTH_H
#define SURGEGATE_HEALTH_H

#include "surgegate/health-t.h"
#include "surgegate/pool-t.h"

struct event_base;

/* Starts checking every backend of every pool whose cfg->health.enabled,
 * on `base` (the main thread's): the first check of each backend falls at a
 * random point of the first interval, later ones every interval (+-10%),
 * every fast_interval while a state is changing, every down_interval while a
 * backend is down. fall consecutive failed checks take an UP backend DOWN
 * (b->health, and b->down_gen + 1), rise consecutive passed checks bring a
 * DOWN one back, the first passed check a CHECKING one (added at runtime).
 * An outlier ejection whose time is up gets a check at once and ends at the
 * first passed check. Also runs sg_outlier_tick() every 100 ms, whether or
 * not any pool has checks.
 *
 * on_change(b, arg) (may be NULL) runs on the main thread after b->health,
 * b->eject_until, b->state_since_ms and b->reason changed; it must not call
 * sg_health_stop(). pools must outlive the checker. Main thread only.
 * Returns NULL (and logs why) on a fatal error, e.g. no memory for events. */
struct sg_health *sg_health_start(struct event_base *base, struct sg_pools *pools,
                                  void (*on_change)(struct sg_backend *b, void *arg), void *arg);

/* A backend was added to a slot at runtime (sg_pool_add_backend, CHECKING
 * when its pool has checks): starts checking it within 100 ms. Returns
 * whether it does (false: its pool has no checks; it was added UP). h may
 * be NULL. Main thread. */
bool sg_health_backend_added(struct sg_health *h, struct sg_backend *b);

/* Stops every check (closing the sockets of checks in progress) and frees
 * h and all its events. NULL is a no-op. Main thread only; never from a
 * health or on_change callback. */
void sg_health_stop(struct sg_health *h);

#endif
