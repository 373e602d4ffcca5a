/* wpool-t.h: a worker's own state for each pool and each backend slot: the
 * balancer state, the idle keep-alive connections, the traffic counters.
 * Owned by one worker thread; the control thread reads only the atomics and
 * the counters (stats.c). */
#ifndef SURGEGATE_WPOOL_T_H
#define SURGEGATE_WPOOL_T_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include "surgegate/stats-t.h"

struct sg_pool;
struct sg_upconn;
struct sg_exchange;

LIST_HEAD(sg_xlist, sg_exchange);

/* Per worker, per backend. */
struct sg_wbackend {
    struct sg_upconn *idle; /* idle keep-alive connections, most recent first (upstream.c) */
    struct sg_xlist xs;     /* this worker's exchanges holding a slot on it (exchange.c) */
    uint32_t down_seen;     /* the backend's down_gen when xs was last looked at */
    _Atomic uint32_t nidle; /* written by the worker only (relaxed), read by the control thread */
    struct sg_wstats st;    /* this worker's traffic on this backend slot */
};

/* Per worker, per pool. */
struct sg_wpool {
    struct sg_pool *pool;
    void *lb_state;         /* owned; freed with pool->lb->state_free */
    uint32_t lb_gen;        /* pool->members_gen lb_state was built for */
    struct sg_wstats st;    /* this worker's traffic on this pool (every request) */
    struct sg_wbackend *wb; /* pool->nbackends entries */
};

#endif
