/* wstats.h: a worker's traffic records (wstats.c): counters and latency
 * histograms that the owning worker alone writes and the control thread
 * reads (stats.h). */
#ifndef SURGEGATE_WSTATS_H
#define SURGEGATE_WSTATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "surgegate/stats-t.h"

static inline void sg_wstat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Records a duration into st's histogram of kind k, allocating it on first
 * use (dropped if that allocation fails). Owning worker only. */
void sg_wstats_lat(struct sg_wstats *st, enum sg_lat k, uint64_t us);

/* Frees the histograms of st (the worker is gone). */
void sg_wstats_free(struct sg_wstats *st);

#endif
