/* metrics.c: Prometheus text exposition (format 0.0.4) of the pools, the
 * backends and the hook runs. Every family's samples are written together
 * under one HELP and TYPE, as the format requires. Labels: pool, backend,
 * and the family's own (code_class, kind, le, ...). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "surgegate/conn.h"
#include "surgegate/control.h"
#include "surgegate/metrics.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"
#include "surgegate/stats.h"

/* Histogram bucket bounds, seconds (as printed) and microseconds. */
static const char *const le_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                      "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
                                      "5",      "10",    "30",     "60"};
static const uint64_t le_us[] = {500,     1000,     2500,     5000,    10000,   25000,
                                 50000,   100000,   250000,   500000,  1000000, 2500000,
                                 5000000, 10000000, 30000000, 60000000};

/* Label values: escape backslash, double quote and newline. */
static void metrics_label(struct evbuffer *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            evbuffer_add(out, "\\\\", 2);
        else if (*v == '"')
            evbuffer_add(out, "\\\"", 2);
        else if (*v == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, v, 1);
    }
}

static void metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pool="..",backend=".." + extra} value */
static void metrics_sample(struct evbuffer *out, const char *name, const char *suffix,
                           const struct sg_pool *p, const struct sg_backend *b, const char *extra,
                           const char *value)
{
    evbuffer_add_printf(out, "%s%s{pool=\"", name, suffix);
    metrics_label(out, p->name);
    evbuffer_add(out, "\"", 1);
    if (b != NULL) {
        evbuffer_add(out, ",backend=\"", 10);
        metrics_label(out, b->name);
        evbuffer_add(out, "\"", 1);
    }
    if (extra != NULL)
        evbuffer_add_printf(out, ",%s", extra);
    evbuffer_add_printf(out, "} %s\n", value);
}

static void metrics_u64(struct evbuffer *out, const char *name, const struct sg_pool *p,
                        const struct sg_backend *b, const char *extra, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    metrics_sample(out, name, "", p, b, extra, num);
}

static void metrics_hist(struct evbuffer *out, const char *name, const struct sg_pool *p,
                         const struct sg_backend *b, const struct sg_hist_dense *d)
{
    char extra[32], num[48];
    for (size_t i = 0; i < SG_ARRAY_SIZE(le_us); i++) {
        snprintf(extra, sizeof(extra), "le=\"%s\"", le_text[i]);
        snprintf(num, sizeof(num), "%" PRIu64, d != NULL ? sg_hist_count_le(d, le_us[i]) : 0);
        metrics_sample(out, name, "_bucket", p, b, extra, num);
    }
    snprintf(num, sizeof(num), "%" PRIu64, d != NULL ? d->count : 0);
    metrics_sample(out, name, "_bucket", p, b, "le=\"+Inf\"", num);
    snprintf(num, sizeof(num), "%.6f", d != NULL ? (double)d->sum_us / 1e6 : 0.0);
    metrics_sample(out, name, "_sum", p, b, NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, d != NULL ? d->count : 0);
    metrics_sample(out, name, "_count", p, b, NULL, num);
}

typedef void (*metrics_backend_fn)(struct evbuffer *out, const char *name, const struct sg_pool *p,
                                   const struct sg_backend *b, const struct sg_snap *s);

/* Calls fn for every live backend of every pool. */
static void metrics_backends(struct evbuffer *out, struct sg_pools *pools,
                             const struct sg_stats *st, const char *name, metrics_backend_fn fn)
{
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_pool *p = &pools->pools[i];
        for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
            const struct sg_backend *b = &p->backends[j];
            if (sg_backend_live(b))
                fn(out, name, p, b, sg_stats_backend(st, b));
        }
    }
}

static void fn_up(struct evbuffer *out, const char *name, const struct sg_pool *p,
                  const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, NULL, sg_backend_usable(b, sg_now_ms()) ? 1 : 0);
}

static void fn_inflight(struct evbuffer *out, const char *name, const struct sg_pool *p,
                        const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, NULL, atomic_load(&b->inflight));
}

static void fn_queue(struct evbuffer *out, const char *name, const struct sg_pool *p,
                     const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, NULL, atomic_load(&b->queue_depth));
}

