/* cfg-t.h: the in-memory form of a loaded configuration.
 *
 * A struct sg_cfg is built by sg_cfg_load() from a libconfig file (or string),
 * owned by whoever loaded it, and freed with sg_cfg_free(). It is read-only once
 * loaded: workers hold pointers into it for the life of the process. Every
 * element keeps the line it came from so checks can name FILE:LINE.
 * Durations are milliseconds; sizes are bytes. */
#ifndef SURGEGATE_CFG_T_H
#define SURGEGATE_CFG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "surgegate/cfg_diag-t.h"

/* A listen or backend address. "host:port", "[v6]:port" or "unix:/path". */
struct sg_cfg_addr {
    char *text;                 /* as written in the config */
    struct sockaddr_storage ss; /* resolved numerically (no DNS at load time) */
    socklen_t sslen;
    bool is_unix;
};

struct sg_cfg_timeouts {
    uint32_t connect_ms;       /* "connect",      default 4s  */
    uint32_t http_request_ms;  /* "http_request", default 5s: whole request head deadline */
    uint32_t client_ms;        /* "client",       default 30s: client inactivity mid-request */
    uint32_t server_ms;        /* "server",       default 30s: backend inactivity */
    uint32_t queue_ms;         /* "queue",        default 10s */
    uint32_t keepalive_ms;     /* "keepalive",    default 60s: idle client between requests */
    uint32_t upstream_idle_ms; /* "upstream_idle",default 30s: idle pooled backend connection */
    uint32_t grace_ms;         /* "grace",        default 10s: graceful stop */
    /* which keys were written explicitly (for the "missing timeout" warning) */
    bool set_connect, set_http_request, set_client, set_server, set_queue, set_keepalive;
    int line;
    int queue_line; /* line of the "queue" key (0 if not written), for lint */
};

/* Request limits ("limits" group). */
struct sg_cfg_limits {
    uint32_t max_request_line; /* default 8192 -> 414 */
    uint32_t max_header_size;  /* default 32768 -> 431 (whole header block) */
    uint32_t max_headers;      /* default 100 -> 431 */
    uint64_t max_body_size;    /* default 0 = unlimited -> 413 */
    uint64_t buffer_memory;    /* default 1 GiB; 0 = none: bytes in all connection buffers */
    int line;
};

/* A request's priority in its pool's queue (a route's "priority"): critical
 * requests are served first and shed last, sheddable ones shed first. */
enum sg_prio { SG_PRIO_NORMAL = 0, SG_PRIO_CRITICAL, SG_PRIO_SHEDDABLE, SG_PRIO_N };

struct sg_cfg_route {
    char *host;        /* NULL = any host; compared case-insensitively, port ignored */
    char *path_prefix; /* NULL = any path */
    char *pool;        /* pool name */
    char *priority;    /* "critical" | "normal" | "sheddable"; NULL = not written (normal) */
    enum sg_prio prio; /* priority parsed */
    int pool_index;    /* resolved index into sg_cfg.pools, -1 if unknown */
    int line;
};

struct sg_cfg_frontend {
    char *name;
    struct sg_cfg_addr listen;
    uint32_t maxconn; /* default 10000 */
    int maxconn_line; /* line of the "maxconn" key (0 if not written), for lint */
    struct sg_cfg_route *routes;
    size_t nroutes;
    char *default_pool; /* may be NULL: then unrouted requests get 503 */
    int default_pool_index;
    int line;
};

struct sg_cfg_status_range {
    uint16_t lo, hi; /* inclusive */
};

struct sg_cfg_health {
    bool enabled;                       /* checks on: default true; "enabled = false" */
    char *type;                         /* "http" or "tcp" */
    char *method;                       /* default "GET" */
    char *path;                         /* default "/" */
    char *host;                         /* Host header, default backend address */
    uint32_t interval_ms;               /* default 2s */
    uint32_t timeout_ms;                /* default 1s */
    uint32_t rise;                      /* default 2 */
    uint32_t fall;                      /* default 3 */
    char *expect_status;                /* "200-399" ranges, comma separated */
    struct sg_cfg_status_range *expect; /* expect_status parsed; default one range 200-399 */
    size_t nexpect;
    uint32_t fast_interval_ms; /* "fast_interval": while a state is changing; default interval/2 */
    uint32_t down_interval_ms; /* "down_interval": while down; default interval*2 */
    uint32_t stall_timeout_ms; /* "stall_timeout": no response byte for this long while
                                * requests wait and the pool's others answer: DOWN at
                                * once (health.c); 0 = off; default 1s */
    int line;
};

