/* wpool.h: a worker's per-pool state (see wpool-t.h): setting it up,
 * tearing it down, and the balancer state kept current with the pool's
 * membership. Every function runs on the owning worker's thread (setup and
 * teardown also before the thread starts and after it ended). */
#ifndef SURGEGATE_WPOOL_H
#define SURGEGATE_WPOOL_H

#include <stdatomic.h>

#include "surgegate/pool-t.h"
#include "surgegate/wpool-t.h"

/* Sets up wp (zeroed by the caller) for pool p: a balancer state for p's
 * members now and one sg_wbackend per backend slot. SG_OK, or SG_ERR when the
 * balancer state could not be made (no memory); wp must be given to
 * sg_wpool_destroy either way. */
int sg_wpool_init(struct sg_wpool *wp, struct sg_pool *p);

/* Frees what sg_wpool_init made (a zeroed or half-made wp included). Idle
 * connections in wb[].idle are upstream.c's: close them first
 * (sg_upstream_close_idle). */
void sg_wpool_destroy(struct sg_wpool *wp);

/* Rebuilds wp's balancer state for the pool's members generation `gen`.
 * Owning worker only (see sg_wpool_lb_state). */
void sg_wpool_lb_rebuild(struct sg_wpool *wp, uint32_t gen);

/* The worker's balancer state for a pool, rebuilt first when backends were
 * added, removed or re-weighted since it was built. Owning worker only. */
static inline void *sg_wpool_lb_state(struct sg_wpool *wp)
{
    uint32_t gen = atomic_load_explicit(&wp->pool->members_gen, memory_order_acquire);
    if (__builtin_expect(gen != wp->lb_gen, 0))
        sg_wpool_lb_rebuild(wp, gen);
    return wp->lb_state;
}

#endif
