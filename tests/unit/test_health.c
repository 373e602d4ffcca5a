/* Unit tests for active health checks (health.c) against tiny in-process
 * servers on an event_base, and for outlier detection (outlier.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/health.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"

/* ------------------------------------------------------ test server */

#define TSRV_MAXCONN 16

struct tsrv;

struct tconn {
    struct tsrv *s;
    evutil_socket_t fd;
    struct event *ev;
    char buf[1024];
    size_t n;
};

/* Listens on 127.0.0.1 (port picked by the kernel). reply == NULL: never
 * accepts (connections wait in the backlog: an HTTP check times out). */
struct tsrv {
    struct event_base *base;
    evutil_socket_t lfd;
    struct event *lev;
    uint16_t port;
    const char *reply;
    int nreq;
    char last_req[1024];
    struct tconn *conns[TSRV_MAXCONN];
};

static void tconn_free(struct tconn *c)
{
    for (int i = 0; i < TSRV_MAXCONN; i++)
        if (c->s->conns[i] == c)
            c->s->conns[i] = NULL;
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static void tconn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tconn *c = arg;
    ssize_t r = recv(fd, c->buf + c->n, sizeof(c->buf) - 1 - c->n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        tconn_free(c);
        return;
    }
    c->n += (size_t)r;
    c->buf[c->n] = '\0';
    if (strstr(c->buf, "\r\n\r\n") == NULL && c->n < sizeof(c->buf) - 1)
        return;
    c->s->nreq++;
    snprintf(c->s->last_req, sizeof(c->s->last_req), "%s", c->buf);
    (void)!send(fd, c->s->reply, strlen(c->s->reply), MSG_NOSIGNAL);
    tconn_free(c);
}

static void tsrv_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tsrv *s = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    int slot = -1;
    for (int i = 0; i < TSRV_MAXCONN && slot < 0; i++)
        if (s->conns[i] == NULL)
            slot = i;
    if (slot < 0) {
        close(cfd);
        return;
    }
    struct tconn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = s;
    c->fd = cfd;
    c->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, tconn_read_cb, c);
    event_add(c->ev, NULL);
    s->conns[slot] = c;
}

static void tsrv_start(struct tsrv *s, struct event_base *base, const char *reply)
{
    memset(s, 0, sizeof(*s));
    s->base = base;
    s->reply = reply;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    if (reply != NULL) {
        s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, tsrv_accept_cb, s);
        event_add(s->lev, NULL);
    }
}

static void tsrv_stop(struct tsrv *s)
{
    for (int i = 0; i < TSRV_MAXCONN; i++)
        if (s->conns[i] != NULL)
            tconn_free(s->conns[i]);
    if (s->lev != NULL)
        event_free(s->lev);
    close(s->lfd);
}

/* A port on 127.0.0.1 where nothing listens (bound, then released). */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* ---------------------------------------------------------- fixture */

#define NB 4

struct tenv {
    struct event_base *base;
    struct sg_cfg_pool cp;
    struct sg_pool pool;
    struct sg_backend b[NB];
    char names[NB][32];
    struct sg_pools pools;
    int nchanges;
    struct sg_backend *changed;
};

/* A pool "app" of n backends on 127.0.0.1:port (all the same port), with
 * the outlier defaults and no health checks (tests turn them on). base:
 * NULL for a new one; the env owns it either way. */