static void fn_weight(struct evbuffer *out, const char *name, const struct sg_pool *p,
                      const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, NULL, atomic_load(&b->weight));
}

static void fn_conns(struct evbuffer *out, const char *name, const struct sg_pool *p,
                     const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, "state=\"active\"", s->conns_active);
    metrics_u64(out, name, p, b, "state=\"idle\"", s->conns_idle);
}

static void fn_requests(struct evbuffer *out, const char *name, const struct sg_pool *p,
                        const struct sg_backend *b, const struct sg_snap *s)
{
    static const char *const cls[5] = {"code_class=\"1xx\"", "code_class=\"2xx\"",
                                       "code_class=\"3xx\"", "code_class=\"4xx\"",
                                       "code_class=\"5xx\""};
    for (int c = 0; c < 5; c++)
        metrics_u64(out, name, p, b, cls[c], s->cum.responses[c]);
}

static void fn_errors(struct evbuffer *out, const char *name, const struct sg_pool *p,
                      const struct sg_backend *b, const struct sg_snap *s)
{
    char extra[48];
    for (int k = 0; k < SG_EK_N; k++) {
        snprintf(extra, sizeof(extra), "kind=\"%s\"", sg_ek_name((enum sg_ek)k));
        metrics_u64(out, name, p, b, extra, s->cum.errors[k]);
    }
}

static void fn_client_errors(struct evbuffer *out, const char *name, const struct sg_pool *p,
                             const struct sg_backend *b, const struct sg_snap *s)
{
    char extra[48];
    for (int k = 0; k < SG_CE_N; k++) {
        snprintf(extra, sizeof(extra), "kind=\"%s\"", sg_ce_name((enum sg_ce)k));
        metrics_u64(out, name, p, b, extra, s->cum.client_errors[k]);
    }
}

static void fn_retries(struct evbuffer *out, const char *name, const struct sg_pool *p,
                       const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, NULL, s->cum.retries);
}

static void fn_bytes(struct evbuffer *out, const char *name, const struct sg_pool *p,
                     const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_u64(out, name, p, b, "direction=\"in\"", s->cum.bytes_in);
    metrics_u64(out, name, p, b, "direction=\"out\"", s->cum.bytes_out);
}

static void fn_h_total(struct evbuffer *out, const char *name, const struct sg_pool *p,
                       const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_hist(out, name, p, b, s->hcum[SG_LAT_TOTAL]);
}

static void fn_h_connect(struct evbuffer *out, const char *name, const struct sg_pool *p,
                         const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_hist(out, name, p, b, s->hcum[SG_LAT_CONNECT]);
}

static void fn_h_ttfb(struct evbuffer *out, const char *name, const struct sg_pool *p,
                      const struct sg_backend *b, const struct sg_snap *s)
{
    metrics_hist(out, name, p, b, s->hcum[SG_LAT_TTFB]);
}

/* The queues' overload control: requests admitted, queued and shed per
 * priority (shed also by reason), the standing state, target and drain rate. */
