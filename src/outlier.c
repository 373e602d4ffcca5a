/* outlier.c: passive outlier detection: a run of consecutive 5xx / gateway
 * errors ejects a backend for a while (Envoy's consecutive_5xx). Workers
 * report outcomes with atomics only; the control thread ends ejections.
 * The ownership of each field is spelled out in outlier.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "surgegate/common.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"

/* Effective settings of a pool: the config's, with zero durations (a config
 * loader that did not fill them) replaced by the documented defaults. */
struct outlier_params {
    uint32_t errors; /* 0 = off */
    uint64_t base_ms, max_ms;
    uint32_t percent;
};

#define OUTLIER_DEFAULT_BASE_MS 30000u
#define OUTLIER_DEFAULT_MAX_MS  300000u
/* A backend whose state did not change for this many max_ejection spans has
 * its ejection count reset. */
#define OUTLIER_DECAY_FACTOR 5u

static void outlier_params(const struct sg_pool *pool, struct outlier_params *op)
{
    const struct sg_cfg_outlier *c = pool->cfg != NULL ? &pool->cfg->outlier : NULL;
    if (c == NULL) {
        memset(op, 0, sizeof(*op));
        return;
    }
    op->errors = c->consecutive_errors;
    op->base_ms = c->base_ejection_ms != 0 ? c->base_ejection_ms : OUTLIER_DEFAULT_BASE_MS;
    op->max_ms = c->max_ejection_ms != 0 ? c->max_ejection_ms : OUTLIER_DEFAULT_MAX_MS;
    if (op->max_ms < op->base_ms)
        op->max_ms = op->base_ms;
    op->percent = c->max_ejection_percent > 100 ? 100 : c->max_ejection_percent;
}