static void tenv_init(struct tenv *e, struct event_base *base, size_t n, uint16_t port)
{
    memset(e, 0, sizeof(*e));
    e->base = base != NULL ? base : event_base_new();
    assert_non_null(e->base);
    e->cp.name = "app";
    e->cp.outlier.consecutive_errors = 5;
    e->cp.outlier.base_ejection_ms = 30000;
    e->cp.outlier.max_ejection_ms = 300000;
    e->cp.outlier.max_ejection_percent = 50;
    e->pool.magic = SG_POOL_MAGIC;
    e->pool.name = "app";
    e->pool.cfg = &e->cp;
    e->pool.backends = e->b;
    e->pool.nbackends = n;
    e->pool.ncfg = n;
    atomic_init(&e->pool.nused, (uint32_t)n);
    atomic_init(&e->pool.nlive, (uint32_t)n);
    atomic_init(&e->pool.nejected, 0);
    for (size_t i = 0; i < n; i++) {
        struct sg_backend *b = &e->b[i];
        b->magic = SG_BACKEND_MAGIC;
        b->id = (uint32_t)i;
        b->pool = &e->pool;
        b->weight = 1;
        snprintf(e->names[i], sizeof(e->names[i]), "127.0.0.1:%u", (unsigned)port);
        b->name = e->names[i];
        struct sockaddr_in *sin = (struct sockaddr_in *)&b->ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin->sin_port = htons(port);
        b->sslen = sizeof(*sin);
        atomic_init(&b->health, SG_HEALTH_UP);
        atomic_init(&b->eject_until, 0);
        atomic_init(&b->consec_errors, 0);
    }
    e->pools.pools = &e->pool;
    e->pools.n = 1;
}

static void tenv_health(struct tenv *e, const char *type, uint32_t rise, uint32_t fall)
{
    struct sg_cfg_health *h = &e->cp.health;
    h->enabled = true;
    h->type = (char *)type;
    h->method = "GET";
    h->path = "/healthz";
    h->interval_ms = 100;
    h->timeout_ms = 1000; /* ample: only the timeout test waits for it */
    h->rise = rise;
    h->fall = fall;
    /* expect, fast and down intervals left 0: the defaults apply */
}

static void tenv_free(struct tenv *e)
{
    event_base_free(e->base);
}

static void on_change(struct sg_backend *b, void *arg)
{
    struct tenv *e = arg;
    e->nchanges++;
    e->changed = b;
    event_base_loopbreak(e->base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* Runs the loop until on_change fires (true) or ms pass (false). */
static bool run_until_change(struct tenv *e, uint32_t ms)
{
    int before = e->nchanges;
    struct event *t = evtimer_new(e->base, deadline_cb, e->base);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    event_base_dispatch(e->base);
    event_free(t);
    return e->nchanges > before;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------ health tests */

static void test_http_down_then_up(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "http", 2, 3);

    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_ptr_equal(e.changed, &e.b[0]);
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_DOWN);
    assert_int_equal(atomic_load(&e.b[0].down_gen), 1); /* the workers' cue */
    assert_string_equal(e.b[0].reason, "HTTP 503");
    assert_true(e.b[0].state_since_ms > 0);
    assert_int_equal(s.nreq, 3); /* fall = 3 */
    char want[256];
    snprintf(want, sizeof(want),
             "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: surgegate-health\r\n"
             "Connection: close\r\n\r\n",
             (unsigned)s.port);
    assert_string_equal(s.last_req, want);

    s.reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_true(run_until_change(&e, 3000));
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_UP);
    assert_string_equal(e.b[0].reason, "HTTP 200");
    assert_int_equal(s.nreq, 5); /* rise = 2 */

    /* healthy and steady: no more changes */
    assert_false(run_until_change(&e, 400));
    assert_int_equal(e.nchanges, 2);
    assert_true(s.nreq >= 6);
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

/* A failure then passes while up: no state change; fall failures must be
 * consecutive. */
static void test_http_flap_stays_up(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "HTTP/1.0 500 Oops\r\n\r\n");
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "http", 2, 3);
    struct sg_cfg_status_range ranges[] = {{200, 299}, {404, 404}};
    e.cp.health.expect = ranges;
    e.cp.health.nexpect = 2;

    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    /* wait for 2 failures, then answer 404 (expected) */
    uint64_t end = mono_ms() + 3000;
    while (s.nreq < 2 && mono_ms() < end)
        event_base_loop(e.base, EVLOOP_ONCE);
    assert_int_equal(s.nreq, 2);
    s.reply = "HTTP/1.1 404 Not Found\r\n\r\n";
    assert_false(run_until_change(&e, 500));
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_UP);
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

static void test_tcp_refused(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, 1, closed_port());
    tenv_health(&e, "tcp", 2, 2);
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_DOWN);
    assert_string_equal(e.b[0].reason, "connection refused");
    sg_health_stop(h);
    tenv_free(&e);
}

