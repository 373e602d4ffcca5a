/* unit_pool.h: a pool of n backends built by hand for the unit tests of the
 * queue, the upstream pool and the worker inbox (no config file, no
 * network): round robin, weight 1, the given maxconn, the pool config's
 * maxqueue and max_idle. Addresses are 127.0.0.1:port[i] (port 0 = unset). */
#ifndef SURGEGATE_UNIT_POOL_H
#define SURGEGATE_UNIT_POOL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "surgegate/lb.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"

#define UNIT_POOL_MAX 4

struct unit_pool {
    struct sg_cfg_pool cfg;
    struct sg_pool pool;
    struct sg_backend b[UNIT_POOL_MAX];
    struct sg_pools pools; /* {&pool, 1} */
};

static inline void unit_pool_init(struct unit_pool *up, size_t n, uint32_t maxconn,
                                  const uint16_t *ports)
{
    memset(up, 0, sizeof(*up));
    up->cfg.name = "p";
    up->cfg.maxqueue = 1000;
    up->cfg.max_idle = 32;
    struct sg_pool *p = &up->pool;
    p->magic = SG_POOL_MAGIC;
    p->id = 0;
    p->name = "p";
    p->cfg = &up->cfg;
    p->backends = up->b;
    p->nbackends = n;
    p->ncfg = n;
    atomic_init(&p->nused, (uint32_t)n);
    atomic_init(&p->nlive, (uint32_t)n);
    atomic_init(&p->members_gen, 0);
    p->lb = &sg_lb_roundrobin;
    sg_pqueue_init(&p->queue);
    for (size_t i = 0; i < n; i++) {
        struct sg_backend *b = &up->b[i];
        b->magic = SG_BACKEND_MAGIC;
        b->id = (uint32_t)i;
        b->pool = p;
        atomic_init(&b->weight, 1);
        atomic_init(&b->maxconn, maxconn);
        atomic_init(&b->admin, SG_ADMIN_READY);
        struct sockaddr_in *sin = (struct sockaddr_in *)&b->ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin->sin_port = htons(ports != NULL ? ports[i] : 0);
        b->sslen = sizeof(*sin);
        snprintf(b->name_buf, sizeof(b->name_buf), "127.0.0.1:%u",
                 ports != NULL ? (unsigned)ports[i] : 0u);
        b->name = b->name_buf;
    }
    up->pools.pools = p;
    up->pools.n = 1;
}

static inline void unit_pool_destroy(struct unit_pool *up)
{
    sg_pqueue_destroy(&up->pool.queue);
}

#endif