static uint64_t outlier_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "30s", "5m", "1500ms": durations as the config writes them. */
static void outlier_format_ms(uint64_t ms, char *buf, size_t len)
{
    if (ms >= 60000 && ms % 60000 == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

uint32_t sg_outlier_nejections(const struct sg_backend *b)
{
    return __atomic_load_n(&b->nejections, __ATOMIC_RELAXED);
}

/* Reserves one place in the pool's ejection budget: always when none is
 * ejected, else while (nejected + 1) stays within percent of the pool. */
static bool outlier_reserve(struct sg_pool *pool, uint32_t percent)
{
    uint32_t cur = atomic_load_explicit(&pool->nejected, memory_order_relaxed);
    do {
        if (cur != 0 &&
            (uint64_t)(cur + 1) * 100u >
                (uint64_t)percent * atomic_load_explicit(&pool->nlive, memory_order_relaxed))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&pool->nejected, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

bool sg_outlier_observe(struct sg_backend *b, bool failure, uint64_t now_ms)
{
    if (!failure) {
        /* The common case: read first, so a healthy backend's line is not
         * written on every response by every worker. */
        if (atomic_load_explicit(&b->consec_errors, memory_order_relaxed) != 0)
            atomic_store_explicit(&b->consec_errors, 0, memory_order_relaxed);
        return false;
    }
    uint32_t run = atomic_fetch_add_explicit(&b->consec_errors, 1, memory_order_relaxed) + 1;
    struct sg_pool *pool = b->pool;
    if (pool == NULL)
        return false;
    struct outlier_params op;
    outlier_params(pool, &op);
    if (op.errors == 0 || run < op.errors)
        return false;
    if (atomic_load_explicit(&b->eject_until, memory_order_relaxed) != 0)
        return false; /* ejected already (or its return is pending) */
    if (!outlier_reserve(pool, op.percent))
        return false;

    uint64_t n = sg_outlier_nejections(b);
    uint64_t dur = n + 1 > op.max_ms / op.base_ms ? op.max_ms : op.base_ms * (n + 1);
    uint64_t until = now_ms + dur;
    if (until == 0)
        until = 1; /* 0 means "not ejected" */
    uint64_t expect = 0;
    if (!atomic_compare_exchange_strong_explicit(&b->eject_until, &expect, until,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        /* Another worker ejected it first: give the place back. */
        atomic_fetch_sub_explicit(&pool->nejected, 1, memory_order_relaxed);
        return false;
    }
    __atomic_fetch_add(&b->nejections, 1, __ATOMIC_RELAXED);
    atomic_store_explicit(&b->consec_errors, 0, memory_order_relaxed);
    char d[24];
    outlier_format_ms(dur, d, sizeof(d));
    sg_log_warn("backend %s of pool '%s' ejected for %s: %" PRIu32 " consecutive errors", b->name,
                pool->name, d, run);
    return true;
}

bool sg_outlier_end(struct sg_backend *b, const char *why)
{
    if (atomic_load_explicit(&b->eject_until, memory_order_relaxed) == 0)
        return false;
    /* Only this thread moves a non-zero eject_until back to 0, so a plain
     * store cannot undo a worker's ejection. */
    atomic_store_explicit(&b->eject_until, 0, memory_order_relaxed);
    if (b->pool != NULL)
        atomic_fetch_sub_explicit(&b->pool->nejected, 1, memory_order_relaxed);
    b->state_since_ms = outlier_wall_ms();
    snprintf(b->reason, sizeof(b->reason), "%s", why);
    sg_log_info("backend %s of pool '%s' returns after ejection: %s", b->name,
                b->pool != NULL ? b->pool->name : "?", why);
    return true;
}

/* The reason an ejection noticed by the tick carries; a reason with this
 * prefix marks the ejection as noticed, so each one is reported once. */
#define OUTLIER_REASON_PREFIX "ejected"

void sg_outlier_tick(struct sg_pools *pools, uint64_t now_ms,
                     void (*on_change)(struct sg_backend *b, void *arg), void *arg)
{
    uint64_t wall = 0; /* read once, when needed */
    for (size_t i = 0; i < pools->n; i++) {
        struct sg_pool *pool = &pools->pools[i];
        struct outlier_params op;
        outlier_params(pool, &op);
        /* With active checks, an ejection whose time is up lasts until a
         * check passes (health.c ends it): a backend that stopped answering
         * while it was out does not come back on a timer. */
        bool checked = pool->cfg != NULL && pool->cfg->health.enabled;
        for (size_t j = 0, n_ = sg_pool_nused(pool); j < n_; j++) {
            struct sg_backend *b = &pool->backends[j];
            uint64_t until = atomic_load_explicit(&b->eject_until, memory_order_relaxed);
            if (until != 0 && until <= now_ms && !checked) {
                if (sg_outlier_end(b, "ejection ended") && on_change != NULL)
                    on_change(b, arg);
            } else if (until != 0) {
                /* A worker ejected it since the last tick: record when and
                 * why, unless an active check already took it down (its
                 * reason says more). */
                if (strncmp(b->reason, OUTLIER_REASON_PREFIX, strlen(OUTLIER_REASON_PREFIX)) == 0 ||
                    atomic_load_explicit(&b->health, memory_order_relaxed) != SG_HEALTH_UP)
                    continue;
                if (wall == 0)
                    wall = outlier_wall_ms();
                b->state_since_ms = wall;
                snprintf(b->reason, sizeof(b->reason),
                         OUTLIER_REASON_PREFIX ": %" PRIu32 " consecutive errors", op.errors);
                if (on_change != NULL)
                    on_change(b, arg);
            } else {
                uint32_t n = sg_outlier_nejections(b);
                if (n == 0 || op.max_ms == 0)
                    continue;
                if (wall == 0)
                    wall = outlier_wall_ms();
                if (wall < b->state_since_ms ||
                    wall - b->state_since_ms < OUTLIER_DECAY_FACTOR * op.max_ms)
                    continue;
                /* Not ejected, and only an ejecting worker changes the
                 * count: if one did meanwhile, its count stands. */
                __atomic_compare_exchange_n(&b->nejections, &n, 0, false, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED);
            }
        }
    }
}
