/* conn.c: non-blocking stream sockets with evbuffers: reads into reserved
 * space, sends at once, EPOLLOUT only for what the kernel refused; and the
 * per-thread batch that issues a loop pass's reads and sends in one
 * io_uring_enter instead of one syscall each.
 *
 * The bytes go through the connection's transport (c->tp, transport-t.h):
 * this file owns buffers, watermarks, timeouts, callbacks and events, and
 * calls the transport's read / write / shutdown / close. The batch stays
 * here, under the connection layer rather than in a transport: it works for
 * batchable transports (SG_TP_F_BATCH, plain TCP), whose operations are
 * plain syscalls it can issue itself; a connection over any other transport
 * gets no batch (c->iob NULL) and always calls its operations. Creating the
 * socket and connecting it are socket-level, before any transport, and stay
 * here too. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/log.h"
#include "surgegate/transport.h"

/* Memcheck cannot see the kernel write into buffers through io_uring: tell
 * it, so that valgrind runs keep checking everything else (a no-op outside
 * valgrind, and absent where valgrind's headers are). */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SG_MARK_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)
#endif
#endif
#ifndef SG_MARK_DEFINED
#define SG_MARK_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#define SG_CONN_READ_DEFAULT (16 * 1024)
#define SG_CONN_IOV          16
/* Iovecs per send of what EPOLLOUT found queued (libevent's evbuffer_write,
 * used here before, took as many). */
#define SG_CONN_IOV_FLUSH 128

/* ------------------------------------------------------------ the I/O batch
 *
 * Why: on the machines we measured, one syscall's entry and exit costs about
 * 1 us, as much as the work of a small send, and a proxied keep-alive request
 * takes four (client read, backend send, backend read, client send). epoll
 * already hands over a loop pass's ready sockets in one call; the batch does
 * the same for the reads and sends themselves.
 *
 * How: conn_on_read does not read; it queues a read. sg_conn_send does not
 * send; it moves the bytes to the connection's output and queues a send. The
 * first queued entry activates flush_ev, which libevent runs after the other
 * callbacks of the pass. A round then
 *   1. prepares every entry as a recvmsg / sendmsg SQE with MSG_DONTWAIT and
 *      submits them with one io_uring_enter: on a socket, MSG_DONTWAIT makes
 *      the kernel complete each one inline, with bytes or -EAGAIN, never
 *      parked on a poll (checked once at start-up, iob_inline_ok);
 *   2. settles the results with no callback in between: commits the reserved
 *      space, drains what was sent, arms EPOLLOUT for what was refused;
 *   3. runs the callbacks in order. They may close connections (their
 *      entries are then cleared through the slots kept in sg_conn) and queue
 *      new sends, which the next round issues, before the loop polls again.
 * Errors keep the plain path's outcome: a failed send leaves its bytes queued
 * and the write event meets the error; a failed read reports as it did. */
#define SG_IOB_RING   256 /* SQ entries: the most entries one enter issues */
#define SG_IOB_ROUNDS 8   /* rounds per flush before the loop polls again */
/* Only small transfers are batched: there the syscall is the cost, while a
 * large one is dominated by copying bytes. A batched read lands in the
 * batch's slab (one slot per SQ entry) and is copied to the connection:
 * reserving read_size (up to 256 KiB upstream) in each of a pass's
 * connections at once made malloc grow and trim the heap every pass. A
 * connection whose last read filled SG_IOB_SLOT reads with a plain readv,
 * straight into its buffer, until a read comes back smaller; a send of
 * SG_IOB_SLOT bytes or more goes out at once, so its buffers are freed
 * before the next read allocates again. */
#define SG_IOB_SLOT (16 * 1024)
/* The slab's pages stay resident once touched: a pass over thousands of
 * connections (an attack) touches all 4 MiB, and grows the entries array
 * (~340 bytes an entry) as much. Every SG_IOB_TRIM_MS, slots beyond the
 * first SG_IOB_KEEP that were used are given back (madvise), and an entries
 * array grown past SG_IOB_RING is freed when empty, by the worker itself
 * between passes; both come back when next needed. */
#define SG_IOB_KEEP    32
#define SG_IOB_TRIM_MS 5000

enum { IOB_READ = 1, IOB_SEND = 2, IOB_CLOSE = 3 };

