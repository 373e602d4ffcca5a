/* group.c: what the control plane tells a scale hook about a pool: the
 * autoscale metrics, the snapshot on its stdin, the members to remove
 * first. See group.h. Reads the pool's atomics and the stats snapshots;
 * changes nothing. */
#include <math.h>
#include <stdatomic.h>

#include "surgegate/autoscale.h"
#include "surgegate/common.h"
#include "surgegate/group.h"
#include "surgegate/pool.h"
#include "surgegate/stats.h"

void sg_group_metrics(const struct sg_stats *st, const struct sg_pool *p, double m[SG_AS_NMETRICS])
{
    uint64_t now = sg_now_ms();
    const struct sg_snap *s = sg_stats_pool(st, p);
    uint64_t inflight = 0, maxconn = 0;
    uint32_t usable = 0, serving = 0;
    bool unlimited = false;
    for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
        const struct sg_backend *b = &p->backends[j];
        if (!sg_backend_live(b))
            continue;
        inflight += atomic_load(&b->inflight);
        if (!atomic_load(&b->removing) && !b->backup)
            serving++;
        if (!sg_backend_usable(b, now))
            continue;
        usable++;
        uint32_t mc = atomic_load(&b->maxconn);
        if (mc == 0)
            unlimited = true;
        maxconn += mc;
    }
    /* The queue's highest depth during the last second, not a sample. */
    double q = (double)s->qdepth_ring[0];
    double per = serving > 0 ? (double)serving : NAN;
    m[SG_AS_QUEUE_DEPTH] = q;
    m[SG_AS_QUEUE_DEPTH_PER_BACKEND] = q / per;
    m[SG_AS_INFLIGHT_PER_BACKEND] = (double)inflight / per;
    m[SG_AS_UTILIZATION] =
        unlimited || maxconn == 0
            ? NAN
            : (double)(inflight + atomic_load(&p->queue.depth)) / (double)maxconn;
    const struct sg_hist_summary *h = &s->sum[SG_LAT_TOTAL][SG_WIN_10S];
    m[SG_AS_LATENCY_P50_MS] = h->count ? (double)h->p50 / 1000.0 : NAN;
    m[SG_AS_LATENCY_P95_MS] = h->count ? (double)h->p95 / 1000.0 : NAN;
    m[SG_AS_LATENCY_P99_MS] = h->count ? (double)h->p99 / 1000.0 : NAN;
    m[SG_AS_ERROR_RATE] = s->error_rate;
    m[SG_AS_RPS_PER_BACKEND] = s->rps / per;
    m[SG_AS_HEALTHY_BACKENDS] = (double)usable;
}

json_t *sg_group_snapshot(const struct sg_stats *st, const struct sg_pool *p, const double *m)
{
    uint64_t now = sg_now_ms();
    json_t *bs = json_array();
    for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
        const struct sg_backend *b = &p->backends[j];
        if (!sg_backend_live(b))
            continue;
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "address", b->name, "state",
                              sg_backend_state_name(sg_backend_state(b, now)), "weight",
                              (json_int_t)atomic_load(&b->weight), "inflight",
                              (json_int_t)atomic_load(&b->inflight), "queue_depth",
                              (json_int_t)atomic_load(&b->queue_depth), "removing",
                              (int)atomic_load(&b->removing));
        json_object_set_new(o, "maxconn", json_integer(atomic_load(&b->maxconn)));
        json_object_set_new(o, "origin", json_string(sg_backend_origin_name(b->origin)));
        json_object_set_new(o, "in_group", json_boolean(sg_pool_in_group(b)));
        json_array_append_new(bs, o);
    }
    json_t *metrics = json_object();
    for (int i = 0; m != NULL && i < SG_AS_NMETRICS; i++)
        json_object_set_new(metrics, sg_as_metric_name(i),
                            isnan(m[i]) ? json_null() : json_real(m[i]));
    const struct sg_snap *s = sg_stats_pool(st, p);
    return json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:o, s:o}", "name", p->name, "queue_depth",
                     (json_int_t)atomic_load(&p->queue.depth), "requests",
                     (json_int_t)s->cum.requests, "rps", s->rps, "error_rate", s->error_rate,
                     "current", (json_int_t)sg_pool_ncurrent(p), "metrics", metrics, "backends",
                     bs);
}

json_t *sg_group_remove_first(const struct sg_pool *p)
{
    uint64_t now = sg_now_ms();
    json_t *a = json_array();
    /* two passes: the DOWN ones, then the ones that never came up */
    static const enum sg_backend_state order[] = {SG_BACKEND_DOWN, SG_BACKEND_CHECKING};
    for (size_t k = 0; k < SG_ARRAY_SIZE(order); k++)
        for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
            const struct sg_backend *b = &p->backends[j];
            if (sg_pool_in_group(b) && sg_backend_state(b, now) == order[k])
                json_array_append_new(a, json_string(b->name));
        }
    return a;
}
