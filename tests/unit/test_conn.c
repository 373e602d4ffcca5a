/* Unit tests for the connection layer (src/conn.c) and its TCP transport
 * (src/transport_tcp.c): a connection over one end of a socketpair (or a
 * loopback TCP connection), the other end read and written directly by the
 * test through its own event. Each test runs twice: with the thread's I/O
 * batch (io_uring; where the kernel refuses it, the plain path again) and
 * without. Every wait is bounded (WAIT_MS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/transport.h"

#define WAIT_MS 3000

static bool with_batch = true, without_batch = false;

/* One test's world: the loop, the batch, the connection and its peer. */
struct t {
    struct event_base *base;
    struct sg_iobatch *iob;
    struct sg_conn c;
    int peer;                  /* the other end, non-blocking */
    struct event *peer_ev;     /* reads the peer into `got` */
    struct evbuffer *got;      /* what the peer received */
    bool peer_eof;             /* the peer read the end of the stream */
    int nread, nwrite, nevent; /* callbacks of c */
    short last_event;
    bool drain_in; /* the read callback empties c.in */
    bool closed;   /* c was closed (by the test) */
};

static void on_read(struct sg_conn *c, void *arg)
{
    struct t *t = arg;
    assert_ptr_equal(c, &t->c);
    t->nread++;
    if (t->drain_in)
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
}

static void on_write(struct sg_conn *c, void *arg)
{
    struct t *t = arg;
    assert_ptr_equal(c, &t->c);
    t->nwrite++;
}

static void on_event(struct sg_conn *c, short what, void *arg)
{
    struct t *t = arg;
    assert_ptr_equal(c, &t->c);
    t->nevent++;
    t->last_event = what;
}

static void peer_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;
    SG_UNUSED(what);
    for (;;) {
        int n = evbuffer_read(t->got, fd, 64 * 1024);
        if (n > 0)
            continue;
        if (n == 0) {
            t->peer_eof = true;
            event_del(t->peer_ev);
        }
        return;
    }
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    SG_UNUSED(fd);
    SG_UNUSED(what);
    *(bool *)arg = true;
}

/* Runs the loop until cond(t) holds; fails after WAIT_MS. */
static void run_until(struct t *t, bool (*cond)(struct t *))
{
    bool late = false;
    struct timeval tv = {WAIT_MS / 1000, (WAIT_MS % 1000) * 1000};
    struct event *dl = evtimer_new(t->base, deadline_cb, &late);
    evtimer_add(dl, &tv);
    while (!cond(t) && !late)
        event_base_loop(t->base, EVLOOP_ONCE);
    event_free(dl);
    assert_false(late);
}

/* Runs the loop for ms milliseconds, whatever happens. */
static void run_for(struct t *t, int ms)
{
    bool done = false;
    struct timeval tv = {0, ms * 1000};
    struct event *dl = evtimer_new(t->base, deadline_cb, &done);
    evtimer_add(dl, &tv);
    while (!done)
        event_base_loop(t->base, EVLOOP_ONCE);
    event_free(dl);
}

static size_t want_bytes;
static bool got_enough(struct t *t)
{
    return evbuffer_get_length(t->got) >= want_bytes;
}
static bool got_eof(struct t *t)
{
    return t->peer_eof;
}
static int nread_target;
static bool nread_reached(struct t *t)
{
    return t->nread >= nread_target;
}
static size_t want_in;
static bool in_enough(struct t *t)
{
    return evbuffer_get_length(t->c.in) >= want_in;
}
static bool read_once(struct t *t)
{
    return t->nread > 0;
}
static bool had_event(struct t *t)
{
    return t->nevent > 0;
}
static bool out_empty(struct t *t)
{
    return evbuffer_get_length(t->c.out) == 0 && t->nwrite > 0;
}

static void peer_start(struct t *t, int fd)
{
    t->peer = fd;
    t->peer_eof = false;
    set_nonblock(fd);
    t->got = evbuffer_new();
    t->peer_ev = event_new(t->base, fd, EV_READ | EV_PERSIST, peer_on_read, t);
    event_add(t->peer_ev, NULL);
}

/* A connection over one end of a socketpair (transport: TCP's operations
 * work on any stream socket), the peer on the other. */
static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->base = event_base_new();
    assert_non_null(t->base);
    t->iob = sg_iob_new(t->base, *(bool *)*state);
    if (*(bool *)*state && t->iob == NULL)
        fprintf(stderr, "# io_uring refused here: the batch variant runs plain syscalls\n");
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(sg_conn_init(&t->c, t->base, sv[0]), SG_OK);
    assert_ptr_equal(t->c.tp, &sg_transport_tcp);
    assert_ptr_equal(t->c.iob, t->iob);
    sg_conn_setcb(&t->c, on_read, on_write, on_event, t);
    peer_start(t, sv[1]);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (t->c.fd >= 0)
        sg_conn_close(&t->c);
    sg_iob_free(t->iob);
    event_free(t->peer_ev);
    evbuffer_free(t->got);
    close(t->peer);
    event_base_free(t->base);
    free(t);
    return 0;
}

