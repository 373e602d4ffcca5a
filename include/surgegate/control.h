/* control.h: the control plane on the main thread: once a tick it merges
 * the workers' stats, frees drained slots and journals what changed; it
 * also carries out membership changes (admin API, hook output) so that
 * health checks, stats and workers all learn of them. */
#ifndef SURGEGATE_CONTROL_H
#define SURGEGATE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <stdint.h>

#include "surgegate/control-t.h"

struct event_base;
struct evbuffer;
struct sg_cfg;
struct sg_pools;
struct sg_pool;
struct sg_backend;
struct sg_worker;
struct sg_health;
struct sg_stats;
struct sg_control;
struct sg_cluster;

/* Starts the tick (1 s). The objects passed must outlive the control. */
struct sg_control *sg_control_new(struct event_base *base, const struct sg_cfg *cfg,
                                  struct sg_pools *pools, struct sg_worker **workers,
                                  uint32_t nworkers);
/* A reload: the control plane moves to the new generation (its
 * configuration, pools and workers), carrying over each pool's state by
 * name (sg_stats_carry, sg_as_carry, hooks in flight, alert states).
 * Returns the old generation's statistics, for sg_control_fold once its
 * workers have ended (before its pools are freed). */
struct sg_stats *sg_control_reload(struct sg_control *ctl, const struct sg_cfg *cfg,
                                   struct sg_pools *pools, struct sg_worker **workers,
                                   uint32_t nworkers);
/* Adds what an old generation counted while draining, and frees `old`. */
void sg_control_fold(struct sg_control *ctl, struct sg_stats *old);
void sg_control_free(struct sg_control *ctl);
void sg_control_set_health(struct sg_control *ctl, struct sg_health *h);

struct sg_stats *sg_control_stats(const struct sg_control *ctl);

/* The cluster client (NULL without a cluster group: this instance decides
 * alone). */
struct sg_cluster *sg_control_cluster(const struct sg_control *ctl);

/* The process is stopping (NULL: no-op): a cluster member steps down at once (its lease
 * revoked) instead of holding the leader role until the TTL runs out. */
void sg_control_stopping(struct sg_control *ctl);

/* A backend's state may have changed (health, ejection, admin): journals
 * the change (once), starts slow start, kicks the workers. */
void sg_control_backend_changed(struct sg_control *ctl, struct sg_backend *b);

/* Adds a backend at runtime; `source` names who asked ("admin", "hook").
 * Every such add is checked against admin.deny_backends (SG_CTL_FORBIDDEN
 * when the address is in a denied range; the config file's own backends are
 * not). A backend of that address still draining from its removal is not
 * added twice: its removal is cancelled, weight and maxconn set, and
 * SG_CTL_OK returned with *revived true. SG_CTL_OK, or what
 * sg_pool_add_backend() said went wrong (SG_CTL_EXISTS: already there and
 * not being removed); err says why. out and revived may be NULL. */
enum sg_ctl_err sg_control_add_backend(struct sg_control *ctl, struct sg_pool *p, const char *addr,
                                       uint32_t weight, uint32_t maxconn, const char *source,
                                       struct sg_backend **out, bool *revived, char *err,
                                       size_t errlen);
/* Starts removing b (drain, then free the slot). Removing the pool's last
 * serving backend (sg_pool_nserving) needs force: without it nothing
 * changes and SG_CTL_CONFLICT says why in err. SG_CTL_OK also when b is
 * already being removed. */
enum sg_ctl_err sg_control_remove_backend(struct sg_control *ctl, struct sg_backend *b,
                                          const char *source, bool force, char *err, size_t errlen);
/* Changes a backend's weight. */
void sg_control_set_weight(struct sg_control *ctl, struct sg_backend *b, uint32_t weight,
                           const char *source);

/* Appends the control plane's metric families (hook runs) to out. */
void sg_control_metrics(const struct sg_control *ctl, struct evbuffer *out);

/* The pool's autoscaler state for the admin API (JSON null when it has none). */
json_t *sg_control_autoscale_json(const struct sg_control *ctl, const struct sg_pool *p);

/* "2026-11-30T19:40:22.123Z" for wall clock ms. */
void sg_control_iso_time(uint64_t ms, char *buf, size_t len);

/* Runs one tick now (tests, and the first tick at startup). */
void sg_control_tick(struct sg_control *ctl);

#endif
