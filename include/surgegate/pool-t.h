/* pool-t.h: runtime pools and backends, built from the config at startup.
 *
 * struct sg_pool and struct sg_backend are shared by every worker. Fields are
 * either fixed after startup or atomic: workers count in-flight requests and
 * report outcomes with atomic operations, the control thread (main thread:
 * health checks, ejection expiry) writes states. Per-worker mutable state
 * (balancer state, idle connections) lives in struct sg_wpool / sg_wbackend
 * owned by each worker, so the request path takes no lock. The pool's queue
 * (queue.c) is the one lock, taken only when backends are at maxconn. */
#ifndef SURGEGATE_POOL_T_H
#define SURGEGATE_POOL_T_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "surgegate/cfg-t.h"
#include "surgegate/queue-t.h"

#define SG_BACKEND_MAGIC 0x5b6e0b1du
#define SG_POOL_MAGIC    0x5b0017a1u

/* What the operator asked for (admin API); independent of health.
 * SG_ADMIN_EMPTY marks a free backend slot: a pool has room for backends
 * added at runtime (admin API, hook output), and a removed backend's slot
 * returns to EMPTY once it has drained. */
enum sg_backend_admin { SG_ADMIN_READY = 0, SG_ADMIN_DRAIN, SG_ADMIN_MAINT, SG_ADMIN_EMPTY };

#define SG_BACKEND_NAME_MAX 64 /* "[v6]:port" fits; unix paths are truncated in the name */

/* What the active health checks (health.c) say. A backend of the config
 * starts UP (assumed healthy until its checks say otherwise); one added at
 * runtime to a pool with checks starts CHECKING and takes no request until
 * its first passing check. */
enum sg_backend_health { SG_HEALTH_UP = 0, SG_HEALTH_DOWN, SG_HEALTH_CHECKING };

/* The state users see, derived from admin state, health and ejection.
 * CHECKING: added at runtime, waiting for its first passing health check. */
enum sg_backend_state {
    SG_BACKEND_UP = 0,
    SG_BACKEND_DOWN,
    SG_BACKEND_DRAIN,
    SG_BACKEND_MAINT,
    SG_BACKEND_CHECKING,
    SG_BACKEND__COUNT
};

/* Where a backend came from (issue 17). The autoscaler counts the members
 * of the group it scales: every origin but ADMIN (an operator's own
 * addition stays outside the group: never counted in SURGEGATE_CURRENT,
 * never removed by a scale hook). Names: sg_backend_origin_name(). */
enum sg_backend_origin {
    SG_ORIGIN_CONFIG = 0, /* "config": the config file's backends */
    SG_ORIGIN_ADMIN,      /* "admin": added through the admin API (surgectl add) */
    SG_ORIGIN_HOOK,       /* "hook": a scale hook's output */
    SG_ORIGIN_DISCOVERY,  /* "discovery": a pool's discover source or a host name */
    SG_ORIGIN__COUNT
};

struct sg_pool;
struct sg_lb_ops;
struct sg_qentry;

struct sg_backend {
    uint32_t magic;
    uint32_t id; /* index in pool->backends */
    struct sg_pool *pool;
    const struct sg_cfg_backend *cfg; /* NULL for a backend added at runtime */
    const char *name;                 /* address text, e.g. "127.0.0.1:9001" (-> name_buf) */
    struct sockaddr_storage ss;       /* name, ss, sslen, backup: written by the control
                                       * thread only while the slot is EMPTY, published by
                                       * the store of `admin` */
    socklen_t sslen;
    _Atomic uint32_t weight; /* configured weight (admin API may change); see sg_backend_weight() */
    _Atomic uint32_t maxconn; /* configured; 0 = unlimited; see sg_backend_maxconn() */
    bool backup;
    uint8_t origin; /* enum sg_backend_origin; written with name (slot EMPTY), or by the
                     * control thread when a removal is taken back; read there only */
    char name_buf[SG_BACKEND_NAME_MAX];

    /* Written rarely (control thread, ejection): read on every pick. */
    _Atomic int admin;            /* enum sg_backend_admin */
    _Atomic int health;           /* enum sg_backend_health (health.c writes) */
    _Atomic uint32_t down_gen;    /* bumped each time the checks take it down: workers
                                   * then retry the requests stuck on it (exchange.c) */
    _Atomic uint64_t eject_until; /* outlier ejection end, monotonic ms; 0 = not ejected.
                                   * Out while non-zero, even past its end: the control
                                   * thread clears it (outlier.h) */
    _Atomic uint64_t ramp_from;   /* slow start began, monotonic ms; 0 = no ramp */

