/* cfg_keys.c: the keyword table of every config section and the loaders that
 * walk libconfig's tree with them (nginx-style table-driven config).
 *
 * Each section (top level, timeouts, frontend, route, pool, ...) is a table of
 * keys; a key names its handler, the offset of its field in the section's
 * struct and its limits. cfg_section_load() walks a group's members, reports
 * every unknown key (with a "did you mean" hint), calls each key's handler and
 * then reports missing required keys. Handlers (those of scalar keys are in
 * cfg_scalars.c) check the type and value of one setting, report problems on
 * its line and store the value; a bad value leaves the default in place so
 * loading can go on and find the next problem.
 * Cross checks (duplicate names and addresses, unknown pools, min <= max,
 * max_ejection >= base_ejection) and derived values (health fast_interval,
 * down_interval and the parsed expect_status) follow each element.
 * "frontends" is loaded last so that every pool is known. */
#include <math.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_keys-internal.h"
#include "surgegate/alert.h"
#include "surgegate/autoscale.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"

static const char CFG_ROOT_WHERE[] = "the top level";

/* ---- sections ---- */

static void cfg_section_load(struct cfg_ctx *ctx, const config_setting_t *g,
                             const struct cfg_section *sec, void *obj, const char *where);
static void cfg_k_group(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where);
static void cfg_k_pools(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where);
static void cfg_k_defer_frontends(struct cfg_ctx *ctx, const config_setting_t *s,
                                  const struct cfg_key *k, void *obj, const char *where);
static void cfg_k_routes(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                         void *obj, const char *where);
static void cfg_k_pool_ref(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where);
static void cfg_k_backends(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where);
static void cfg_k_rules(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where);
static void cfg_k_tokens(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                         void *obj, const char *where);

#define MS_DAY (24LL * 3600 * 1000)

static const char *const cfg_log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const cfg_health_types[] = {"http", "tcp", NULL};
static const char *const cfg_roles[] = {"admin", "read", NULL};
static const char *const cfg_alog_formats[] = {"json", "combined", NULL};
/* In enum sg_prio order. */
static const char *const cfg_priorities[] = {"normal", "critical", "sheddable", NULL};

#define T struct sg_cfg_timeouts
static const struct cfg_key cfg_timeout_keys[] = {
    {.name = "connect",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, connect_ms),
     .min = 1,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_connect)},
    {.name = "http_request",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, http_request_ms),
     .min = 1,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_http_request)},
    {.name = "client",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, client_ms),
     .min = 1,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_client)},
    {.name = "server",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, server_ms),
     .min = 1,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_server)},
    {.name = "queue",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, queue_ms),
     .min = 1,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_queue),
     .line_off = CFG_OFF(T, queue_line)},
    {.name = "keepalive",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, keepalive_ms),
     .min = 0,
     .max = MS_DAY,
     .set_off = CFG_OFF(T, set_keepalive)},
    {.name = "upstream_idle",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, upstream_idle_ms),
     .min = 0,
     .max = MS_DAY},
    {.name = "grace", .fn = cfg_k_duration, .off = CFG_OFF(T, grace_ms), .min = 0, .max = MS_DAY},
    {0}};
