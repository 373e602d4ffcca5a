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

/* Picks among usable backends with `backup` equal to want_backup. */
static struct sg_backend *rr_pick_set(struct rr_state *st, const struct sg_pool *pool,
                                      const struct sg_lb_req *req, bool want_backup)
{
    int64_t total = 0;
    struct sg_backend *best = NULL;
    int64_t *best_cur = NULL;
    for (size_t i = 0; i < pool->nbackends && i < st->n; i++) {
        struct sg_backend *b = &pool->backends[i];
        if (b->backup != want_backup || !sg_backend_usable(b) || sg_lb_excluded(req, b->id))
            continue;
        st->current[i] += b->weight;
        total += b->weight;
        if (best == NULL || st->current[i] > *best_cur) {
            best = b;
            best_cur = &st->current[i];
        }
    }
    if (best != NULL)
        *best_cur -= total;
    return best;
}

static struct sg_backend *rr_pick(void *state, const struct sg_pool *pool,
                                  const struct sg_lb_req *req)
{
    struct rr_state *st = state;
    struct sg_backend *b = rr_pick_set(st, pool, req, false);
    if (b == NULL)
        b = rr_pick_set(st, pool, req, true);
    return b;
}

const struct sg_lb_ops sg_lb_roundrobin = {
    .name = "roundrobin",
    .state_new = rr_state_new,
    .state_free = rr_state_free,
    .pick = rr_pick,
};
