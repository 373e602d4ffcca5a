/* lb_common.c: what every balancer shares, and the only balancer code the
 * algorithms call (lb.h, lb-internal.h):
 *   - the rules of eligibility: backups only when no primary is usable,
 *     exclusions of backends already tried, room under maxconn;
 *   - the per-state PRNG and the weighted sampler of eligible backends.
 * A leaf under the algorithms (lb_*.c): it calls none of them, nor the
 * registry (lb.c) nor pool.c; per-backend facts come from backend.c.
 *
 * The sampler draws a backend from an alias table built once over the
 * configured weights (O(1)), then accepts it when it is eligible now, with
 * probability weight-now / configured-weight (slow start ramps the weight
 * down). Accepted draws are therefore exactly proportional to the current
 * weight among eligible backends. When too many proposals in a row are
 * rejected (most of the set is down, excluded or full), an exact linear scan
 * takes over, so a pick returns NULL only when nothing is eligible. */
#include <stdatomic.h>
#include <stdlib.h>

#include "lb-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"

/* ---------------------------------------------------------- eligibility */

bool sg_lb_excluded(const struct sg_lb_req *req, uint32_t id)
{
    if (req == NULL)
        return false;
    for (size_t i = 0; i < req->nexclude; i++)
        if (req->exclude[i] == id)
            return true;
    return false;
}

uint64_t sg_lb_now(const struct sg_lb_req *req)
{
    return req != NULL && req->now_ms != 0 ? req->now_ms : sg_now_ms();
}

bool sg_lb_use_backup(const struct sg_pool *pool, const struct sg_lb_req *req)
{
    uint64_t now = sg_lb_now(req);
    bool any_backup = false;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        const struct sg_backend *b = &pool->backends[i];
        if (b->backup) {
            any_backup = true;
            continue;
        }
        if (sg_backend_usable(b, now) && !sg_lb_excluded(req, b->id))
            return false;
    }
    return any_backup;
}

bool sg_lb_eligible(const struct sg_backend *b, const struct sg_lb_req *req, bool backup)
{
    uint64_t now = sg_lb_now(req);
    if (b->backup != backup || !sg_backend_usable(b, now) || sg_lb_excluded(req, b->id))
        return false;
    return (req != NULL && req->ignore_room) || sg_backend_has_room(b, now);
}

/* ---------------------------------------------------- PRNG and sampler */

/* Rejected proposals before the scan: with half the weight eligible the scan
 * runs once in 2^32 picks; with 10% eligible, about once in 30. */
#define LB_SAMPLE_TRIES 32

#define LB_THR_ONE      ((uint64_t)1 << 32)

static uint64_t lb_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void sg_lb_rng_seed(struct sg_lb_rng *rng, const void *salt)
{
    static _Atomic uint64_t counter;
    static _Thread_local char thread_tag; /* its address differs per thread */
    uint64_t s = lb_mix64((uint64_t)(uintptr_t)salt);
    s = lb_mix64(s ^ (uint64_t)(uintptr_t)&thread_tag);
    s = lb_mix64(s ^ sg_now_us());
    s = lb_mix64(s ^ atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed));
    rng->s = s;
}

/* ------------------------------------------------------------- sampler */

/* Fills cols[0..n) for the backends of one set (Vose's alias method in
 * integers: column weights scaled by n so the mean is `total`). */
static void lb_alias_build(struct sg_lb_alias *cols, const struct sg_pool *pool,
                           const uint32_t *ids, uint32_t n, uint64_t total, uint64_t *scaled,
                           uint32_t *small, uint32_t *large)
{
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        scaled[i] = (uint64_t)pool->backends[ids[i]].weight * n;
        cols[i].id = ids[i];
        cols[i].alias = ids[i];
        cols[i].thr = LB_THR_ONE;
        if (scaled[i] < total)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = small[--ns], l = large[--nl];
        cols[s].thr = (uint64_t)((double)scaled[s] / (double)total * (double)LB_THR_ONE);
        cols[s].alias = ids[l];
        scaled[l] -= total - scaled[s];
        if (scaled[l] < total)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    /* What is left weighs exactly `total` (integers): keeps thr = 1. */
}

