/* conn.c: non-blocking stream sockets with evbuffers: readv into reserved
 * space, immediate sendmsg, EPOLLOUT only for what the kernel refused. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/common.h"
#include "surgegate/conn.h"

#define SG_CONN_READ_DEFAULT (16 * 1024)

static const struct timeval *conn_tv(const struct timeval *tv)
{
    return (tv->tv_sec == 0 && tv->tv_usec == 0) ? NULL : tv;
}

static void conn_arm_read(struct sg_conn *c)
{
    bool want = c->reading && c->fd >= 0 &&
                (c->read_high == 0 || evbuffer_get_length(c->in) < c->read_high);
    if (want) {
        /* re-adding also restarts the inactivity timeout */
        event_add(&c->rev, conn_tv(&c->rto));
        c->read_armed = true;
    } else if (c->read_armed) {
        event_del(&c->rev);
        c->read_armed = false;
    }
}

static void conn_arm_write(struct sg_conn *c)
{
    if (!c->write_armed) {
        event_add(&c->wev, conn_tv(&c->wto));
        c->write_armed = true;
    }
}

static void conn_disarm_write(struct sg_conn *c)
{
    if (c->write_armed) {
        event_del(&c->wev);
        c->write_armed = false;
    }
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (what & EV_TIMEOUT) {
        c->eventcb(c, SG_CONN_READING | SG_CONN_TIMEOUT, c->arg);
        return;
    }
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(c->in, (ev_ssize_t)c->read_size, v, 2);
    if (nv < 1) {
        c->eventcb(c, SG_CONN_READING | SG_CONN_ERROR, c->arg);
        return;
    }
    ssize_t n = readv(fd, (struct iovec *)v, nv);
    if (n > 0)
        c->nin += (uint64_t)n;
    if (n <= 0) {
        evbuffer_commit_space(c->in, v, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        /* Stop reading: a level-triggered EOF would fire forever. */
        c->reading = false;
        conn_arm_read(c);
        c->eventcb(c, SG_CONN_READING | (n == 0 ? SG_CONN_EOF : SG_CONN_ERROR), c->arg);
        return;
    }
    size_t left = (size_t)n;
    int used = 0;
    for (; used < nv && left > 0; used++) {
        if (v[used].iov_len > left)
            v[used].iov_len = left;
        left -= v[used].iov_len;
    }
    evbuffer_commit_space(c->in, v, used);
    if (c->read_high > 0 && evbuffer_get_length(c->in) >= c->read_high)
        conn_arm_read(c); /* pause until the owner drains it */
    c->readcb(c, c->arg);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (what & EV_TIMEOUT) {
        c->eventcb(c, SG_CONN_WRITING | SG_CONN_TIMEOUT, c->arg);
        return;
    }
    if (c->connecting) {
        int err = c->pending_err;
        socklen_t len = sizeof(err);
        if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS)
            return;
        c->connecting = false;
        if (evbuffer_get_length(c->out) == 0)
            conn_disarm_write(c);
        if (err != 0) {
            errno = err;
            conn_disarm_write(c);
            c->eventcb(c, SG_CONN_WRITING | SG_CONN_ERROR, c->arg);
            return;
        }
        c->eventcb(c, SG_CONN_CONNECTED, c->arg);
        return;
    }
    if (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, fd);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_disarm_write(c);
            c->eventcb(c, SG_CONN_WRITING | SG_CONN_ERROR, c->arg);
            return;
        }
        if (n > 0 && c->write_armed && conn_tv(&c->wto) != NULL)
            event_add(&c->wev, conn_tv(&c->wto)); /* progress restarts the timeout */
    }
    if (evbuffer_get_length(c->out) == 0)
        conn_disarm_write(c);
    if (evbuffer_get_length(c->out) <= c->write_low && c->writecb != NULL)
        c->writecb(c, c->arg);
}