static const struct cfg_section cfg_sec_timeouts = {"timeouts", "timeouts", cfg_timeout_keys,
                                                    CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_limits
static const struct cfg_key cfg_limit_keys[] = {{.name = "max_request_line",
                                                 .fn = cfg_k_size32,
                                                 .off = CFG_OFF(T, max_request_line),
                                                 .min = 64,
                                                 .max = 1 << 20},
                                                {.name = "max_header_size",
                                                 .fn = cfg_k_size32,
                                                 .off = CFG_OFF(T, max_header_size),
                                                 .min = 256,
                                                 .max = 16 << 20},
                                                {.name = "max_headers",
                                                 .fn = cfg_k_uint,
                                                 .off = CFG_OFF(T, max_headers),
                                                 .min = 1,
                                                 .max = 10000},
                                                {.name = "max_body_size",
                                                 .fn = cfg_k_size64,
                                                 .off = CFG_OFF(T, max_body_size),
                                                 .min = 0,
                                                 .max = INT64_MAX},
                                                {.name = "buffer_memory",
                                                 .fn = cfg_k_size64,
                                                 .off = CFG_OFF(T, buffer_memory),
                                                 .min = 0,
                                                 .max = INT64_MAX},
                                                {0}};
static const struct cfg_section cfg_sec_limits = {"limits", "limits", cfg_limit_keys,
                                                  CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_route
static const struct cfg_key cfg_route_keys[] = {
    {.name = "host", .fn = cfg_k_host, .off = CFG_OFF(T, host)},
    {.name = "path_prefix", .fn = cfg_k_urlpath, .off = CFG_OFF(T, path_prefix)},
    {.name = "pool", .fn = cfg_k_pool_ref, .off = CFG_OFF(T, pool), .required = true},
    {.name = "priority", .fn = cfg_k_enum, .off = CFG_OFF(T, priority), .choices = cfg_priorities},
    {0}};
static const struct cfg_section cfg_sec_route = {"a route", NULL, cfg_route_keys, CFG_OFF(T, line),
                                                 0};
#undef T

#define T struct sg_cfg_frontend
static const struct cfg_key cfg_frontend_keys[] = {
    {.name = "name", .fn = cfg_k_name, .off = CFG_OFF(T, name), .required = true},
    {.name = "listen", .fn = cfg_k_addr, .off = CFG_OFF(T, listen), .required = true},
    {.name = "maxconn",
     .fn = cfg_k_uint,
     .off = CFG_OFF(T, maxconn),
     .min = 1,
     .max = 1000000,
     .line_off = CFG_OFF(T, maxconn_line)},
    {.name = "routes", .fn = cfg_k_routes},
    {.name = "default_pool", .fn = cfg_k_pool_ref, .off = CFG_OFF(T, default_pool)},
    {0}};
static const struct cfg_section cfg_sec_frontend = {"a frontend", NULL, cfg_frontend_keys,
                                                    CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_health
static const struct cfg_key cfg_health_keys[] = {
    {.name = "enabled", .fn = cfg_k_bool, .off = CFG_OFF(T, enabled)},
    {.name = "type", .fn = cfg_k_enum, .off = CFG_OFF(T, type), .choices = cfg_health_types},
    {.name = "method", .fn = cfg_k_method, .off = CFG_OFF(T, method)},
    {.name = "path", .fn = cfg_k_urlpath, .off = CFG_OFF(T, path)},
    {.name = "host", .fn = cfg_k_host, .off = CFG_OFF(T, host)},
    {.name = "interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, interval_ms),
     .min = 100,
     .max = MS_DAY},
    {.name = "timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, timeout_ms),
     .min = 1,
     .max = 3600 * 1000},
    {.name = "rise", .fn = cfg_k_uint, .off = CFG_OFF(T, rise), .min = 1, .max = 1000},
    {.name = "fall", .fn = cfg_k_uint, .off = CFG_OFF(T, fall), .min = 1, .max = 1000},
    {.name = "expect_status", .fn = cfg_k_status, .off = CFG_OFF(T, expect_status)},
    {.name = "fast_interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, fast_interval_ms),
     .min = 100,
     .max = MS_DAY},
    {.name = "down_interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, down_interval_ms),
     .min = 100,
     .max = MS_DAY},
    {.name = "stall_timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, stall_timeout_ms),
     .min = 0,
     .max = 3600 * 1000},
    {0}};
/* No enabled_off: checks are on whether or not the group is written. */
static const struct cfg_section cfg_sec_health = {"health", "health", cfg_health_keys,
                                                  CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_backend
static const struct cfg_key cfg_backend_keys[] = {
    {.name = "address", .fn = cfg_k_backend_addr, .required = true},
    {.name = "weight", .fn = cfg_k_uint, .off = CFG_OFF(T, weight), .min = 0, .max = 256},
    {.name = "maxconn", .fn = cfg_k_uint, .off = CFG_OFF(T, maxconn), .min = 0, .max = 1000000},
    {.name = "backup", .fn = cfg_k_bool, .off = CFG_OFF(T, backup)},
    {0}};
static const struct cfg_section cfg_sec_backend = {"a backend", NULL, cfg_backend_keys,
                                                   CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_rule
static const struct cfg_key cfg_rule_keys[] = {
    {.name = "metric",
     .fn = cfg_k_enum,
     .off = CFG_OFF(T, metric),
     .choice_at = sg_as_metric_at,
     .required = true},
    {.name = "above", .fn = cfg_k_rule_value, .min = SG_RULE_ABOVE},
    {.name = "below", .fn = cfg_k_rule_value, .min = SG_RULE_BELOW},
    {.name = "target", .fn = cfg_k_rule_value, .min = SG_RULE_TARGET},
    {.name = "for", .fn = cfg_k_duration, .off = CFG_OFF(T, for_ms), .min = 0, .max = MS_DAY},
    {0}};
static const struct cfg_section cfg_sec_rule = {"an autoscale rule", NULL, cfg_rule_keys,
                                                CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_autoscale
static const struct cfg_key cfg_autoscale_keys[] = {
    {.name = "min", .fn = cfg_k_uint, .off = CFG_OFF(T, min), .min = 0, .max = 10000},
    {.name = "max",
     .fn = cfg_k_uint,
     .off = CFG_OFF(T, max),
     .min = 1,
     .max = 10000,
     .required = true},
    {.name = "step", .fn = cfg_k_uint, .off = CFG_OFF(T, step), .min = 1, .max = 1000},
    {.name = "hook_timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, hook_timeout_ms),
     .min = 1000,
     .max = 3600 * 1000},
    {.name = "dry_run", .fn = cfg_k_bool, .off = CFG_OFF(T, dry_run)},
    {.name = "scale_up_cooldown",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, scale_up_cooldown_ms),
     .min = 0,
     .max = MS_DAY},
    {.name = "scale_down_window",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, scale_down_window_ms),
     .min = 0,
     .max = MS_DAY},
    {.name = "hold_timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, hold_timeout_ms),
     .min = 0,
     .max = 3600 * 1000},
    {.name = "rules", .fn = cfg_k_rules},
    {.name = "settle_timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, settle_timeout_ms),
     .min = 1000,
     .max = 3600 * 1000},
    {.name = "scale_up_hook",
     .fn = cfg_k_argv,
     .off = CFG_OFF(T, scale_up_hook),
     .line_off = CFG_OFF(T, scale_up_hook_line)},
    {.name = "scale_down_hook",
     .fn = cfg_k_argv,
     .off = CFG_OFF(T, scale_down_hook),
     .line_off = CFG_OFF(T, scale_down_hook_line)},
    {0}};
static const struct cfg_section cfg_sec_autoscale = {"autoscale", "autoscale", cfg_autoscale_keys,
                                                     CFG_OFF(T, line), CFG_OFF(T, enabled)};
#undef T

#define T struct sg_cfg_queue
static const struct cfg_key cfg_queue_keys[] = {
    {.name = "target", .fn = cfg_k_duration, .off = CFG_OFF(T, target_ms), .min = 0, .max = 60000},
    {.name = "interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, interval_ms),
     .min = 10,
     .max = 60000},
    {.name = "lifo", .fn = cfg_k_bool, .off = CFG_OFF(T, lifo)},
    {0}};
static const struct cfg_section cfg_sec_queue = {"queue", "queue", cfg_queue_keys, CFG_OFF(T, line),
                                                 0};
#undef T

#define T struct sg_cfg_retry_budget
static const struct cfg_key cfg_retry_budget_keys[] = {
    {.name = "percent", .fn = cfg_k_double, .off = CFG_OFF(T, percent), .min = 0, .max = 100},
    {.name = "min_retries",
     .fn = cfg_k_uint,
     .off = CFG_OFF(T, min_retries),
     .min = 0,
     .max = 10000},
    {0}};
static const struct cfg_section cfg_sec_retry_budget = {"retry_budget", "retry_budget",
                                                        cfg_retry_budget_keys, CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_outlier
static const struct cfg_key cfg_outlier_keys[] = {{.name = "consecutive_errors",
                                                   .fn = cfg_k_uint,
                                                   .off = CFG_OFF(T, consecutive_errors),
                                                   .min = 0,
                                                   .max = 1000},
                                                  {.name = "base_ejection",
                                                   .fn = cfg_k_duration,
                                                   .off = CFG_OFF(T, base_ejection_ms),
                                                   .min = 100,
                                                   .max = 3600 * 1000},
                                                  {.name = "max_ejection",
                                                   .fn = cfg_k_duration,
                                                   .off = CFG_OFF(T, max_ejection_ms),
                                                   .min = 100,
                                                   .max = MS_DAY},
                                                  {.name = "max_ejection_percent",
                                                   .fn = cfg_k_uint,
                                                   .off = CFG_OFF(T, max_ejection_percent),
                                                   .min = 0,
                                                   .max = 100},
                                                  {0}};
static const struct cfg_section cfg_sec_outlier = {"outlier", "outlier", cfg_outlier_keys,
                                                   CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_pool
static const struct cfg_key cfg_pool_keys[] = {
    {.name = "name", .fn = cfg_k_name, .off = CFG_OFF(T, name), .required = true},
    {.name = "balance", .fn = cfg_k_enum, .off = CFG_OFF(T, balance), .choice_at = sg_lb_name},
    {.name = "retries", .fn = cfg_k_uint, .off = CFG_OFF(T, retries), .min = 0, .max = 10},
    {.name = "maxqueue", .fn = cfg_k_uint, .off = CFG_OFF(T, maxqueue), .min = 0, .max = 1000000},
    {.name = "max_idle", .fn = cfg_k_uint, .off = CFG_OFF(T, max_idle), .min = 0, .max = 10000},
    {.name = "hash_key", .fn = cfg_k_hash_key, .off = CFG_OFF(T, hash_key)},
    {.name = "hash_balance_factor",
     .fn = cfg_k_balance_factor,
     .off = CFG_OFF(T, hash_balance_factor)},
    {.name = "slowstart",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, slowstart_ms),
     .min = 0,
     .max = 3600 * 1000},
    {.name = "queue", .fn = cfg_k_group, .off = CFG_OFF(T, queue), .sub = &cfg_sec_queue},
    {.name = "retry_budget",
     .fn = cfg_k_group,
     .off = CFG_OFF(T, retry_budget),
     .sub = &cfg_sec_retry_budget},
    {.name = "outlier", .fn = cfg_k_group, .off = CFG_OFF(T, outlier), .sub = &cfg_sec_outlier},
    {.name = "health", .fn = cfg_k_group, .off = CFG_OFF(T, health), .sub = &cfg_sec_health},
    {.name = "backends", .fn = cfg_k_backends},
    {.name = "autoscale",
     .fn = cfg_k_group,
     .off = CFG_OFF(T, autoscale),
     .sub = &cfg_sec_autoscale},
    {.name = "discover", .fn = cfg_k_group, .off = CFG_OFF(T, discover), .sub = &cfg_sec_discover},
    {0}};
static const struct cfg_section cfg_sec_pool = {"a pool", NULL, cfg_pool_keys, CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_alerts
static const struct cfg_key cfg_alert_keys[] = {
    {.name = "events", .fn = cfg_k_events, .off = CFG_OFF(T, events)},
    {.name = "hook", .fn = cfg_k_argv, .off = CFG_OFF(T, hook), .line_off = CFG_OFF(T, hook_line)},
    {0}};
static const struct cfg_section cfg_sec_alerts = {"alerts", "alerts", cfg_alert_keys,
                                                  CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_token
static const struct cfg_key cfg_token_keys[] = {
    {.name = "name", .fn = cfg_k_name, .off = CFG_OFF(T, name), .required = true},
    {.name = "token", .fn = cfg_k_string, .off = CFG_OFF(T, token), .required = true},
    {.name = "role", .fn = cfg_k_enum, .off = CFG_OFF(T, role), .choices = cfg_roles},
    {0}};
static const struct cfg_section cfg_sec_token = {"an admin token", NULL, cfg_token_keys,
                                                 CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_admin
static const struct cfg_key cfg_admin_keys[] = {
    {.name = "listen", .fn = cfg_k_admin_listen, .off = CFG_OFF(T, listen)},
    {.name = "tokens", .fn = cfg_k_tokens},
    {.name = "deny_backends", .fn = cfg_k_cidrs},
    {0}};
static const struct cfg_section cfg_sec_admin = {"admin", "admin", cfg_admin_keys, CFG_OFF(T, line),
                                                 0};
#undef T

#define T struct sg_cfg_accesslog
static const struct cfg_key cfg_accesslog_keys[] = {
    {.name = "path", .fn = cfg_k_logpath, .off = CFG_OFF(T, path), .required = true},
    {.name = "format", .fn = cfg_k_enum, .off = CFG_OFF(T, format), .choices = cfg_alog_formats},
    {0}};
static const struct cfg_section cfg_sec_accesslog = {"access_log", "access_log", cfg_accesslog_keys,
                                                     CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_journal
static const struct cfg_key cfg_journal_keys[] = {
    {.name = "path", .fn = cfg_k_logpath, .off = CFG_OFF(T, path)},
    {.name = "size", .fn = cfg_k_uint, .off = CFG_OFF(T, size), .min = 100, .max = 1000000},
    {0}};
static const struct cfg_section cfg_sec_journal = {"journal", "journal", cfg_journal_keys,
                                                   CFG_OFF(T, line), 0};
#undef T

#define T struct sg_cfg_cluster
static const struct cfg_key cfg_cluster_keys[] = {
    {.name = "etcd", .fn = cfg_k_etcd, .off = CFG_OFF(T, etcd), .required = true},
    {.name = "name", .fn = cfg_k_name, .off = CFG_OFF(T, name)},
    {.name = "prefix", .fn = cfg_k_prefix, .off = CFG_OFF(T, prefix)},
    {.name = "ttl",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, ttl_ms),
     .min = 2000,
     .max = 300000,
     .line_off = CFG_OFF(T, ttl_line)},
    {0}};
static const struct cfg_section cfg_sec_cluster = {"cluster", "cluster", cfg_cluster_keys,
                                                   CFG_OFF(T, line), CFG_OFF(T, enabled)};
#undef T

#define T struct sg_cfg
static const struct cfg_key cfg_root_keys[] = {
    {.name = "workers", .fn = cfg_k_uint, .off = CFG_OFF(T, workers), .min = 0, .max = 256},
    {.name = "io_uring", .fn = cfg_k_bool, .off = CFG_OFF(T, io_uring)},
    {.name = "sched_batch", .fn = cfg_k_bool, .off = CFG_OFF(T, sched_batch)},
    {.name = "log_level",
     .fn = cfg_k_enum,
     .off = CFG_OFF(T, log_level),
     .choices = cfg_log_levels},
    {.name = "timeouts", .fn = cfg_k_group, .off = CFG_OFF(T, timeouts), .sub = &cfg_sec_timeouts},
    {.name = "limits", .fn = cfg_k_group, .off = CFG_OFF(T, limits), .sub = &cfg_sec_limits},
    {.name = "frontends", .fn = cfg_k_defer_frontends},
    {.name = "pools", .fn = cfg_k_pools},
    {.name = "alerts", .fn = cfg_k_group, .off = CFG_OFF(T, alerts), .sub = &cfg_sec_alerts},
    {.name = "admin", .fn = cfg_k_group, .off = CFG_OFF(T, admin), .sub = &cfg_sec_admin},
    {.name = "access_log",
     .fn = cfg_k_group,
     .off = CFG_OFF(T, access_log),
     .sub = &cfg_sec_accesslog},
    {.name = "journal", .fn = cfg_k_group, .off = CFG_OFF(T, journal), .sub = &cfg_sec_journal},
    {.name = "cluster", .fn = cfg_k_group, .off = CFG_OFF(T, cluster), .sub = &cfg_sec_cluster},
    {.name = "resolvers", .fn = cfg_k_resolvers},
    {.name = "resolve_interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, resolve_interval_ms),
     .min = 100,
     .max = MS_DAY},
    {0}};
static const struct cfg_section cfg_sec_root = {CFG_ROOT_WHERE, NULL, cfg_root_keys, 0, 0};
#undef T

static const struct cfg_section *const cfg_all_sections[] = {
    &cfg_sec_root,    &cfg_sec_timeouts, &cfg_sec_limits,       &cfg_sec_frontend,
    &cfg_sec_route,   &cfg_sec_pool,     &cfg_sec_retry_budget, &cfg_sec_outlier,
    &cfg_sec_health,  &cfg_sec_backend,  &cfg_sec_autoscale,    &cfg_sec_rule,
    &cfg_sec_alerts,  &cfg_sec_admin,    &cfg_sec_token,        &cfg_sec_accesslog,
    &cfg_sec_journal, &cfg_sec_queue,    &cfg_sec_discover,     &cfg_sec_cluster};

static void cfg_unknown_key(struct cfg_ctx *ctx, const config_setting_t *m,
                            const struct cfg_section *sec, const char *where)
{
    const char *name = config_setting_name(m);
    const char *names[32];
    const char *hint;
    char homes[256];
    size_t n = 0, o = 0, nhomes = 0;

    for (const struct cfg_key *k = sec->keys; k->name != NULL && n < SG_ARRAY_SIZE(names); k++)
        names[n++] = k->name;
    hint = cfg_suggest(name, names, n);
    if (hint != NULL) {
        cfg_err(ctx, m, "unknown key '%s' in %s (did you mean '%s'?)", name, where, hint);
        return;
    }
    /* a key of another section: say where it belongs */
    homes[0] = '\0';
    for (size_t i = 0; i < SG_ARRAY_SIZE(cfg_all_sections); i++) {
        const struct cfg_section *other = cfg_all_sections[i];
        if (other == sec)
            continue;
        for (const struct cfg_key *k = other->keys; k->name != NULL; k++) {
            if (strcmp(k->name, name) == 0 && o < sizeof(homes)) {
                int w = snprintf(homes + o, sizeof(homes) - o, "%s%s", nhomes ? " or " : "",
                                 other->name);
                o += w > 0 ? (size_t)w : 0;
                nhomes++;
            }
        }
    }
    if (nhomes > 0)
        cfg_err(ctx, m, "unknown key '%s' in %s ('%s' belongs in %s)", name, where, name, homes);
    else
        cfg_err(ctx, m, "unknown key '%s' in %s", name, where);
}

/* Loads group g into obj with the keys of sec: every member is checked,
 * unknown keys and missing required keys are reported on their lines. */
static void cfg_section_load(struct cfg_ctx *ctx, const config_setting_t *g,
                             const struct cfg_section *sec, void *obj, const char *where)
{
    int n = config_setting_length(g);

    if (sec->line_off)
        *CFG_FIELD(obj, sec->line_off, int) = (int)config_setting_source_line(g);
    if (sec->enabled_off)
        *CFG_FIELD(obj, sec->enabled_off, bool) = true;
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        const struct cfg_key *k = sec->keys;
        while (k->name != NULL && strcmp(k->name, name) != 0)
            k++;
        if (k->name == NULL) {
            cfg_unknown_key(ctx, m, sec, where);
            continue;
        }
        k->fn(ctx, m, k, obj, where);
        if (k->set_off)
            *CFG_FIELD(obj, k->set_off, bool) = true;
        if (k->line_off)
            *CFG_FIELD(obj, k->line_off, int) = (int)config_setting_source_line(m);
    }
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (k->required && config_setting_get_member(g, k->name) == NULL)
            cfg_err(ctx, g, "%s is missing the required key '%s'", where, k->name);
    }
}

static void cfg_k_group(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where)
{
    char w[CFG_WHERE_LEN];
    if (!config_setting_is_group(s)) {
        cfg_type_err(ctx, s, where, "a group { ... }");
        return;
    }
    if (where == CFG_ROOT_WHERE)
        snprintf(w, sizeof(w), "%s", k->sub->title);
    else
        snprintf(w, sizeof(w), "%s of %s", k->sub->title, where);
    cfg_section_load(ctx, s, k->sub, CFG_FIELD(obj, k->off, char), w);
}

/* Checks that s is a list of groups; returns its length, or -1 after
 * reporting. Elements that are not groups are reported here. */
static int cfg_list_of_groups(struct cfg_ctx *ctx, const config_setting_t *s, const char *where)
{
    int n;
    if (!config_setting_is_list(s)) {
        if (config_setting_is_group(s))
            cfg_err(ctx, s,
                    "'%s' in %s must be a list of groups ( { ... }, { ... } ), not a "
                    "single group: wrap it in ( )",
                    config_setting_name(s), where);
        else
            cfg_type_err(ctx, s, where, "a list of groups ( { ... }, { ... } )");
        return -1;
    }
    n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (!config_setting_is_group(e))
            cfg_err(ctx, e, "element %d of '%s' in %s must be a group { ... }, not %s", i + 1,
                    config_setting_name(s), where, cfg_type_name(e));
    }
    return n;
}

/* The string value of member `key` of group g, or NULL. */
static const char *cfg_member_string(const config_setting_t *g, const char *key)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    return m != NULL && config_setting_type(m) == CONFIG_TYPE_STRING ? config_setting_get_string(m)
                                                                     : NULL;
}

static int cfg_member_line(const config_setting_t *g, const char *key)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    return (int)config_setting_source_line(m != NULL ? m : g);
}

/* "pool 'app'" when the element has a usable name, else "pool #2". */
static void cfg_element_where(char *buf, size_t len, const char *kind, const config_setting_t *e,
                              int index)
{
    const char *name = cfg_member_string(e, "name");
    if (name != NULL && *name != '\0' && strlen(name) <= 64)
        snprintf(buf, len, "%s '%s'", kind, name);
    else
        snprintf(buf, len, "%s #%d", kind, index + 1);
}

/* Whether member `key` of group g (which may be NULL) is absent or holds the
 * duration `ms`: that is, whether `ms` is what the user wrote or the default,
 * and not a default left in place by a value already reported as bad. */
static bool cfg_member_duration_is(const config_setting_t *g, const char *key, uint32_t ms)
{
    const config_setting_t *m = g != NULL ? config_setting_get_member(g, key) : NULL;
    uint32_t v;
    if (m == NULL)
        return true;
    return config_setting_type(m) == CONFIG_TYPE_STRING &&
           cfg_duration_reason(config_setting_get_string(m), &v) == NULL && v == ms;
}

/* ---- pools ---- */

/* Values of the health group that follow from the others, once the pool is
 * read: fast_interval (default interval/2, at least 100ms), down_interval
 * (default interval*2, at most a day) and the parsed expect_status. */
static void cfg_health_finish(struct sg_cfg_health *h)
{
    char why[128];
    int rc;
    if (h->fast_interval_ms == 0)
        h->fast_interval_ms = h->interval_ms / 2 < 100 ? 100 : h->interval_ms / 2;
    if (h->down_interval_ms == 0)
        h->down_interval_ms =
            (uint64_t)h->interval_ms * 2 > MS_DAY ? (uint32_t)MS_DAY : h->interval_ms * 2;
    free(h->expect);
    /* expect_status is the default or a list its handler accepted */
    rc = sg_cfg_parse_status_ranges(h->expect_status, &h->expect, &h->nexpect, why, sizeof(why));
    SG_BUG_ON(rc != SG_OK);
}

static void cfg_pool_check(struct cfg_ctx *ctx, const config_setting_t *e,
                           const struct sg_cfg_pool *pool, const char *where)
{
    const struct sg_cfg_autoscale *as = &pool->autoscale;
    const config_setting_t *asg = config_setting_get_member(e, "autoscale");
    const config_setting_t *hg = config_setting_get_member(e, "health");
    const config_setting_t *og = config_setting_get_member(e, "outlier");
    const struct sg_cfg_outlier *ol = &pool->outlier;
    const struct sg_cfg_health *h = &pool->health;

    if (pool->health.enabled && pool->health.timeout_ms > pool->health.interval_ms) {
        char t[32], i[32];
        cfg_format_duration(pool->health.timeout_ms, t, sizeof(t));
        cfg_format_duration(pool->health.interval_ms, i, sizeof(i));
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(hg, "timeout"),
                        "health timeout %s of %s is longer than its interval %s", t, where, i);
    }
    /* HAProxy's fastinter: checks while a backend goes up or down are meant
     * to be quicker than the steady ones, not slower */
    if (hg != NULL && config_setting_is_group(hg) &&
        config_setting_get_member(hg, "fast_interval") != NULL &&
        cfg_member_duration_is(hg, "fast_interval", h->fast_interval_ms) &&
        cfg_member_duration_is(hg, "interval", h->interval_ms) &&
        h->fast_interval_ms > h->interval_ms) {
        char f[32], i[32];
        cfg_format_duration(h->fast_interval_ms, f, sizeof(f));
        cfg_format_duration(h->interval_ms, i, sizeof(i));
        sg_cfg_diag_add(ctx->diags, SG_CFG_WARNING, cfg_member_line(hg, "fast_interval"),
                        "health fast_interval %s of %s is longer than its interval %s: a backend "
                        "changing state would be checked less often than a steady one",
                        f, where, i);
    }
    if (og != NULL && config_setting_is_group(og) && ol->max_ejection_ms < ol->base_ejection_ms &&
        cfg_member_duration_is(og, "base_ejection", ol->base_ejection_ms) &&
        cfg_member_duration_is(og, "max_ejection", ol->max_ejection_ms)) {
        char m[32], b[32];
        bool written = config_setting_get_member(og, "max_ejection") != NULL;
        cfg_format_duration(ol->max_ejection_ms, m, sizeof(m));
        cfg_format_duration(ol->base_ejection_ms, b, sizeof(b));
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR,
                        cfg_member_line(og, written ? "max_ejection" : "base_ejection"),
                        "outlier max_ejection %s%s of %s is shorter than its base_ejection %s", m,
                        written ? "" : " (the default)", where, b);
    }
    if (as->enabled && asg != NULL && config_setting_is_group(asg)) {
        if (as->max != 0 && as->min > as->max)
            sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(asg, "min"),
                            "autoscale min (%u) is greater than max (%u) in %s", as->min, as->max,
                            where);
        if (config_setting_get_member(asg, "rules") == NULL)
            cfg_err(ctx, asg, "autoscale of %s has no rules: add at least one rule", where);
        if (!as->dry_run && as->scale_up_hook == NULL && as->scale_down_hook == NULL &&
            config_setting_get_member(asg, "scale_up_hook") == NULL &&
            config_setting_get_member(asg, "scale_down_hook") == NULL)
            cfg_err(ctx, asg,
                    "autoscale of %s has no scale_up_hook or scale_down_hook "
                    "(set dry_run = true to only log its decisions)",
                    where);
    }
    if (pool->nbackends == 0 && !(as->enabled && as->min == 0) && !pool->discover.enabled) {
        /* a "backends" list whose elements were all bad is already reported */
        const config_setting_t *b = config_setting_get_member(e, "backends");
        if (b == NULL || (config_setting_is_list(b) && config_setting_length(b) == 0))
            cfg_err(ctx, b != NULL ? b : e,
                    "%s has no backends (only a pool with autoscale min = 0 or a discover group "
                    "may start empty)",
                    where);
    }
}

