/* stats-t.h: traffic counters and latency histograms.
 *
 * Each worker records into its own struct sg_wstats (one per backend slot,
 * one per pool for requests that never reached a backend) with relaxed
 * loads and stores: one writer, no locked instruction, no lock. The control
 * thread (main) reads them once a tick, sums the workers and keeps the
 * snapshots (struct sg_bsnap / sg_psnap) that the admin API, /metrics and
 * the autoscaler read. */
#ifndef SURGEGATE_STATS_T_H
#define SURGEGATE_STATS_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "surgegate/hist-t.h"

/* Latency kinds: time in the pool's queue, connect to the backend, time to
 * the first response byte (from the request sent upstream to the response
 * head), and total (first request byte to the last response byte). */
enum sg_lat { SG_LAT_QUEUE = 0, SG_LAT_CONNECT, SG_LAT_TTFB, SG_LAT_TOTAL, SG_LAT_N };

/* Upstream error kinds. */
enum sg_ek { SG_EK_CONNECT = 0, SG_EK_TIMEOUT, SG_EK_RESET, SG_EK_BAD_RESPONSE, SG_EK_N };

/* Client-caused failures: blamed on the client, never on a backend (no
 * failure count, outlier observation, health or retry budget). */
enum sg_ce { SG_CE_TIMEOUT = 0, SG_CE_ABORTED, SG_CE_N };

/* Sliding windows reported for percentiles and rates. */
enum sg_win { SG_WIN_10S = 0, SG_WIN_1M, SG_WIN_5M, SG_WIN_N };

struct sg_wstats {
    _Atomic uint64_t requests;     /* requests answered (any status) */
    _Atomic uint64_t responses[5]; /* by status class sent to the client: 1xx .. 5xx */
    _Atomic uint64_t errors[SG_EK_N];
    _Atomic uint64_t client_errors[SG_CE_N];
    _Atomic uint64_t retries; /* retries away from this backend */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint32_t conns_active;       /* upstream connections in use now */
    struct sg_hist *_Atomic h[SG_LAT_N]; /* allocated by the worker on first use */
};

/* Counters summed over the workers (cumulative since the backend joined). */
struct sg_counts {
    uint64_t requests;
    uint64_t responses[5];
    uint64_t errors[SG_EK_N];
    uint64_t client_errors[SG_CE_N];
    uint64_t retries;
    uint64_t bytes_in, bytes_out;
};

#define SG_RATE_SECONDS 10 /* rps and error_rate window */

/* The control thread's view of one backend slot or one pool. */
struct sg_snap {
    struct sg_counts base;                      /* cumulative at the slot's (re)fill: subtracted */
    struct sg_counts cum;                       /* cumulative now (minus base, plus carry) */
    struct sg_counts carry;                     /* what earlier generations counted (reload) */
    struct sg_counts at_carry;                  /* cum when carried to the next generation */
    struct sg_counts ring[SG_RATE_SECONDS + 1]; /* cum at the last ticks */
    unsigned ring_pos, ring_n;
    uint32_t conns_active, conns_idle;
    uint32_t qdepth_ring[SG_RATE_SECONDS]; /* max queue depth per tick */
    uint32_t queue_depth_max;              /* over the last 10 s */
    double rps, error_rate;                /* over the last 10 s */
    struct sg_hist_dense *hcum[SG_LAT_N];  /* cumulative (for /metrics); NULL until used */
    struct sg_hist_dense *hbase[SG_LAT_N]; /* worker totals at the slot's refill, subtracted */
    struct sg_hist_dense *hcarry[SG_LAT_N]; /* earlier generations' histograms, added */
    struct sg_hist_dense *hat_carry[SG_LAT_N]; /* hcum when carried to the next generation */
    struct sg_hwin *hwin[SG_LAT_N];
    struct sg_hist_summary sum[SG_LAT_N][SG_WIN_N];
};

#endif