static int conn_setup(struct sg_conn *c, struct event_base *base, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->read_size = SG_CONN_READ_DEFAULT;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (c->in == NULL || c->out == NULL) {
        if (c->in)
            evbuffer_free(c->in);
        if (c->out)
            evbuffer_free(c->out);
        close(fd);
        c->fd = -1;
        return SG_ERR;
    }
    event_assign(&c->rev, base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    event_assign(&c->wev, base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
    return SG_OK;
}

int sg_conn_init(struct sg_conn *c, struct event_base *base, int fd)
{
    return conn_setup(c, base, fd);
}

int sg_conn_connect(struct sg_conn *c, struct event_base *base, const struct sockaddr *sa,
                    socklen_t salen, const struct timeval *timeout)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SG_ERR;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (conn_setup(c, base, fd) != SG_OK)
        return SG_ERR;
    if (timeout != NULL)
        c->wto = *timeout;
    c->connecting = true;
    if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
        /* Report from the loop, like an asynchronous failure. */
        c->pending_err = errno;
        event_active(&c->wev, EV_WRITE, 0);
        c->write_armed = false;
        return SG_OK;
    }
    conn_arm_write(c);
    return SG_OK;
}

void sg_conn_setcb(struct sg_conn *c, sg_conn_data_cb readcb, sg_conn_data_cb writecb,
                   sg_conn_event_cb eventcb, void *arg)
{
    c->readcb = readcb;
    c->writecb = writecb;
    c->eventcb = eventcb;
    c->arg = arg;
}

void sg_conn_read_on(struct sg_conn *c)
{
    if (c->reading && c->read_armed)
        return;
    c->reading = true;
    conn_arm_read(c);
}

void sg_conn_read_off(struct sg_conn *c)
{
    c->reading = false;
    conn_arm_read(c);
}

void sg_conn_set_timeouts(struct sg_conn *c, const struct timeval *rd, const struct timeval *wr)
{
    struct timeval zero = {0, 0};
    struct timeval nr = rd ? *rd : zero, nw = wr ? *wr : zero;
    bool rchg = nr.tv_sec != c->rto.tv_sec || nr.tv_usec != c->rto.tv_usec;
    bool wchg = nw.tv_sec != c->wto.tv_sec || nw.tv_usec != c->wto.tv_usec;
    c->rto = nr;
    c->wto = nw;
    if (rchg && c->read_armed)
        event_add(&c->rev, conn_tv(&c->rto));
    if (wchg && c->write_armed)
        event_add(&c->wev, conn_tv(&c->wto));
}

void sg_conn_set_write_low(struct sg_conn *c, size_t low)
{
    c->write_low = low;
}

void sg_conn_input_drained(struct sg_conn *c)
{
    if (c->reading && !c->read_armed)
        conn_arm_read(c);
}

void sg_conn_send(struct sg_conn *c, struct evbuffer *data, bool more)
{
    size_t len = evbuffer_get_length(data);
    if (len == 0 || c->fd < 0)
        return;
    c->nout += len;
    if (evbuffer_get_length(c->out) == 0 && !c->connecting) {
        /* evbuffer_iovec has struct iovec's layout (libevent guarantees it). */
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(data, (ev_ssize_t)len, NULL, v, 16);
        struct msghdr mh = {.msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)(n < 16 ? n : 16)};
        /* MSG_MORE while more of a known-length body is on its way lets the
         * kernel send full segments. A failed send leaves the bytes queued;
         * the write event then meets the same error and reports it. */
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (w > 0)
            evbuffer_drain(data, (size_t)w);
        if (evbuffer_get_length(data) == 0)
            return;
    }
    evbuffer_add_buffer(c->out, data);
    if (!c->connecting)
        conn_arm_write(c);
}

void sg_conn_close(struct sg_conn *c)
{
    if (c->fd < 0)
        return;
    event_del(&c->rev);
    event_del(&c->wev);
    close(c->fd);
    c->fd = -1;
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    c->in = c->out = NULL;
    c->read_armed = c->write_armed = false;
}