static void test_tcp_up(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "");
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "tcp", 1, 1);
    atomic_store(&e.b[0].health, SG_HEALTH_DOWN); /* starts down: one connect brings it up */
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_UP);
    assert_string_equal(e.b[0].reason, "connected");
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

static void test_http_timeout(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, NULL); /* never accepts, never answers */
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "http", 1, 1);
    e.cp.health.timeout_ms = 150;
    uint64_t t0 = mono_ms();
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_true(mono_ms() - t0 >= 140); /* timeout 150 ms (coarse clocks) */
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_DOWN);
    assert_string_equal(e.b[0].reason, "timeout");
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

static void test_http_bad_response(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "SSH-2.0-OpenSSH_9.2\r\n");
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "http", 1, 1);
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_string_equal(e.b[0].reason, "bad response");

    /* a status line cut short by the close */
    atomic_store(&e.b[0].health, SG_HEALTH_UP);
    s.reply = "HTTP/1.1 20";
    assert_true(run_until_change(&e, 3000));
    assert_string_equal(e.b[0].reason, "bad response");

    /* closed without a byte */
    atomic_store(&e.b[0].health, SG_HEALTH_UP);
    s.reply = "";
    assert_true(run_until_change(&e, 3000));
    assert_string_equal(e.b[0].reason, "connection closed");
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

/* Runs the loop for ms, whatever changes. */
static void run_for(struct tenv *e, uint32_t ms)
{
    uint64_t end = mono_ms() + ms;
    while (mono_ms() < end)
        run_until_change(e, (uint32_t)(end - mono_ms()));
}

/* With checks on, a passing check does not cut an ejection short; once its
 * time is up, a check runs at once and its pass ends the ejection. */
static void test_ejection_ends_at_pass_after_time(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "HTTP/1.1 204 No Content\r\n\r\n");
    tenv_init(&e, base, 2, s.port);
    tenv_health(&e, "http", 2, 3);
    e.cp.health.interval_ms = 1000; /* the end's check is not a scheduled one */
    e.cp.outlier.base_ejection_ms = 400;
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    run_for(&e, 1100); /* every backend checked once: steady, next checks ~1 s away */
    int nreq = s.nreq;
    assert_true(nreq >= 2);
    uint64_t t0 = sg_now_ms();
    for (int i = 0; i < 4; i++)
        assert_false(sg_outlier_observe(&e.b[0], true, t0));
    assert_true(sg_outlier_observe(&e.b[0], true, t0));
    uint64_t until = atomic_load(&e.b[0].eject_until);
    assert_int_equal(until, t0 + 400);
    assert_false(sg_backend_usable(&e.b[0], t0 + 500)); /* out until it is ended */
    /* the tick notices the ejection (a change), then the end's check */
    while (atomic_load(&e.b[0].eject_until) != 0 && sg_now_ms() < t0 + 2000)
        run_until_change(&e, 2000);
    uint64_t ended = sg_now_ms();
    assert_int_equal(atomic_load(&e.b[0].eject_until), 0);
    assert_true(ended >= until);
    assert_true(ended < until + 300); /* a check at once, not at the next interval */
    assert_true(s.nreq > nreq);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    assert_string_equal(e.b[0].reason, "ejection ended, health check passed");
    assert_true(sg_backend_usable(&e.b[0], sg_now_ms()));
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

/* With checks on, an ejected backend that refuses connections stays out
 * after its ejection time. */
static void test_ejection_refused_stays_out(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, 2, closed_port());
    tenv_health(&e, "tcp", 2, 3);
    e.cp.outlier.base_ejection_ms = 200;
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    uint64_t t0 = sg_now_ms();
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(&e.b[1], true, t0);
    assert_int_equal(atomic_load(&e.b[1].eject_until), t0 + 200);
    run_for(&e, 700);
    assert_int_equal(atomic_load(&e.b[1].eject_until), t0 + 200);
    assert_int_equal(atomic_load(&e.pool.nejected), 1);
    assert_false(sg_backend_usable(&e.b[1], sg_now_ms()));
    sg_health_stop(h);
    tenv_free(&e);
}

/* A backend added at runtime starts CHECKING: up at its first passed check,
 * whatever `rise`. */
