/* upstream.c: backend connections and the per-worker, per-backend idle
 * keep-alive pool. An idle connection keeps reading enabled so that a close
 * or stray bytes from the backend evict it at once; its read timeout is the
 * upstream idle timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/upstream.h"
#include "surgegate/worker-t.h" /* fields only: nothing of worker.c is called */

/* Bytes read from a backend in one go, at most: 64 KiB less libevent's
 * chain header, so a read's buffer is one 64 KiB allocation (libevent
 * rounds chains up to a power of two); the exchange lowers it while bytes
 * wait for the client (SG_OUT_BUDGET). No read watermark: the session moves
 * everything read straight to the client and disables reading itself when
 * the client falls behind, so a watermark would only add an epoll_ctl pair
 * per response. */
#define SG_UP_MAX_READ (SG_OUT_BUDGET - 128)

static struct sg_wbackend *upstream_wb(struct sg_upconn *c)
{
    return &c->w->wpools[c->b->pool->id].wb[c->b->id];
}

static void upstream_unlink_idle(struct sg_upconn *c)
{
    struct sg_wbackend *wb = upstream_wb(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        wb->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->idle = false;
    atomic_store_explicit(&wb->nidle, atomic_load_explicit(&wb->nidle, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static void upstream_count(struct sg_upconn *c)
{
    _Atomic uint32_t *n = &upstream_wb(c)->st.conns_active;
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    c->counted = true;
}

static void upstream_uncount(struct sg_upconn *c)
{
    if (!c->counted)
        return;
    _Atomic uint32_t *n = &upstream_wb(c)->st.conns_active;
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    c->counted = false;
}

void sg_upstream_free(struct sg_upconn *c)
{
    SG_CHECK_MAGIC(c, SG_UPCONN_MAGIC);
    if (c->idle)
        upstream_unlink_idle(c);
    upstream_uncount(c);
    sg_conn_close(&c->conn);
    c->magic = 0;
    free(c);
}

/* Any event on an idle connection (close, reset, stray bytes, idle timeout)
 * retires it: an idle backend connection has nothing legitimate to say. */
static void upstream_idle_read(struct sg_conn *conn, void *arg)
{
    SG_DCHECK_MAGIC((struct sg_upconn *)arg, SG_UPCONN_MAGIC);
    sg_upstream_free(arg);
}

static void upstream_idle_event(struct sg_conn *conn, short what, void *arg)
{
    SG_DCHECK_MAGIC((struct sg_upconn *)arg, SG_UPCONN_MAGIC);
    sg_upstream_free(arg);
}

struct sg_upconn *sg_upstream_acquire(struct sg_worker *w, struct sg_backend *b, bool allow_idle,
                                      sg_conn_data_cb readcb, sg_conn_data_cb writecb,
                                      sg_conn_event_cb eventcb, void *arg)
{
    SG_DCHECK_MAGIC(w, SG_WORKER_MAGIC);
    SG_DCHECK_MAGIC(b, SG_BACKEND_MAGIC);
    struct sg_wbackend *wb = &w->wpools[b->pool->id].wb[b->id];
    struct sg_upconn *c;
    if (allow_idle && wb->idle != NULL) {
        c = wb->idle;
        upstream_unlink_idle(c);
        c->reused = true;
        upstream_count(c);
        sg_conn_setcb(&c->conn, readcb, writecb, eventcb, arg);
        sg_conn_set_timeouts(&c->conn, &w->tv_server, &w->tv_server);
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->magic = SG_UPCONN_MAGIC;
    c->w = w;
    c->b = b;
    if (sg_conn_connect(&c->conn, w->base, (const struct sockaddr *)&b->ss, b->sslen,
                        &w->tv_connect) != SG_OK) {
        free(c);
        return NULL;
    }
    upstream_count(c);
    sg_conn_setcb(&c->conn, readcb, writecb, eventcb, arg);
    c->conn.read_size = SG_UP_MAX_READ;
    sg_conn_read_on(&c->conn);
    return c;
}

void sg_upstream_release(struct sg_upconn *c, bool reusable)
{
    SG_CHECK_MAGIC(c, SG_UPCONN_MAGIC);
    struct sg_worker *w = c->w;
    struct sg_wbackend *wb = upstream_wb(c);
    uint32_t max_idle = c->b->pool->cfg->max_idle;
    if (!reusable || w->stopping || wb->nidle >= max_idle || !c->connected ||
        !sg_backend_usable(c->b, sg_now_ms()) || evbuffer_get_length(c->conn.in) != 0 ||
        evbuffer_get_length(c->conn.out) != 0) {
        sg_upstream_free(c);
        return;
    }
    upstream_uncount(c);
    sg_conn_setcb(&c->conn, upstream_idle_read, NULL, upstream_idle_event, c);
    sg_conn_set_timeouts(&c->conn, &w->tv_upstream_idle, NULL);
    sg_conn_read_on(&c->conn);
    c->idle = true;
    c->prev = NULL;
    c->next = wb->idle;
    if (wb->idle)
        wb->idle->prev = c;
    wb->idle = c;
    atomic_store_explicit(&wb->nidle, atomic_load_explicit(&wb->nidle, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void sg_upstream_close_idle(struct sg_worker *w)
{
    for (size_t i = 0; i < w->pools->n; i++) {
        struct sg_wpool *wp = &w->wpools[i];
        for (size_t j = 0, n_ = sg_pool_nused(wp->pool); j < n_; j++)
            while (wp->wb[j].idle != NULL)
                sg_upstream_free(wp->wb[j].idle);
    }
}

void sg_upstream_close_unusable(struct sg_worker *w)
{
    uint64_t now = sg_now_ms();
    for (size_t i = 0; i < w->pools->n; i++) {
        struct sg_wpool *wp = &w->wpools[i];
        for (size_t j = 0, n_ = sg_pool_nused(wp->pool); j < n_; j++)
            if (!sg_backend_usable(&wp->pool->backends[j], now))
                while (wp->wb[j].idle != NULL)
                    sg_upstream_free(wp->wb[j].idle);
    }
}
