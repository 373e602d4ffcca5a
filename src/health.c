/* health.c: active health checks on the main thread's event_base.
 *
 * Each backend of a pool with a "health" group owns one struct health_check,
 * allocated at start, with one embedded event: a timer between checks, the
 * socket's event (with the check's remaining time as its timeout) while a
 * check runs. A check is a non-blocking connect (type "tcp": done when it
 * connects), then for "http" one small request and the response's status
 * line, read up to HEALTH_READ_MAX bytes; the socket is closed right after.
 * Nothing here blocks and nothing is allocated after start.
 *
 * State: consecutive passed / failed checks (nok / nfail) and b->health. A
 * backend of the config starts UP (assumed healthy); one added at runtime
 * starts CHECKING and is UP at its first passed check. `fall` failed checks
 * in a row take an UP backend DOWN (and bump b->down_gen, so that the
 * workers retry the requests stuck on it), `rise` passed checks in a row
 * bring it back. b->health, b->state_since_ms and b->reason are written
 * here (control thread). An outlier ejection (outlier.c) whose time is up
 * ends at the first passed check after that time: the tick runs a check of
 * such a backend at once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "surgegate/common.h"
#include "surgegate/health.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"

#define SG_HEALTH_MAGIC  0x4ea17c0du
#define HEALTH_TICK_MS   100  /* outlier tick */
#define HEALTH_READ_MAX  4096 /* response bytes read looking for the status line */
#define HEALTH_REQ_MAX   2048 /* longest request text (method, path, host) */
#define HEALTH_HEAD_KEEP 16   /* status-line bytes kept: "HTTP/1.1 200 " is 13 */

/* Defaults for fields a config loader may leave 0 / NULL. */
#define HEALTH_DEFAULT_INTERVAL_MS 2000u
#define HEALTH_DEFAULT_TIMEOUT_MS  1000u
#define HEALTH_DEFAULT_RISE        2u
#define HEALTH_DEFAULT_FALL        3u

static const struct sg_cfg_status_range health_default_expect = {200, 399};

enum health_phase { HC_IDLE = 0, HC_CONNECT, HC_SEND, HC_READ };

struct health_check;

/* A pool's effective check settings (config values, defaults filled in). */
struct health_pool {
    struct sg_health *h;
    struct sg_pool *pool;
    bool http;
    const char *method, *path, *host; /* host NULL: the backend's address */
    uint32_t interval_ms, timeout_ms, fast_ms, down_ms;
    uint32_t stall_ms; /* health.stall_timeout; 0 = no stall watch */
    uint32_t rise, fall;
    const struct sg_cfg_status_range *expect;
    size_t nexpect;
    struct health_check *checks; /* one per backend, pool->nbackends */
};

struct health_check {
    struct event ev; /* timer while idle, socket event while a check runs */
    struct health_pool *hp;
    struct sg_backend *b;
    evutil_socket_t fd; /* -1 while idle */
    enum health_phase phase;
    bool assigned;        /* ev was assigned once (stop may delete it) */
    uint64_t deadline_ms; /* monotonic end of the running check */
    uint32_t nok, nfail;  /* consecutive passed / failed checks */
    uint64_t eject_seen;  /* the ejection (its eject_until) whose end got a check */
    double ttfb_recent;   /* longest first-byte wait lately, ms, decaying (stall watch) */
    uint32_t sent;        /* request bytes sent */
    uint32_t nread;       /* response bytes read */
    uint32_t nhead;       /* bytes in head */
    char head[HEALTH_HEAD_KEEP];
};

struct sg_health {
    uint32_t magic;
    struct event_base *base;
    struct sg_pools *pools;
    void (*on_change)(struct sg_backend *b, void *arg);
    void *arg;
    struct event *tick;
    struct health_pool *hps; /* pools with checks */
    size_t nhps;
    uint64_t rng;
    char errbuf[64]; /* strerror_r text; main thread only */
};

static void health_timer_cb(evutil_socket_t fd, short what, void *arg);
static void health_io_cb(evutil_socket_t fd, short what, void *arg);
static void health_send(struct health_check *c);

/* ------------------------------------------------------------- helpers */

