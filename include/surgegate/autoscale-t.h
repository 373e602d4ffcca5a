/* autoscale-t.h: types of the autoscaler's decision engine (autoscale.h). */
#ifndef SURGEGATE_AUTOSCALE_T_H
#define SURGEGATE_AUTOSCALE_T_H

#include <stdint.h>

/* The metrics a rule may use, in the order of cfg_metrics in cfg_keys.c.
 * The caller fills one double per metric at every evaluation (NaN = no data). */
enum sg_as_metric {
    SG_AS_QUEUE_DEPTH,             /* "queue_depth": requests waiting in the pool's queue */
    SG_AS_QUEUE_DEPTH_PER_BACKEND, /* "queue_depth_per_backend": the same / backends */
    SG_AS_INFLIGHT_PER_BACKEND,    /* "inflight_per_backend" */
    SG_AS_UTILIZATION,             /* "utilization": in-flight / maxconn, 0..1 */
    SG_AS_LATENCY_P50_MS,          /* "latency_p50_ms" */
    SG_AS_LATENCY_P95_MS,          /* "latency_p95_ms" */
    SG_AS_LATENCY_P99_MS,          /* "latency_p99_ms" */
    SG_AS_ERROR_RATE,              /* "error_rate" */
    SG_AS_RPS_PER_BACKEND,         /* "rps_per_backend" */
    SG_AS_HEALTHY_BACKENDS,        /* "healthy_backends" */
    SG_AS_NMETRICS
};

enum sg_as_action { SG_AS_NONE, SG_AS_UP, SG_AS_DOWN };

/* What sg_as_eval() decided. action NONE: desired == current; UP: desired >
 * current; DOWN: desired < current (desired is absolute, within [min, max]
 * unless current itself is outside and the step limits the correction). */
struct sg_as_decision {
    enum sg_as_action action;
    uint32_t current, desired;
    char reason[256]; /* human text, e.g. "latency_p95_ms 412.0 > 300 for 30s" */
    int rule;         /* index of the rule that decided (-1 when several/none) */
};

/* One pool's autoscaler state (autoscale.c). */
struct sg_as;

#endif
