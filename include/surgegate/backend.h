/* backend.h: one backend now (backend.c): usable?, weight and maxconn with
 * slow start, request slots. A leaf that the balancers, the queue and the
 * request path call without calling pool.c. Any thread. */
#ifndef SURGEGATE_BACKEND_H
#define SURGEGATE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "surgegate/pool-t.h"

/* The slot holds a backend (configured or added; possibly draining). */
static inline bool sg_backend_live(const struct sg_backend *b)
{
    return atomic_load_explicit(&b->admin, memory_order_acquire) != SG_ADMIN_EMPTY;
}

/* True when the backend may take new requests: ready (not drain/maint),
 * health UP (not down, not checking), not ejected, weight > 0. now_ms is
 * unused (an ejection lasts until the control thread ends it); kept for the
 * callers' symmetry with the weight and maxconn. Any thread. */
bool sg_backend_usable(const struct sg_backend *b, uint64_t now_ms);

/* Weights inside the balancers are in 1/SG_WEIGHT_SCALE units, so that even
 * a backend of weight 1 can ramp up smoothly during slow start. */
#define SG_WEIGHT_SCALE 16u

/* Weight now, in 1/SG_WEIGHT_SCALE units: the configured weight x
 * SG_WEIGHT_SCALE, ramped linearly during slow start (at least 1 unit while
 * ramping). Only ratios between backends matter to the balancers. */
uint32_t sg_backend_weight(const struct sg_backend *b, uint64_t now_ms);

/* maxconn now (0 = unlimited), ramped like the weight during slow start. */
uint32_t sg_backend_maxconn(const struct sg_backend *b, uint64_t now_ms);

/* True when one more request fits under sg_backend_maxconn(). */
bool sg_backend_has_room(const struct sg_backend *b, uint64_t now_ms);

/* Reserves a request slot (inflight + 1) when there is room; false when the
 * backend is at maxconn. sg_backend_put_slot() gives it back. */
bool sg_backend_take_slot(struct sg_backend *b, uint64_t now_ms);
void sg_backend_put_slot(struct sg_backend *b);

#endif
