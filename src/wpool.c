/* wpool.c: a worker's per-pool state: the balancer state (rebuilt when the
 * pool's membership changes), the per-backend slots where upstream.c parks
 * idle connections, and the per-worker traffic counters. A leaf below the
 * worker, the queue and the upstream pool: it calls only the balancer
 * through its vtable and stats.c. */
#include <stdlib.h>

#include "surgegate/common.h"
#include "surgegate/lb-t.h"
#include "surgegate/wstats.h"
#include "surgegate/wpool.h"

int sg_wpool_init(struct sg_wpool *wp, struct sg_pool *p)
{
    wp->pool = p;
    wp->lb_gen = atomic_load(&p->members_gen);
    wp->lb_state = p->lb->state_new(p);
    wp->wb = sg_xcalloc(p->nbackends, sizeof(struct sg_wbackend));
    return wp->lb_state != NULL ? SG_OK : SG_ERR;
}

void sg_wpool_destroy(struct sg_wpool *wp)
{
    if (wp->lb_state != NULL)
        wp->pool->lb->state_free(wp->lb_state);
    wp->lb_state = NULL;
    sg_wstats_free(&wp->st);
    if (wp->wb != NULL)
        for (size_t j = 0; j < wp->pool->nbackends; j++)
            sg_wstats_free(&wp->wb[j].st);
    free(wp->wb);
    wp->wb = NULL;
}

void sg_wpool_lb_rebuild(struct sg_wpool *wp, uint32_t gen)
{
    struct sg_pool *p = wp->pool;
    void *st = p->lb->state_new(p);
    if (st == NULL)
        return; /* no memory: keep picking with the old state, try again next time */
    p->lb->state_free(wp->lb_state);
    wp->lb_state = st;
    wp->lb_gen = gen;
}
