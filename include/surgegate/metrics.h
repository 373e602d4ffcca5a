/* metrics.h: the Prometheus text exposition of GET /metrics. */
#ifndef SURGEGATE_METRICS_H
#define SURGEGATE_METRICS_H

struct evbuffer;
struct sg_pools;
struct sg_stats;
struct sg_control;

/* Appends every metric (text format 0.0.4) to out, from the pools' live
 * state and the last tick's snapshots. ctl may be NULL (no hook metrics).
 * Main thread. */
void sg_metrics_write(struct evbuffer *out, struct sg_pools *pools, const struct sg_stats *st,
                      const struct sg_control *ctl);

#endif
