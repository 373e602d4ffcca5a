/* worker.c: worker threads: event_base, SO_REUSEPORT listeners, accepting
 * under the frontend's shared connection limit (gate.c) and graceful stop. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/exchange.h"
#include "surgegate/gate.h"
#include "surgegate/http1.h"
#include "surgegate/log.h"
#include "surgegate/queue.h"
#include "surgegate/session-t.h"
#include "surgegate/session.h"
#include "surgegate/stats.h"
#include "surgegate/upstream.h"
#include "surgegate/worker.h"
#include "surgegate/wpool.h"

#define SG_ACCEPT_RETRY_MS 1000 /* accept paused by EMFILE, ENFILE, ENOBUFS, ENOMEM */

/* Makes a listening socket for one frontend. Unix sockets are bound once by
 * worker 0 (no SO_REUSEPORT for them); TCP sockets once per worker. */
static int worker_listen_fd(const struct sg_cfg_addr *a, uint32_t id)
{
    if (a->is_unix) {
        if (id != 0)
            return -2; /* only worker 0 serves a unix frontend */
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
        unlink(un->sun_path);
    }
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (!a->is_unix) {
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
            goto fail;
        if (a->ss.ss_family == AF_INET6)
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        /* Accepted sockets inherit TCP_NODELAY from the listener (Linux):
         * one setsockopt here instead of one per connection. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Likewise the unsent-bytes mark: the kernel takes no more of a
         * response than SG_CLIENT_NOTSENT_LOWAT beyond what the client's
         * window lets through. Without it a client that reads slowly had
         * its send buffer autotuned to 4 MiB and filled, at the cost of the
         * copying (backend, proxy, kernel) and of kernel memory: 2,000 slow
         * readers held 3 GB and every other client waited. Bytes in flight
         * are not counted, so a fast client's throughput is unchanged. */
        int lowat = SG_CLIENT_NOTSENT_LOWAT;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->sslen) < 0)
        goto fail;
    if (listen(fd, 4096) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Accept gate. A frontend's accept_ev is off (paused) while its gate has no
 * slot: connections wait in the kernel backlog of this worker's socket,
 * and the next slot given back anywhere wakes this worker to take it. */
static void worker_accept_pause(struct sg_wfrontend *fe)
{
    if (!fe->paused) {
        event_del(fe->accept_ev);
        fe->paused = true;
    }
}

static void worker_accept_resume(struct sg_wfrontend *fe)
{
    if (fe->paused && fe->accept_ev != NULL && !fe->w->stopping) {
        event_add(fe->accept_ev, NULL);
        fe->paused = false;
    }
}

/* Takes a slot at fe's gate for one more connection; false (accepting
 * paused, this worker registered to be woken) when there is none. */
static bool worker_accept_slot(struct sg_wfrontend *fe)
{
    while (!sg_gate_take(fe->gate)) {
        if (!sg_gate_wait(fe->gate, fe->w->id)) {
            worker_accept_pause(fe);
            return false;
        }
    }
    return true;
}

/* Accepts every connection waiting on fe's socket, a slot taken for each
 * before its accept4. Stops at an empty backlog, a full gate, or an error:
 * a lack of file descriptors or memory pauses accepting for
 * SG_ACCEPT_RETRY_MS (the connections wait in the backlog). */
static void worker_accept_all(struct sg_wfrontend *fe)
{
    struct sg_worker *w = fe->w;
    while (worker_accept_slot(fe)) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(fe->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (sg_gate_put(fe->gate, w->id))
                worker_accept_resume(fe);
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            sg_log_warn("frontend '%s': accept failed: %s", fe->cfg->name, strerror(err));
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                worker_accept_pause(fe);
                struct timeval tv;
                sg_timeval_from_ms(&tv, SG_ACCEPT_RETRY_MS);
                evtimer_add(fe->retry_ev, &tv);
            }
            return;
        }
        if (sg_session_new(w, fe, fd, (struct sockaddr *)&ss, (int)sslen) != SG_OK) {
            if (sg_gate_put(fe->gate, w->id)) /* sg_session_new closed fd */
                worker_accept_resume(fe);
            continue;
        }
        fe->nconn++;
    }
}

