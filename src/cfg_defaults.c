/* cfg_defaults.c: the documented default of every element of a
 * configuration, filled in before the file's values are read (cfg-internal.h).
 * Used by cfg.c (the root) and cfg_keys.c (each frontend, pool and backend);
 * calls only the value parsers (cfg_values.c). */
#include <string.h>

#include "cfg-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"

void cfg_defaults(struct sg_cfg *cfg)
{
    char err[128];

    cfg->workers = 0;
    cfg->io_uring = true;
    cfg->sched_batch = true;
    cfg->log_level = sg_xstrdup("info");
    cfg->resolve_interval_ms = 5000;
    cfg->timeouts.connect_ms = 4000;
    cfg->timeouts.http_request_ms = 5000;
    cfg->timeouts.client_ms = 30000;
    cfg->timeouts.server_ms = 30000;
    cfg->timeouts.queue_ms = 10000;
    cfg->timeouts.keepalive_ms = 60000;
    cfg->timeouts.upstream_idle_ms = 30000;
    cfg->timeouts.grace_ms = 10000;
    cfg->limits.max_request_line = 8192;
    cfg->limits.max_header_size = 32768;
    cfg->limits.max_headers = 100;
    cfg->limits.max_body_size = 0;
    cfg->limits.buffer_memory = 1024ull * 1024 * 1024;
    cfg->access_log.path = NULL;
    cfg->access_log.format = sg_xstrdup("json");
    cfg->journal.path = NULL;
    cfg->journal.size = 10000;
    cfg->cluster.ttl_ms = 5000;
    cfg->cluster.prefix = sg_xstrdup("/surgegate/");
    SG_BUG_ON(sg_cfg_parse_addr("unix:/run/surgegate/admin.sock", &cfg->admin.listen, err,
                                sizeof(err)) != SG_OK);
    /* IPv4 and IPv6 link-local, and the cloud metadata services: AWS, GCP,
     * Azure, OCI (169.254.169.254), AWS over IPv6, Alibaba. */
    static const char *const deny[] = {"169.254.0.0/16", "fe80::/10", "169.254.169.254/32",
                                       "fd00:ec2::254/128", "100.100.100.200/32"};
    cfg->admin.ndeny = SG_ARRAY_SIZE(deny);
    cfg->admin.deny = sg_xcalloc(cfg->admin.ndeny, sizeof(*cfg->admin.deny));
    for (size_t i = 0; i < cfg->admin.ndeny; i++)
        SG_BUG_ON(sg_cfg_parse_cidr(deny[i], &cfg->admin.deny[i], err, sizeof(err)) != SG_OK);
}

void cfg_frontend_defaults(struct sg_cfg_frontend *fe)
{
    memset(fe, 0, sizeof(*fe));
    fe->maxconn = 10000;
    fe->default_pool_index = -1;
}

void cfg_pool_defaults(struct sg_cfg_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
    pool->balance = sg_xstrdup(sg_lb_default()->name);
    pool->retries = 2;
    pool->maxqueue = 1000;
    pool->max_idle = 32;
    pool->hash_key = sg_xstrdup("source");
    pool->hash_balance_factor = 1.25;
    pool->slowstart_ms = 0;
    pool->queue.target_ms = 100;
    pool->queue.interval_ms = 500;
    pool->queue.lifo = false;
    pool->discover.interval_ms = 5000;
    pool->discover.timeout_ms = 10000;
    pool->discover.weight = 1;
    pool->discover.max_members = 64;
    pool->retry_budget.percent = 20.0;
    pool->retry_budget.min_retries = 3;
    pool->outlier.consecutive_errors = 5;
    pool->outlier.base_ejection_ms = 30000;
    pool->outlier.max_ejection_ms = 300000;
    pool->outlier.max_ejection_percent = 50;
    pool->health.enabled = true; /* on without a "health" group: the defaults below */
    pool->health.type = sg_xstrdup("http");
    pool->health.method = sg_xstrdup("GET");
    pool->health.path = sg_xstrdup("/");
    pool->health.interval_ms = 2000;
    pool->health.timeout_ms = 1000;
    pool->health.rise = 2;
    pool->health.fall = 3;
    pool->health.expect_status = sg_xstrdup("200-399");
    pool->health.stall_timeout_ms = 1000;
    /* expect, fast_interval and down_interval follow from the values read:
     * cfg_health_finish() (cfg_keys.c) fills them once the pool is loaded;
     * 0 here means "not written" */
    pool->health.expect = NULL;
    pool->health.nexpect = 0;
    pool->health.fast_interval_ms = 0;
    pool->health.down_interval_ms = 0;
    pool->autoscale.min = 1;
    pool->autoscale.step = 1;
    pool->autoscale.hook_timeout_ms = 30000;
    pool->autoscale.scale_up_cooldown_ms = 60000;
    pool->autoscale.scale_down_window_ms = 300000;
    pool->autoscale.hold_timeout_ms = 30000;
    pool->autoscale.settle_timeout_ms = 180000;
}

void cfg_backend_defaults(struct sg_cfg_backend *be)
{
    memset(be, 0, sizeof(*be));
    be->weight = 1;
}