int sg_lb_sampler_init(struct sg_lb_sampler *smp, const struct sg_pool *pool)
{
    *smp = (struct sg_lb_sampler){0};
    size_t nb = pool->nbackends ? pool->nbackends : 1;
    /* Scratch: ids of the set, then Vose's work lists. */
    uint32_t *ids = calloc(nb, 3 * sizeof(uint32_t));
    uint64_t *scaled = calloc(nb, sizeof(uint64_t));
    if (ids == NULL || scaled == NULL) {
        free(ids);
        free(scaled);
        return SG_ERR;
    }
    for (int set = 0; set < 2; set++) {
        uint32_t n = 0;
        uint64_t total = 0;
        for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
            const struct sg_backend *b = &pool->backends[i];
            if (b->backup == (set == 1) && b->weight > 0) {
                ids[n++] = (uint32_t)i;
                total += b->weight;
            }
        }
        if (n == 0)
            continue;
        smp->cols[set] = calloc(n, sizeof(struct sg_lb_alias));
        if (smp->cols[set] == NULL) {
            free(ids);
            free(scaled);
            sg_lb_sampler_free(smp);
            return SG_ERR;
        }
        smp->ncols[set] = n;
        lb_alias_build(smp->cols[set], pool, ids, n, total, scaled, ids + nb, ids + 2 * nb);
    }
    free(ids);
    free(scaled);
    return SG_OK;
}

void sg_lb_sampler_free(struct sg_lb_sampler *smp)
{
    free(smp->cols[0]);
    free(smp->cols[1]);
    *smp = (struct sg_lb_sampler){0};
}

/* The exact fallback: one pass over the set. */
static struct sg_backend *lb_sample_scan(struct sg_lb_rng *rng, const struct sg_pool *pool,
                                         const struct sg_lb_req *req, bool backup, uint64_t now,
                                         const struct sg_backend *avoid)
{
    uint64_t total = 0;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        const struct sg_backend *b = &pool->backends[i];
        if (b != avoid && sg_lb_eligible(b, req, backup))
            total += sg_backend_weight(b, now);
    }
    if (total == 0)
        return NULL;
    uint64_t r = sg_lb_rng_next(rng) % total;
    struct sg_backend *last = NULL;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        struct sg_backend *b = &pool->backends[i];
        if (b == avoid || !sg_lb_eligible(b, req, backup))
            continue;
        uint64_t wt = sg_backend_weight(b, now);
        if (r < wt)
            return b;
        r -= wt;
        last = b; /* a state change between the passes: take the last one */
    }
    return last;
}

struct sg_backend *sg_lb_sample(const struct sg_lb_sampler *smp, struct sg_lb_rng *rng,
                                const struct sg_pool *pool, const struct sg_lb_req *req,
                                bool backup, uint64_t now, const struct sg_backend *avoid)
{
    const struct sg_lb_alias *cols = smp->cols[backup];
    uint32_t n = smp->ncols[backup];
    for (int t = 0; n > 0 && t < LB_SAMPLE_TRIES; t++) {
        uint64_t x = sg_lb_rng_next(rng);
        const struct sg_lb_alias *c = &cols[((x >> 32) * n) >> 32];
        uint32_t id = (x & 0xffffffffu) < c->thr ? c->id : c->alias;
        if (id >= sg_pool_nused(pool))
            continue;
        struct sg_backend *b = &pool->backends[id];
        if (b == avoid || !sg_lb_eligible(b, req, backup))
            continue;
        uint32_t wt = sg_backend_weight(b, now);
        uint32_t full = b->weight * SG_WEIGHT_SCALE;
        if (wt < full && sg_lb_rng_below(rng, full) >= wt)
            continue; /* slow start: accept with probability wt / weight */
        return b;
    }
    return lb_sample_scan(rng, pool, req, backup, now, avoid);
}

/* -------------------------------------------- state of "random" and "leastreq" */

void *sg_lb_sampled_new(const struct sg_pool *pool)
{
    struct sg_lb_sampled *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    if (sg_lb_sampler_init(&st->smp, pool) != SG_OK) {
        free(st);
        return NULL;
    }
    sg_lb_rng_seed(&st->rng, pool);
    return st;
}

void sg_lb_sampled_free(void *state)
{
    struct sg_lb_sampled *st = state;
    if (st == NULL)
        return;
    sg_lb_sampler_free(&st->smp);
    free(st);
}