static void worker_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    SG_DCHECK_MAGIC(((struct sg_wfrontend *)arg)->w, SG_WORKER_MAGIC);
    worker_accept_all(arg);
}

static void worker_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_accept_resume(arg);
}

/* fe's gate wakes this worker (fe->gate's waiter wake; any thread). */
static void worker_gate_wake(void *arg)
{
    struct sg_worker *w = arg;
    atomic_store(&w->accept_req, true);
    sg_worker_wake(w);
}

/* Closes fe's listening socket: no new connections in this worker. */
static void worker_unlisten(struct sg_wfrontend *fe)
{
    if (fe->accept_ev != NULL) {
        event_free(fe->accept_ev);
        fe->accept_ev = NULL;
    }
    if (fe->retry_ev != NULL) {
        event_free(fe->retry_ev);
        fe->retry_ev = NULL;
    }
    if (fe->fd >= 0) {
        close(fe->fd);
        fe->fd = -1;
    }
}

/* w->on_session_closed: a session of fe closed; its slot goes back to the
 * gate (which wakes the workers waiting for one), and the loop of a
 * stopping worker ends with its last session. */
static void worker_session_closed(struct sg_worker *w, struct sg_wfrontend *fe)
{
    SG_BUG_ON(fe->nconn == 0);
    fe->nconn--;
    if (sg_gate_put(fe->gate, w->id))
        worker_accept_resume(fe);
    if (w->stopping && w->nsessions == 0)
        event_base_loopexit(w->base, NULL);
}

static void worker_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    sg_log_info("worker %u: grace period over, closing %u connection(s)", w->id, w->nsessions);
    while (w->sessions != NULL)
        sg_session_abort(w->sessions);
    event_base_loopexit(w->base, NULL);
}

static void worker_stop(struct sg_worker *w)
{
    if (w->stopping)
        return;
    /* Closing a listening socket resets the connections in its backlog,
     * which may have sent a request already: accept them first (as far as
     * the gate allows); they are served like the others below. */
    for (size_t i = 0; i < w->cfg->nfrontends; i++) {
        struct sg_wfrontend *fe = &w->fes[i];
        if (fe->fd >= 0 && !fe->paused)
            worker_accept_all(fe);
    }
    w->stopping = true;
    for (size_t i = 0; i < w->cfg->nfrontends; i++)
        worker_unlisten(&w->fes[i]);
    sg_upstream_close_idle(w);
    struct sg_session *s = w->sessions;
    while (s != NULL) {
        struct sg_session *next = s->next;
        sg_session_shutdown(s);
        s = next;
    }
    if (w->nsessions == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv;
    sg_timeval_from_ms(&tv, w->cfg->timeouts.grace_ms);
    evtimer_add(w->grace_ev, &tv);
}

/* Requests stuck on a backend taken down that the retry budget kept there
 * (held > 0) are asked about again every SG_RESCUE_MS until none is left:
 * the retries that filled the budget end within milliseconds on a healthy
 * backend. */
#define SG_RESCUE_MS 20

static void worker_rescue_arm(struct sg_worker *w, uint32_t held)
{
    if (held == 0 || w->rescue_ev == NULL || evtimer_pending(w->rescue_ev, NULL))
        return;
    struct timeval tv;
    sg_timeval_from_ms(&tv, SG_RESCUE_MS);
    evtimer_add(w->rescue_ev, &tv);
}

static void worker_rescue_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    worker_rescue_arm(w, sg_exchange_backends_down(w, true));
}

