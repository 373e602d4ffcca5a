/* lb_lr.c: least requests by the power of two choices ("leastreq").
 *
 * Each pick draws two distinct eligible backends at random, weighted by
 * their weight now, and takes the one with the lower load
 * (inflight + 1/2) / weight: its requests per unit of weight, counting half
 * of the one being placed (see lr_pick). Two random candidates instead of the global minimum keep
 * the pick O(1) and stop every worker thread from herding onto the same
 * backend between two updates of the shared inflight counters (Mitzenmacher,
 * "The Power of Two Choices in Randomized Load Balancing").
 *
 * When both candidates carry the same number of requests (both idle
 * included) there is no load to compare: the first candidate, itself drawn
 * by weight, is taken. Comparing 1/weight there
 * would send an idle pool's traffic mostly to its heaviest backend (with
 * weights 1,1,2, five picks in six); taking the weighted draw keeps the
 * configured split at low load, and the load decides as soon as there is
 * some. Other ties also go to the first candidate, which is a random one. */
#include <stdlib.h>

#include "lb-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"

static struct sg_backend *lr_pick(void *state, const struct sg_pool *pool,
                                  const struct sg_lb_req *req)
{
    struct sg_lb_sampled *st = state;
    bool backup = sg_lb_use_backup(pool, req);
    uint64_t now = sg_lb_now(req);
    struct sg_backend *a = sg_lb_sample(&st->smp, &st->rng, pool, req, backup, now, NULL);
    if (a == NULL)
        return NULL;
    struct sg_backend *b = sg_lb_sample(&st->smp, &st->rng, pool, req, backup, now, a);
    if (b == NULL)
        return a; /* the only eligible backend */
    uint64_t ia = atomic_load_explicit(&a->inflight, memory_order_relaxed);
    uint64_t ib = atomic_load_explicit(&b->inflight, memory_order_relaxed);
    /* (ib + 1/2) / wb < (ia + 1/2) / wa, in integers. Counting the request
     * being placed in full ("+ 1") favours heavy backends beyond their
     * weight under light load, not counting it ("+ 0") favours light ones;
     * half of it keeps shares by weight across loads (measured: q01). Ties
     * keep a, itself drawn by weight, so an idle pool is shared by weight. */
    if (ia == ib)
        return a; /* equal load, idle included: a was drawn by weight */
    uint64_t wa = sg_backend_weight(a, now), wb = sg_backend_weight(b, now);
    return (2 * ib + 1) * wa < (2 * ia + 1) * wb ? b : a;
}

const struct sg_lb_ops sg_lb_leastreq = {
    .name = "leastreq",
    .state_new = sg_lb_sampled_new,
    .state_free = sg_lb_sampled_free,
    .pick = lr_pick,
};
