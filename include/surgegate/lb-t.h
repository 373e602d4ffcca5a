/* lb-t.h: the balancer interface. Each algorithm is one file (lb_*.c)
 * exposing one const struct sg_lb_ops. */
#ifndef SURGEGATE_LB_T_H
#define SURGEGATE_LB_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_pool;
struct sg_backend;

/* What a pick may consider about the request. */
struct sg_lb_req {
    const uint32_t *exclude; /* backend ids already tried for this request */
    size_t nexclude;
    const char *key; /* hash key (hash balancer), may be NULL */
    size_t keylen;
    uint64_t now_ms;  /* sg_now_ms() */
    bool ignore_room; /* pick as if no backend were at maxconn (queue accounting) */
};

/* sg_lb_ops.flags */
#define SG_LB_F_KEY 0x1u /* picks by sg_lb_req.key: the request path computes it */

struct sg_lb_ops {
    const char *name;
    unsigned flags; /* SG_LB_F_* */
    /* Per-worker state for one pool; owned by the worker. NULL on failure. */
    void *(*state_new)(const struct sg_pool *pool);
    void (*state_free)(void *state);
    /* Picks an eligible backend (see sg_lb_eligible()) or NULL when none.
     * Called on the owning worker's thread only; must not block. req may be
     * NULL (no exclusions, no key, now = sg_now_ms()). */
    struct sg_backend *(*pick)(void *state, const struct sg_pool *pool,
                               const struct sg_lb_req *req);
    /* Optional: a response from b took latency_us (ewma). Owning worker. */
    void (*observe)(void *state, const struct sg_backend *b, uint64_t now_ms, uint64_t latency_us);
};

#endif