/* Backends changed state (came up, left ejection, drained, went down):
 * idle connections to unusable backends go, requests stuck on a backend
 * taken down try another, and queued requests may now fit. */
static void worker_kick(struct sg_worker *w)
{
    sg_upstream_close_unusable(w);
    worker_rescue_arm(w, sg_exchange_backends_down(w, false));
    for (size_t i = 0; i < w->pools->n; i++) {
        struct sg_pool *p = &w->pools->pools[i];
        if (atomic_load_explicit(&p->queue.depth, memory_order_relaxed) > 0)
            sg_queue_kick(w, p);
    }
}

static void worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    SG_DCHECK_MAGIC((struct sg_worker *)arg, SG_WORKER_MAGIC);
    struct sg_worker *w = arg;
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
    if (atomic_exchange(&w->stop_req, false))
        worker_stop(w);
    sg_queue_run_inbox(w);
    if (atomic_exchange(&w->kick_req, false))
        worker_kick(w);
    if (atomic_exchange(&w->accept_req, false))
        for (size_t i = 0; i < w->cfg->nfrontends; i++)
            worker_accept_resume(&w->fes[i]);
}

static void worker_inbox_cb(evutil_socket_t fd, short what, void *arg)
{
    SG_DCHECK_MAGIC((struct sg_worker *)arg, SG_WORKER_MAGIC);
    sg_queue_run_inbox(arg);
}

void sg_worker_wake(struct sg_worker *w)
{
    uint64_t one = 1;
    (void)!write(w->wake_fd, &one, sizeof(one));
}

/* w->inbox.notify: a queue entry of w's was granted a slot. Granted by w
 * itself: run the inbox on the next loop turn (not inside the caller's
 * stack); by another thread: wake w through wake_fd. */
static void worker_notify_grant(void *arg, bool same_thread)
{
    struct sg_worker *w = arg;
    if (same_thread)
        event_active(w->inbox_ev, EV_TIMEOUT, 0);
    else
        sg_worker_wake(w);
}

void sg_worker_kick(struct sg_worker *w)
{
    atomic_store(&w->kick_req, true);
    sg_worker_wake(w);
}

void sg_lfds_add(struct sg_lfds *t, uint32_t worker, const struct sockaddr_storage *ss,
                 socklen_t sslen, int fd)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = sg_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    struct sg_lfd *l = &t->v[t->n++];
    memset(l, 0, sizeof(*l));
    l->worker = worker;
    memcpy(&l->ss, ss, sslen);
    l->sslen = sslen;
    l->fd = fd;
}

void sg_lfds_free(struct sg_lfds *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

void sg_worker_listeners(const struct sg_worker *w, struct sg_lfds *t)
{
    for (size_t i = 0; w->fes != NULL && i < w->cfg->nfrontends; i++) {
        const struct sg_wfrontend *fe = &w->fes[i];
        if (fe->fd >= 0)
            sg_lfds_add(t, w->id, &fe->cfg->listen.ss, fe->cfg->listen.sslen, fe->fd);
    }
}

/* A duplicate of the inherited listening socket of worker id for the
 * address a, or -1. The descriptor belongs to a worker of the running
 * generation (its descriptors change only when it stops, which the main
 * thread, our caller, asks for after this) or came from the process being
 * replaced. */
static int worker_reuse_fd(const struct sg_lfds *t, uint32_t id, const struct sg_cfg_addr *a)
{
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        const struct sg_lfd *l = &t->v[i];
        if (l->worker == id && l->fd >= 0 && l->sslen == a->sslen &&
            memcmp(&l->ss, &a->ss, a->sslen) == 0)
            return fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
    }
    return -1;
}