static void send_str(struct sg_conn *c, const char *s, bool more)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s, strlen(s));
    sg_conn_send(c, b, more);
    assert_int_equal(evbuffer_get_length(b), 0); /* all moved */
    evbuffer_free(b);
}

static void peer_write(struct t *t, const char *s)
{
    assert_int_equal(write(t->peer, s, strlen(s)), (ssize_t)strlen(s));
}

static void assert_got(struct t *t, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(evbuffer_get_length(t->got), n);
    assert_memory_equal(evbuffer_pullup(t->got, -1), s, n);
}

static void assert_in(struct t *t, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(evbuffer_get_length(t->c.in), n);
    assert_memory_equal(evbuffer_pullup(t->c.in, -1), s, n);
}

/* ------------------------------------------------------------------ tests */

static void test_send_receive(void **state)
{
    struct t *t = *state;
    sg_conn_read_on(&t->c);
    peer_write(t, "hello");
    run_until(t, read_once);
    assert_in(t, "hello");
    assert_int_equal(t->c.nin, 5);

    send_str(&t->c, "world", false);
    send_str(&t->c, "!", false); /* with the batch: joins the queued send */
    assert_int_equal(t->c.nout, 6);
    want_bytes = 6;
    run_until(t, got_enough);
    assert_got(t, "world!");
    assert_int_equal(t->nevent, 0);

    /* Several rounds back and forth on the same connection. */
    t->drain_in = true;
    for (int i = 0; i < 20; i++) {
        evbuffer_drain(t->got, evbuffer_get_length(t->got));
        nread_target = t->nread + 1;
        peer_write(t, "ping");
        run_until(t, nread_reached);
        send_str(&t->c, "pong", false);
        want_bytes = 4;
        run_until(t, got_enough);
        assert_got(t, "pong");
    }
}

/* The peer's EOF reaches the event callback once, and reading stops. */
static void test_peer_eof(void **state)
{
    struct t *t = *state;
    sg_conn_read_on(&t->c);
    peer_write(t, "last");
    assert_int_equal(shutdown(t->peer, SHUT_WR), 0);
    run_until(t, had_event);
    assert_in(t, "last");
    assert_int_equal(t->last_event, SG_CONN_READING | SG_CONN_EOF);
    assert_false(t->c.reading);
    run_for(t, 30);
    assert_int_equal(t->nevent, 1);
}

/* read_high stops reading while `in` holds that much; sg_conn_input_drained
 * resumes it. */
static void test_backpressure(void **state)
{
    struct t *t = *state;
    t->c.read_high = 8;
    sg_conn_read_on(&t->c);
    peer_write(t, "0123456789abcdef");
    run_until(t, read_once);
    assert_true(evbuffer_get_length(t->c.in) >= 8);
    assert_false(t->c.read_armed);
    size_t had = evbuffer_get_length(t->c.in);
    int nread = t->nread;

    peer_write(t, "MORE");
    run_for(t, 50);
    assert_int_equal(t->nread, nread); /* paused: nothing read */
    assert_int_equal(evbuffer_get_length(t->c.in), had);

    sg_conn_input_drained(&t->c); /* not drained yet: stays paused */
    assert_false(t->c.read_armed);

    evbuffer_drain(t->c.in, had);
    sg_conn_input_drained(&t->c);
    assert_true(t->c.read_armed);
    t->drain_in = false;
    want_in = (16 - had) + 4;
    run_until(t, in_enough);
    /* The rest of the first write and MORE, in order. */
    size_t n = evbuffer_get_length(t->c.in);
    assert_memory_equal((char *)evbuffer_pullup(t->c.in, -1) + n - 4, "MORE", 4);
}

/* A send larger than the kernel takes is queued behind EPOLLOUT; the write
 * callback runs once `out` is down to write_low; every byte arrives, in
 * order. */
static void fill(struct evbuffer *b, size_t n)
{
    char chunk[4096];
    for (size_t off = 0; off < n; off += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (char)((off + i) % 251);
        size_t m = n - off < sizeof(chunk) ? n - off : sizeof(chunk);
        evbuffer_add(b, chunk, m);
    }
}

static void assert_filled(struct evbuffer *b, size_t n)
{
    assert_int_equal(evbuffer_get_length(b), n);
    const unsigned char *p = evbuffer_pullup(b, -1);
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i % 251))
            fail_msg("byte %zu differs", i);
}

