/* pool.h: runtime pools and backends: building them, and the per-backend
 * facts every balancer asks (usable? weight now? room for one more?). */
#ifndef SURGEGATE_POOL_H
#define SURGEGATE_POOL_H

#include "surgegate/backend.h"
#include "surgegate/common.h"
#include "surgegate/control-t.h"
#include "surgegate/pool-t.h"

/* Builds every pool of cfg (which must outlive the pools). SG_OK or SG_ERR
 * (unknown balancer: cannot happen with a checked config). Main thread. */
int sg_pools_build(struct sg_pools *ps, const struct sg_cfg *cfg);
void sg_pools_free(struct sg_pools *ps);

/* Slots that were ever filled: every loop over a pool's backends stops here. */
static inline size_t sg_pool_nused(const struct sg_pool *p)
{
    return atomic_load_explicit(&p->nused, memory_order_acquire);
}

/* The live backend at `name`, an address compared canonically (parsed as
 * the config does: "localhost:80" finds "127.0.0.1:80", "[::ffff:1.2.3.4]:80"
 * finds "1.2.3.4:80"); a name that does not parse is compared as text. NULL
 * when none. Any thread. */
struct sg_backend *sg_pool_find_backend(struct sg_pool *p, const char *name, size_t len);
/* The pool named `name`, or NULL. */
struct sg_pool *sg_pools_find(const struct sg_pools *ps, const char *name);
/* The live backend whose socket address is sa's endpoint (sg_sockaddr_same),
 * or NULL. Any thread. */
struct sg_backend *sg_pool_find_addr(struct sg_pool *p, const struct sockaddr *sa);

/* Adds a backend at runtime (admin API, hook output) in a free slot: address
 * "host:port" / "[v6]:port" / "unix:/path" (numeric). checking: the pool
 * has health checks, so it starts CHECKING and joins at its first passing
 * check (then slow start); else it is up at once.
 * SG_CTL_OK (*out set), SG_CTL_EXISTS (already there), SG_CTL_BAD_REQUEST
 * (bad or too long address), SG_CTL_CONFLICT (no free slot); err says why.
 * Control thread only. */
enum sg_ctl_err sg_pool_add_backend(struct sg_pool *p, const char *addr, uint32_t weight,
                                    uint32_t maxconn, bool checking, struct sg_backend **out,
                                    char *err, size_t errlen);

/* Starts removing b: it drains (no new requests) and its slot is freed by
 * sg_pool_reap() once no request uses it. Control thread only. */
void sg_pool_remove_backend(struct sg_pool *p, struct sg_backend *b);

/* Takes back the removal of b (being removed, still draining): it serves
 * again, with the given weight and maxconn. Control thread only. */
void sg_pool_cancel_removal(struct sg_pool *p, struct sg_backend *b, uint32_t weight,
                            uint32_t maxconn);

/* Backends that can be sent requests now or later: live and not being
 * removed (backups, drained and down ones included). */
uint32_t sg_pool_nserving(const struct sg_pool *p);

/* Frees the slots of removed backends that have drained, calling emptied()
 * for each first. Returns how many. Control thread, once per tick. */
size_t sg_pool_reap(struct sg_pool *p, void (*emptied)(struct sg_backend *b, void *arg), void *arg);

/* Backends the pool counts for scaling: live, not being removed, not backup. */
uint32_t sg_pool_ncurrent(const struct sg_pool *p);

/* The state users see (pool.c). */
enum sg_backend_state sg_backend_state(const struct sg_backend *b, uint64_t now_ms);
const char *sg_backend_state_name(enum sg_backend_state st);

#endif
