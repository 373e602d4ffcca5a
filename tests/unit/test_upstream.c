/* Unit tests for upstream.c: the per-worker idle keep-alive pool over real
 * loopback connections. The backend is a listening socket on 127.0.0.1
 * whose connections the test accepts by hand (a completed connect is in the
 * accept queue, so accept() does not block); the worker is a bare struct
 * sg_worker with an event_base, its per-pool state and its timeouts. Every
 * wait on the loop is bounded (2 s). */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/common.h"
#include "surgegate/upstream.h"
#include "surgegate/worker-t.h"
#include "surgegate/wpool.h"
#include "unit_pool.h"

struct fixture {
    struct unit_pool up;
    struct sg_worker w;
    int lfd;            /* the backend's listening socket */
    struct event *tick; /* wakes the loop so that waits can give up */
};

/* What the owner of an upstream connection saw. */
struct owner {
    struct sg_upconn *c;
    bool connected, failed;
    size_t nread;
};

static void owner_read(struct sg_conn *conn, void *arg)
{
    struct owner *o = arg;
    o->nread += evbuffer_get_length(conn->in);
    evbuffer_drain(conn->in, evbuffer_get_length(conn->in));
}

static void owner_event(struct sg_conn *conn, short what, void *arg)
{
    struct owner *o = arg;
    if (what & SG_CONN_CONNECTED) {
        o->c->connected = true; /* as the session does */
        o->connected = true;
    } else {
        o->failed = true;
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

static int setup_n(void **state, size_t nbackends)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
    uint16_t ports[UNIT_POOL_MAX];
    for (size_t i = 0; i < UNIT_POOL_MAX; i++)
        ports[i] = ntohs(sin.sin_port);
    unit_pool_init(&f->up, nbackends, 0, ports);

    struct sg_worker *w = &f->w;
    w->magic = SG_WORKER_MAGIC;
    w->base = event_base_new();
    assert_non_null(w->base);
    w->pools = &f->up.pools;
    w->wpools = sg_xcalloc(1, sizeof(struct sg_wpool));
    assert_int_equal(sg_wpool_init(&w->wpools[0], &f->up.pool), SG_OK);
    sg_timeval_from_ms(&w->tv_connect, 2000);
    sg_timeval_from_ms(&w->tv_server, 2000);
    sg_timeval_from_ms(&w->tv_upstream_idle, 30000);
    f->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    event_add(f->tick, &tv);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 1);
}

static int setup2(void **state)
{
    return setup_n(state, 2);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sg_upstream_close_idle(&f->w);
    event_free(f->tick);
    event_base_loop(f->w.base, EVLOOP_NONBLOCK);
    sg_wpool_destroy(&f->w.wpools[0]);
    free(f->w.wpools);
    event_base_free(f->w.base);
    close(f->lfd);
    unit_pool_destroy(&f->up);
    free(f);
    return 0;
}

/* Runs the loop until *flag, or *n == want when n is given (2 s at most). */
static bool run_until(struct fixture *f, const bool *flag, const _Atomic uint32_t *n, uint32_t want)
{
    uint64_t end = sg_now_ms() + 2000;
    while (sg_now_ms() < end) {
        if (flag != NULL && *flag)
            return true;
        if (n != NULL && atomic_load(n) == want)
            return true;
        event_base_loop(f->w.base, EVLOOP_ONCE);
    }
    return false;
}

static struct sg_wbackend *wb(struct fixture *f, size_t i)
{
    return &f->w.wpools[0].wb[i];
}

/* A new connected upstream connection to backend i (allow_idle false: never
 * a parked one), and the backend's side of it in *srv. */
static struct sg_upconn *connect_one(struct fixture *f, size_t i, struct owner *o, int *srv)
{
    memset(o, 0, sizeof(*o));
    o->c = sg_upstream_acquire(&f->w, &f->up.b[i], false, owner_read, NULL, owner_event, o);
    assert_non_null(o->c);
    assert_false(o->c->reused);
    assert_true(run_until(f, &o->connected, NULL, 0));
    *srv = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(*srv >= 0);
    return o->c;
}