static void test_write_low(void **state)
{
    struct t *t = *state;
    int small = 4096;
    (void)setsockopt(t->c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    sg_conn_set_write_low(&t->c, 1000);
    const size_t total = 2 * 1024 * 1024;
    struct evbuffer *b = evbuffer_new();
    fill(b, total);
    event_del(t->peer_ev); /* the peer does not read yet */
    sg_conn_send(&t->c, b, false);
    evbuffer_free(b);
    run_for(t, 20);
    assert_true(evbuffer_get_length(t->c.out) > 1000);
    assert_true(t->c.write_armed);
    assert_int_equal(t->nwrite, 0);
    event_add(t->peer_ev, NULL);
    run_until(t, out_empty);
    assert_true(t->nwrite >= 1);
    assert_false(t->c.write_armed);
    want_bytes = total;
    run_until(t, got_enough);
    assert_filled(t->got, total);
    assert_int_equal(t->c.nout, total);
    assert_int_equal(t->nevent, 0);
}

/* sg_conn_shutdown: the peer gets what was sent, then EOF; c still reads. */
static void test_shutdown(void **state)
{
    struct t *t = *state;
    sg_conn_read_on(&t->c);
    send_str(&t->c, "bye", false);
    sg_conn_shutdown(&t->c);
    run_until(t, got_eof);
    assert_got(t, "bye");
    peer_write(t, "still");
    run_until(t, read_once);
    assert_in(t, "still");
    assert_int_equal(t->nevent, 0);
}

/* sg_conn_shutdown with bytes queued behind EPOLLOUT: they go first. */
static void test_shutdown_queued(void **state)
{
    struct t *t = *state;
    int small = 4096;
    (void)setsockopt(t->c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    const size_t total = 1024 * 1024;
    struct evbuffer *b = evbuffer_new();
    fill(b, total);
    event_del(t->peer_ev);
    sg_conn_send(&t->c, b, false);
    evbuffer_free(b);
    sg_conn_shutdown(&t->c);
    run_for(t, 10);
    assert_true(evbuffer_get_length(t->c.out) > 0);
    assert_true(t->c.shut_pending);
    event_add(t->peer_ev, NULL);
    run_until(t, got_eof);
    assert_filled(t->got, total);
    assert_false(t->c.shut_pending);
}

/* A close right after a send (still queued in the batch, if any): the bytes
 * go out, then EOF. */
static void test_close_with_queued_send(void **state)
{
    struct t *t = *state;
    send_str(&t->c, "last words", true);
    sg_conn_fin_follows(&t->c);
    sg_conn_close(&t->c);
    assert_int_equal(t->c.fd, -1);
    assert_null(t->c.in);
    assert_null(t->c.out);
    sg_conn_close(&t->c); /* a second close does nothing */
    run_until(t, got_eof);
    assert_got(t, "last words");
    assert_int_equal(t->nevent + t->nread + t->nwrite, 0);
}

/* A close from inside the read callback, with the batch's entries for it
 * still pending: nothing runs for it afterwards. */
static void close_in_read(struct sg_conn *c, void *arg)
{
    struct t *t = arg;
    t->nread++;
    send_str(c, "ack", false);
    sg_conn_close(c);
}

static void test_close_in_callback(void **state)
{
    struct t *t = *state;
    sg_conn_setcb(&t->c, close_in_read, on_write, on_event, t);
    sg_conn_read_on(&t->c);
    peer_write(t, "go");
    run_until(t, got_eof);
    assert_got(t, "ack");
    assert_int_equal(t->nread, 1);
    assert_int_equal(t->nwrite + t->nevent, 0);
}

/* The read timeout reports SG_CONN_READING | SG_CONN_TIMEOUT. */
static void test_read_timeout(void **state)
{
    struct t *t = *state;
    struct timeval tv = {0, 30 * 1000};
    sg_conn_set_timeouts(&t->c, &tv, NULL);
    sg_conn_read_on(&t->c);
    /* With the batch, the first read goes with the pass and the timer
     * starts when epoll takes over. */
    run_until(t, had_event);
    assert_int_equal(t->last_event, SG_CONN_READING | SG_CONN_TIMEOUT);
}

/* Loopback TCP through sg_conn_connect: CONNECTED, then a send and a
 * shutdown asked for while connecting go out in order once connected. */
static void test_connect(void **state)
{
    struct t *t = *state;
    sg_conn_close(&t->c); /* this test's connection is its own */
    t->nevent = 0;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(sg_conn_connect(&t->c, t->base, (struct sockaddr *)&sa, len, NULL), SG_OK);
    assert_ptr_equal(t->c.tp, &sg_transport_tcp);
    sg_conn_setcb(&t->c, on_read, on_write, on_event, t);
    send_str(&t->c, "GET", false);
    sg_conn_shutdown(&t->c);
    run_until(t, had_event);
    assert_int_equal(t->last_event, SG_CONN_CONNECTED);

    int a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    close(l);
    event_free(t->peer_ev);
    evbuffer_free(t->got);
    close(t->peer);
    peer_start(t, a);
    run_until(t, got_eof);
    assert_got(t, "GET");
    sg_conn_read_on(&t->c);
    peer_write(t, "200");
    run_until(t, read_once);
    assert_in(t, "200");
}

/* ----------------------------------------------------- a fake transport
 *
 * Not batchable; counts its calls and flips one bit of every byte each way,
 * so what the peer sees proves which path the bytes took. */
struct fake {
    int reads, writes, shutdowns, closes;
    bool more_seen;
};

static struct fake fk;

static ssize_t fake_read(struct sg_conn *c, const struct iovec *iov, int iovcnt, short *wait)
{
    assert_int_equal(*wait, SG_CONN_READING);
    assert_ptr_equal(c->tp_ctx, &fk);
    fk.reads++;
    ssize_t n = readv(c->fd, iov, iovcnt);
    ssize_t left = n;
    for (int i = 0; i < iovcnt && left > 0; i++)
        for (size_t k = 0; k < iov[i].iov_len && left > 0; k++, left--)
            ((char *)iov[i].iov_base)[k] ^= 0x20;
    return n;
}

static ssize_t fake_write(struct sg_conn *c, const struct iovec *iov, int iovcnt, bool more,
                          short *wait)
{
    assert_int_equal(*wait, SG_CONN_WRITING);
    fk.writes++;
    fk.more_seen |= more;
    char buf[8192];
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < sizeof(buf); i++) {
        size_t m = iov[i].iov_len < sizeof(buf) - n ? iov[i].iov_len : sizeof(buf) - n;
        for (size_t k = 0; k < m; k++)
            buf[n + k] = (char)(((const char *)iov[i].iov_base)[k] ^ 0x20);
        n += m;
    }
    return write(c->fd, buf, n);
}

static int fake_shutdown(struct sg_conn *c)
{
    fk.shutdowns++;
    return shutdown(c->fd, SHUT_WR) == 0 ? SG_OK : SG_ERR;
}

static void fake_close(struct sg_conn *c)
{
    assert_ptr_equal(c->tp_ctx, &fk);
    fk.closes++;
    close(c->fd);
}

static const struct sg_transport_ops fake_ops = {
    .name = "fake",
    .read = fake_read,
    .write = fake_write,
    .shutdown = fake_shutdown,
    .close = fake_close,
};

static void test_fake_transport(void **state)
{
    struct t *t = *state;
    memset(&fk, 0, sizeof(fk));
    sg_conn_set_transport(&t->c, &fake_ops, &fk);
    assert_null(t->c.iob); /* not batchable: out of the batch */
    sg_conn_read_on(&t->c);
    peer_write(t, "HELLO");
    run_until(t, read_once);
    assert_in(t, "hello");
    assert_true(fk.reads >= 1);

    send_str(&t->c, "world", true);
    want_bytes = 5;
    run_until(t, got_enough);
    assert_got(t, "WORLD");
    assert_int_equal(fk.writes, 1);
    assert_true(fk.more_seen);

    /* Queued behind EPOLLOUT: the flush goes through the transport too. */
    int small = 4096;
    (void)setsockopt(t->c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    event_del(t->peer_ev);
    struct evbuffer *b = evbuffer_new();
    for (int i = 0; i < 64 * 1024; i++)
        evbuffer_add(b, "a", 1);
    sg_conn_send(&t->c, b, false);
    evbuffer_free(b);
    assert_true(evbuffer_get_length(t->c.out) > 0);
    int writes = fk.writes;
    evbuffer_drain(t->got, evbuffer_get_length(t->got));
    event_add(t->peer_ev, NULL);
    sg_conn_shutdown(&t->c);
    run_until(t, got_eof);
    assert_true(fk.writes > writes);
    assert_int_equal(fk.shutdowns, 1);
    assert_int_equal(evbuffer_get_length(t->got), 64 * 1024);
    const char *p = (const char *)evbuffer_pullup(t->got, -1);
    for (int i = 0; i < 64 * 1024; i++)
        if (p[i] != 'A')
            fail_msg("byte %d did not go through the transport", i);

    sg_conn_close(&t->c);
    assert_int_equal(fk.closes, 1);
    assert_null(t->c.tp_ctx);
    run_for(t, 5);
    assert_int_equal(t->nevent, 0);
}

#define BOTH(f)                                                                \
    cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, &with_batch), \
        cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, &without_batch)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_send_receive),
        BOTH(test_peer_eof),
        BOTH(test_backpressure),
        BOTH(test_write_low),
        BOTH(test_shutdown),
        BOTH(test_shutdown_queued),
        BOTH(test_close_with_queued_send),
        BOTH(test_close_in_callback),
        BOTH(test_read_timeout),
        BOTH(test_connect),
        BOTH(test_fake_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