static void cfg_k_pools(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where)
{
    struct sg_cfg *cfg = ctx->cfg;
    const config_setting_t **elems;
    int n = cfg_list_of_groups(ctx, s, where);

    if (n < 0)
        return;
    cfg->pools = sg_xcalloc((size_t)n, sizeof(*cfg->pools));
    elems = sg_xcalloc((size_t)n, sizeof(*elems));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_pool *pool;
        char w[CFG_WHERE_LEN];
        if (!config_setting_is_group(e))
            continue;
        pool = &cfg->pools[cfg->npools];
        elems[cfg->npools++] = e;
        cfg_pool_defaults(pool);
        cfg_element_where(w, sizeof(w), "pool", e, i);
        cfg_section_load(ctx, e, &cfg_sec_pool, pool, w);
        cfg_health_finish(&pool->health);
        cfg_pool_check(ctx, e, pool, w);
        cfg_discover_check(ctx, e, pool, w);
    }
    for (size_t i = 0; i < cfg->npools; i++) {
        for (size_t j = 0; j < i && cfg->pools[i].name != NULL; j++) {
            if (cfg->pools[j].name != NULL && strcmp(cfg->pools[i].name, cfg->pools[j].name) == 0) {
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(elems[i], "name"),
                                "duplicate pool name '%s' (first defined on line %d)",
                                cfg->pools[i].name, cfg_member_line(elems[j], "name"));
                break;
            }
        }
    }
    free(elems);
}

