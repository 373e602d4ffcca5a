/* pool.c: runtime pools and backends built from the config, and the
 * balancer registry. */
#include <string.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"

static const struct sg_lb_ops *const lb_all[] = {&sg_lb_roundrobin};

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
        if (p->lb == NULL) {
            /* Algorithms not built yet fall back to round-robin, loudly. */
            sg_log_warn("pool '%s': balance '%s' is not active in this version, using roundrobin",
                        cp->name, cp->balance);
            p->lb = &sg_lb_roundrobin;
        }
        /* Settings this build checks but does not act on yet: say so once
         * at startup rather than let an operator believe they protect them. */
        if (cp->health.enabled)
            sg_log_warn("pool '%s': health checks are not active in this version "
                        "(every backend is treated as up)", cp->name);
        if (cp->autoscale.enabled)
            sg_log_warn("pool '%s': autoscale rules are not active in this version", cp->name);
        for (size_t j = 0; j < cp->nbackends; j++) {
            if (cp->backends[j].maxconn > 0) {
                sg_log_warn("pool '%s': backend maxconn (queueing) is not active in this "
                            "version: requests are not limited per backend", cp->name);
                break;
            }
        }
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
            atomic_init(&b->state, SG_BACKEND_UP);
        }
    }
    return SG_OK;
}

void sg_pools_free(struct sg_pools *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->pools[i].backends);
    free(ps->pools);
    ps->pools = NULL;
    ps->n = 0;
}
