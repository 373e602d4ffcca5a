/* worker.h: worker threads. */
#ifndef SURGEGATE_WORKER_H
#define SURGEGATE_WORKER_H

#include "surgegate/worker-t.h"

struct sg_alog;

/* Creates a worker with its own event_base and binds its listeners
 * (SO_REUSEPORT, one socket per frontend per worker). Errors (bind
 * failure...) are logged; returns NULL. Main thread, before sg_worker_start. */
struct sg_worker *sg_worker_new(uint32_t id, uint32_t nworkers, const struct sg_cfg *cfg,
                                struct sg_pools *pools);
/* Gives the worker an access log buffer of a (flushed every second and at
 * the end). Main thread, before sg_worker_start. */
void sg_worker_set_alog(struct sg_worker *w, struct sg_alog *a);

/* Starts the worker's thread. SG_OK or SG_ERR. */
int sg_worker_start(struct sg_worker *w);
/* Asks the worker to stop gracefully: stop accepting, let in-flight
 * requests finish within timeouts.grace, then close. Any thread. */
void sg_worker_stop(struct sg_worker *w);
/* Wakes the worker to read its inbox (a grant from another thread). */
void sg_worker_wake(struct sg_worker *w);
/* A queue entry of w's was granted by worker `from`: run w's inbox soon
 * (at once on the same thread's next loop turn; through wake_fd otherwise). */
void sg_worker_notify_grant(struct sg_worker *w, struct sg_worker *from);
/* Backends changed: close idle connections to unusable ones and kick the
 * queues. Any thread. */
void sg_worker_kick(struct sg_worker *w);
/* Waits for the thread to end. Main thread. */
void sg_worker_join(struct sg_worker *w);
void sg_worker_free(struct sg_worker *w);

/* Called by a session when it closes (accept gate, graceful stop). */
void sg_worker_session_closed(struct sg_worker *w, struct sg_wfrontend *fe);


/* Rebuilds wp's balancer state for the pool's members generation `gen`.
 * Owning worker only (see sg_wpool_lb_state). */
void sg_wpool_lb_rebuild(struct sg_wpool *wp, uint32_t gen);

/* The worker's balancer state for a pool, rebuilt first when backends were
 * added, removed or re-weighted since it was built. Owning worker only. */
static inline void *sg_wpool_lb_state(struct sg_wpool *wp)
{
    uint32_t gen = atomic_load_explicit(&wp->pool->members_gen, memory_order_acquire);
    if (__builtin_expect(gen != wp->lb_gen, 0))
        sg_wpool_lb_rebuild(wp, gen);
    return wp->lb_state;
}

#endif