static void cfg_k_backends(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where)
{
    struct sg_cfg_pool *pool = obj;
    int n = cfg_list_of_groups(ctx, s, where);

    if (n < 0)
        return;
    pool->backends = sg_xcalloc((size_t)n, sizeof(*pool->backends));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_backend *be;
        char w[CFG_WHERE_LEN];
        if (!config_setting_is_group(e))
            continue;
        be = &pool->backends[pool->nbackends++];
        cfg_backend_defaults(be);
        snprintf(w, sizeof(w), "backend #%d of %s", i + 1, where);
        cfg_section_load(ctx, e, &cfg_sec_backend, be, w);
        for (size_t j = 0; j + 1 < pool->nbackends; j++) {
            if (cfg_addr_equal(&be->address, &pool->backends[j].address) ||
                cfg_backend_same_name(be, &pool->backends[j])) {
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(e, "address"),
                                "duplicate backend address '%s' in %s (same as '%s' on line %d)",
                                be->address.text, where, pool->backends[j].address.text,
                                pool->backends[j].line);
                break;
            }
        }
    }
}

static void cfg_k_rules(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where)
{
    struct sg_cfg_autoscale *as = obj;
    int n = cfg_list_of_groups(ctx, s, where);

    if (n < 0)
        return;
    if (n == 0) {
        cfg_err(ctx, s, "'rules' in %s is empty: add at least one rule", where);
        return;
    }
    as->rules = sg_xcalloc((size_t)n, sizeof(*as->rules));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_rule *rule;
        char w[CFG_WHERE_LEN];
        int nkinds = 0;
        if (!config_setting_is_group(e))
            continue;
        rule = &as->rules[as->nrules++];
        snprintf(w, sizeof(w), "rule #%d of %s", i + 1, where);
        cfg_section_load(ctx, e, &cfg_sec_rule, rule, w);
        nkinds = (config_setting_get_member(e, "above") != NULL) +
                 (config_setting_get_member(e, "below") != NULL) +
                 (config_setting_get_member(e, "target") != NULL);
        if (nkinds != 1) {
            cfg_err(ctx, e, "%s needs exactly one of 'above', 'below' or 'target' (it has %d)", w,
                    nkinds);
        } else if (sg_as_metric_parse(rule->metric) == SG_AS_UTILIZATION && rule->value > 1.0) {
            cfg_err(ctx, e, "%s: utilization is a fraction from 0 to 1, got %g", w, rule->value);
        } else if (rule->kind == SG_RULE_TARGET && rule->value <= 0.0 &&
                   config_setting_get_member(e, "target") != NULL) {
            cfg_err(ctx, e, "%s: 'target' must be greater than 0", w);
        }
    }
}