struct sg_iob_op {
    struct sg_conn *c; /* NULL: nothing (more) to do for this entry */
    int fd;            /* IOB_CLOSE (c is NULL): the socket to close; -1 once done */
    uint8_t kind;
    bool issued; /* res holds the kernel's answer */
    bool first;  /* a new connection's first read (sg_conn_read_on) */
    bool nocb;   /* settled with no callback due */
    bool again;  /* a first read tried once more, later in the same flush */
    int nv;      /* iovecs reserved (reads) or peeked (sends) */
    int res;     /* bytes, or -errno */
    struct msghdr mh;
    struct evbuffer_iovec v[SG_CONN_IOV];
};

struct sg_iobatch {
    struct io_uring ring;
    struct event *flush_ev;
    struct sg_iob_op *ops;
    uint32_t n, cap;
    char *slab;            /* SG_IOB_RING slots of SG_IOB_SLOT bytes (mmap) */
    uint32_t slab_hw;      /* slots used since the last trim */
    uint64_t slab_trim_ms; /* when the next trim may run */
    bool scheduled;        /* flush_ev is active */
    bool flushing;         /* inside iob_flush_cb: its loop takes new entries */
    bool broken;           /* the ring failed: entries run as plain syscalls */
};

static _Thread_local struct sg_iobatch *conn_tl_iob;

/* ------------------------------------------------------ buffer accounting */

#define SG_CONN_ACCT_STEP  (64 * 1024) /* a thread's changes, added in steps */
#define SG_CONN_READ_TIGHT (4 * 1024)  /* the most a read takes while over the limit */

static _Atomic int64_t conn_buffered;   /* bytes in all connections' buffers */
static _Atomic uint64_t conn_buf_limit; /* 0: none */
static _Atomic bool conn_buf_full;
static _Atomic uint64_t conn_buf_hits;
static _Thread_local int64_t conn_tl_delta; /* not yet added to conn_buffered */

void sg_conn_set_buffer_limit(uint64_t bytes)
{
    atomic_store(&conn_buf_limit, bytes);
}

uint64_t sg_conn_buffered(void)
{
    int64_t v = atomic_load_explicit(&conn_buffered, memory_order_relaxed);
    return v > 0 ? (uint64_t)v : 0;
}

bool sg_conn_buffers_full(void)
{
    return atomic_load_explicit(&conn_buf_full, memory_order_relaxed);
}

uint64_t sg_conn_buffers_hits(void)
{
    return atomic_load_explicit(&conn_buf_hits, memory_order_relaxed);
}

/* Bytes the next read of c may take: read_size, or SG_CONN_READ_TIGHT while
 * the buffers are over the limit (the relays then also stop reading from a
 * peer whose other side has bytes waiting: each connection holds about one
 * small read until clients drain). */
static size_t conn_read_size(const struct sg_conn *c)
{
    if (c->read_size > SG_CONN_READ_TIGHT &&
        atomic_load_explicit(&conn_buf_full, memory_order_relaxed))
        return SG_CONN_READ_TIGHT;
    return c->read_size;
}

/* Brings c's share of the total up to what its buffers hold now. Called
 * after each read, send and at close: bytes moved between connections
 * (a response from the backend's `in` to the client's `out`) are counted
 * twice, or not at all, only until the next I/O of either. */
static void conn_account(struct sg_conn *c)
{
    size_t now = c->in != NULL ? evbuffer_get_length(c->in) + evbuffer_get_length(c->out) : 0;
    if (now > UINT32_MAX)
        now = UINT32_MAX;
    conn_tl_delta += (int64_t)now - (int64_t)c->acct;
    c->acct = (uint32_t)now;
    if (conn_tl_delta < SG_CONN_ACCT_STEP && conn_tl_delta > -SG_CONN_ACCT_STEP)
        return;
    int64_t total = atomic_fetch_add_explicit(&conn_buffered, conn_tl_delta, memory_order_relaxed) +
                    conn_tl_delta;
    conn_tl_delta = 0;
    uint64_t limit = atomic_load_explicit(&conn_buf_limit, memory_order_relaxed);
    bool full = limit > 0 && total > (int64_t)limit;
    if (full != atomic_load_explicit(&conn_buf_full, memory_order_relaxed)) {
        atomic_store_explicit(&conn_buf_full, full, memory_order_relaxed);
        if (full)
            atomic_fetch_add_explicit(&conn_buf_hits, 1, memory_order_relaxed);
    }
}

