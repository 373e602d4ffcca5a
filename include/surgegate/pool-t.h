/* pool-t.h: runtime pools and backends, built from the config at startup.
 *
 * struct sg_pool and struct sg_backend are shared by every worker and are
 * read-only on the request path except for the atomic fields. Per-worker
 * mutable state (balancer state, idle connections, in-flight counts) lives in
 * struct sg_wpool / sg_wbackend owned by each worker, so the request path
 * takes no lock. */
#ifndef SURGEGATE_POOL_T_H
#define SURGEGATE_POOL_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "surgegate/cfg-t.h"

#define SG_BACKEND_MAGIC 0x5b6e0b1du
#define SG_POOL_MAGIC    0x5b0017a1u

enum sg_backend_state { SG_BACKEND_UP = 0, SG_BACKEND_DOWN, SG_BACKEND_DRAIN, SG_BACKEND_MAINT };

struct sg_pool;
struct sg_lb_ops;

struct sg_backend {
    uint32_t magic;
    uint32_t id; /* index in pool->backends */
    struct sg_pool *pool;
    const struct sg_cfg_backend *cfg;
    const char *name; /* address text, e.g. "127.0.0.1:9001" */
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint32_t weight;
    uint32_t maxconn; /* 0 = unlimited */
    bool backup;
    _Atomic int state; /* enum sg_backend_state; written by the control thread */
};

struct sg_pool {
    uint32_t magic;
    uint32_t id;
    const char *name;
    const struct sg_cfg_pool *cfg;
    struct sg_backend *backends;
    size_t nbackends;
    const struct sg_lb_ops *lb;
};

struct sg_pools {
    struct sg_pool *pools;
    size_t n;
};

#endif
