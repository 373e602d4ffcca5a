/* pool.c: runtime pools and backends built from the config, and the
 * balancer registry. */
#include <string.h>
#include <time.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"

static const struct sg_lb_ops *const lb_all[] = {&sg_lb_roundrobin, &sg_lb_leastreq, &sg_lb_ewma,
                                                 &sg_lb_hash, &sg_lb_random};

const struct sg_lb_ops *sg_lb_find(const char *name)
{
    if (name == NULL)
        return &sg_lb_roundrobin;
    for (size_t i = 0; i < SG_ARRAY_SIZE(lb_all); i++)
        if (strcmp(lb_all[i]->name, name) == 0)
            return lb_all[i];
    return NULL;
}

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
    for (size_t i = 0; i < pool->nbackends; i++) {
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

/* ------------------------------------------------------------ backends */

bool sg_backend_usable(const struct sg_backend *b, uint64_t now_ms)
{
    if (atomic_load_explicit(&b->admin, memory_order_relaxed) != SG_ADMIN_READY ||
        atomic_load_explicit(&b->down, memory_order_relaxed) || b->weight == 0)
        return false;
    uint64_t until = atomic_load_explicit(&b->eject_until, memory_order_relaxed);
    return until == 0 || until <= now_ms;
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
    atomic_fetch_sub_explicit(&b->inflight, 1, memory_order_relaxed);
}

enum sg_backend_state sg_backend_state(const struct sg_backend *b, uint64_t now_ms)
{
    int adm = atomic_load_explicit(&b->admin, memory_order_relaxed);
    if (adm == SG_ADMIN_MAINT)
        return SG_BACKEND_MAINT;
    if (adm == SG_ADMIN_DRAIN)
        return SG_BACKEND_DRAIN;
    if (!sg_backend_usable(b, now_ms) && b->weight > 0)
        return SG_BACKEND_DOWN;
    return SG_BACKEND_UP;
}

const char *sg_backend_state_name(enum sg_backend_state st)
{
    switch (st) {
    case SG_BACKEND_UP:
        return "up";
    case SG_BACKEND_DOWN:
        return "down";
    case SG_BACKEND_DRAIN:
        return "drain";
    case SG_BACKEND_MAINT:
        return "maint";
    }
    return "?";
}

/* --------------------------------------------------------------- pools */

int sg_pools_build(struct sg_pools *ps, const struct sg_cfg *cfg)
{
    ps->n = cfg->npools;
    ps->pools = sg_xcalloc(cfg->npools, sizeof(struct sg_pool));
    for (size_t i = 0; i < cfg->npools; i++) {
        const struct sg_cfg_pool *cp = &cfg->pools[i];
        struct sg_pool *p = &ps->pools[i];
        p->magic = SG_POOL_MAGIC;
        p->id = (uint32_t)i;
        p->name = cp->name;
        p->cfg = cp;
        p->lb = sg_lb_find(cp->balance);
        p->slowstart_ms = cp->slowstart_ms;
        sg_pqueue_init(&p->queue);
        if (p->lb == NULL) {
            /* Algorithms not built yet fall back to round-robin, loudly. */
            sg_log_warn("pool '%s': balance '%s' is not active in this version, using roundrobin",
                        cp->name, cp->balance);
            p->lb = &sg_lb_roundrobin;
        }
        /* Settings this build checks but does not act on yet: say so once
         * at startup rather than let an operator believe they protect them. */
        if (cp->autoscale.enabled)
            sg_log_warn("pool '%s': autoscale rules are not active in this version", cp->name);
        p->nbackends = cp->nbackends;
        p->backends = sg_xcalloc(cp->nbackends, sizeof(struct sg_backend));
        for (size_t j = 0; j < cp->nbackends; j++) {
            const struct sg_cfg_backend *cb = &cp->backends[j];
            struct sg_backend *b = &p->backends[j];
            b->magic = SG_BACKEND_MAGIC;
            b->id = (uint32_t)j;
            b->pool = p;
            b->cfg = cb;
            b->name = cb->address.text;
            b->ss = cb->address.ss;
            b->sslen = cb->address.sslen;
            b->weight = cb->weight;
            b->maxconn = cb->maxconn;
            b->backup = cb->backup;
            atomic_init(&b->admin, SG_ADMIN_READY);
            atomic_init(&b->down, false);
            atomic_init(&b->eject_until, 0);
            atomic_init(&b->ramp_from, 0);
            atomic_init(&b->inflight, 0);
            atomic_init(&b->queue_depth, 0);
            atomic_init(&b->consec_errors, 0);
            atomic_init(&b->requests, 0);
            atomic_init(&b->failures, 0);
        }
    }
    return SG_OK;
}

void sg_pools_free(struct sg_pools *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->pools[i].backends);
        sg_pqueue_destroy(&ps->pools[i].queue);
    }
    free(ps->pools);
    ps->pools = NULL;
    ps->n = 0;
}