static void conn_arm_read(struct sg_conn *c);
static void conn_arm_write(struct sg_conn *c);

static const struct timeval *conn_tv(const struct timeval *tv)
{
    return (tv->tv_sec == 0 && tv->tv_usec == 0) ? NULL : tv;
}

static void conn_arm_read(struct sg_conn *c)
{
    bool want = c->reading && c->fd >= 0 &&
                (c->read_high == 0 || evbuffer_get_length(c->in) < c->read_high);
    if (want) {
        if (c->read_defer)
            return; /* the batch registers it after the first read, if still wanted */
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

/* Applies a read's outcome to c, with no callback: true when one is due,
 * with *what 0 for the read callback, else the event flags. */
static bool conn_read_settle(struct sg_conn *c, struct evbuffer_iovec *v, int nv, ssize_t n,
                             int err, short *what)
{
    if (n <= 0) {
        if (nv > 0)
            evbuffer_commit_space(c->in, v, 0);
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
            return false;
        /* Stop reading: a level-triggered EOF would fire forever. */
        c->reading = false;
        conn_arm_read(c);
        *what = SG_CONN_READING | (n == 0 ? SG_CONN_EOF : SG_CONN_ERROR);
        return true;
    }
    c->nin += (uint64_t)n;
    size_t left = (size_t)n;
    int used = 0;
    for (; used < nv && left > 0; used++) {
        if (v[used].iov_len > left)
            v[used].iov_len = left;
        left -= v[used].iov_len;
    }
    if (used > 0)
        evbuffer_commit_space(c->in, v, used);
    conn_account(c);
    if (c->read_high > 0 && evbuffer_get_length(c->in) >= c->read_high)
        conn_arm_read(c); /* pause until the owner drains it */
    *what = 0;
    return true;
}

static int32_t iob_push(struct sg_iobatch *b, struct sg_conn *c, uint8_t kind);

/* One transport write of what buf holds (its first `max` pieces, at most
 * SG_CONN_IOV_FLUSH); drains what the transport took. Returns that, or -1
 * with errno. */
static ssize_t conn_send_now(struct sg_conn *c, struct evbuffer *buf, bool more, int max)
{
    /* evbuffer_iovec has struct iovec's layout (libevent guarantees it). */
    struct evbuffer_iovec v[SG_CONN_IOV_FLUSH];
    int n = evbuffer_peek(buf, -1, NULL, v, max);
    short wait = SG_CONN_WRITING;
    ssize_t w = c->tp->write(c, (const struct iovec *)v, n < max ? n : max, more, &wait);
    /* Writes that wait for readable (TLS) are not handled yet (see conn.h). */
    SG_BUG_ON(wait != SG_CONN_WRITING);
    if (w > 0) {
        evbuffer_drain(buf, (size_t)w);
        conn_account(c);
    }
    return w;
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    SG_UNUSED(fd);
    if (what & EV_TIMEOUT) {
        c->eventcb(c, SG_CONN_READING | SG_CONN_TIMEOUT, c->arg);
        return;
    }
    if (c->iob != NULL && !c->iob->broken && !c->read_big) {
        if (c->rslot < 0)
            c->rslot = iob_push(c->iob, c, IOB_READ);
        if (c->rslot >= 0)
            return; /* read with the rest of the pass */
    }
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(c->in, (ev_ssize_t)conn_read_size(c), v, 2);
    if (nv < 1) {
        c->eventcb(c, SG_CONN_READING | SG_CONN_ERROR, c->arg);
        return;
    }
    short wait = SG_CONN_READING;
    ssize_t n = c->tp->read(c, (const struct iovec *)v, nv, &wait);
    int err = errno;
    /* Reads that wait for writable (TLS) are not handled yet (see conn.h). */
    SG_BUG_ON(wait != SG_CONN_READING);
    if (n > 0)
        c->read_big = (size_t)n >= SG_IOB_SLOT;
    short ev;
    if (!conn_read_settle(c, v, nv, n, err, &ev))
        return;
    if (ev == 0) {
        c->readcb(c, c->arg);
    } else {
        errno = err;
        c->eventcb(c, ev, c->arg);
    }
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
        if (c->shut_pending && evbuffer_get_length(c->out) == 0) {
            c->shut_pending = false; /* sg_conn_shutdown while connecting */
            (void)c->tp->shutdown(c);
        }
        c->eventcb(c, SG_CONN_CONNECTED, c->arg);
        return;
    }
    if (evbuffer_get_length(c->out) > 0) {
        ssize_t n = conn_send_now(c, c->out, false, SG_CONN_IOV_FLUSH);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_disarm_write(c);
            c->eventcb(c, SG_CONN_WRITING | SG_CONN_ERROR, c->arg);
            return;
        }
        if (n > 0 && c->write_armed && conn_tv(&c->wto) != NULL)
            event_add(&c->wev, conn_tv(&c->wto)); /* progress restarts the timeout */
    }
    if (evbuffer_get_length(c->out) == 0) {
        conn_disarm_write(c);
        if (c->shut_pending) {
            c->shut_pending = false;
            (void)c->tp->shutdown(c);
        }
    }
    if (evbuffer_get_length(c->out) <= c->write_low && c->writecb != NULL)
        c->writecb(c, c->arg);
}

