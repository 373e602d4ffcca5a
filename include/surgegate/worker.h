/* worker.h: worker threads. */
#ifndef SURGEGATE_WORKER_H
#define SURGEGATE_WORKER_H

#include "surgegate/worker-t.h"
#include "surgegate/wpool.h" /* sessions reach the per-pool state through the worker */

struct sg_alog;
struct sg_gate;

/* Creates a worker with its own event_base and binds its listeners
 * (SO_REUSEPORT, one socket per frontend per worker). gates: one per
 * frontend of cfg (sg_gate_init with nworkers), shared by all the workers,
 * which accept under them and register their wake functions there; NULL
 * when cfg has no frontend. inherit (may be NULL): listening sockets of a
 * running generation (a reload) or of the process this one replaces (a
 * binary upgrade): a frontend listening where one of them does for this
 * worker's id takes a duplicate of that socket instead of binding a new
 * one, so the port never closes and connections waiting in its backlog are
 * served by whichever side accepts them. Errors (bind failure...) are
 * logged; returns NULL. Main thread, before sg_worker_start. */
struct sg_worker *sg_worker_new(uint32_t id, uint32_t nworkers, const struct sg_cfg *cfg,
                                struct sg_pools *pools, struct sg_gate *gates,
                                const struct sg_lfds *inherit);
/* Appends w's listening sockets to t (descriptors not duplicated: valid
 * while w has not stopped). */
void sg_worker_listeners(const struct sg_worker *w, struct sg_lfds *t);
void sg_lfds_add(struct sg_lfds *t, uint32_t worker, const struct sockaddr_storage *ss,
                 socklen_t sslen, int fd);
void sg_lfds_free(struct sg_lfds *t);
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
/* Backends changed: close idle connections to unusable ones and kick the
 * queues. Any thread. */
void sg_worker_kick(struct sg_worker *w);
/* Whether the worker's loop has ended (after sg_worker_stop): joining it
 * will not wait. Any thread. */
bool sg_worker_done(const struct sg_worker *w);
/* Waits for the thread to end. Main thread. */
void sg_worker_join(struct sg_worker *w);
void sg_worker_free(struct sg_worker *w);

#endif
