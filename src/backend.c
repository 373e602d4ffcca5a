/* backend.c: what one backend can take now (pool.h): usable or not, its
 * weight and maxconn during slow start, and its request slots. Asked by the
 * balancers (lb_common.c, lb_*.c), the queue and the request path on every
 * pick, from any thread, without a lock (relaxed atomics, CAS). A leaf:
 * it calls nothing of the pools or the balancers. */
#include <stdatomic.h>

#include "surgegate/backend.h"
#include "surgegate/common.h"

bool sg_backend_usable(const struct sg_backend *b, uint64_t now_ms)
{
    /* An ejection counts until the control thread ends it (outlier.c: at
     * its end, or with health checks on at the first passing check after
     * it), not merely until its time is up. */
    return atomic_load_explicit(&b->admin, memory_order_relaxed) == SG_ADMIN_READY &&
           atomic_load_explicit(&b->health, memory_order_relaxed) == SG_HEALTH_UP &&
           b->weight != 0 && atomic_load_explicit(&b->eject_until, memory_order_relaxed) == 0;
}

/* The slow-start fraction as (elapsed, span), or span 0 when not ramping. */
static uint32_t backend_ramp(const struct sg_backend *b, uint64_t now_ms, uint64_t *elapsed)
{
    uint32_t span = b->pool != NULL ? b->pool->slowstart_ms : 0;
    if (span == 0)
        return 0;
    uint64_t from = atomic_load_explicit(&b->ramp_from, memory_order_relaxed);
    if (from == 0 || now_ms >= from + span)
        return 0;
    *elapsed = now_ms > from ? now_ms - from : 0;
    return span;
}

static uint32_t ramp_value(uint32_t full, uint64_t elapsed, uint32_t span)
{
    uint64_t v = ((uint64_t)full * elapsed + span - 1) / span;
    return v == 0 ? 1 : (uint32_t)v;
}

uint32_t sg_backend_weight(const struct sg_backend *b, uint64_t now_ms)
{
    uint64_t el = 0;
    uint32_t span = backend_ramp(b, now_ms, &el);
    uint32_t full = b->weight * SG_WEIGHT_SCALE;
    if (span == 0 || full == 0)
        return full;
    return ramp_value(full, el, span);
}

uint32_t sg_backend_maxconn(const struct sg_backend *b, uint64_t now_ms)
{
    uint64_t el = 0;
    uint32_t span = backend_ramp(b, now_ms, &el);
    if (span == 0 || b->maxconn == 0)
        return b->maxconn;
    return ramp_value(b->maxconn, el, span);
}

bool sg_backend_has_room(const struct sg_backend *b, uint64_t now_ms)
{
    uint32_t max = sg_backend_maxconn(b, now_ms);
    return max == 0 || atomic_load_explicit(&b->inflight, memory_order_relaxed) < max;
}

bool sg_backend_take_slot(struct sg_backend *b, uint64_t now_ms)
{
    SG_DCHECK_MAGIC(b, SG_BACKEND_MAGIC);
    uint32_t max = sg_backend_maxconn(b, now_ms);
    if (max == 0) {
        atomic_fetch_add_explicit(&b->inflight, 1, memory_order_relaxed);
        return true;
    }
    uint32_t cur = atomic_load_explicit(&b->inflight, memory_order_relaxed);
    do {
        if (cur >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->inflight, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void sg_backend_put_slot(struct sg_backend *b)
{
    SG_DCHECK_MAGIC(b, SG_BACKEND_MAGIC);
    atomic_fetch_sub_explicit(&b->inflight, 1, memory_order_relaxed);
}