static int conn_setup(struct sg_conn *c, struct event_base *base, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->read_size = SG_CONN_READ_DEFAULT;
    c->tp = &sg_transport_tcp;
    c->iob = conn_tl_iob;
    c->rslot = c->wslot = c->wdoneslot = -1;
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
    int rc = conn_setup(c, base, fd);
    c->fresh = true;
    return rc;
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

void sg_conn_set_transport(struct sg_conn *c, const struct sg_transport_ops *tp, void *ctx)
{
    /* Nothing may be in the batch for the old transport. */
    SG_BUG_ON(c->rslot >= 0 || c->wslot >= 0 || c->wdoneslot >= 0);
    c->tp = tp;
    c->tp_ctx = ctx;
    if (!(tp->flags & SG_TP_F_BATCH))
        c->iob = NULL;
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
    if (c->reading && (c->read_armed || c->read_defer))
        return;
    c->reading = true;
    /* A client sends its request right after the handshake, so it is often
     * there by the time the connection is accepted: read it with this pass's
     * batch rather than a loop pass later, when epoll reports it, and register
     * the socket with epoll only if reading is still wanted after that read
     * (a client that asked to close gets nothing more read: then the socket
     * never costs an epoll_ctl ADD, nor the DEL before its close). */
    if (c->fresh && c->fd >= 0 && c->iob != NULL && !c->iob->broken && c->rslot < 0) {
        c->fresh = false;
        c->rslot = iob_push(c->iob, c, IOB_READ);
        if (c->rslot >= 0) {
            c->iob->ops[c->rslot].first = true;
            c->read_defer = true;
            return;
        }
    }
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
    /* event_add() with no timeout keeps a pending one: take the event off
     * first when the timeout goes away. */
    if (rchg && c->read_armed) {
        if (conn_tv(&c->rto) == NULL)
            event_del(&c->rev);
        event_add(&c->rev, conn_tv(&c->rto));
    }
    if (wchg && c->write_armed) {
        if (conn_tv(&c->wto) == NULL)
            event_del(&c->wev);
        event_add(&c->wev, conn_tv(&c->wto));
    }
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
    if (c->wslot >= 0) {
        /* A send is queued in the batch: it takes these bytes too. */
        c->send_more = more;
        evbuffer_add_buffer(c->out, data);
        return;
    }
    if (evbuffer_get_length(c->out) == 0 && !c->connecting) {
        if (c->iob != NULL && !c->iob->broken && !c->write_armed && len < SG_IOB_SLOT) {
            c->wslot = iob_push(c->iob, c, IOB_SEND);
            if (c->wslot >= 0) {
                c->send_more = more;
                evbuffer_add_buffer(c->out, data);
                return;
            }
        }
        /* MSG_MORE while more of a known-length body is on its way lets the
         * kernel send full segments. A failed send leaves the bytes queued;
         * the write event then meets the same error and reports it. */
        (void)conn_send_now(c, data, more, SG_CONN_IOV);
        if (evbuffer_get_length(data) == 0)
            return;
    }
    evbuffer_add_buffer(c->out, data);
    if (!c->connecting)
        conn_arm_write(c);
}

void sg_conn_fin_follows(struct sg_conn *c)
{
    /* The send still queued in the batch is held back (MSG_MORE) for the
     * moment until the FIN comes: the kernel then sets FIN on that unsent
     * segment, so the client gets response and end in one packet, not
     * two. */
    if (c->wslot >= 0)
        c->send_more = true;
}

void sg_conn_shutdown(struct sg_conn *c)
{
    if (c->fd < 0 || c->shut_pending)
        return;
    if (c->wslot >= 0) {
        /* As in sg_conn_close: what the batch holds goes out first. */
        c->iob->ops[c->wslot].c = NULL;
        c->wslot = -1;
        (void)conn_send_now(c, c->out, false, SG_CONN_IOV);
        if (evbuffer_get_length(c->out) > 0 && !c->connecting)
            conn_arm_write(c);
    }
    if (evbuffer_get_length(c->out) > 0 || c->connecting) {
        c->shut_pending = true; /* conn_on_write, once `out` is sent */
        return;
    }
    (void)c->tp->shutdown(c);
}

void sg_conn_close(struct sg_conn *c)
{
    if (c->fd < 0)
        return;
    struct sg_iobatch *b = c->iob;
    if (b != NULL) {
        if (c->wslot >= 0) {
            /* Bytes handed to sg_conn_send go out before the close, as they
             * did when sent at once. */
            b->ops[c->wslot].c = NULL;
            c->wslot = -1;
            (void)conn_send_now(c, c->out, false, SG_CONN_IOV);
        }
        if (c->rslot >= 0)
            b->ops[c->rslot].c = NULL;
        if (c->wdoneslot >= 0)
            b->ops[c->wdoneslot].c = NULL;
        c->rslot = c->wdoneslot = -1;
    }
    event_del(&c->rev);
    event_del(&c->wev);
    /* The close goes with the pass's batch too (the fd stays open, so its
     * number is not reused, until then). */
    int32_t slot = b != NULL && !b->broken ? iob_push(b, NULL, IOB_CLOSE) : -1;
    if (slot >= 0)
        b->ops[slot].fd = c->fd;
    else
        c->tp->close(c);
    c->fd = -1;
    c->tp_ctx = NULL;
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    c->in = c->out = NULL;
    conn_account(c);
    c->read_armed = c->write_armed = false;
}

/* ------------------------------------------------------------ batch rounds */

static int32_t iob_push(struct sg_iobatch *b, struct sg_conn *c, uint8_t kind)
{
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        struct sg_iob_op *ops = realloc(b->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return -1; /* the caller does a plain syscall */
        b->ops = ops;
        b->cap = cap;
    }
    b->ops[b->n] = (struct sg_iob_op){.c = c, .fd = -1, .kind = kind};
    if (!b->scheduled && !b->flushing) {
        b->scheduled = true;
        event_active(b->flush_ev, EV_WRITE, 0);
    }
    return (int32_t)b->n++;
}

static void iob_plain(struct sg_iob_op *op, int flags)
{
    ssize_t r = op->kind == IOB_READ ? recvmsg(op->c->fd, &op->mh, flags)
                                     : sendmsg(op->c->fd, &op->mh, flags);
    op->res = r < 0 ? -errno : (int)r;
    op->issued = true;
}

static int iob_flags(const struct sg_iob_op *op)
{
    if (op->kind == IOB_READ)
        return MSG_DONTWAIT;
    return MSG_DONTWAIT | MSG_NOSIGNAL | (op->c->send_more ? MSG_MORE : 0);
}

/* Prepares entry i: true when an SQE was queued for it. */
static bool iob_prep(struct sg_iobatch *b, uint32_t i)
{
    struct sg_iob_op *op = &b->ops[i];
    struct sg_conn *c = op->c;
    if (op->kind == IOB_CLOSE) {
        if (b->broken) {
            close(op->fd);
            op->fd = -1;
            return false;
        }
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
        io_uring_prep_close(sqe, op->fd);
        io_uring_sqe_set_data64(sqe, i);
        return true;
    }
    if (op->kind == IOB_READ) {
        if (!c->reading || (!c->read_armed && !c->read_defer))
            return false; /* paused since: the event comes back when re-armed */
        op->v[0].iov_base = b->slab + (size_t)(i % SG_IOB_RING) * SG_IOB_SLOT;
        size_t rs = conn_read_size(c);
        op->v[0].iov_len = rs < SG_IOB_SLOT ? rs : SG_IOB_SLOT;
        op->nv = 1;
    } else {
        if (evbuffer_get_length(c->out) == 0)
            return false;
        int n = evbuffer_peek(c->out, -1, NULL, op->v, SG_CONN_IOV);
        op->nv = n < SG_CONN_IOV ? n : SG_CONN_IOV;
    }
    memset(&op->mh, 0, sizeof(op->mh));
    op->mh.msg_iov = (struct iovec *)op->v;
    op->mh.msg_iovlen = (size_t)op->nv;
    int flags = iob_flags(op);
    if (b->broken) {
        iob_plain(op, flags);
        return false;
    }
    /* Never NULL: a round submits at most SG_IOB_RING entries at a time. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (op->kind == IOB_READ)
        io_uring_prep_recvmsg(sqe, c->fd, &op->mh, (unsigned)flags);
    else
        io_uring_prep_sendmsg(sqe, c->fd, &op->mh, (unsigned)flags);
    io_uring_sqe_set_data64(sqe, i);
    return true;
}

/* Issues the nsub entries prepared among [lo, hi) with one io_uring_enter;
 * MSG_DONTWAIT makes each complete inline, so the wait returns at once. */
static void iob_submit(struct sg_iobatch *b, uint32_t nsub, uint32_t lo, uint32_t hi)
{
    int r;
    do
        r = io_uring_submit_and_wait(&b->ring, nsub);
    while (r == -EINTR);
    uint32_t want = r > 0 ? (uint32_t)r : 0, got = 0;
    while (got < want) {
        struct io_uring_cqe *cqe;
        int e = io_uring_wait_cqe(&b->ring, &cqe);
        if (e == -EINTR)
            continue;
        if (e < 0)
            break;
        struct sg_iob_op *op = &b->ops[io_uring_cqe_get_data64(cqe)];
        op->res = cqe->res;
        op->issued = true;
        if (op->kind == IOB_CLOSE) {
            if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP)
                close(op->fd); /* a kernel without IORING_OP_CLOSE */
            op->fd = -1;
        }
        if (op->kind == IOB_READ && op->res > 0) {
            size_t left = (size_t)op->res;
            for (int k = 0; k < op->nv && left > 0; k++) {
                size_t m = op->v[k].iov_len < left ? op->v[k].iov_len : left;
                SG_MARK_DEFINED(op->v[k].iov_base, m);
                left -= m;
            }
        }
        io_uring_cqe_seen(&b->ring, cqe);
        got++;
    }
    if (r == (int)nsub && got == want)
        return;
    /* The ring failed us: what it did not take runs as plain syscalls, now
     * and from here on. */
    sg_log_warn("io_uring submit failed (%s): back to one syscall per read and send",
                strerror(r < 0 ? -r : EIO));
    b->broken = true;
    for (uint32_t i = lo; i < hi; i++) {
        struct sg_iob_op *op = &b->ops[i];
        if (op->kind == IOB_CLOSE && op->fd >= 0) {
            close(op->fd);
            op->fd = -1;
        } else if (op->c != NULL && !op->issued && op->nv > 0) {
            iob_plain(op, iob_flags(op));
        }
    }
}

/* Stage 2: applies entry i's outcome, with no callback; clears it unless a
 * callback is due. */
static void iob_settle(struct sg_iobatch *b, uint32_t i)
{
    struct sg_iob_op *op = &b->ops[i];
    struct sg_conn *c = op->c;
    if (c == NULL)
        return;
    if (op->kind == IOB_READ) {
        short what;
        bool due = false;
        if (op->issued) {
            /* Copied out of the slab, the bytes settle as a read into c->in. */
            if (op->res > 0 && evbuffer_add(c->in, op->v[0].iov_base, (size_t)op->res) != 0)
                op->res = -ENOMEM;
            due = conn_read_settle(c, NULL, 0, op->res, op->res < 0 ? -op->res : 0, &what);
        }
        if (op->issued && op->res > 0)
            c->read_big = (size_t)op->res >= SG_IOB_SLOT;
        op->nocb = !due;
        if (!due && !op->first) {
            c->rslot = -1;
            op->c = NULL;
        }
        return;
    }
    c->wslot = -1;
    if (op->issued && op->res > 0) {
        evbuffer_drain(c->out, (size_t)op->res);
        conn_account(c);
    }
    if (evbuffer_get_length(c->out) > 0)
        conn_arm_write(c); /* refused, in part or with an error: EPOLLOUT sorts it out */
    if (op->issued && c->writecb != NULL && !c->write_armed &&
        evbuffer_get_length(c->out) <= c->write_low)
        c->wdoneslot = (int32_t)i;
    else
        op->c = NULL;
}

static void iob_round(struct sg_iobatch *b)
{
    uint32_t n = b->n;
    if (n > b->slab_hw)
        b->slab_hw = n > SG_IOB_RING ? SG_IOB_RING : n;
    for (uint32_t lo = 0; lo < n; lo += SG_IOB_RING) {
        uint32_t hi = n - lo > SG_IOB_RING ? lo + SG_IOB_RING : n, nsub = 0;
        for (uint32_t i = lo; i < hi; i++)
            if ((b->ops[i].c != NULL || b->ops[i].fd >= 0) && iob_prep(b, i))
                nsub++;
        if (nsub > 0)
            iob_submit(b, nsub, lo, hi);
        /* Before the next chunk reuses the slab's slots. */
        for (uint32_t i = lo; i < hi; i++)
            iob_settle(b, i);
    }
    /* Callbacks, in order. They may close connections (clearing later
     * entries) and queue sends (appended after n; ops may move). */
    for (uint32_t i = 0; i < n; i++) {
        struct sg_iob_op *op = &b->ops[i];
        struct sg_conn *c = op->c;
        if (c == NULL)
            continue;
        if (op->kind == IOB_READ && op->first) {
            /* Kept (with c->rslot) for the registration below: a close in a
             * callback clears it. */
            if (op->nocb)
                continue;
        } else {
            op->c = NULL;
        }
        if (op->kind == IOB_READ) {
            if (!op->first)
                c->rslot = -1;
            if (op->res > 0) {
                c->readcb(c, c->arg);
            } else {
                errno = -op->res;
                c->eventcb(c, SG_CONN_READING | (op->res == 0 ? SG_CONN_EOF : SG_CONN_ERROR),
                           c->arg);
            }
        } else {
            c->wdoneslot = -1;
            if (c->fd >= 0 && c->writecb != NULL && evbuffer_get_length(c->out) <= c->write_low)
                c->writecb(c, c->arg);
        }
    }
    /* First reads of new connections: register with epoll now if reading
     * is still wanted. */
    for (uint32_t i = 0; i < n; i++) {
        struct sg_iob_op *op = &b->ops[i];
        struct sg_conn *c = op->c;
        if (c == NULL)
            continue;
        SG_BUG_ON(op->kind != IOB_READ || !op->first);
        bool again = op->issued && op->res == -EAGAIN && !op->again && b->n > n;
        op->c = NULL;
        c->rslot = -1;
        if (again) {
            /* The request was not there yet, but this flush goes on with
             * the entries callbacks queued: try once more in that round (it
             * costs no syscall) before paying for an epoll_ctl ADD, and the
             * DEL before the close. */
            int32_t slot = iob_push(b, c, IOB_READ);
            if (slot >= 0) {
                b->ops[slot].first = b->ops[slot].again = true;
                c->rslot = slot;
                continue;
            }
        }
        c->read_defer = false;
        conn_arm_read(c);
    }
    uint32_t left = b->n - n;
    memmove(b->ops, b->ops + n, left * sizeof(*b->ops));
    b->n = left;
    for (uint32_t i = 0; i < left; i++) {
        struct sg_conn *c = b->ops[i].c;
        if (c == NULL)
            continue;
        if (b->ops[i].kind == IOB_SEND)
            c->wslot = (int32_t)i;
        else
            c->rslot = (int32_t)i; /* a first read queued from a callback */
    }
}

static void iob_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_iobatch *b = arg;
    b->scheduled = false;
    b->flushing = true;
    for (int r = 0; r < SG_IOB_ROUNDS && b->n > 0; r++)
        iob_round(b);
    b->flushing = false;
    if (b->slab_hw > SG_IOB_KEEP || b->cap > SG_IOB_RING) {
        uint64_t now = sg_now_ms();
        if (now >= b->slab_trim_ms) {
            (void)madvise(b->slab + (size_t)SG_IOB_KEEP * SG_IOB_SLOT,
                          (size_t)(SG_IOB_RING - SG_IOB_KEEP) * SG_IOB_SLOT, MADV_DONTNEED);
            b->slab_hw = 0;
            b->slab_trim_ms = now + SG_IOB_TRIM_MS;
            if (b->n == 0 && b->cap > SG_IOB_RING) {
                /* The entries grew with a pass over thousands of
                 * connections: start small again (iob_push regrows). */
                free(b->ops);
                b->ops = NULL;
                b->cap = 0;
            }
        }
    }
    if (b->n > 0) {
        /* Callbacks keep making sends: let the loop poll in between. */
        b->scheduled = true;
        event_active(b->flush_ev, EV_WRITE, 0);
    }
}

