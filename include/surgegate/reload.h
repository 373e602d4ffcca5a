/* reload.h: generations of the running configuration, and what a reload
 * carries from one to the next. Main thread only. */
#ifndef SURGEGATE_RELOAD_H
#define SURGEGATE_RELOAD_H

#include <stdbool.h>

#include <jansson.h>

#include "surgegate/reload-t.h"

struct sg_alog;
struct sg_lfds;

/* Builds a generation from cfg, which it takes over (freed with it, or at
 * once on failure): pools, gates and workers, not started. With prev (a
 * reload), the pools take over prev's runtime state (sg_pools_carry) and
 * each worker reuses the listening sockets of prev's worker of the same id
 * where the address is the same; likewise with inherit's (a binary
 * upgrade: the replaced process's sockets; may be NULL). report (may be
 * NULL) gets what was carried. NULL on failure (logged). */
struct sg_gen *sg_gen_new(struct sg_cfg *cfg, const struct sg_gen *prev,
                          const struct sg_lfds *inherit, struct sg_alog *alog, json_t *report);
/* Starts the worker threads; on failure stops those started. SG_OK/SG_ERR. */
int sg_gen_start(struct sg_gen *g);
/* Tells the workers to stop gracefully (stop accepting, finish in-flight
 * requests within timeouts.grace). */
void sg_gen_stop(struct sg_gen *g);
/* Whether every started worker has ended. */
bool sg_gen_done(const struct sg_gen *g);
/* Joins the workers (stopped first) and frees the generation. NULL: no-op. */
void sg_gen_free(struct sg_gen *g);

/* The changes between the running configuration and a new one that a
 * reload cannot apply in place (a different `workers` count, journal
 * size); each is appended to errs as a string. Returns how many. */
size_t sg_reload_refused(const struct sg_cfg *old, const struct sg_cfg *cfg, json_t *errs);

/* Carries runtime state from `from` to `to` (same pool names, backends by
 * socket address): admin state set by an operator (drain, maint), health,
 * ejections, slow start, weights changed at runtime, backends added at
 * runtime (admin API, hooks, discovery), request and queue counters. A
 * backend that a pool of the new file no longer has is not carried (unless
 * it was added at runtime). report (may be NULL) gets "carried",
 * "runtime_backends", "removed_backends", "pools_added", "pools_removed". */
void sg_pools_carry(struct sg_pools *to, const struct sg_pools *from, json_t *report);

#endif