static uint64_t health_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void health_tv(struct timeval *tv, uint64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* xorshift64*: schedule jitter, nothing that needs to be unpredictable. */
static uint32_t health_rand(struct sg_health *h)
{
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ms +- 10%. */
static uint32_t health_jitter(struct sg_health *h, uint32_t ms)
{
    uint64_t span = ms / 5;
    if (span == 0)
        return ms;
    uint64_t v = (uint64_t)ms - ms / 10 + health_rand(h) % (span + 1);
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The short failure text of a socket error. */
static const char *health_errtext(struct sg_health *h, int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused";
    case ECONNRESET:
    case EPIPE:
        return "connection reset";
    case ETIMEDOUT:
        return "timeout";
    default:
        /* GNU strerror_r (_GNU_SOURCE is project-wide): may return a
         * static string instead of filling errbuf. */
        return strerror_r(err, h->errbuf, sizeof(h->errbuf));
    }
}

static int health_request(const struct health_check *c, char *buf, size_t len)
{
    const struct health_pool *hp = c->hp;
    const char *host = hp->host;
    if (host == NULL)
        host = c->b->ss.ss_family == AF_UNIX ? "localhost" : c->b->name;
    return snprintf(buf, len,
                    "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: surgegate-health\r\n"
                    "Connection: close\r\n\r\n",
                    hp->method, hp->path, host);
}

static bool health_expected(const struct health_pool *hp, int status)
{
    for (size_t i = 0; i < hp->nexpect; i++)
        if (status >= hp->expect[i].lo && status <= hp->expect[i].hi)
            return true;
    return false;
}

static bool health_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* ------------------------------------------------------ state changes */

/* Arms the timer of c's next check, `ms` from now. */
static void health_schedule(struct health_check *c, uint32_t ms)
{
    struct timeval tv;
    health_tv(&tv, ms);
    event_assign(&c->ev, c->hp->h->base, -1, 0, health_timer_cb, c);
    c->assigned = true;
    if (event_add(&c->ev, &tv) != 0)
        sg_log_error("health: cannot schedule the check of backend %s of pool '%s'", c->b->name,
                     c->hp->pool->name);
}

/* Sets b's health and says so (state_since_ms, reason, the log). */
static void health_set(struct health_check *c, enum sg_backend_health to, const char *why,
                       uint32_t run)
{
    struct sg_backend *b = c->b;
    struct health_pool *hp = c->hp;
    if (to == SG_HEALTH_DOWN)
        atomic_fetch_add_explicit(&b->down_gen, 1, memory_order_relaxed);
    atomic_store(&b->health, to);
    b->state_since_ms = health_wall_ms();
    snprintf(b->reason, sizeof(b->reason), "%s", why);
    if (to == SG_HEALTH_DOWN && run == 0) /* the stall watch */
        sg_log_warn("backend %s of pool '%s' is DOWN: %s", b->name, hp->pool->name, why);
    else if (to == SG_HEALTH_DOWN)
        sg_log_warn("backend %s of pool '%s' is DOWN: %s (%" PRIu32 " failed check%s)", b->name,
                    hp->pool->name, why, run, run == 1 ? "" : "s");
    else
        sg_log_info("backend %s of pool '%s' is UP: %s (%" PRIu32 " passed check%s)", b->name,
                    hp->pool->name, why, run, run == 1 ? "" : "s");
}

/* The end of one check: closes its socket, counts the result, changes the
 * backend's state when a run of results says so (CHECKING -> UP at the
 * first pass, DOWN -> UP after `rise`, UP -> DOWN after `fall`), ends an
 * ejection whose time is up at a pass, and schedules the next check. */
static void health_done(struct health_check *c, bool ok, const char *why)
{
    struct health_pool *hp = c->hp;
    struct sg_health *h = hp->h;
    struct sg_backend *b = c->b;
    if (c->fd >= 0) {
        evutil_closesocket(c->fd);
        c->fd = -1;
    }
    c->phase = HC_IDLE;
    c->sent = c->nread = c->nhead = 0;

    enum sg_backend_health st = atomic_load_explicit(&b->health, memory_order_relaxed);
    bool changed = false;
    if (ok) {
        c->nfail = 0;
        if (c->nok < UINT32_MAX)
            c->nok++;
        if (st == SG_HEALTH_CHECKING || (st == SG_HEALTH_DOWN && c->nok >= hp->rise)) {
            health_set(c, SG_HEALTH_UP, why, c->nok);
            st = SG_HEALTH_UP;
            c->nok = 0;
            changed = true;
        }
        uint64_t until = atomic_load_explicit(&b->eject_until, memory_order_relaxed);
        if (until != 0 && until <= sg_now_ms() &&
            sg_outlier_end(b, "ejection ended, health check passed"))
            changed = true;
    } else {
        c->nok = 0;
        if (c->nfail < UINT32_MAX)
            c->nfail++;
        if (st == SG_HEALTH_UP && c->nfail >= hp->fall) {
            health_set(c, SG_HEALTH_DOWN, why, c->nfail);
            st = SG_HEALTH_DOWN;
            c->nfail = 0;
            changed = true;
        } else {
            if (st == SG_HEALTH_CHECKING)
                snprintf(b->reason, sizeof(b->reason),
                         "added: waiting for a passing health check (last: %s)", why);
            sg_log_debug("backend %s of pool '%s': health check failed: %s", b->name,
                         hp->pool->name, why);
        }
    }
    if (changed && h->on_change != NULL)
        h->on_change(b, h->arg);

    /* Fully down: checked less often; changing (a pass while down, a
     * failure while up, a new backend's first checks): more often, so the
     * change is confirmed soon. */
    uint32_t ms;
    if (st == SG_HEALTH_DOWN)
        ms = c->nok > 0 ? hp->fast_ms : hp->down_ms;
    else if (st == SG_HEALTH_CHECKING)
        ms = c->nfail < hp->fall ? hp->fast_ms : hp->down_ms;
    else
        ms = c->nfail > 0 ? hp->fast_ms : hp->interval_ms;
    health_schedule(c, health_jitter(h, ms));
}

/* Waits for `what` on the check's socket until its deadline. */
static void health_wait(struct health_check *c, short what)
{
    uint64_t now = sg_now_ms();
    if (now >= c->deadline_ms) {
        health_done(c, false, "timeout");
        return;
    }
    struct timeval tv;
    health_tv(&tv, c->deadline_ms - now);
    event_assign(&c->ev, c->hp->h->base, c->fd, what, health_io_cb, c);
    if (event_add(&c->ev, &tv) != 0)
        health_done(c, false, "cannot wait for the socket");
}

/* ------------------------------------------------------------- checks */

/* Parses the status line in c->head (terminated by an LF that was seen):
 * "HTTP/1.x NNN " (or CR after the code). */
static void health_status_line(struct health_check *c)
{
    const char *s = c->head;
    if (c->nhead < 13 || memcmp(s, "HTTP/1.", 7) != 0 || !health_digit(s[7]) || s[8] != ' ' ||
        !health_digit(s[9]) || !health_digit(s[10]) || !health_digit(s[11]) ||
        (s[12] != ' ' && s[12] != '\r')) {
        health_done(c, false, "bad response");
        return;
    }
    int status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    char why[16];
    snprintf(why, sizeof(why), "HTTP %d", status);
    health_done(c, health_expected(c->hp, status), why);
}

/* True while the bytes kept so far can still begin "HTTP/1.". */
static bool health_prefix_ok(const struct health_check *c)
{
    static const char want[] = "HTTP/1.";
    size_t n = c->nhead < sizeof(want) - 1 ? c->nhead : sizeof(want) - 1;
    return memcmp(c->head, want, n) == 0;
}

static void health_read(struct health_check *c)
{
    char buf[HEALTH_READ_MAX];
    for (;;) {
        ssize_t r = recv(c->fd, buf, HEALTH_READ_MAX - c->nread, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                health_wait(c, EV_READ);
            else
                health_done(c, false, health_errtext(c->hp->h, errno));
            return;
        }
        if (r == 0) {
            health_done(c, false, c->nread == 0 ? "connection closed" : "bad response");
            return;
        }
        size_t keep = sizeof(c->head) - c->nhead;
        if (keep > (size_t)r)
            keep = (size_t)r;
        memcpy(c->head + c->nhead, buf, keep);
        c->nhead += (uint32_t)keep;
        c->nread += (uint32_t)r;
        if (!health_prefix_ok(c)) {
            health_done(c, false, "bad response");
            return;
        }
        if (memchr(buf, '\n', (size_t)r) != NULL) {
            health_status_line(c);
            return;
        }
        if (c->nread >= HEALTH_READ_MAX) {
            health_done(c, false, "bad response");
            return;
        }
    }
}

static void health_send(struct health_check *c)
{
    char req[HEALTH_REQ_MAX];
    int n = health_request(c, req, sizeof(req)); /* length checked at start */
    c->phase = HC_SEND;
    while (c->sent < (uint32_t)n) {
        ssize_t w = send(c->fd, req + c->sent, (size_t)n - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                health_wait(c, EV_WRITE);
            else
                health_done(c, false, health_errtext(c->hp->h, errno));
            return;
        }
        c->sent += (uint32_t)w;
    }
    c->phase = HC_READ;
    health_wait(c, EV_READ);
}

/* The connection is up: a TCP check passed, an HTTP check sends. */
static void health_connected(struct health_check *c)
{
    if (!c->hp->http)
        health_done(c, true, "connected");
    else
        health_send(c);
}

static void health_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct health_check *c = arg;
    if (what & EV_TIMEOUT) {
        health_done(c, false, "timeout");
        return;
    }
    switch (c->phase) {
    case HC_CONNECT: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            health_done(c, false, health_errtext(c->hp->h, err));
            return;
        }
        health_connected(c);
        return;
    }
    case HC_SEND:
        health_send(c);
        return;
    case HC_READ:
        health_read(c);
        return;
    case HC_IDLE:
        break;
    }
    SG_BUG_ON(c->phase == HC_IDLE);
}