/* ---- frontends ---- */

static void cfg_k_defer_frontends(struct cfg_ctx *ctx, const config_setting_t *s,
                                  const struct cfg_key *k, void *obj, const char *where)
{
    ctx->frontends = s;
}

static int cfg_pool_index(const struct sg_cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++) {
        if (cfg->pools[i].name != NULL && strcmp(cfg->pools[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* "pool" of a route and "default_pool" of a frontend: the name is kept and
 * resolved to an index into cfg->pools (pools are loaded before frontends).
 * An unknown pool in a route is reported on the route's line. */
static void cfg_k_pool_ref(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    bool is_route = strcmp(k->name, "pool") == 0;
    int idx, line;
    const char *names[64];
    const char *hint;
    size_t n = 0;

    if (v == NULL)
        return;
    cfg_set_string(obj, k->off, v);
    idx = cfg_pool_index(ctx->cfg, v);
    if (is_route)
        ((struct sg_cfg_route *)obj)->pool_index = idx;
    else
        ((struct sg_cfg_frontend *)obj)->default_pool_index = idx;
    if (idx >= 0)
        return;
    for (size_t i = 0; i < ctx->cfg->npools && n < SG_ARRAY_SIZE(names); i++)
        names[n++] = ctx->cfg->pools[i].name;
    hint = cfg_suggest(v, names, n);
    line = (int)config_setting_source_line(is_route ? config_setting_parent(s) : s);
    if (hint != NULL)
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, line,
                        "unknown pool '%s' in %s (did you mean '%s'?)", v, where, hint);
    else
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, line, "unknown pool '%s' in %s", v, where);
}

static void cfg_k_routes(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                         void *obj, const char *where)
{
    struct sg_cfg_frontend *fe = obj;
    int n = cfg_list_of_groups(ctx, s, where);

    if (n < 0)
        return;
    fe->routes = sg_xcalloc((size_t)n, sizeof(*fe->routes));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_route *r;
        char w[CFG_WHERE_LEN];
        if (!config_setting_is_group(e))
            continue;
        r = &fe->routes[fe->nroutes++];
        r->pool_index = -1;
        snprintf(w, sizeof(w), "route #%d of %s", i + 1, where);
        cfg_section_load(ctx, e, &cfg_sec_route, r, w);
        for (int pi = 0; r->priority != NULL && cfg_priorities[pi] != NULL; pi++)
            if (strcmp(r->priority, cfg_priorities[pi]) == 0)
                r->prio = (enum sg_prio)pi;
    }
}

static void cfg_load_frontends(struct cfg_ctx *ctx, const config_setting_t *s)
{
    struct sg_cfg *cfg = ctx->cfg;
    const config_setting_t **elems;
    int n = cfg_list_of_groups(ctx, s, CFG_ROOT_WHERE);

    if (n < 0)
        return;
    if (n == 0) {
        cfg_err(ctx, s, "'frontends' is empty: at least one frontend is required");
        return;
    }
    cfg->frontends = sg_xcalloc((size_t)n, sizeof(*cfg->frontends));
    elems = sg_xcalloc((size_t)n, sizeof(*elems));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_frontend *fe;
        char w[CFG_WHERE_LEN];
        if (!config_setting_is_group(e))
            continue;
        fe = &cfg->frontends[cfg->nfrontends];
        elems[cfg->nfrontends++] = e;
        cfg_frontend_defaults(fe);
        cfg_element_where(w, sizeof(w), "frontend", e, i);
        cfg_section_load(ctx, e, &cfg_sec_frontend, fe, w);
        if (config_setting_get_member(e, "routes") == NULL &&
            config_setting_get_member(e, "default_pool") == NULL)
            cfg_err(ctx, e, "%s has no routes and no default_pool: every request would get 503", w);
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        const struct sg_cfg_frontend *fe = &cfg->frontends[i];
        for (size_t j = 0; j < i && fe->name != NULL; j++) {
            if (cfg->frontends[j].name != NULL && strcmp(fe->name, cfg->frontends[j].name) == 0) {
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(elems[i], "name"),
                                "duplicate frontend name '%s' (first defined on line %d)", fe->name,
                                cfg_member_line(elems[j], "name"));
                break;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (cfg_addr_equal(&fe->listen, &cfg->frontends[j].listen)) {
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(elems[i], "listen"),
                                "duplicate listen address '%s': frontend '%s' on line %d "
                                "already listens there",
                                fe->listen.text,
                                cfg->frontends[j].name ? cfg->frontends[j].name : "?",
                                cfg_member_line(elems[j], "listen"));
                break;
            }
        }
        if (cfg_addr_equal(&fe->listen, &cfg->admin.listen)) {
            if (ctx->admin_listen != NULL)
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(elems[i], "listen"),
                                "duplicate listen address '%s': the admin listener on line %d "
                                "already listens there",
                                fe->listen.text,
                                (int)config_setting_source_line(ctx->admin_listen));
            else
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(elems[i], "listen"),
                                "duplicate listen address '%s': it is the default admin address",
                                fe->listen.text);
        }
    }
    free(elems);
}

