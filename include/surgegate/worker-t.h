/* worker-t.h: per-thread state. Each worker owns an event_base, its
 * listeners, its client sessions and its upstream connection pools; nothing
 * in here is touched by another thread except the wake channel: wake_fd,
 * the request flags and the inbox (under inbox.mu). */
#ifndef SURGEGATE_WORKER_T_H
#define SURGEGATE_WORKER_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "surgegate/cfg-t.h"
#include "surgegate/http1-t.h"
#include "surgegate/pool-t.h"
#include "surgegate/queue-t.h"
#include "surgegate/stats-t.h"
#include "surgegate/wpool-t.h"

#define SG_WORKER_MAGIC 0x3047e1a5u

struct event_base;
struct event;
struct evbuffer;
struct sg_gate;
struct sg_session;
struct sg_upconn;
struct sg_worker;
struct sg_alog_w;
struct sg_iobatch;

/* Per worker, per frontend. */
/* Listening sockets a new generation or a new process takes over (reload,
 * binary upgrade): each the socket of worker `worker` for address ss. */
struct sg_lfd {
    uint32_t worker;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd; /* not owned by the table: sg_worker_new takes a duplicate */
};

struct sg_lfds {
    struct sg_lfd *v;
    size_t n, cap;
};

struct sg_wfrontend {
    struct sg_worker *w;
    const struct sg_cfg_frontend *cfg;
    struct sg_gate *gate;    /* the frontend's maxconn, shared by the workers (gate-t.h) */
    int fd;                  /* listening socket (owned); -1: none in this worker */
    struct event *accept_ev; /* fd readable: accept (added unless paused) */
    struct event *retry_ev;  /* accept paused by a lack of file descriptors or memory */
    uint32_t nconn;          /* sessions open on this frontend in this worker */
    bool paused;             /* accept_ev is off: no slot at the gate, or a retry is due */
};

struct sg_worker {
    uint32_t magic;
    uint32_t id;
    struct event_base *base;
    struct sg_iobatch *iob; /* this thread's socket I/O batch (conn.c); NULL: plain syscalls */
    pthread_t thread;
    const struct sg_cfg *cfg;
    struct sg_pools *pools;
    struct sg_wpool *wpools;     /* cfg->npools entries */
    struct sg_wfrontend *fes;    /* cfg->nfrontends entries */
    struct sg_session *sessions; /* live sessions, doubly linked */
    uint32_t nsessions;
    struct evbuffer *cout, *uout; /* staging for bytes to a client / a backend (session.c) */
    struct sg_hdrs_cache hcache;  /* parked header buffers (http1.c) */
    int wake_fd;                  /* eventfd: other threads wake this worker */
    struct event *wake_ev;        /* reads wake_fd */
    struct event *inbox_ev;       /* runs the inbox when a grant comes from this worker */
    _Atomic bool stop_req;        /* wake reason: graceful stop */
    _Atomic bool kick_req;        /* wake reason: backends changed (kick queues, purge idle) */
    _Atomic bool accept_req;      /* wake reason: a frontend's gate has a slot free again */
    struct sg_inbox inbox;        /* queue entries granted a slot, for this worker's sessions; its
                                   * notify (set by sg_worker_new) wakes this worker (queue.c) */
    /* A session of this worker closed (accept gate, graceful stop). Set by
     * sg_worker_new to worker.c's handler; sessions call it instead of a
     * function of worker.c. Worker thread. */
    void (*on_session_closed)(struct sg_worker *w, struct sg_wfrontend *fe);
    struct event *grace_ev;  /* forced close when the grace period ends */
    struct event *rescue_ev; /* asks again about requests stuck on a backend taken down */
    bool stopping;
    _Atomic bool done;      /* the thread's loop has ended (read by main) */
    struct sg_alog_w *alog; /* this worker's access log buffer; NULL = no access log */
    struct event *alog_ev;  /* flushes it every second */
    /* timeouts converted once */
    struct timeval tv_connect, tv_client, tv_server, tv_upstream_idle;
};

#endif