/* Time for the next check: connect. */
static void health_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct health_check *c = arg;
    struct sg_backend *b = c->b;
    SG_BUG_ON(c->fd >= 0);
    if (!sg_backend_live(b) || atomic_load(&b->removing)) {
        c->nok = c->nfail = 0; /* removed: no more checks until a backend fills the slot */
        return;
    }
    c->deadline_ms = sg_now_ms() + c->hp->timeout_ms;
    c->fd = socket(b->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        health_done(c, false, health_errtext(c->hp->h, errno));
        return;
    }
    c->phase = HC_CONNECT;
    if (connect(c->fd, (const struct sockaddr *)&b->ss, b->sslen) == 0) {
        health_connected(c);
        return;
    }
    if (errno == EINPROGRESS || errno == EINTR)
        health_wait(c, EV_WRITE);
    else
        health_done(c, false, health_errtext(c->hp->h, errno));
}

/* A checked backend whose ejection time is up returns only at a passed
 * check: runs one at once (unless one is running) rather than waiting for
 * the next interval, once per ejection. */
static void health_eject_ended(struct sg_health *h, uint64_t now)
{
    for (size_t i = 0; i < h->nhps; i++) {
        struct health_pool *hp = &h->hps[i];
        for (size_t j = 0, n_ = sg_pool_nused(hp->pool); j < n_; j++) {
            struct health_check *c = &hp->checks[j];
            uint64_t until = atomic_load_explicit(&c->b->eject_until, memory_order_relaxed);
            if (until == 0 || until > now || c->eject_seen == until || c->fd >= 0 ||
                !sg_backend_live(c->b))
                continue;
            c->eject_seen = until;
            if (c->assigned)
                event_del(&c->ev);
            health_schedule(c, 0);
        }
    }
}