    /* Control thread only (health.c, outlier.c, stats). */
    uint64_t state_since_ms; /* wall clock ms of the last state change */
    char reason[96];         /* why the last change: "connection refused", "HTTP 503" */
    uint32_t nejections;     /* consecutive ejections (reset by a long healthy spell) */
    _Atomic bool removing;   /* admin DELETE / hook "remove": draining, then EMPTY */
    uint64_t emptied_ms;     /* monotonic ms when the slot became EMPTY (reuse is delayed) */
    int last_state;          /* enum sg_backend_state last journaled (control thread) */

    /* Written on every request by every worker: own cache line. */
    alignas(64) _Atomic uint32_t inflight; /* requests on this backend now, all workers */
    _Atomic uint32_t queue_depth;          /* queued requests whose first choice this is */
    _Atomic uint32_t queue_depth_max;      /* highest since the control thread's last tick */
    _Atomic uint32_t consec_errors;        /* consecutive 5xx / gateway errors */
    _Atomic uint32_t awaiting;             /* requests it has whole and not begun to answer */
    _Atomic uint32_t ttfb_max_ms;          /* longest wait for a response's first byte since
                                            * the control thread last took it (health.c) */
    _Atomic uint64_t progress_ms;          /* monotonic ms it last sent response bytes, or
                                            * its first awaited request since it had none */
    _Atomic uint64_t requests;             /* requests sent (attempts) */
    _Atomic uint64_t failures;             /* 5xx responses and gateway errors */
};

TAILQ_HEAD(sg_qlist, sg_qentry);

/* A pool's queue of requests waiting for a backend slot (queue.c): one list
 * per priority, served critical first, then normal, then sheddable. */
struct sg_pqueue {
    pthread_mutex_t mu;
    struct sg_qlist q[SG_PRIO_N];  /* by enum sg_prio */
    uint32_t nq[SG_PRIO_N];        /* entries in each list (under mu) */
    struct sg_qstand st;           /* standing-queue detector (under mu) */
    uint64_t rate_t0_ms;           /* drain-rate window start (under mu; 0 = none) */
    uint64_t rate_n0;              /* `done` at rate_t0_ms */
    uint64_t demand[SG_PRIO_N];    /* requests that found no free slot, by priority (under mu) */
    uint64_t demand_n0[SG_PRIO_N]; /* `demand` at rate_t0_ms */
    double cuts_in[SG_PRIO_N];     /* per second, requests that found no slot and are served
                                    * before a request of this priority (under mu) */
    double drain;                  /* measured completions per second (under mu; 0 unknown) */
    _Atomic uint32_t depth;        /* entries in q; read without the lock */
    _Atomic uint32_t depth_max;    /* highest depth since the control thread's last tick */
    _Atomic uint64_t overflows;    /* requests refused because the queue was full */
    _Atomic bool standing;         /* st.standing, for readers without the lock */
    _Atomic uint32_t drain_rps;    /* `drain` rounded, for readers without the lock */
    _Atomic uint64_t episodes;     /* standing episodes begun */
    /* Written on every request (own cache line, away from the lock and depth). */
    alignas(64) _Atomic uint64_t done;    /* requests that gave their slot back (drain rate) */
    _Atomic uint64_t admitted[SG_PRIO_N]; /* requests given a slot or a place in the queue */
    _Atomic uint64_t queued[SG_PRIO_N];   /* times a request entered the queue */
    _Atomic uint64_t shed[SG_PRIO_N][SG_SHED_N]; /* requests refused, by reason */
};

struct sg_pool {
    uint32_t magic;
    uint32_t id;
    const char *name;
    const struct sg_cfg_pool *cfg;
    struct sg_backend *backends;
    size_t nbackends;             /* slots: configured backends + room for runtime additions */
    size_t ncfg;                  /* configured backends (slots 0..ncfg-1 at start) */
    _Atomic uint32_t nlive;       /* slots not EMPTY (control thread writes) */
    _Atomic uint32_t nused;       /* slots [0, nused) were ever filled: loops stop there */
    _Atomic uint32_t members_gen; /* bumped when a slot is filled, emptied or re-weighted */
    _Atomic uint32_t ngroup;      /* the scaled group's members at the last control tick
                                   * (sg_pool_ncurrent): may the queue expect more */
    const struct sg_lb_ops *lb;
    uint32_t slowstart_ms; /* 0 = off */

    struct sg_pqueue queue;
    alignas(64) _Atomic uint32_t active; /* requests being served (retry budget base) */
    _Atomic uint32_t retries_active;     /* of which are retries now */
    _Atomic uint32_t nejected;           /* backends ejected now */
    _Atomic uint64_t retries_total;      /* retries done */
    _Atomic uint64_t retries_denied;     /* retries the budget refused */
};

struct sg_pools {
    struct sg_pool *pools;
    size_t n;
};

#endif
