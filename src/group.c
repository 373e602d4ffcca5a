/* group.c: what the control plane tells a scale hook about a pool: the
 * autoscale metrics, the snapshot on its stdin, the members to remove
 * first. See group.h. Reads the pool's atomics and the stats snapshots;
 * changes nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "surgegate/autoscale.h"
#include "surgegate/common.h"
#include "surgegate/group.h"
#include "surgegate/pool.h"
#include "surgegate/stats.h"

#define GROUP_HOOK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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

static char *group_env(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *e = sg_xmalloc(n);
    snprintf(e, n, "%s=%s", k, v);
    return e;
}

char **sg_group_hook_env(const struct sg_pool *p, const char *exe, const double *m,
                         const char *action, const char *event, const struct sg_as_decision *d)
{
    char **env = sg_xcalloc(16 + SG_AS_NMETRICS, sizeof(char *));
    size_t n = 0;
    char num[64];
    env[n++] = group_env("PATH", GROUP_HOOK_PATH);
    const char *home = getenv("HOME");
    env[n++] = group_env("HOME", home != NULL ? home : "/");
    env[n++] = group_env("LANG", "C.UTF-8");
    env[n++] = group_env("SURGEGATE_ACTION", action);
    if (exe != NULL && exe[0] != '\0')
        env[n++] = group_env("SURGEGATE_BIN", exe);
    /* `surgegate --demo` sets it: the backends local-spawn starts end with
     * the demo (see sg_demo_backend_run) */
    const char *owner = getenv("SURGEGATE_DEMO_OWNER");
    if (owner != NULL)
        env[n++] = group_env("SURGEGATE_DEMO_OWNER", owner);
    if (p != NULL)
        env[n++] = group_env("SURGEGATE_POOL", p->name);
    if (event != NULL)
        env[n++] = group_env("SURGEGATE_EVENT", event);
    if (d != NULL) {
        snprintf(num, sizeof(num), "%" PRIu32, d->current);
        env[n++] = group_env("SURGEGATE_CURRENT", num);
        snprintf(num, sizeof(num), "%" PRIu32, d->desired);
        env[n++] = group_env("SURGEGATE_DESIRED", num);
        env[n++] = group_env("SURGEGATE_REASON", d->reason);
    }
    if (p != NULL && d != NULL) {
        /* what a member the hook adds should have: the originals' maxconn */
        snprintf(num, sizeof(num), "%" PRIu32, sg_pool_default_maxconn(p));
        env[n++] = group_env("SURGEGATE_BACKEND_MAXCONN", num);
    }
    if (d != NULL && d->action == SG_AS_DOWN) {
        /* the members to stop first: dead ones before healthy ones */
        json_t *rf = sg_group_remove_first(p);
        size_t len = 1, i;
        json_t *v;
        json_array_foreach(rf, i, v) len += strlen(json_string_value(v)) + 1;
        char *list = sg_xcalloc(1, len);
        json_array_foreach(rf, i, v)
        {
            if (i > 0)
                strcat(list, " ");
            strcat(list, json_string_value(v));
        }
        env[n++] = group_env("SURGEGATE_REMOVE_FIRST", list);
        free(list);
        json_decref(rf);
    }
    if (m != NULL)
        for (int i = 0; i < SG_AS_NMETRICS; i++) {
            char key[64];
            const char *name = sg_as_metric_name(i);
            size_t k = (size_t)snprintf(key, sizeof(key), "SURGEGATE_METRIC_");
            for (size_t j = 0; name[j] != '\0' && k + 1 < sizeof(key); j++)
                key[k++] = (char)(name[j] >= 'a' && name[j] <= 'z' ? name[j] - 32 : name[j]);
            key[k] = '\0';
            if (isnan(m[i]))
                snprintf(num, sizeof(num), "nan");
            else
                snprintf(num, sizeof(num), "%.3f", m[i]);
            env[n++] = group_env(key, num);
        }
    env[n] = NULL;
    return env;
}
