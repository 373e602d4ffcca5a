/* pool.h: building runtime pools from the config. */
#ifndef SURGEGATE_POOL_H
#define SURGEGATE_POOL_H

#include "surgegate/pool-t.h"

/* Builds every pool of cfg (which must outlive the pools). SG_OK or SG_ERR
 * (unknown balancer: cannot happen with a checked config). Main thread. */
int sg_pools_build(struct sg_pools *ps, const struct sg_cfg *cfg);
void sg_pools_free(struct sg_pools *ps);

/* True when the backend may take new requests. Any thread. */
static inline bool sg_backend_usable(const struct sg_backend *b)
{
    return atomic_load_explicit(&b->state, memory_order_relaxed) == SG_BACKEND_UP && b->weight > 0;
}

#endif