struct sg_worker *sg_worker_new(uint32_t id, uint32_t nworkers, const struct sg_cfg *cfg,
                                struct sg_pools *pools, struct sg_gate *gates,
                                const struct sg_lfds *inherit)
{
    SG_BUG_ON(cfg->nfrontends > 0 && (gates == NULL || id >= nworkers));
    struct sg_worker *w = sg_xcalloc(1, sizeof(*w));
    w->magic = SG_WORKER_MAGIC;
    w->wake_fd = -1;
    sg_inbox_init(&w->inbox, worker_notify_grant, w);
    w->on_session_closed = worker_session_closed;
    w->id = id;
    w->cfg = cfg;
    w->pools = pools;
    /* The base belongs to this worker alone: no locks (the main thread
     * reaches it only through wake_fd). */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->cout = evbuffer_new();
    w->uout = evbuffer_new();
    if (w->base == NULL || w->wake_fd < 0 || w->cout == NULL || w->uout == NULL) {
        sg_log_error("worker %u: cannot create event base: %s", id, strerror(errno));
        sg_worker_free(w);
        return NULL;
    }
    sg_timeval_from_ms(&w->tv_connect, cfg->timeouts.connect_ms);
    sg_timeval_from_ms(&w->tv_client, cfg->timeouts.client_ms);
    sg_timeval_from_ms(&w->tv_server, cfg->timeouts.server_ms);
    sg_timeval_from_ms(&w->tv_upstream_idle, cfg->timeouts.upstream_idle_ms);

    w->wpools = sg_xcalloc(pools->n, sizeof(struct sg_wpool));
    for (size_t i = 0; i < pools->n; i++) {
        if (sg_wpool_init(&w->wpools[i], &pools->pools[i]) != SG_OK) {
            sg_log_error("worker %u: out of memory", id);
            sg_worker_free(w);
            return NULL;
        }
    }
    w->fes = sg_xcalloc(cfg->nfrontends, sizeof(struct sg_wfrontend));
    for (size_t i = 0; i < cfg->nfrontends; i++)
        w->fes[i].fd = -1; /* before any failure frees w */
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        struct sg_wfrontend *fe = &w->fes[i];
        fe->w = w;
        fe->cfg = &cfg->frontends[i];
        fe->gate = &gates[i];
        sg_gate_set_wake(fe->gate, id, worker_gate_wake, w);
        int fd = worker_reuse_fd(inherit, id, &fe->cfg->listen);
        if (fd < 0)
            fd = worker_listen_fd(&fe->cfg->listen, id);
        if (fd == -2)
            continue;
        if (fd < 0) {
            sg_log_error("frontend '%s': cannot listen on %s: %s", fe->cfg->name,
                         fe->cfg->listen.text, strerror(errno));
            sg_worker_free(w);
            return NULL;
        }
        fe->fd = fd;
        fe->accept_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, worker_accept_cb, fe);
        fe->retry_ev = evtimer_new(w->base, worker_accept_retry_cb, fe);
        if (fe->accept_ev == NULL || fe->retry_ev == NULL || event_add(fe->accept_ev, NULL) != 0) {
            sg_log_error("frontend '%s': cannot create listener", fe->cfg->name);
            sg_worker_free(w);
            return NULL;
        }
    }
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, worker_wake_cb, w);
    event_add(w->wake_ev, NULL);
    w->inbox_ev = event_new(w->base, -1, 0, worker_inbox_cb, w);
    w->grace_ev = evtimer_new(w->base, worker_grace_cb, w);
    w->rescue_ev = evtimer_new(w->base, worker_rescue_cb, w);
    return w;
}

/* Why SCHED_BATCH: a worker's cost per request comes down with the work
 * each loop pass finds (one epoll_wait, one io_uring_enter for all of it).
 * Under the default policy a worker woken on a busy CPU preempts whatever
 * runs there at once, for the one packet that woke it; in its own session
 * (any daemon: systemd, setsid) next to a busy process, scenario b of the
 * benchmark measured 0.2 sleeps per request instead of 0.05, 38 us of CPU
 * per request instead of 23 and 15.9k req/s instead of 20.2k. SCHED_BATCH
 * only drops that wakeup preemption: a worker woken on an idle CPU runs at
 * once, on a busy one when the running task's slice ends. A process a
 * worker forks starts under the default policy (SCHED_RESET_ON_FORK). */