struct sg_cfg_backend {
    struct sg_cfg_addr address; /* a host name: text only (ss is AF_UNSPEC), see host */
    char *host;       /* the host name of "name:port", resolved at run time (discover.c); NULL
                       * for a numeric address */
    uint16_t port;    /* of a host name */
    uint32_t weight;  /* 0..256, default 1 */
    uint32_t maxconn; /* 0 = unlimited, default 0 */
    bool backup;
    int line;
};

enum sg_cfg_rule_kind { SG_RULE_ABOVE, SG_RULE_BELOW, SG_RULE_TARGET };

struct sg_cfg_rule {
    char *metric;
    enum sg_cfg_rule_kind kind;
    double value;
    uint32_t for_ms;
    int line;
};

struct sg_cfg_autoscale {
    bool enabled;
    uint32_t min, max, step;
    uint32_t hook_timeout_ms;
    bool dry_run;
    uint32_t scale_up_cooldown_ms;
    uint32_t scale_down_window_ms;
    uint32_t hold_timeout_ms;
    struct sg_cfg_rule *rules;
    size_t nrules;
    char **scale_up_hook; /* NULL-terminated argv, or NULL */
    char **scale_down_hook;
    int scale_up_hook_line, scale_down_hook_line; /* 0: not written */
    uint32_t settle_timeout_ms; /* a decision waits this long for the count it asked for */
    int line;
};

/* "retry_budget" group: retries at most `percent` of the pool's active
 * requests, but always allow `min_retries` concurrent ones (Envoy's). */
/* "queue" group of a pool: overload control of its queue (queue.c). The
 * queue "stands" when its oldest request's age stays at least `target` for
 * a whole `interval` (CoDel-style); while it stands, a request whose expected wait
 * (requests ahead of it / the measured drain rate) exceeds its priority's
 * limit is refused at once with 503. target 0 turns the control off. */
struct sg_cfg_queue {
    uint32_t target_ms;   /* default 100 ms; 0 = off */
    uint32_t interval_ms; /* default 500 ms */
    bool lifo;            /* serve newest first while standing; default false */
    int line;
};

struct sg_cfg_retry_budget {
    double percent;       /* default 20.0; 0..100 */
    uint32_t min_retries; /* default 3 */
    int line;
};

/* "outlier" group: passive ejection on consecutive 5xx / gateway errors. */
struct sg_cfg_outlier {
    uint32_t consecutive_errors;   /* default 5; 0 = off */
    uint32_t base_ejection_ms;     /* "base_ejection", default 30s; x number of ejections */
    uint32_t max_ejection_ms;      /* "max_ejection", default 300s */
    uint32_t max_ejection_percent; /* default 50; 0..100 (one backend may always be ejected) */
    int line;
};

/* What the hash balancer hashes: hash_key parsed once at load. */
enum sg_hash_src {
    SG_HASH_SOURCE = 0, /* the client address (default) */
    SG_HASH_URI,        /* the request target */
    SG_HASH_HEADER,     /* a header's value: hash_key + SG_HASH_NAME_OFF */
    SG_HASH_COOKIE,     /* a cookie's value: hash_key + SG_HASH_NAME_OFF */
};
#define SG_HASH_NAME_OFF 7 /* strlen("header:") == strlen("cookie:") */

/* "discover" group of a pool: where its members come from at run time
 * (discover.c). Exactly one of dns_srv, file, command. */
struct sg_cfg_discover {
    bool enabled;         /* the group is written */
    char *dns_srv;        /* SRV name: "_http._tcp.app.service.consul" */
    char *file;           /* absolute path of a member list */
    char **command;       /* NULL-terminated argv printing the members as JSON */
    uint32_t interval_ms; /* "interval": look again every; default 5s */
    uint32_t timeout_ms;  /* "timeout": a command's run time limit; default 10s */
    uint32_t weight;      /* members' weight when the source gives none; default 1 */
    uint32_t maxconn;     /* members' maxconn; default: the pool's first backend's, else 0 */
    bool set_maxconn;     /* "maxconn" written */
    uint32_t max_members; /* most members taken from one answer; default 64 */
    int line;
};

