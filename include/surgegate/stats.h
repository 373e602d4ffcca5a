/* stats.h: the control thread's per-tick merge of the workers' traffic
 * records (wstats.h) into snapshots. */
#ifndef SURGEGATE_STATS_H
#define SURGEGATE_STATS_H

#include "surgegate/common.h"
#include "surgegate/hist.h"
#include "surgegate/stats-t.h"
#include "surgegate/wstats.h"

struct sg_pools;
struct sg_pool;
struct sg_backend;
struct sg_worker;

/* ---- control thread ---- */

struct sg_stats;

/* Snapshots of every pool and backend slot of pools, fed from the workers'
 * struct sg_wstats. Main thread. */
struct sg_stats *sg_stats_new(struct sg_pools *pools, struct sg_worker **workers,
                              uint32_t nworkers);
void sg_stats_free(struct sg_stats *st);
/* A reload: `to` (over the new generation's pools and workers, whose
 * runtime state was carried already) takes over the counts, histograms,
 * rate samples and windows of `from`'s pools and backends of the same
 * name, so that counters never go back and percentiles keep their window.
 * `from` keeps its counts (not its windows) for sg_stats_fold. */
void sg_stats_carry(struct sg_stats *to, struct sg_stats *from);
/* The generation `from` counted for has ended: what it counted after
 * sg_stats_carry (the requests it finished while draining) is added to
 * `to`'s pools and backends of the same names. Free `from` next. */
void sg_stats_fold(struct sg_stats *to, struct sg_stats *from);

/* Once a second: sums the workers, advances the windows, recomputes rates,
 * percentiles and the queue depth maxima. */
void sg_stats_tick(struct sg_stats *st);

/* A backend slot was (re)filled: its counters and windows start from zero. */
void sg_stats_slot_reset(struct sg_stats *st, const struct sg_backend *b);

const struct sg_snap *sg_stats_backend(const struct sg_stats *st, const struct sg_backend *b);
const struct sg_snap *sg_stats_pool(const struct sg_stats *st, const struct sg_pool *p);

/* This instance's raw inputs of pool p's autoscale metrics now, from the
 * last tick's snapshot and the backends' live counters, with `current` =
 * the pool's backend count (the metrics themselves: sg_cluster_derive()).
 * Control thread. */
struct sg_cluster_raw;
void sg_stats_pool_raw(const struct sg_stats *st, const struct sg_pool *p, uint32_t current,
                       struct sg_cluster_raw *r);

/* Names used in JSON and metrics. */
const char *sg_lat_name(enum sg_lat k); /* "queue", "connect", "ttfb", "total" */
const char *sg_ek_name(enum sg_ek k);   /* "connect", "timeout", "reset", "bad_response" */
const char *sg_ce_name(enum sg_ce k);   /* "timeout", "aborted" */
const char *sg_win_name(enum sg_win w); /* "10s", "1m", "5m" */
unsigned sg_win_seconds(enum sg_win w);

#endif