/* Does a non-blocking recvmsg on an empty socket complete inline with
 * -EAGAIN? Kernels that park it on a poll instead would stall a round. */
static bool iob_inline_ok(struct io_uring *ring)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return false;
    char byte;
    struct iovec iv = {.iov_base = &byte, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iv, .msg_iovlen = 1};
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recvmsg(sqe, sv[0], &mh, MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, 1);
    struct io_uring_cqe *cqe = NULL;
    bool ok =
        io_uring_submit(ring) == 1 && io_uring_peek_cqe(ring, &cqe) == 0 && cqe->res == -EAGAIN;
    if (cqe != NULL)
        io_uring_cqe_seen(ring, cqe);
    close(sv[0]);
    close(sv[1]);
    return ok;
}

struct sg_iobatch *sg_iob_new(struct event_base *base, bool enable)
{
    if (!enable)
        return NULL;
    struct sg_iobatch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* One thread submits, and completions are inline: no task-work IPIs. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    int e = io_uring_queue_init_params(SG_IOB_RING, &b->ring, &p);
    if (e == -EINVAL) { /* kernels before 6.0 */
        memset(&p, 0, sizeof(p));
        e = io_uring_queue_init_params(SG_IOB_RING, &b->ring, &p);
    }
    if (e < 0) {
        sg_log_info("io_uring unavailable (%s): one syscall per socket read and send",
                    strerror(-e));
        free(b);
        return NULL;
    }
    if (!iob_inline_ok(&b->ring)) {
        sg_log_info("io_uring does not complete non-blocking socket reads inline here: "
                    "one syscall per socket read and send");
        io_uring_queue_exit(&b->ring);
        free(b);
        return NULL;
    }
    b->flush_ev = event_new(base, -1, 0, iob_flush_cb, b);
    b->slab = mmap(NULL, (size_t)SG_IOB_RING * SG_IOB_SLOT, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->slab == MAP_FAILED)
        b->slab = NULL;
    if (b->flush_ev == NULL || b->slab == NULL) {
        if (b->flush_ev != NULL)
            event_free(b->flush_ev);
        if (b->slab != NULL)
            munmap(b->slab, (size_t)SG_IOB_RING * SG_IOB_SLOT);
        io_uring_queue_exit(&b->ring);
        free(b);
        return NULL;
    }
    conn_tl_iob = b;
    return b;
}

void sg_iob_free(struct sg_iobatch *b)
{
    if (b == NULL)
        return;
    b->flushing = true;
    for (int r = 0; r < 4 * SG_IOB_ROUNDS && b->n > 0; r++)
        iob_round(b);
    for (uint32_t i = 0; i < b->n; i++) { /* still making sends: forget them */
        if (b->ops[i].c != NULL)
            b->ops[i].c->wslot = -1;
        if (b->ops[i].fd >= 0)
            close(b->ops[i].fd);
    }
    if (conn_tl_iob == b)
        conn_tl_iob = NULL;
    event_free(b->flush_ev);
    io_uring_queue_exit(&b->ring);
    munmap(b->slab, (size_t)SG_IOB_RING * SG_IOB_SLOT);
    free(b->ops);
    free(b);
}