/* ---- tokens ---- */

static void cfg_k_tokens(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                         void *obj, const char *where)
{
    struct sg_cfg_admin *admin = obj;
    int n = cfg_list_of_groups(ctx, s, where);

    if (n < 0)
        return;
    admin->tokens = sg_xcalloc((size_t)n, sizeof(*admin->tokens));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct sg_cfg_token *t;
        char w[CFG_WHERE_LEN];
        if (!config_setting_is_group(e))
            continue;
        t = &admin->tokens[admin->ntokens++];
        t->role = sg_xstrdup("read");
        snprintf(w, sizeof(w), "token #%d of %s", i + 1, where);
        cfg_section_load(ctx, e, &cfg_sec_token, t, w);
        for (size_t j = 0; j + 1 < admin->ntokens; j++) {
            const struct sg_cfg_token *o = &admin->tokens[j];
            if (t->name != NULL && o->name != NULL && strcmp(t->name, o->name) == 0)
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(e, "name"),
                                "duplicate token name '%s' in %s (first on line %d)", t->name,
                                where, o->line);
            if (t->token != NULL && o->token != NULL && strcmp(t->token, o->token) == 0)
                sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg_member_line(e, "token"),
                                "token #%d of %s has the same secret as the token on line %d",
                                i + 1, where, o->line);
        }
    }
}