/* ------------------------------------------------------- stall watch */

/* A backend that stopped answering (SIGSTOP, a deadlock, a full worker
 * pool) still accepts connections, so its checks fail only after
 * fall x interval (5-7 s by default) while clients give up after a few
 * seconds. The workers stamp b->progress_ms whenever it sends response
 * bytes (and when a request starts waiting on it after none did); when
 * at least two requests wait on it (b->awaiting: one may be a slow page),
 * it is ready (not draining or being removed: those get no new requests,
 * so their silence says nothing) and it has been silent for its stall
 * threshold while another backend of the pool is up and answered meanwhile
 * (or has nothing waiting on it), it is taken DOWN at once: its waiting idempotent requests are
 * retried elsewhere (down_gen) and its checks bring it back (`rise`). The threshold is
 * health.stall_timeout or three times the longest wait for a first byte it showed lately (decaying,
 * half-life ~35 s), whichever is longer, so that an application with slow pages is not taken for a
 * stalled one. A pool whose backends all have requests waiting and all
 * are silent is slow, not stalled: nothing is taken down. */
#define HEALTH_STALL_FACTOR  3.0
#define HEALTH_STALL_WAITING 2u    /* requests waiting on it at least */
#define HEALTH_STALL_DECAY   0.998 /* per tick of HEALTH_TICK_MS */

static uint64_t health_stall_limit(const struct health_pool *hp, const struct health_check *c)
{
    double adaptive = HEALTH_STALL_FACTOR * c->ttfb_recent;
    return adaptive > hp->stall_ms ? (uint64_t)adaptive : hp->stall_ms;
}

/* Whether a backend of hp other than `not` could take its requests: up,
 * and either answering (response bytes since `since`) or waited on by
 * nothing (clients stuck on the stalled one may have left it idle). */