static void test_checking_first_pass(void **st)
{
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    tenv_init(&e, base, 1, s.port);
    tenv_health(&e, "http", 3, 3);
    atomic_store(&e.b[0].health, SG_HEALTH_CHECKING);
    assert_false(sg_backend_usable(&e.b[0], sg_now_ms()));
    assert_int_equal(sg_backend_state(&e.b[0], sg_now_ms()), SG_BACKEND_CHECKING);
    assert_string_equal(sg_backend_state_name(SG_BACKEND_CHECKING), "checking");
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_true(run_until_change(&e, 3000));
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_UP);
    assert_int_equal(s.nreq, 1);
    assert_string_equal(e.b[0].reason, "HTTP 200");
    assert_true(sg_backend_usable(&e.b[0], sg_now_ms()));
    assert_int_equal(atomic_load(&e.b[0].down_gen), 0); /* never down */
    sg_health_stop(h);
    tsrv_stop(&s);
    tenv_free(&e);
}

/* A CHECKING backend whose checks fail stays CHECKING (no change to
 * report, no traffic); its reason tells the last failure. */
static void test_checking_refused_stays(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, 1, closed_port());
    tenv_health(&e, "tcp", 2, 2);
    atomic_store(&e.b[0].health, SG_HEALTH_CHECKING);
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    run_for(&e, 600);
    assert_int_equal(e.nchanges, 0);
    assert_int_equal(atomic_load(&e.b[0].health), SG_HEALTH_CHECKING);
    assert_non_null(strstr(e.b[0].reason, "connection refused"));
    assert_false(sg_backend_usable(&e.b[0], sg_now_ms()));
    sg_health_stop(h);
    tenv_free(&e);
}

/* With no health checks, the checker's timer still runs the outlier tick. */
static void test_tick_without_checks(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, 2, closed_port());
    e.cp.outlier.base_ejection_ms = 200;
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    uint64_t t0 = sg_now_ms();
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(&e.b[1], true, t0);
    assert_true(atomic_load(&e.b[1].eject_until) == t0 + 200);
    /* the tick notices the ejection (a change; unless a slow run, e.g.
     * under valgrind, skips past it), then ends it (a change) */
    for (int i = 0; i < 2 && atomic_load(&e.b[1].eject_until) != 0; i++)
        assert_true(run_until_change(&e, 2000));
    assert_true(sg_now_ms() >= t0 + 200);
    assert_int_equal(atomic_load(&e.b[1].eject_until), 0);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    assert_string_equal(e.b[1].reason, "ejection ended");
    sg_health_stop(h);
    tenv_free(&e);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

/* 200 backends on a server that never answers, stopped while every check
 * is in flight: all sockets closed, all events gone. */
static void test_stop_in_flight(void **st)
{
    static struct sg_backend many[200];
    struct tenv e;
    struct tsrv s;
    struct event_base *base = event_base_new();
    tsrv_start(&s, base, NULL);
    tenv_init(&e, base, 1, s.port);
    for (size_t i = 0; i < 200; i++) {
        many[i] = e.b[0];
        many[i].id = (uint32_t)i;
    }
    e.pool.backends = many;
    e.pool.nbackends = 200;
    e.pool.ncfg = 200;
    atomic_init(&e.pool.nused, 200);
    atomic_init(&e.pool.nlive, 200);
    tenv_health(&e, "http", 2, 3);
    int fds = count_fds();
    struct sg_health *h = sg_health_start(e.base, &e.pools, on_change, &e);
    assert_non_null(h);
    assert_false(run_until_change(&e, 150));
    assert_true(count_fds() > fds + 10); /* checks in flight */
    sg_health_stop(h);
    assert_int_equal(count_fds(), fds);
    /* nothing of the checker is left on the base */
    assert_int_equal(event_base_get_num_events(e.base, EVENT_BASE_COUNT_ADDED), 0);
    tsrv_stop(&s);
    tenv_free(&e);
}

/* ----------------------------------------------------- outlier tests */

