/* upstream.c: backend connections and the per-worker, per-backend idle
 * keep-alive pool. An idle connection keeps reading enabled so that a close
 * or stray bytes from the backend evict it at once; its read timeout is the
 * upstream idle timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "surgegate/common.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/upstream.h"
#include "surgegate/worker.h"

/* Bytes libevent may read from a backend in one go. No read watermark: the
 * session moves everything read straight to the client and disables reading
 * itself when the client falls behind, so a watermark would only add an
 * epoll_ctl pair per large response. */
#define SG_UP_MAX_READ (256 * 1024)

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
    wb->nidle--;
}

void sg_upstream_free(struct sg_upconn *c)
{
    SG_CHECK_MAGIC(c, SG_UPCONN_MAGIC);
    if (c->idle)
        upstream_unlink_idle(c);
    bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: closes the socket */
    c->magic = 0;
    free(c);
}

/* Any event on an idle connection (close, reset, stray bytes, idle timeout)
 * retires it: an idle backend connection has nothing legitimate to say. */
static void upstream_idle_read(struct bufferevent *bev, void *arg)
{
    sg_upstream_free(arg);
}

static void upstream_idle_event(struct bufferevent *bev, short what, void *arg)
{
    sg_upstream_free(arg);
}

struct sg_upconn *sg_upstream_acquire(struct sg_worker *w, struct sg_backend *b, bool allow_idle,
                                      bufferevent_data_cb readcb, bufferevent_data_cb writecb,
                                      bufferevent_event_cb eventcb, void *arg)
{
    struct sg_wbackend *wb = &w->wpools[b->pool->id].wb[b->id];
    struct sg_upconn *c;
    if (allow_idle && wb->idle != NULL) {
        c = wb->idle;
        upstream_unlink_idle(c);
        c->reused = true;
        bufferevent_setcb(c->bev, readcb, writecb, eventcb, arg);
        bufferevent_set_timeouts(c->bev, &w->tv_server, &w->tv_server);
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->magic = SG_UPCONN_MAGIC;
    c->w = w;
    c->b = b;
    c->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, readcb, writecb, eventcb, arg);
    bufferevent_set_max_single_read(c->bev, SG_UP_MAX_READ);
    /* While connecting, the write timeout is the connect timeout. */
    bufferevent_set_timeouts(c->bev, NULL, &w->tv_connect);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b->ss, (int)b->sslen) < 0) {
        /* Immediate failure: report it through the event callback like any
         * other connect error so callers have one path. */
        bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0 && b->ss.ss_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return c;
}

void sg_upstream_release(struct sg_upconn *c, bool reusable)
{
    SG_CHECK_MAGIC(c, SG_UPCONN_MAGIC);
    struct sg_worker *w = c->w;
    struct sg_wbackend *wb = upstream_wb(c);
    uint32_t max_idle = c->b->pool->cfg->max_idle;
    if (!reusable || w->stopping || wb->nidle >= max_idle || !c->connected ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) != 0) {
        sg_upstream_free(c);
        return;
    }
    bufferevent_setcb(c->bev, upstream_idle_read, NULL, upstream_idle_event, c);
    bufferevent_set_timeouts(c->bev, &w->tv_upstream_idle, NULL);
    bufferevent_enable(c->bev, EV_READ);
    c->idle = true;
    c->prev = NULL;
    c->next = wb->idle;
    if (wb->idle)
        wb->idle->prev = c;
    wb->idle = c;
    wb->nidle++;
}

void sg_upstream_close_idle(struct sg_worker *w)
{
    for (size_t i = 0; i < w->pools->n; i++) {
        struct sg_wpool *wp = &w->wpools[i];
        for (size_t j = 0; j < wp->pool->nbackends; j++)
            while (wp->wb[j].idle != NULL)
                sg_upstream_free(wp->wb[j].idle);
    }
}
