/* group.h: what the control plane tells a scale hook about a pool (issue
 * 17): the autoscale metrics, the snapshot on the hook's stdin and the
 * members a scale-down should take first. The scaled group itself (which
 * backends count) is pool.h's sg_pool_in_group(). Reads only: atomics of the
 * pool and the stats snapshots. Control thread. */
#ifndef SURGEGATE_GROUP_H
#define SURGEGATE_GROUP_H

#include <jansson.h>

#include "surgegate/autoscale-t.h"

struct sg_pool;
struct sg_stats;

/* Fills m (one value per enum sg_as_metric, NaN = no data) with the pool's
 * metrics now. The per-backend metrics divide by every backend that takes
 * requests (live, not being removed, not backup), in the group or not: they
 * measure load per server. */
void sg_group_metrics(const struct sg_stats *st, const struct sg_pool *p, double m[SG_AS_NMETRICS]);

/* The pool for a hook's stdin: name, queue depth, requests, rps, error
 * rate, `current` (the group's count), the metrics m (NULL: none) and every
 * live backend with its state, origin and whether it is in the group. A new
 * reference. */
json_t *sg_group_snapshot(const struct sg_stats *st, const struct sg_pool *p, const double *m);

/* The group members a scale-down should remove first, as a JSON array of
 * addresses: those DOWN (failed their checks, or ejected), then those
 * still CHECKING (never came up). Empty when all are up. A new reference. */
json_t *sg_group_remove_first(const struct sg_pool *p);

/* A hook's environment, NULL-terminated, every string and the array owned
 * by the caller: the fixed PATH, HOME (ours, else "/"), LANG,
 * SURGEGATE_ACTION, SURGEGATE_BIN (exe; NULL: none), SURGEGATE_DEMO_OWNER
 * (when ours has it: `surgegate --demo`), SURGEGATE_POOL and
 * SURGEGATE_EVENT (p, event; NULL: none); for a scale decision d:
 * SURGEGATE_CURRENT, SURGEGATE_DESIRED, SURGEGATE_REASON,
 * SURGEGATE_BACKEND_MAXCONN (sg_pool_default_maxconn) and, for a DOWN,
 * SURGEGATE_REMOVE_FIRST (sg_group_remove_first, space-separated); and one
 * SURGEGATE_METRIC_<NAME> per metric of m (NULL: none). */
char **sg_group_hook_env(const struct sg_pool *p, const char *exe, const double *m,
                         const char *action, const char *event, const struct sg_as_decision *d);

#endif