static void test_outlier_eject_and_reset(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, NB, 1);
    struct sg_backend *b = &e.b[0];
    uint64_t now = 1000000;
    for (int i = 0; i < 4; i++)
        assert_false(sg_outlier_observe(b, true, now));
    assert_int_equal(atomic_load(&b->consec_errors), 4);
    assert_false(sg_outlier_observe(b, false, now)); /* a success resets the run */
    assert_int_equal(atomic_load(&b->consec_errors), 0);
    for (int i = 0; i < 4; i++)
        assert_false(sg_outlier_observe(b, true, now));
    assert_true(sg_outlier_observe(b, true, now));
    assert_int_equal(atomic_load(&b->eject_until), now + 30000);
    assert_int_equal(atomic_load(&e.pool.nejected), 1);
    assert_int_equal(atomic_load(&b->consec_errors), 0);
    assert_int_equal(sg_outlier_nejections(b), 1);
    assert_false(sg_backend_usable(b, now + 1));
    /* already ejected: more failures do not eject again */
    for (int i = 0; i < 10; i++)
        assert_false(sg_outlier_observe(b, true, now + 1));
    assert_int_equal(atomic_load(&e.pool.nejected), 1);
    tenv_free(&e);
}

static void test_outlier_max_percent(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, NB, 1); /* 4 backends, 50%: 2 may be ejected */
    uint64_t now = 5000;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 5; i++)
            sg_outlier_observe(&e.b[k], true, now);
    assert_int_not_equal(atomic_load(&e.b[0].eject_until), 0);
    assert_int_not_equal(atomic_load(&e.b[1].eject_until), 0);
    assert_int_equal(atomic_load(&e.b[2].eject_until), 0);
    assert_int_equal(atomic_load(&e.pool.nejected), 2);
    /* the refused one keeps trying and gets its turn once a place frees */
    sg_outlier_tick(&e.pools, now + 30000, NULL, NULL);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    assert_true(sg_outlier_observe(&e.b[2], true, now + 30000));
    tenv_free(&e);

    /* 0%: one backend may always be ejected, never two */
    tenv_init(&e, NULL, NB, 1);
    e.cp.outlier.max_ejection_percent = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 5; i++)
            sg_outlier_observe(&e.b[k], true, now);
    assert_int_not_equal(atomic_load(&e.b[0].eject_until), 0);
    assert_int_equal(atomic_load(&e.b[1].eject_until), 0);
    assert_int_equal(atomic_load(&e.pool.nejected), 1);
    tenv_free(&e);
}

static struct sg_backend *tick_changed[8];
static int tick_nchanged;

static void tick_on_change(struct sg_backend *b, void *arg)
{
    if (tick_nchanged < 8)
        tick_changed[tick_nchanged++] = b;
}

static void test_outlier_backoff_and_tick(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, NB, 1);
    e.cp.outlier.base_ejection_ms = 1000;
    e.cp.outlier.max_ejection_ms = 2500;
    struct sg_backend *b = &e.b[0];
    uint64_t now = 100000;
    tick_nchanged = 0;
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(b, true, now);
    assert_int_equal(atomic_load(&b->eject_until), now + 1000);

    sg_outlier_tick(&e.pools, now + 10, tick_on_change, NULL); /* notices it */
    assert_int_equal(tick_nchanged, 1);
    assert_string_equal(b->reason, "ejected: 5 consecutive errors");
    sg_outlier_tick(&e.pools, now + 999, tick_on_change, NULL); /* reported once */
    assert_int_equal(tick_nchanged, 1);
    assert_int_not_equal(atomic_load(&b->eject_until), 0);
    sg_outlier_tick(&e.pools, now + 1000, tick_on_change, NULL);
    assert_int_equal(tick_nchanged, 2);
    assert_ptr_equal(tick_changed[1], b);
    assert_int_equal(atomic_load(&b->eject_until), 0);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    assert_string_equal(b->reason, "ejection ended");
    assert_true(sg_backend_usable(b, now + 1000));

    /* second ejection: x2; third: capped at max_ejection */
    now += 2000;
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(b, true, now);
    assert_int_equal(atomic_load(&b->eject_until), now + 2000);
    sg_outlier_tick(&e.pools, now + 2000, NULL, NULL);
    now += 3000;
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(b, true, now);
    assert_int_equal(atomic_load(&b->eject_until), now + 2500);
    assert_int_equal(sg_outlier_nejections(b), 3);
    assert_true(sg_outlier_end(b, "test"));
    assert_false(sg_outlier_end(b, "test"));
    assert_int_equal(atomic_load(&e.pool.nejected), 0);

    /* a long spell without changes resets the multiplier */
    sg_outlier_tick(&e.pools, now, NULL, NULL);
    assert_int_equal(sg_outlier_nejections(b), 3);
    b->state_since_ms -= 5 * 2500;
    sg_outlier_tick(&e.pools, now, NULL, NULL);
    assert_int_equal(sg_outlier_nejections(b), 0);
    for (int i = 0; i < 5; i++)
        sg_outlier_observe(b, true, now);
    assert_int_equal(atomic_load(&b->eject_until), now + 1000);
    tenv_free(&e);
}