static void metrics_queue(struct evbuffer *out, struct sg_pools *pools)
{
    char extra[96];
    metrics_head(out, "surgegate_requests_admitted_total", "counter",
                 "Requests given a backend slot or a place in the queue, by priority.");
    for (size_t i = 0; i < pools->n; i++)
        for (int pr = 0; pr < SG_PRIO_N; pr++) {
            snprintf(extra, sizeof(extra), "priority=\"%s\"", sg_prio_name(pr));
            metrics_u64(out, "surgegate_requests_admitted_total", &pools->pools[i], NULL, extra,
                        atomic_load(&pools->pools[i].queue.admitted[pr]));
        }
    metrics_head(out, "surgegate_requests_queued_total", "counter",
                 "Times a request entered the pool's queue, by priority.");
    for (size_t i = 0; i < pools->n; i++)
        for (int pr = 0; pr < SG_PRIO_N; pr++) {
            snprintf(extra, sizeof(extra), "priority=\"%s\"", sg_prio_name(pr));
            metrics_u64(out, "surgegate_requests_queued_total", &pools->pools[i], NULL, extra,
                        atomic_load(&pools->pools[i].queue.queued[pr]));
        }
    metrics_head(out, "surgegate_requests_shed_total", "counter",
                 "Requests refused by the pool's queue with 503, by priority and reason.");
    for (size_t i = 0; i < pools->n; i++)
        for (int pr = 0; pr < SG_PRIO_N; pr++)
            for (int r = 0; r < SG_SHED_N; r++) {
                snprintf(extra, sizeof(extra), "priority=\"%s\",reason=\"%s\"", sg_prio_name(pr),
                         sg_shed_name(r));
                metrics_u64(out, "surgegate_requests_shed_total", &pools->pools[i], NULL, extra,
                            atomic_load(&pools->pools[i].queue.shed[pr][r]));
            }
    metrics_head(out, "surgegate_pool_queue_standing", "gauge",
                 "1 while the pool's queue stands (waits above its target): shedding.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_queue_standing", &pools->pools[i], NULL, NULL,
                    atomic_load(&pools->pools[i].queue.standing) ? 1 : 0);
    metrics_head(out, "surgegate_pool_queue_target_seconds", "gauge",
                 "The queue's wait target (0: overload control off).");
    for (size_t i = 0; i < pools->n; i++) {
        char num[32];
        snprintf(num, sizeof(num), "%.3f", pools->pools[i].cfg->queue.target_ms / 1000.0);
        metrics_sample(out, "surgegate_pool_queue_target_seconds", "", &pools->pools[i], NULL, NULL,
                       num);
    }
    metrics_head(out, "surgegate_pool_drain_rate", "gauge",
                 "Requests per second the pool completed while saturated (measured).");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_drain_rate", &pools->pools[i], NULL, NULL,
                    atomic_load(&pools->pools[i].queue.drain_rps));
    metrics_head(out, "surgegate_pool_shedding_episodes_total", "counter",
                 "Times the pool's queue began to stand.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_shedding_episodes_total", &pools->pools[i], NULL, NULL,
                    atomic_load(&pools->pools[i].queue.episodes));
}

