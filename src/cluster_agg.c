/* cluster_agg.c: the autoscaler's metrics from several instances' raw
 * inputs, and those inputs as JSON (what each instance publishes in etcd).
 * Pure: no I/O, no clock, no state. See cluster.h. */
#include <math.h>

#include "surgegate/autoscale.h"
#include "surgegate/cluster.h"
#include "surgegate/common.h"

void sg_cluster_derive(const struct sg_cluster_raw *r, size_t n, uint32_t current,
                       double m[SG_AS_NMETRICS])
{
    double peak = 0, inflight = 0, queued = 0, maxconn = 0, rps = 0, errs = 0;
    double p50 = NAN, p95 = NAN, p99 = NAN, usable = NAN, er_max = NAN;
    bool unlimited = false;
    for (size_t i = 0; i < n; i++) {
        const struct sg_cluster_raw *x = &r[i];
        peak += isnan(x->queue_peak) ? 0 : x->queue_peak;
        inflight += isnan(x->inflight) ? 0 : x->inflight;
        queued += isnan(x->queued) ? 0 : x->queued;
        maxconn += isnan(x->maxconn) ? 0 : x->maxconn;
        unlimited = unlimited || x->unlimited;
        if (!isnan(x->rps) && !isnan(x->error_rate)) {
            rps += x->rps;
            errs += x->rps * x->error_rate;
        }
        if (!isnan(x->error_rate) && (isnan(er_max) || x->error_rate > er_max))
            er_max = x->error_rate;
        /* The slowest instance's view: an instance whose requests wait is a
         * reason to scale up even when the others are idle. fmax() skips NaN. */
        if (!isnan(x->lat_count) && x->lat_count > 0) {
            p50 = fmax(p50, x->lat_p50_ms);
            p95 = fmax(p95, x->lat_p95_ms);
            p99 = fmax(p99, x->lat_p99_ms);
        }
        /* A backend one instance cannot use is missing to that instance. */
        if (!isnan(x->usable))
            usable = isnan(usable) ? x->usable : fmin(usable, x->usable);
    }
    double per = current > 0 ? (double)current : NAN;
    m[SG_AS_QUEUE_DEPTH] = peak;
    m[SG_AS_QUEUE_DEPTH_PER_BACKEND] = peak / per;
    m[SG_AS_INFLIGHT_PER_BACKEND] = inflight / per;
    m[SG_AS_UTILIZATION] = unlimited || maxconn == 0 ? NAN : (inflight + queued) / maxconn;
    m[SG_AS_LATENCY_P50_MS] = p50;
    m[SG_AS_LATENCY_P95_MS] = p95;
    m[SG_AS_LATENCY_P99_MS] = p99;
    /* No requests anywhere: the rate of the instance that says most (0 in
     * practice: stats.c gives 0 without requests). */
    m[SG_AS_ERROR_RATE] = rps > 0 ? errs / rps : er_max;
    m[SG_AS_RPS_PER_BACKEND] = rps / per;
    m[SG_AS_HEALTHY_BACKENDS] = isnan(usable) ? 0 : usable;
}

static json_t *agg_num(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

json_t *sg_cluster_raw_json(const struct sg_cluster_raw *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "queue_peak", agg_num(r->queue_peak));
    json_object_set_new(o, "queued", agg_num(r->queued));
    json_object_set_new(o, "inflight", agg_num(r->inflight));
    json_object_set_new(o, "maxconn", agg_num(r->maxconn));
    json_object_set_new(o, "unlimited", json_boolean(r->unlimited));
    json_object_set_new(o, "usable", agg_num(r->usable));
    json_object_set_new(o, "current", agg_num(r->current));
    json_object_set_new(o, "rps", agg_num(r->rps));
    json_object_set_new(o, "error_rate", agg_num(r->error_rate));
    json_object_set_new(o, "latency_count", agg_num(r->lat_count));
    json_object_set_new(o, "latency_p50_ms", agg_num(r->lat_p50_ms));
    json_object_set_new(o, "latency_p95_ms", agg_num(r->lat_p95_ms));
    json_object_set_new(o, "latency_p99_ms", agg_num(r->lat_p99_ms));
    return o;
}

/* A number >= 0 of o's field k, or dflt. A negative or non-finite value
 * (another instance's bug, a hand-written key) is no data. */
static double agg_get(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        return dflt;
    double d = json_number_value(v);
    return isfinite(d) && d >= 0 ? d : dflt;
}

int sg_cluster_raw_parse(const json_t *o, struct sg_cluster_raw *r)
{
    bool ok = json_is_object(o);
    r->queue_peak = ok ? agg_get(o, "queue_peak", 0) : 0;
    r->queued = ok ? agg_get(o, "queued", 0) : 0;
    r->inflight = ok ? agg_get(o, "inflight", 0) : 0;
    r->maxconn = ok ? agg_get(o, "maxconn", 0) : 0;
    r->unlimited = ok && json_is_true(json_object_get(o, "unlimited"));
    r->usable = ok ? agg_get(o, "usable", NAN) : NAN;
    r->current = ok ? agg_get(o, "current", NAN) : NAN;
    r->rps = ok ? agg_get(o, "rps", 0) : 0;
    r->error_rate = ok ? agg_get(o, "error_rate", NAN) : NAN;
    if (!isnan(r->error_rate) && r->error_rate > 1)
        r->error_rate = 1;
    r->lat_count = ok ? agg_get(o, "latency_count", 0) : 0;
    r->lat_p50_ms = ok ? agg_get(o, "latency_p50_ms", NAN) : NAN;
    r->lat_p95_ms = ok ? agg_get(o, "latency_p95_ms", NAN) : NAN;
    r->lat_p99_ms = ok ? agg_get(o, "latency_p99_ms", NAN) : NAN;
    return ok ? SG_OK : SG_ERR;
}
