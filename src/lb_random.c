/* lb_random.c: weighted random choice ("random"): one draw of the shared
 * sampler (lb_common.c) per pick, proportional to each eligible backend's
 * weight now. */
#include "lb-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"

static struct sg_backend *rnd_pick(void *state, const struct sg_pool *pool,
                                   const struct sg_lb_req *req)
{
    struct sg_lb_sampled *st = state;
    bool backup = sg_lb_use_backup(pool, req);
    return sg_lb_sample(&st->smp, &st->rng, pool, req, backup, sg_lb_now(req), NULL);
}

const struct sg_lb_ops sg_lb_random = {
    .name = "random",
    .state_new = sg_lb_sampled_new,
    .state_free = sg_lb_sampled_free,
    .pick = rnd_pick,
};
