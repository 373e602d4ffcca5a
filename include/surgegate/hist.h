/* hist.h: log-linear latency histograms and sliding windows (types and the
 * bucket layout in hist-t.h).
 *
 * Threads: each struct sg_hist has one writer (the worker that records into
 * it) and may be read at any time by the control thread. Everything else
 * (sg_hist_dense, sg_hwin) belongs to one thread, normally the control
 * thread. */
#ifndef SURGEGATE_HIST_H
#define SURGEGATE_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/hist-t.h"

/* Index of the bucket holding `us` (0 .. SG_HIST_NBUCKETS-1); values
 * >= 2^38 go to the last bucket. Any thread; inline for the record path. */
static inline unsigned sg_hist_bucket(uint64_t us)
{
    if (us < SG_HIST_SUB) {
        return (unsigned)us;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(us); /* us in [2^k, 2^(k+1)), k >= 6 */
    if (k > SG_HIST_MAX_OCTAVE) {
        return SG_HIST_NBUCKETS - 1;
    }
    unsigned sub = (unsigned)(us >> (k - SG_HIST_SUB_BITS)) & (SG_HIST_SUB - 1);
    return SG_HIST_SUB + (k - SG_HIST_SUB_BITS) * SG_HIST_SUB + sub;
}

/* Smallest value of bucket i (i < SG_HIST_NBUCKETS, else a bug). Any thread. */
uint64_t sg_hist_bucket_lo(unsigned i);

/* Largest value of bucket i, inclusive. The last bucket also holds every
 * value beyond its nominal range, so its hi is UINT64_MAX. Any thread. */
uint64_t sg_hist_bucket_hi(unsigned i);

/* The value reported for bucket i: the midpoint of its nominal range
 * (lo + width/2), exact for the buckets 0..63. For any value below 2^38 in
 * the bucket, |mid - value| / value <= 1/128. Any thread. */
uint64_t sg_hist_bucket_mid(unsigned i);

/* A zeroed live histogram; the caller owns it and frees it with
 * sg_hist_free (NULL is accepted). Aborts when out of memory. */
struct sg_hist *sg_hist_new(void);
void sg_hist_free(struct sg_hist *h);

/* Records one duration. Only the histogram's single writer thread may call
 * it: relaxed load + relaxed store, no locked read-modify-write, so readers
 * see each counter grow monotonically but the counters not updated together. */
static inline void sg_hist_record(struct sg_hist *h, uint64_t us)
{
    unsigned i = sg_hist_bucket(us);
    atomic_store_explicit(&h->c[i], atomic_load_explicit(&h->c[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum_us, atomic_load_explicit(&h->sum_us, memory_order_relaxed) + us,
                          memory_order_relaxed);
}

/* Zeroes d. */
void sg_hist_dense_clear(struct sg_hist_dense *d);

/* Adds the live histogram h into acc (relaxed reads: h may be recorded into
 * meanwhile). acc->count grows by the sum of the bucket counts read, so acc
 * stays self-consistent (count == sum of c[]) even against a live writer;
 * sum_us may be off by the few values recorded during the read. acc's thread. */
void sg_hist_dense_add(struct sg_hist_dense *acc, const struct sg_hist *h);

/* Adds d into acc. */
void sg_hist_dense_merge(struct sg_hist_dense *acc, const struct sg_hist_dense *d);

/* The q-quantile (q in [0,1], clamped) in us: the mid value of the bucket
 * holding the value of rank ceil(q*count) (at least 1) in ascending order.
 * q = 1 gives the max (mid of the highest non-empty bucket). 0 when d is
 * empty. */
uint64_t sg_hist_quantile(const struct sg_hist_dense *d, double q);

/* How many values lie in buckets whose hi <= le_us: the cumulative count of
 * a Prometheus `le` bucket (values in the bucket straddling le_us are not
 * counted). le_us = UINT64_MAX counts everything. */
uint64_t sg_hist_count_le(const struct sg_hist_dense *d, uint64_t le_us);

/* count, sum_us, p50, p90, p95, p99 and max (as sg_hist_quantile) of d,
 * in one pass. All zero when d is empty. */
void sg_hist_summarize(const struct sg_hist_dense *d, struct sg_hist_summary *out);

/* A sliding window, empty; owned by the caller, freed with sg_hwin_free
 * (NULL is accepted). An idle window costs a few dozen bytes: seconds are
 * stored sparse (only non-empty buckets, nothing for an empty second) and
 * the previous cumulative copy is allocated only once cum is non-zero.
 * Aborts when out of memory. One thread (the control thread). */
struct sg_hwin *sg_hwin_new(void);
void sg_hwin_free(struct sg_hwin *w);

/* Once per second: cum is the current cumulative histogram (the sum over
 * workers; monotonic). The first tick records cum as the baseline and adds
 * an empty second, so history from before the window is not counted; each
 * later tick adds cum minus the previous tick's cum as the newest second.
 * Seconds older than SG_HWIN_SECONDS ticks are dropped. A bucket that went
 * down (a bug in the caller) counts as 0. If memory for a second's delta
 * cannot be allocated, that second is stored empty (never a crash). */
void sg_hwin_tick(struct sg_hwin *w, const struct sg_hist_dense *cum);

/* Overwrites out with the sum of the last `seconds` ticks (clamped to
 * 1..SG_HWIN_SECONDS); the newest tick counts as one second. */
void sg_hwin_sum(const struct sg_hwin *w, unsigned seconds, struct sg_hist_dense *out);

/* Heap bytes the window holds now (its struct, the previous cumulative copy,
 * the stored seconds): for memory accounting and tests. */
size_t sg_hwin_mem_bytes(const struct sg_hwin *w);

#endif
