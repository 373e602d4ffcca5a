/* lb_ewma.c: peak-EWMA latency balancing ("ewma"), after Finagle's and
 * Linkerd's: each backend has a cost estimate in microseconds that reacts to
 * a slow response at once (peak) and forgets it gradually (EWMA), and a pick
 * takes the better of two weighted random candidates by
 *     cost x (inflight + 1) / weight,
 * i.e. the latency a new request should expect there, per unit of weight.
 *
 * Estimates are per worker thread (the state), fed by that worker's own
 * responses through observe(); the inflight counts are the shared ones.
 *
 * Update on a sample rtt after `elapsed` since the previous one, with
 * w = exp(-elapsed / tau), tau = 10 s:
 *     rtt above the estimate:  estimate = rtt              (peak)
 *     otherwise:               estimate = estimate * w + rtt * (1 - w)
 *
 * A backend with no sample yet is costed at the mean estimate of the sampled
 * backends of the pool (1 ms while none is sampled, when the value does not
 * matter: every backend then costs the same). A newcomer thus competes like
 * a typical backend: it is tried at once, even when the others are idle
 * (a high default would starve it until the pool is loaded), and the
 * (inflight + 1) factor slows it down as its requests pile up before the
 * first answer (a low default, or zero, would flood it for a round trip).
 *
 * Without news, an estimate above that mean relaxes toward it with the same
 * tau: a backend penalised for a slow spell gets no traffic, hence no
 * samples, and would otherwise stay penalised for ever; this way it is
 * retried like a newcomer after a few tau, and its first slow answer puts
 * the peak back. An estimate at or below the mean stays as it is (decaying
 * toward zero as Finagle does would make an idle backend look free and
 * flood it). */
#include <math.h>
#include <stdlib.h>

#include "lb-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"

#define EWMA_TAU_MS     10000.0
#define EWMA_DEFAULT_US 1000.0

struct ewma_peer {
    double est_us;     /* estimate at stamp_ms; valid when sampled */
    uint64_t stamp_ms; /* time of the last sample */
    bool sampled;
};

struct ewma_state {
    struct sg_lb_rng rng;
    struct sg_lb_sampler smp;
    double sum_us;   /* sum of est_us over the sampled peers */
    size_t nsampled; /* peers with at least one sample */
    size_t n;        /* pool->nbackends at state_new */
    struct ewma_peer peers[];
};

static void *ewma_state_new(const struct sg_pool *pool)
{
    struct ewma_state *st = calloc(1, sizeof(*st) + pool->nbackends * sizeof(struct ewma_peer));
    if (st == NULL)
        return NULL;
    if (sg_lb_sampler_init(&st->smp, pool) != SG_OK) {
        free(st);
        return NULL;
    }
    st->n = pool->nbackends;
    sg_lb_rng_seed(&st->rng, pool);
    return st;
}

static void ewma_state_free(void *state)
{
    struct ewma_state *st = state;
    if (st == NULL)
        return;
    sg_lb_sampler_free(&st->smp);
    free(st);
}

static double ewma_default(const struct ewma_state *st)
{
    return st->nsampled > 0 ? st->sum_us / (double)st->nsampled : EWMA_DEFAULT_US;
}

/* exp(-elapsed / tau) for the time since p's last sample. */
static double ewma_decay(const struct ewma_peer *p, uint64_t now_ms)
{
    if (now_ms <= p->stamp_ms)
        return 1.0;
    return exp(-(double)(now_ms - p->stamp_ms) / EWMA_TAU_MS);
}

/* The estimate now (see the file comment). */
static double ewma_cost(const struct ewma_state *st, const struct ewma_peer *p, uint64_t now_ms)
{
    double mean = ewma_default(st);
    if (!p->sampled)
        return mean;
    if (p->est_us <= mean)
        return p->est_us;
    return mean + (p->est_us - mean) * ewma_decay(p, now_ms);
}

static double ewma_score(const struct ewma_state *st, const struct sg_backend *b, uint64_t now_ms)
{
    double cost = b->id < st->n ? ewma_cost(st, &st->peers[b->id], now_ms) : ewma_default(st);
    uint32_t inflight = atomic_load_explicit(&b->inflight, memory_order_relaxed);
    uint32_t wt = sg_backend_weight(b, now_ms);
    return cost * ((double)inflight + 1.0) / (double)(wt > 0 ? wt : 1);
}

static struct sg_backend *ewma_pick(void *state, const struct sg_pool *pool,
                                    const struct sg_lb_req *req)
{
    struct ewma_state *st = state;
    bool backup = sg_lb_use_backup(pool, req);
    uint64_t now = sg_lb_now(req);
    struct sg_backend *a = sg_lb_sample(&st->smp, &st->rng, pool, req, backup, now, NULL);
    if (a == NULL)
        return NULL;
    struct sg_backend *b = sg_lb_sample(&st->smp, &st->rng, pool, req, backup, now, a);
    if (b == NULL)
        return a;
    /* ties go to a, itself a random draw */
    return ewma_score(st, b, now) < ewma_score(st, a, now) ? b : a;
}

static void ewma_observe(void *state, const struct sg_backend *b, uint64_t now_ms,
                         uint64_t latency_us)
{
    struct ewma_state *st = state;
    if (b->id >= st->n)
        return;
    struct ewma_peer *p = &st->peers[b->id];
    double rtt = (double)latency_us;
    if (!p->sampled) {
        p->sampled = true;
        p->est_us = rtt;
        p->stamp_ms = now_ms;
        st->sum_us += rtt;
        st->nsampled++;
        return;
    }
    double cur = ewma_cost(st, p, now_ms);
    double est;
    if (rtt >= cur) {
        est = rtt;
    } else {
        double w = ewma_decay(p, now_ms);
        est = cur * w + rtt * (1.0 - w);
    }
    st->sum_us += est - p->est_us;
    if (st->sum_us < 0.0)
        st->sum_us = 0.0; /* rounding */
    p->est_us = est;
    if (now_ms > p->stamp_ms)
        p->stamp_ms = now_ms;
}

const struct sg_lb_ops sg_lb_ewma = {
    .name = "ewma",
    .state_new = ewma_state_new,
    .state_free = ewma_state_free,
    .pick = ewma_pick,
    .observe = ewma_observe,
};