struct sg_cfg_pool {
    char *name;
    char *balance;     /* a balancer name (lb.c); default: sg_lb_default() */
    uint32_t retries;  /* default 2 */
    uint32_t maxqueue; /* default 1000 */
    uint32_t max_idle; /* idle keep-alive upstream connections per backend per worker, default 32 */
    char *hash_key;    /* "source" (default) | "uri" | "header:NAME" | "cookie:NAME" */
    enum sg_hash_src hash_src;  /* hash_key's kind */
    uint32_t hash_name_len;     /* its NAME's length (header and cookie) */
    double hash_balance_factor; /* bounded load: at most c x mean, default 1.25; 0 = unbounded */
    uint32_t slowstart_ms;      /* "slowstart", default 0 = off */
    struct sg_cfg_queue queue;
    struct sg_cfg_retry_budget retry_budget;
    struct sg_cfg_outlier outlier;
    struct sg_cfg_health health;
    struct sg_cfg_backend *backends;
    size_t nbackends;
    struct sg_cfg_autoscale autoscale;
    struct sg_cfg_discover discover;
    int line;
};

struct sg_cfg_alerts {
    char **events; /* NULL-terminated */
    char **hook;   /* NULL-terminated argv */
    int hook_line; /* 0: not written */
    int line;
};

struct sg_cfg_token {
    char *name, *token, *role; /* role: "admin" | "read" */
    int line;
};

/* An address range "a.b.c.d/n" or "v6/n" (a bare address: the one address). */
struct sg_cfg_cidr {
    char *text;       /* as written */
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
    uint8_t prefix;   /* 0..32 or 0..128 */
};

struct sg_cfg_admin {
    struct sg_cfg_addr listen; /* default unix:/run/surgegate/admin.sock */
    struct sg_cfg_token *tokens;
    size_t ntokens;
    /* "deny_backends": ranges no backend added at runtime (admin API, hook
     * output) may be in; default link-local and the cloud metadata
     * addresses (cfg_defaults.c); [] = none */
    struct sg_cfg_cidr *deny;
    size_t ndeny;
    int line;
};

/* "access_log" group: one line per request. No group, or path = "off": off. */
struct sg_cfg_accesslog {
    char *path;   /* absolute; NULL = off (the default) */
    char *format; /* "json" (default) | "combined" */
    int line;
};

/* "journal" group: the event journal (a ring in memory, GET /api/v1/events,
 * and a JSON lines file). */
struct sg_cfg_journal {
    char *path;    /* absolute; NULL = memory only (the default, also path = "off") */
    uint32_t size; /* events kept in memory, default 10000, 100..1000000 */
    int line;
};

/* cluster: instances that act once through etcd (cluster.h). */
struct sg_cfg_cluster {
    bool enabled;    /* the group is written */
    char **etcd;     /* NULL-terminated "http://host:port" endpoints, tried in turn */
    char *name;      /* this instance's name; default hostname-pid (resolved at startup) */
    char *prefix;    /* key prefix, default "/surgegate/"; always ends in '/' */
    uint32_t ttl_ms; /* lease TTL, whole seconds, 2s..300s, default 5s */
    int ttl_line;
    int line;
};

struct sg_cfg {
    char *file;
    uint32_t workers; /* 0 in the file = default: number of cores; resolved at load */
    bool io_uring;    /* batch socket reads and sends (default true; see conn.c) */
    bool sched_batch; /* worker threads under SCHED_BATCH (default true; see worker.c) */
    char *log_level;  /* "error" | "warn" | "info" (default) | "debug" */
    struct sg_cfg_timeouts timeouts;
    struct sg_cfg_limits limits;
    struct sg_cfg_frontend *frontends;
    size_t nfrontends;
    struct sg_cfg_pool *pools;
    size_t npools;
    struct sg_cfg_alerts alerts;
    struct sg_cfg_admin admin;
    struct sg_cfg_accesslog access_log;
    struct sg_cfg_journal journal;
    struct sg_cfg_cluster cluster;
    /* "resolvers": name servers "ip" or "ip:port" (NULL-terminated; NULL =
     * /etc/resolv.conf), for host-name backends and dns_srv discovery */
    char **resolvers;
    uint32_t resolve_interval_ms; /* "resolve_interval": host names re-resolved at their
                                   * TTL but at most this often; default 5s */
};

#endif