static bool health_others_answer(const struct health_pool *hp, const struct sg_backend * not,
                                 uint64_t since)
{
    for (size_t k = 0, n = sg_pool_nused(hp->pool); k < n; k++) {
        const struct sg_backend *o = hp->checks[k].b;
        if (o != not &&sg_backend_live(o) &&
            atomic_load_explicit(&o->health, memory_order_relaxed) == SG_HEALTH_UP &&
            (atomic_load_explicit(&o->awaiting, memory_order_relaxed) == 0 ||
             atomic_load_explicit(&o->progress_ms, memory_order_relaxed) >= since))
            return true;
    }
    return false;
}

static void health_stall_watch(struct sg_health *h, uint64_t now)
{
    for (size_t i = 0; i < h->nhps; i++) {
        struct health_pool *hp = &h->hps[i];
        size_t n = sg_pool_nused(hp->pool);
        for (size_t j = 0; j < n; j++) {
            struct health_check *c = &hp->checks[j];
            double m = atomic_exchange_explicit(&c->b->ttfb_max_ms, 0, memory_order_relaxed);
            c->ttfb_recent =
                m > c->ttfb_recent * HEALTH_STALL_DECAY ? m : c->ttfb_recent * HEALTH_STALL_DECAY;
        }
        if (hp->stall_ms == 0)
            continue;
        for (size_t j = 0; j < n; j++) {
            struct health_check *c = &hp->checks[j];
            struct sg_backend *b = c->b;
            uint32_t waiting = atomic_load_explicit(&b->awaiting, memory_order_relaxed);
            /* One request waiting may be a slow one; a draining backend
             * gets nothing new, so its silence says nothing. */
            if (waiting < HEALTH_STALL_WAITING || !sg_backend_live(b) ||
                atomic_load_explicit(&b->admin, memory_order_relaxed) != SG_ADMIN_READY ||
                atomic_load_explicit(&b->removing, memory_order_relaxed) ||
                atomic_load_explicit(&b->health, memory_order_relaxed) != SG_HEALTH_UP)
                continue;
            uint64_t limit = health_stall_limit(hp, c);
            uint64_t last = atomic_load_explicit(&b->progress_ms, memory_order_relaxed);
            if (now < last + limit || !health_others_answer(hp, b, now - limit))
                continue;
            char why[96];
            snprintf(why, sizeof(why),
                     "stalled: no response byte for %" PRIu64 " ms while %" PRIu32
                     " request%s waited",
                     now - last, waiting, waiting == 1 ? "" : "s");
            c->nok = c->nfail = 0;
            health_set(c, SG_HEALTH_DOWN, why, 0);
            if (h->on_change != NULL)
                h->on_change(b, h->arg);
        }
    }
}

static void health_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_health *h = arg;
    uint64_t now = sg_now_ms();
    sg_outlier_tick(h->pools, now, h->on_change, h->arg);
    health_eject_ended(h, now);
    health_stall_watch(h, now);
}

/* -------------------------------------------------------- start / stop */

/* Fills hp from the pool's config; false (logged) when a backend's request
 * would not fit HEALTH_REQ_MAX. */
static bool health_pool_init(struct sg_health *h, struct health_pool *hp, struct sg_pool *pool)
{
    const struct sg_cfg_health *hc = &pool->cfg->health;
    hp->h = h;
    hp->pool = pool;
    hp->http = hc->type == NULL || strcmp(hc->type, "tcp") != 0;
    hp->method = hc->method != NULL ? hc->method : "GET";
    hp->path = hc->path != NULL ? hc->path : "/";
    hp->host = hc->host;
    hp->interval_ms = hc->interval_ms != 0 ? hc->interval_ms : HEALTH_DEFAULT_INTERVAL_MS;
    hp->timeout_ms = hc->timeout_ms != 0 ? hc->timeout_ms : HEALTH_DEFAULT_TIMEOUT_MS;
    hp->fast_ms = hc->fast_interval_ms != 0 ? hc->fast_interval_ms : hp->interval_ms / 2;
    if (hp->fast_ms == 0)
        hp->fast_ms = 1;
    hp->down_ms = hc->down_interval_ms;
    if (hp->down_ms == 0)
        hp->down_ms = hp->interval_ms <= UINT32_MAX / 2 ? hp->interval_ms * 2 : UINT32_MAX;
    hp->rise = hc->rise != 0 ? hc->rise : HEALTH_DEFAULT_RISE;
    hp->fall = hc->fall != 0 ? hc->fall : HEALTH_DEFAULT_FALL;
    hp->stall_ms = hc->stall_timeout_ms;
    if (hc->expect != NULL && hc->nexpect > 0) {
        hp->expect = hc->expect;
        hp->nexpect = hc->nexpect;
    } else {
        hp->expect = &health_default_expect;
        hp->nexpect = 1;
    }
    hp->checks = sg_xcalloc(pool->nbackends, sizeof(struct health_check));
    for (size_t j = 0; j < pool->nbackends; j++) {
        struct health_check *c = &hp->checks[j];
        c->hp = hp;
        c->b = &pool->backends[j];
        c->fd = -1;
        if (hp->http && sg_backend_live(c->b) && health_request(c, NULL, 0) >= HEALTH_REQ_MAX) {
            sg_log_error("pool '%s': the health check request for backend %s is longer than %d "
                         "bytes (path or host too long)",
                         pool->name, c->b->name, HEALTH_REQ_MAX - 1);
            return false;
        }
    }
    return true;
}