/* ---- admin ---- */

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static bool cfg_addr_is_loopback(const struct sg_cfg_addr *a)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        const struct in6_addr *ad = &in6->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(ad) || (IN6_IS_ADDR_V4MAPPED(ad) && ad->s6_addr[12] == 127);
    }
    return false;
}

/* The admin API can change pools and backends: on an address other hosts can
 * reach it needs Bearer tokens. A unix socket (the default) is guarded by its
 * file mode, loopback by the host. */
static void cfg_admin_check(struct cfg_ctx *ctx)
{
    const struct sg_cfg_admin *admin = &ctx->cfg->admin;

    if (ctx->admin_listen == NULL || admin->listen.is_unix || admin->ntokens > 0 ||
        cfg_addr_is_loopback(&admin->listen))
        return;
    cfg_err(ctx, ctx->admin_listen,
            "admin listen on a non-loopback address needs tokens (Bearer auth): '%s' has none; "
            "add admin tokens, or listen on 127.0.0.1, ::1 or a unix socket",
            admin->listen.text);
}

/* ---- root ---- */

void cfg_load_root(struct cfg_ctx *ctx, const config_setting_t *root)
{
    struct sg_cfg *cfg = ctx->cfg;

    cfg_section_load(ctx, root, &cfg_sec_root, cfg, CFG_ROOT_WHERE);
    cfg_admin_check(ctx);
    if (ctx->frontends != NULL)
        cfg_load_frontends(ctx, ctx->frontends);
    else
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, 0,
                        "no 'frontends': at least one frontend is required");
    /* an alerts group without "events" alerts on every event */
    if (cfg->alerts.line > 0 && cfg->alerts.events == NULL) {
        cfg->alerts.events = sg_xcalloc(SG_ALERT_NEVENTS + 1, sizeof(char *));
        for (size_t i = 0; sg_alert_event_name(i) != NULL; i++)
            cfg->alerts.events[i] = sg_xstrdup(sg_alert_event_name(i));
    }
    /* etcd leases live whole seconds */
    if (cfg->cluster.enabled && cfg->cluster.ttl_ms % 1000 != 0)
        sg_cfg_diag_add(ctx->diags, SG_CFG_ERROR, cfg->cluster.ttl_line,
                        "'ttl' in cluster must be whole seconds (etcd leases count seconds)");
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 256 ? 256 : (uint32_t)n;
    }
}