static void worker_sched(const struct sg_worker *w)
{
    if (!w->cfg->sched_batch)
        return;
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp) != 0) {
        if (w->id == 0)
            sg_log_warn("worker threads keep the default scheduling policy: "
                        "SCHED_BATCH refused (%s)",
                        strerror(errno));
    } else if (w->id == 0) {
        sg_log_info("worker threads: SCHED_BATCH (sched_batch = true)");
    }
}

static void *worker_main(void *arg)
{
    struct sg_worker *w = arg;
    worker_sched(w);
    /* Created here: the ring belongs to the thread that submits to it. */
    w->iob = sg_iob_new(w->base, w->cfg->io_uring);
    if (w->id == 0)
        sg_log_info("socket reads and sends: %s",
                    w->iob != NULL     ? "batched per loop pass (io_uring)"
                    : w->cfg->io_uring ? "one syscall each (io_uring unavailable)"
                                       : "one syscall each (io_uring = false)");
    event_base_dispatch(w->base);
    /* Anything left (loop exited by grace timer) is closed here. */
    while (w->sessions != NULL)
        sg_session_abort(w->sessions);
    sg_upstream_close_idle(w);
    /* run deferred frees */
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    sg_iob_free(w->iob);
    w->iob = NULL;
    atomic_store(&w->done, true);
    return NULL;
}

static void worker_alog_flush(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    sg_alog_flush(w->alog);
}

void sg_worker_set_alog(struct sg_worker *w, struct sg_alog *a)
{
    if (a == NULL)
        return;
    w->alog = sg_alog_worker_new(a);
    w->alog_ev = event_new(w->base, -1, EV_PERSIST, worker_alog_flush, w);
    struct timeval tv = {1, 0};
    if (w->alog_ev != NULL)
        event_add(w->alog_ev, &tv);
}

int sg_worker_start(struct sg_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        sg_log_error("worker %u: cannot start thread: %s", w->id, strerror(rc));
        return SG_ERR;
    }
    return SG_OK;
}

void sg_worker_stop(struct sg_worker *w)
{
    atomic_store(&w->stop_req, true);
    sg_worker_wake(w);
}

bool sg_worker_done(const struct sg_worker *w)
{
    return atomic_load(&w->done);
}

void sg_worker_join(struct sg_worker *w)
{
    pthread_join(w->thread, NULL);
}

void sg_worker_free(struct sg_worker *w)
{
    if (w == NULL)
        return;
    if (w->fes != NULL && w->cfg != NULL) {
        for (size_t i = 0; i < w->cfg->nfrontends; i++)
            worker_unlisten(&w->fes[i]);
        free(w->fes);
    }
    if (w->wpools != NULL && w->pools != NULL) {
        for (size_t i = 0; i < w->pools->n; i++)
            if (w->wpools[i].pool != NULL) /* NULL: not reached by a failed sg_worker_new */
                sg_wpool_destroy(&w->wpools[i]);
        free(w->wpools);
    }
    if (w->alog_ev)
        event_free(w->alog_ev);
    if (w->alog)
        sg_alog_worker_free(w->alog);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->inbox_ev)
        event_free(w->inbox_ev);
    if (w->wake_fd > 0)
        close(w->wake_fd);
    sg_inbox_destroy(&w->inbox);
    sg_hdrs_cache_free(&w->hcache);
    if (w->cout)
        evbuffer_free(w->cout);
    if (w->uout)
        evbuffer_free(w->uout);
    if (w->grace_ev)
        event_free(w->grace_ev);
    if (w->rescue_ev)
        event_free(w->rescue_ev);
    if (w->base)
        event_base_free(w->base);
    free(w);
}