/* True when the peer of srv closed (EOF within 2 s). */
static bool peer_closed(struct fixture *f, int srv)
{
    uint64_t end = sg_now_ms() + 2000;
    while (sg_now_ms() < end) {
        event_base_loop(f->w.base, EVLOOP_NONBLOCK);
        struct pollfd p = {.fd = srv, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            char c;
            ssize_t r = recv(srv, &c, 1, MSG_DONTWAIT);
            return r == 0 || (r < 0 && errno == ECONNRESET);
        }
    }
    return false;
}

static uint32_t active(struct fixture *f, size_t i)
{
    return atomic_load(&wb(f, i)->st.conns_active);
}

/* Released reusable: parked; the next acquire gets the same connection,
 * marked reused, with the new owner's callbacks; allow_idle false makes a
 * new one even then. */
static void test_reuse(void **state)
{
    struct fixture *f = *state;
    struct owner o1, o2, o3;
    int srv;
    struct sg_upconn *c = connect_one(f, 0, &o1, &srv);
    assert_int_equal(active(f, 0), 1);
    sg_upstream_release(c, true);
    assert_true(c->idle);
    assert_ptr_equal(wb(f, 0)->idle, c);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 1);
    assert_int_equal(active(f, 0), 0);

    memset(&o2, 0, sizeof(o2));
    struct sg_upconn *c2 =
        sg_upstream_acquire(&f->w, &f->up.b[0], true, owner_read, NULL, owner_event, &o2);
    o2.c = c2;
    assert_ptr_equal(c2, c);
    assert_true(c2->reused);
    assert_true(c2->connected);
    assert_false(c2->idle);
    assert_null(wb(f, 0)->idle);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_int_equal(active(f, 0), 1);
    assert_int_equal(send(srv, "hello", 5, 0), 5);
    uint64_t end = sg_now_ms() + 2000;
    while (o2.nread < 5 && sg_now_ms() < end)
        event_base_loop(f->w.base, EVLOOP_ONCE);
    assert_int_equal(o2.nread, 5); /* the new owner reads it */
    assert_int_equal(o1.nread, 0);

    /* parked again, but the caller wants a fresh connection */
    sg_upstream_release(c2, true);
    int srv3;
    struct sg_upconn *c3 = connect_one(f, 0, &o3, &srv3);
    assert_ptr_not_equal(c3, c);
    assert_false(c3->reused);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 1);
    sg_upstream_free(c3);
    assert_true(peer_closed(f, srv3));
    assert_int_equal(active(f, 0), 0);
    close(srv3);
    close(srv);
}

/* Released not reusable, or reusable but unfit to keep (unread bytes,
 * backend unusable, worker stopping, connect not completed): closed. */
static void test_not_reusable_closed(void **state)
{
    struct fixture *f = *state;
    struct owner o;
    int srv;
    struct sg_upconn *c = connect_one(f, 0, &o, &srv);
    sg_upstream_release(c, false);
    assert_null(wb(f, 0)->idle);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_int_equal(active(f, 0), 0);
    assert_true(peer_closed(f, srv));
    close(srv);

    c = connect_one(f, 0, &o, &srv);
    evbuffer_add(c->conn.in, "x", 1); /* bytes nobody asked for */
    sg_upstream_release(c, true);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_true(peer_closed(f, srv));
    close(srv);

    c = connect_one(f, 0, &o, &srv);
    atomic_store(&f->up.b[0].admin, SG_ADMIN_DRAIN);
    sg_upstream_release(c, true);
    atomic_store(&f->up.b[0].admin, SG_ADMIN_READY);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_true(peer_closed(f, srv));
    close(srv);

    c = connect_one(f, 0, &o, &srv);
    f->w.stopping = true;
    sg_upstream_release(c, true);
    f->w.stopping = false;
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_true(peer_closed(f, srv));
    close(srv);

    memset(&o, 0, sizeof(o));
    c = sg_upstream_acquire(&f->w, &f->up.b[0], true, owner_read, NULL, owner_event, &o);
    o.c = c;
    sg_upstream_release(c, true); /* connect still in progress */
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_int_equal(active(f, 0), 0);
    event_base_loop(f->w.base, EVLOOP_NONBLOCK);
    assert_false(o.connected); /* no callback for a closed connection */
}

/* At most max_idle parked per backend per worker, most recent first; the
 * one over the cap is closed. */
