/* transport_tcp.c: the plain TCP transport (see transport-t.h): one syscall
 * per operation on c->fd, nothing kept in between. Because that is all it
 * does, it is batchable: conn.c's io_uring batch issues the same recvmsg /
 * sendmsg / close itself, many per io_uring_enter, and calls these
 * operations only on the plain-syscall paths (no batch, a large transfer, an
 * EPOLLOUT flush). */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/conn-t.h"
#include "surgegate/transport.h"

static ssize_t tcp_read(struct sg_conn *c, const struct iovec *iov, int iovcnt, short *wait)
{
    SG_UNUSED(wait); /* EAGAIN always waits for readable */
    return readv(c->fd, iov, iovcnt);
}

static ssize_t tcp_write(struct sg_conn *c, const struct iovec *iov, int iovcnt, bool more,
                         short *wait)
{
    SG_UNUSED(wait);
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    return sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static int tcp_shutdown(struct sg_conn *c)
{
    return shutdown(c->fd, SHUT_WR) == 0 ? SG_OK : SG_ERR;
}

static void tcp_close(struct sg_conn *c)
{
    close(c->fd);
}

const struct sg_transport_ops sg_transport_tcp = {
    .name = "tcp",
    .flags = SG_TP_F_BATCH,
    .read = tcp_read,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};
