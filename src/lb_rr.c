/* lb_rr.c: smooth weighted round-robin (each pick adds every weight to its
 * backend's running score and takes the highest, then subtracts the total
 * from the winner), which interleaves heavier backends instead of sending
 * them bursts. State is per worker, so no lock is needed. */
#include <stdlib.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"

struct rr_state {
    size_t n;
    int64_t current[]; /* running score per backend */
};

static void *rr_state_new(const struct sg_pool *pool)
{
    struct rr_state *st = calloc(1, sizeof(*st) + pool->nbackends * sizeof(int64_t));
    if (st != NULL)
        st->n = pool->nbackends;
    return st;
}

static void rr_state_free(void *state)
{
    free(state);
}

static struct sg_backend *rr_pick(void *state, const struct sg_pool *pool,
                                  const struct sg_lb_req *req)
{
    struct rr_state *st = state;
    bool backup = sg_lb_use_backup(pool, req);
    uint64_t now = sg_lb_now(req);
    int64_t total = 0;
    struct sg_backend *best = NULL;
    int64_t *best_cur = NULL;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_ && i < st->n; i++) {
        struct sg_backend *b = &pool->backends[i];
        if (!sg_lb_eligible(b, req, backup))
            continue;
        int64_t wt = sg_backend_weight(b, now);
        st->current[i] += wt;
        total += wt;
        if (best == NULL || st->current[i] > *best_cur) {
            best = b;
            best_cur = &st->current[i];
        }
    }
    if (best != NULL)
        *best_cur -= total;
    return best;
}

const struct sg_lb_ops sg_lb_roundrobin = {
    .name = "roundrobin",
    .state_new = rr_state_new,
    .state_free = rr_state_free,
    .pick = rr_pick,
};