static void test_max_idle(void **state)
{
    struct fixture *f = *state;
    f->up.cfg.max_idle = 2;
    struct owner o[3];
    int srv[3];
    struct sg_upconn *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_one(f, 0, &o[i], &srv[i]);
    assert_int_equal(active(f, 0), 3);
    sg_upstream_release(c[0], true);
    sg_upstream_release(c[1], true);
    sg_upstream_release(c[2], true);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 2);
    assert_int_equal(active(f, 0), 0);
    assert_ptr_equal(wb(f, 0)->idle, c[1]);
    assert_ptr_equal(c[1]->next, c[0]);
    assert_null(c[0]->next);
    assert_true(peer_closed(f, srv[2]));
    for (int i = 0; i < 3; i++)
        close(srv[i]);
}

/* A parked connection the backend closes, or sends stray bytes on, is
 * dropped at once. */
static void test_stale_dropped(void **state)
{
    struct fixture *f = *state;
    struct owner o;
    int srv;
    struct sg_upconn *c = connect_one(f, 0, &o, &srv);
    sg_upstream_release(c, true);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 1);
    close(srv);
    assert_true(run_until(f, NULL, &wb(f, 0)->nidle, 0));
    assert_null(wb(f, 0)->idle);
    assert_int_equal(active(f, 0), 0);

    c = connect_one(f, 0, &o, &srv);
    sg_upstream_release(c, true);
    assert_int_equal(send(srv, "HTTP/1.1 200 OK\r\n", 17, 0), 17);
    assert_true(run_until(f, NULL, &wb(f, 0)->nidle, 0));
    assert_true(peer_closed(f, srv));
    close(srv);
}

/* A parked connection unused for the upstream idle timeout is closed. */
static void test_idle_expiry(void **state)
{
    struct fixture *f = *state;
    sg_timeval_from_ms(&f->w.tv_upstream_idle, 50);
    struct owner o;
    int srv;
    struct sg_upconn *c = connect_one(f, 0, &o, &srv);
    sg_upstream_release(c, true);
    event_base_loop(f->w.base, EVLOOP_NONBLOCK);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 1); /* not at once */
    assert_true(run_until(f, NULL, &wb(f, 0)->nidle, 0));
    assert_true(peer_closed(f, srv));
    close(srv);
}

/* close_unusable drops the parked connections of backends that may not
 * take requests now and keeps the others; close_idle drops them all. */
static void test_close_unusable(void **state)
{
    struct fixture *f = *state;
    struct owner o[3];
    int srv[3];
    struct sg_upconn *c0 = connect_one(f, 0, &o[0], &srv[0]);
    struct sg_upconn *c1 = connect_one(f, 1, &o[1], &srv[1]);
    struct sg_upconn *c2 = connect_one(f, 1, &o[2], &srv[2]);
    sg_upstream_release(c0, true);
    sg_upstream_release(c1, true);
    sg_upstream_release(c2, true);
    sg_upstream_close_unusable(&f->w); /* all usable: nothing */
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 1);
    assert_int_equal(atomic_load(&wb(f, 1)->nidle), 2);

    atomic_store(&f->up.b[0].health, SG_HEALTH_DOWN);
    sg_upstream_close_unusable(&f->w);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_null(wb(f, 0)->idle);
    assert_int_equal(atomic_load(&wb(f, 1)->nidle), 2);
    assert_true(peer_closed(f, srv[0]));

    atomic_store(&f->up.b[1].eject_until, sg_now_ms() + 60000);
    sg_upstream_close_unusable(&f->w);
    assert_int_equal(atomic_load(&wb(f, 1)->nidle), 0);
    assert_true(peer_closed(f, srv[1]));
    assert_true(peer_closed(f, srv[2]));
    for (int i = 0; i < 3; i++)
        close(srv[i]);

    /* close_idle: everything, usable or not */
    atomic_store(&f->up.b[0].health, SG_HEALTH_UP);
    atomic_store(&f->up.b[1].eject_until, 0);
    c0 = connect_one(f, 0, &o[0], &srv[0]);
    c1 = connect_one(f, 1, &o[1], &srv[1]);
    sg_upstream_release(c0, true);
    sg_upstream_release(c1, true);
    sg_upstream_close_idle(&f->w);
    assert_int_equal(atomic_load(&wb(f, 0)->nidle), 0);
    assert_int_equal(atomic_load(&wb(f, 1)->nidle), 0);
    assert_true(peer_closed(f, srv[0]));
    assert_true(peer_closed(f, srv[1]));
    close(srv[0]);
    close(srv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_reusable_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_unusable, setup2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
