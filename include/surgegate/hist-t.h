/* hist-t.h: log-linear latency histograms (durations in microseconds, at most
 * 1/128 relative error) and their sliding windows.
 *
 * Buckets: values 0..63 have one bucket each; then each octave
 * [2^k, 2^(k+1)), k = 6..37, is cut into 64 equal sub-buckets of width
 * 2^(k-6). Values >= 2^38 us (about 76 hours) fall into the last bucket. */
#ifndef SURGEGATE_HIST_T_H
#define SURGEGATE_HIST_T_H

#include <stdatomic.h>
#include <stdint.h>

#define SG_HIST_SUB_BITS   6                        /* 64 sub-buckets per octave */
#define SG_HIST_SUB        (1u << SG_HIST_SUB_BITS) /* 64 */
#define SG_HIST_MAX_OCTAVE 37                       /* last octave: [2^37, 2^38) */
#define SG_HIST_NOCTAVES   (SG_HIST_MAX_OCTAVE - SG_HIST_SUB_BITS + 1)    /* 32 */
#define SG_HIST_NBUCKETS   (SG_HIST_SUB + SG_HIST_NOCTAVES * SG_HIST_SUB) /* 2112 */

/* Seconds of history a sliding window keeps. */
#define SG_HWIN_SECONDS 300

/* A live histogram: one writer thread (a worker) records with relaxed
 * load + store; the control thread reads it concurrently (relaxed loads). */
struct sg_hist {
    _Atomic uint64_t c[SG_HIST_NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

/* A plain histogram owned by one thread (the control thread): sums of live
 * histograms, window sums. */
struct sg_hist_dense {
    uint64_t c[SG_HIST_NBUCKETS];
    uint64_t count;
    uint64_t sum_us;
};

/* Every value in microseconds. */
struct sg_hist_summary {
    uint64_t count;
    uint64_t sum_us;
    uint64_t p50, p90, p95, p99, max;
};

/* A ring of per-second deltas (sparse) over the last SG_HWIN_SECONDS seconds.
 * Opaque: see hist.c. */
struct sg_hwin;

#endif