struct sg_health *sg_health_start(struct event_base *base, struct sg_pools *pools,
                                  void (*on_change)(struct sg_backend *b, void *arg), void *arg)
{
    struct sg_health *h = sg_xcalloc(1, sizeof(*h));
    h->magic = SG_HEALTH_MAGIC;
    h->base = base;
    h->pools = pools;
    h->on_change = on_change;
    h->arg = arg;
    h->rng = (sg_now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)h) | 1u;

    h->tick = event_new(base, -1, EV_PERSIST, health_tick_cb, h);
    struct timeval tv;
    health_tv(&tv, HEALTH_TICK_MS);
    if (h->tick == NULL || event_add(h->tick, &tv) != 0) {
        sg_log_error("health: cannot create the outlier timer");
        sg_health_stop(h);
        return NULL;
    }

    size_t n = 0;
    for (size_t i = 0; i < pools->n; i++)
        if (pools->pools[i].cfg != NULL && pools->pools[i].cfg->health.enabled)
            n++;
    h->hps = sg_xcalloc(n, sizeof(struct health_pool));
    for (size_t i = 0; i < pools->n; i++) {
        struct sg_pool *pool = &pools->pools[i];
        if (pool->cfg == NULL || !pool->cfg->health.enabled)
            continue;
        struct health_pool *hp = &h->hps[h->nhps++];
        if (!health_pool_init(h, hp, pool)) {
            sg_health_stop(h);
            return NULL;
        }
    }
    /* Only once every pool is valid: arm the first checks, spread over the
     * first interval so that a thousand backends do not connect at once. */
    for (size_t i = 0; i < h->nhps; i++) {
        struct health_pool *hp = &h->hps[i];
        for (size_t j = 0, n_ = sg_pool_nused(hp->pool); j < n_; j++)
            if (sg_backend_live(&hp->pool->backends[j]))
                health_schedule(&hp->checks[j], health_rand(h) % hp->interval_ms);
        sg_log_info("pool '%s': %s health checks of %zu backend%s every %" PRIu32 " ms",
                    hp->pool->name, hp->http ? "http" : "tcp", hp->pool->ncfg,
                    hp->pool->ncfg == 1 ? "" : "s", hp->interval_ms);
    }
    return h;
}

bool sg_health_backend_added(struct sg_health *h, struct sg_backend *b)
{
    if (h == NULL)
        return false;
    for (size_t i = 0; i < h->nhps; i++) {
        struct health_pool *hp = &h->hps[i];
        if (hp->pool != b->pool)
            continue;
        struct health_check *c = &hp->checks[b->id];
        c->nok = c->nfail = 0;
        c->eject_seen = 0;
        /* A check still pending or running from the slot's previous backend
         * simply checks the new one. */
        if (c->fd < 0 && !(c->assigned && evtimer_pending(&c->ev, NULL)))
            health_schedule(c, health_rand(h) % 100u);
        return true;
    }
    return false;
}

void sg_health_stop(struct sg_health *h)
{
    if (h == NULL)
        return;
    SG_CHECK_MAGIC(h, SG_HEALTH_MAGIC);
    for (size_t i = 0; i < h->nhps; i++) {
        struct health_pool *hp = &h->hps[i];
        if (hp->checks == NULL)
            continue;
        for (size_t j = 0; j < hp->pool->nbackends; j++) {
            struct health_check *c = &hp->checks[j];
            if (c->assigned)
                event_del(&c->ev);
            if (c->fd >= 0)
                evutil_closesocket(c->fd);
        }
        free(hp->checks);
    }
    free(h->hps);
    if (h->tick != NULL)
        event_free(h->tick);
    h->magic = 0;
    free(h);
}