void sg_metrics_write(struct evbuffer *out, struct sg_pools *pools, const struct sg_stats *st,
                      const struct sg_control *ctl)
{
    static const struct {
        const char *name, *type, *help;
        metrics_backend_fn fn;
    } fams[] = {
        {"surgegate_backend_up", "gauge", "1 when the backend takes new requests.", fn_up},
        {"surgegate_backend_inflight", "gauge", "Requests on the backend now.", fn_inflight},
        {"surgegate_backend_queue_depth", "gauge",
         "Queued requests whose first choice is this backend.", fn_queue},
        {"surgegate_backend_weight", "gauge", "Configured weight.", fn_weight},
        {"surgegate_backend_connections", "gauge", "Upstream connections by state.", fn_conns},
        {"surgegate_requests_total", "counter", "Requests answered, by status class.", fn_requests},
        {"surgegate_backend_errors_total", "counter", "Upstream errors by kind.", fn_errors},
        {"surgegate_client_errors_total", "counter",
         "Requests to the backend that the client failed (too slow, or gone), by kind: "
         "never counted against the backend.",
         fn_client_errors},
        {"surgegate_backend_retries_total", "counter", "Retries away from the backend.",
         fn_retries},
        {"surgegate_backend_bytes_total", "counter", "Client bytes by direction.", fn_bytes},
        {"surgegate_request_duration_seconds", "histogram",
         "Total request time, first request byte to last response byte.", fn_h_total},
        {"surgegate_backend_connect_seconds", "histogram", "Time to connect to the backend.",
         fn_h_connect},
        {"surgegate_backend_ttfb_seconds", "histogram", "Request sent to response head received.",
         fn_h_ttfb},
    };
    for (size_t f = 0; f < SG_ARRAY_SIZE(fams); f++) {
        metrics_head(out, fams[f].name, fams[f].type, fams[f].help);
        metrics_backends(out, pools, st, fams[f].name, fams[f].fn);
    }

    metrics_head(out, "surgegate_pool_queue_depth", "gauge", "Requests waiting in the queue.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_queue_depth", &pools->pools[i], NULL, NULL,
                    atomic_load(&pools->pools[i].queue.depth));
    metrics_head(out, "surgegate_pool_queue_depth_max", "gauge",
                 "Highest queue depth over the last 10 s.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_queue_depth_max", &pools->pools[i], NULL, NULL,
                    sg_stats_pool(st, &pools->pools[i])->queue_depth_max);
    metrics_head(out, "surgegate_pool_queue_overflows_total", "counter",
                 "Requests refused because the queue was full.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_u64(out, "surgegate_pool_queue_overflows_total", &pools->pools[i], NULL, NULL,
                    atomic_load(&pools->pools[i].queue.overflows));
    metrics_queue(out, pools);
    metrics_head(out, "surgegate_pool_backends", "gauge", "Backends in the pool, by state.");
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_pool *p = &pools->pools[i];
        uint64_t now = sg_now_ms(), n[SG_BACKEND__COUNT] = {0};
        for (size_t j = 0, nu = sg_pool_nused(p); j < nu; j++)
            if (sg_backend_live(&p->backends[j]))
                n[sg_backend_state(&p->backends[j], now)]++;
        for (int k = 0; k < SG_BACKEND__COUNT; k++) {
            char extra[32];
            snprintf(extra, sizeof(extra), "state=\"%s\"",
                     sg_backend_state_name((enum sg_backend_state)k));
            metrics_u64(out, "surgegate_pool_backends", p, NULL, extra, n[k]);
        }
    }
    metrics_head(out, "surgegate_pool_requests_total", "counter",
                 "Requests of the pool by status class (also those no backend served).");
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_snap *s = sg_stats_pool(st, &pools->pools[i]);
        static const char *const cls[5] = {"code_class=\"1xx\"", "code_class=\"2xx\"",
                                           "code_class=\"3xx\"", "code_class=\"4xx\"",
                                           "code_class=\"5xx\""};
        for (int c = 0; c < 5; c++)
            metrics_u64(out, "surgegate_pool_requests_total", &pools->pools[i], NULL, cls[c],
                        s->cum.responses[c]);
    }
    metrics_head(out, "surgegate_pool_client_errors_total", "counter",
                 "Requests of the pool that the client failed (too slow, or gone), by kind.");
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_snap *s = sg_stats_pool(st, &pools->pools[i]);
        for (int k = 0; k < SG_CE_N; k++) {
            char extra[32];
            snprintf(extra, sizeof(extra), "kind=\"%s\"", sg_ce_name((enum sg_ce)k));
            metrics_u64(out, "surgegate_pool_client_errors_total", &pools->pools[i], NULL, extra,
                        s->cum.client_errors[k]);
        }
    }
    metrics_head(out, "surgegate_queue_wait_seconds", "histogram",
                 "Time requests waited in the pool's queue.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_hist(out, "surgegate_queue_wait_seconds", &pools->pools[i], NULL,
                     sg_stats_pool(st, &pools->pools[i])->hcum[SG_LAT_QUEUE]);
    metrics_head(out, "surgegate_pool_request_duration_seconds", "histogram",
                 "Total request time of every request of the pool.");
    for (size_t i = 0; i < pools->n; i++)
        metrics_hist(out, "surgegate_pool_request_duration_seconds", &pools->pools[i], NULL,
                     sg_stats_pool(st, &pools->pools[i])->hcum[SG_LAT_TOTAL]);
    metrics_head(out, "surgegate_buffer_bytes", "gauge",
                 "Bytes held in all connections' buffers (limits.buffer_memory bounds them).");
    evbuffer_add_printf(out, "surgegate_buffer_bytes %llu\n",
                        (unsigned long long)sg_conn_buffered());
    metrics_head(out, "surgegate_buffer_limit_hits_total", "counter",
                 "Times the connections' buffers went over limits.buffer_memory.");
    evbuffer_add_printf(out, "surgegate_buffer_limit_hits_total %llu\n",
                        (unsigned long long)sg_conn_buffers_hits());
    if (ctl != NULL)
        sg_control_metrics(ctl, out);
}