static void test_outlier_off(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, NB, 1);
    e.cp.outlier.consecutive_errors = 0;
    for (int i = 0; i < 100; i++)
        assert_false(sg_outlier_observe(&e.b[0], true, 1000));
    assert_int_equal(atomic_load(&e.b[0].eject_until), 0);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    tenv_free(&e);
}

/* Workers report from many threads while the control thread ticks: the
 * pool's ejection count stays within max_ejection_percent and matches the
 * ejected backends once all is quiet. */
#define RACE_THREADS 4
#define RACE_ROUNDS  50000

struct race {
    struct tenv *e;
    _Atomic uint64_t now;
    _Atomic bool stop;
    _Atomic uint32_t nejected_by_observe;
};

static void *race_worker(void *arg)
{
    struct race *r = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < RACE_ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        struct sg_backend *b = &r->e->b[(seed >> 16) % NB];
        /* backend 0 always fails, the others now and then */
        bool fail = b->id == 0 || ((seed >> 8) & 7) == 0;
        if (sg_outlier_observe(b, fail, atomic_load(&r->now)))
            atomic_fetch_add(&r->nejected_by_observe, 1);
    }
    return NULL;
}

static void test_outlier_threads(void **st)
{
    struct tenv e;
    tenv_init(&e, NULL, NB, 1);
    e.cp.outlier.consecutive_errors = 3;
    e.cp.outlier.base_ejection_ms = 5;
    e.cp.outlier.max_ejection_ms = 20;
    struct race r = {.e = &e};
    atomic_init(&r.now, 1000);
    sg_log_set_level(SG_LOG_ERROR); /* thousands of ejections */
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_worker, &r), 0);
    for (int i = 0; i < 2000; i++) {
        uint64_t now = atomic_fetch_add(&r.now, 1) + 1;
        sg_outlier_tick(&e.pools, now, NULL, NULL);
        assert_true(atomic_load(&e.pool.nejected) <= NB / 2);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    sg_log_set_level(SG_LOG_INFO);
    uint32_t ejected = 0;
    for (int k = 0; k < NB; k++)
        ejected += atomic_load(&e.b[k].eject_until) != 0;
    assert_int_equal(atomic_load(&e.pool.nejected), ejected);
    assert_true(atomic_load(&r.nejected_by_observe) > 0);
    sg_outlier_tick(&e.pools, atomic_load(&r.now) + 1000, NULL, NULL);
    assert_int_equal(atomic_load(&e.pool.nejected), 0);
    tenv_free(&e);
}

int main(void)
{
    sg_log_set_level(SG_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outlier_eject_and_reset),
        cmocka_unit_test(test_outlier_max_percent),
        cmocka_unit_test(test_outlier_backoff_and_tick),
        cmocka_unit_test(test_outlier_off),
        cmocka_unit_test(test_outlier_threads),
        cmocka_unit_test(test_http_down_then_up),
        cmocka_unit_test(test_http_flap_stays_up),
        cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_up),
        cmocka_unit_test(test_http_timeout),
        cmocka_unit_test(test_http_bad_response),
        cmocka_unit_test(test_ejection_ends_at_pass_after_time),
        cmocka_unit_test(test_ejection_refused_stays_out),
        cmocka_unit_test(test_checking_first_pass),
        cmocka_unit_test(test_checking_refused_stays),
        cmocka_unit_test(test_tick_without_checks),
        cmocka_unit_test(test_stop_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
