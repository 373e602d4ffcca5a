/* lb-internal.h: what the balancers (lb_*.c) share; not part of the API.
 *
 * lb_common.c implements both helpers:
 *   - sg_lb_rng: a fast PRNG, one per balancer state (so per worker thread,
 *     no lock, never rand());
 *   - sg_lb_sampler: weighted random choice among the eligible backends of a
 *     pool in O(1) expected time (alias tables over the configured weights,
 *     one per set, primaries and backups), with rejection of ineligible
 *     proposals and a linear scan only when eligible backends are rare. */
#ifndef SURGEGATE_LB_INTERNAL_H
#define SURGEGATE_LB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/lb-t.h"

/* splitmix64: one add and a 64-bit finalizer per number; 2^64 period, good
 * enough statistically for load balancing, and a state is 8 bytes. */
struct sg_lb_rng {
    uint64_t s;
};

/* Seeds rng from salt (e.g. the pool), the calling thread, the clock and a
 * process-wide counter, so two states never share a sequence. */
void sg_lb_rng_seed(struct sg_lb_rng *rng, const void *salt);

static inline uint64_t sg_lb_rng_next(struct sg_lb_rng *rng)
{
    uint64_t z = (rng->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (multiply-shift; bias below n / 2^32, negligible here).
 * n > 0. */
static inline uint32_t sg_lb_rng_below(struct sg_lb_rng *rng, uint32_t n)
{
    return (uint32_t)(((sg_lb_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

/* Alias table (Vose) over the configured weights of one set of backends:
 * column i is taken with probability thr/2^32, else its alias. */
struct sg_lb_alias {
    uint32_t id;    /* backend index of this column */
    uint32_t alias; /* backend index taken otherwise */
    uint64_t thr;   /* 0..2^32 */
};

struct sg_lb_sampler {
    struct sg_lb_alias *cols[2]; /* [0] primaries, [1] backups; NULL when empty */
    uint32_t ncols[2];
};

/* Builds the tables from pool->backends (b->weight; weight 0 gets no
 * column). SG_OK, or SG_ERR when out of memory. Any thread (state_new). */
int sg_lb_sampler_init(struct sg_lb_sampler *smp, const struct sg_pool *pool);
void sg_lb_sampler_free(struct sg_lb_sampler *smp);

/* A backend drawn at random among those with sg_lb_eligible(b, req, backup)
 * and b != avoid, with probability proportional to sg_backend_weight(b, now)
 * (slow start included); NULL when there is none. Expected O(1) while the
 * eligible backends hold a fair share of the set's configured weight; falls
 * back to an O(n) scan after a bounded number of rejected proposals. */
struct sg_backend *sg_lb_sample(const struct sg_lb_sampler *smp, struct sg_lb_rng *rng,
                                const struct sg_pool *pool, const struct sg_lb_req *req,
                                bool backup, uint64_t now, const struct sg_backend *avoid);

/* A generator and a sampler: the whole per-worker state of "random" and
 * "leastreq". */
struct sg_lb_sampled {
    struct sg_lb_rng rng;
    struct sg_lb_sampler smp;
};

/* state_new / state_free for a struct sg_lb_sampled. */
void *sg_lb_sampled_new(const struct sg_pool *pool);
void sg_lb_sampled_free(void *state);

#endif
