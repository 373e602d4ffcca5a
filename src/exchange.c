/* exchange.c: one request's journey to a backend and its response's way back.
 *
 * route -> balancer pick -> slot, or the pool's queue -> upstream connection
 * (reused or new) -> request head and body out -> response head parsed by
 * llhttp -> body relayed to the client side -> retry on failure when safe.
 *
 * The client side (session.c for HTTP/1) owns the exchange (embedded) and
 * sees only the operations of struct sg_xclient_ops; the backend connection
 * never leaves this file. Backend outcomes (failures, outlier detection, the
 * balancer's latency feedback, error counts) are recorded in exactly one
 * place, exchange_outcome(); the per-request record (stats and access log)
 * in sg_exchange_record().
 *
 * Ownership: the exchange holds at most one upstream connection and one slot
 * on a backend; both are given back before the state returns to IDLE. The
 * upstream connection's callbacks find x through their argument and return
 * at once when x->up is no longer theirs. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/exchange.h"
#include "surgegate/http1.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"
#include "surgegate/route.h"
#include "surgegate/upstream.h"
#include "surgegate/worker-t.h"
#include "surgegate/wpool.h"
#include "surgegate/wstats.h"

#define SG_REPLAY_MAX     (64 * 1024) /* request bytes kept for a retry */
#define SG_RESP_HDR_BYTES (64 * 1024)
#define SG_RESP_HEADERS   256

static void exchange_up_read(struct sg_conn *c, void *arg);
static void exchange_up_write(struct sg_conn *c, void *arg);
static void exchange_up_event(struct sg_conn *c, short what, void *arg);
static void exchange_connect(struct sg_exchange *x);
static void exchange_connect_to(struct sg_exchange *x, struct sg_backend *b);
static void exchange_queue_timeout(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------ state */

static void exchange_set_state(struct sg_exchange *x, enum sg_xstate to)
{
#ifdef SG_DEBUG_CHECKS
    /* legal[from] is the set of states `from` may move to (bit per state). */
    static const unsigned legal[SG_XS__COUNT] = {
        [SG_XS_IDLE] = 1u << SG_XS_CONNECT | 1u << SG_XS_IDLE,
        [SG_XS_CONNECT] =
            1u << SG_XS_QUEUED | 1u << SG_XS_RELAY | 1u << SG_XS_CONNECT | 1u << SG_XS_IDLE,
        [SG_XS_QUEUED] = 1u << SG_XS_CONNECT | 1u << SG_XS_IDLE,
        [SG_XS_RELAY] = 1u << SG_XS_CONNECT | 1u << SG_XS_IDLE,
    };
    SG_CHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    SG_BUG_ON((unsigned)x->state >= SG_XS__COUNT || !(legal[x->state] & (1u << to)));
#endif
    x->state = to;
}

/* -------------------------------------------------------------- outcomes */

/* What one attempt on a backend came to, for exchange_outcome(). */
enum exchange_obs {
    OBS_RESPONSE, /* a final response head with `status` */
    OBS_FAILED,   /* the attempt failed before a response (error kind ek) */
    OBS_ERROR,    /* counted as an error of kind ek, health not judged */
};

/* The one place a backend's outcome is recorded: its failure counter and
 * outlier detection (a failure is a 5xx or an attempt that got no response),
 * the balancer's latency feedback (a response), and the error counts by
 * kind of the backend and its pool. */
static void exchange_outcome(struct sg_exchange *x, struct sg_backend *b, enum exchange_obs o,
                             int status, enum sg_ek ek)
{
    if (b == NULL || x->wp == NULL)
        return;
    uint64_t now_us = sg_now_us(), now = now_us / 1000u;
    switch (o) {
    case OBS_RESPONSE: {
        if (status >= 500)
            atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
        sg_outlier_observe(b, status >= 500, now);
        const struct sg_lb_ops *lb = x->wp->pool->lb;
        if (lb->observe != NULL)
            lb->observe(x->wp->lb_state, b, now, now_us - x->attempt_us);
        return;
    }
    case OBS_FAILED:
        atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
        sg_outlier_observe(b, true, now);
        break;
    case OBS_ERROR:
        break;
    }
    sg_wstat_add(&x->wp->wb[b->id].st.errors[ek], 1);
    sg_wstat_add(&x->wp->st.errors[ek], 1);
}

static void exchange_record_stats(struct sg_wstats *st, int cls, const struct sg_alog_rec *r,
                                  const struct sg_exchange *x, uint64_t total, enum sg_end end)
{
    sg_wstat_add(&st->requests, 1);
    if (end == SG_END_CLIENT_TIMEOUT || end == SG_END_CLIENT_CLOSED)
        sg_wstat_add(
            &st->client_errors[end == SG_END_CLIENT_TIMEOUT ? SG_CE_TIMEOUT : SG_CE_ABORTED], 1);
    if (cls >= 0)
        sg_wstat_add(&st->responses[cls], 1);
    sg_wstat_add(&st->bytes_in, r->bytes_in);
    sg_wstat_add(&st->bytes_out, r->bytes_out);
    sg_wstats_lat(st, SG_LAT_QUEUE, x->queue_us);
    if (x->connect_us >= 0)
        sg_wstats_lat(st, SG_LAT_CONNECT, (uint64_t)x->connect_us);
    if (x->ttfb_us >= 0)
        sg_wstats_lat(st, SG_LAT_TTFB, (uint64_t)x->ttfb_us);
    sg_wstats_lat(st, SG_LAT_TOTAL, total);
}

void sg_exchange_record(struct sg_exchange *x, struct sg_alog_rec *r, uint64_t t_start_us,
                        enum sg_end end)
{
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    uint64_t now = sg_now_us();
    if (x->t_queued_us != 0) {
        x->queue_us += now - x->t_queued_us;
        x->t_queued_us = 0;
    }
    uint64_t total = now - t_start_us;
    int cls = r->status >= 100 && r->status < 600 ? r->status / 100 - 1 : -1;
    if (x->wp != NULL) { /* else never routed (bad request, no pool) */
        exchange_record_stats(&x->wp->st, cls, r, x, total, end);
        if (x->backend != NULL)
            exchange_record_stats(&x->wp->wb[x->backend->id].st, cls, r, x, total, end);
    }
    if (x->w->alog == NULL)
        return;
    r->start_us = sg_wall_us() - (now - t_start_us);
    r->frontend = x->fe->cfg->name;
    r->pool = x->wp != NULL ? x->wp->pool->name : NULL;
    r->backend = x->backend != NULL ? x->backend->name : NULL;
    r->queue_us = x->wp != NULL ? (int64_t)x->queue_us : -1;
    r->connect_us = x->connect_us;
    r->ttfb_us = x->ttfb_us;
    r->total_us = (int64_t)total;
    r->retries = x->nretries;
    sg_alog_write(x->w->alog, r);
}

/* ------------------------------------------------------------ lifecycle */

/* Gives back the request slot on x->backend (kicking the pool's queue). */
static void exchange_put_slot(struct sg_exchange *x)
{
    if (!x->slot)
        return;
    x->slot = false;
    LIST_REMOVE(x, on_backend);
    sg_queue_put_slot(x->w, x->backend);
}

/* Keeps backend->awaiting and the backend's progress clock in step with x
 * (health.c's stall watch reads them): x is awaited while the backend has
 * the whole request and has not begun to answer it. */
static void exchange_await(struct sg_exchange *x)
{
    bool aw = x->up != NULL && x->up->connected && x->req_done && !x->resp_started;
    if (aw == x->awaiting)
        return;
    struct sg_backend *b = x->backend;
    x->awaiting = aw;
    if (!aw) {
        atomic_fetch_sub_explicit(&b->awaiting, 1, memory_order_relaxed);
        return;
    }
    /* The first awaited request after none: the backend's silence counts
     * from now, not from its last answer long ago. */
    if (atomic_fetch_add_explicit(&b->awaiting, 1, memory_order_relaxed) == 0)
        atomic_store_explicit(&b->progress_ms, sg_now_ms(), memory_order_relaxed);
}

/* The backend sent response bytes: it is alive (stamped at most every few
 * ms, to keep writes to its shared line rare). */
static void exchange_progress(struct sg_backend *b)
{
    uint64_t now = sg_now_ms();
    if (now - atomic_load_explicit(&b->progress_ms, memory_order_relaxed) >= 4)
        atomic_store_explicit(&b->progress_ms, now, memory_order_relaxed);
}

/* Gives the upstream connection back (or closes it) and forgets it; then
 * the slot, so a queued request can reuse the parked connection. */
static void exchange_release_up(struct sg_exchange *x, bool reusable)
{
    if (x->up != NULL) {
        sg_upstream_release(x->up, reusable);
        x->up = NULL;
        exchange_await(x);
    }
    exchange_put_slot(x);
}

/* The request leaves the queue and the pool's active (and retry) counts;
 * x becomes IDLE. Its facts stay for sg_exchange_record. */
static void exchange_end(struct sg_exchange *x)
{
    if (x->state == SG_XS_QUEUED)
        sg_queue_cancel(x->w, &x->qe);
    if (x->qtimer != NULL)
        event_del(x->qtimer);
    if (x->wp != NULL) {
        struct sg_pool *p = x->wp->pool;
        if (x->retrying) {
            x->retrying = false;
            atomic_fetch_sub_explicit(&p->retries_active, 1, memory_order_relaxed);
        }
        if (x->active) {
            x->active = false;
            atomic_fetch_sub_explicit(&p->active, 1, memory_order_relaxed);
        }
    }
    exchange_set_state(x, SG_XS_IDLE);
}

void sg_exchange_stop(struct sg_exchange *x)
{
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    if (x->up != NULL) {
        sg_upstream_free(x->up);
        x->up = NULL;
        exchange_await(x);
    }
    exchange_put_slot(x);
    exchange_end(x);
}

/* The backend's clock: timeouts.server bounds each wait for the backend once
 * it has the whole request (or has begun to answer). While the client is
 * still sending, only writes the backend does not take are timed: a slow
 * upload is the client's doing (its own idle timeout, timeouts.client, runs
 * on the client side) and must not end as a 504 blamed on the backend. */
static void exchange_server_clock(struct sg_exchange *x)
{
    if (x->up == NULL)
        return;
    bool waiting = x->req_done || x->resp_started;
    sg_conn_set_timeouts(&x->up->conn, waiting ? &x->w->tv_server : NULL, &x->w->tv_server);
    exchange_await(x);
}

/* Ends the exchange before a response with the client side's error answer. */
static void exchange_fail_with(struct sg_exchange *x, int status, enum sg_end end)
{
    exchange_release_up(x, false);
    exchange_end(x);
    x->ops->fail(x->cl, status, end);
}

/* ------------------------------------------------- response parser callbacks */

static inline struct sg_exchange *rs_exchange(llhttp_t *p)
{
    return p->data;
}

static int rs_on_message_begin(llhttp_t *p)
{
    struct sg_exchange *x = rs_exchange(p);
    sg_hdrs_reset(&x->rsh);
    if (!x->resp_started) {
        x->resp_started = true;
        exchange_server_clock(x); /* an answer before the request's end */
    }
    return 0;
}

static int rs_on_status(llhttp_t *p, const char *at, size_t len)
{
    return sg_hdrs_add_first(&rs_exchange(p)->rsh, at, len) == SG_OK ? 0 : -1;
}

/* Header callbacks after the final head are trailer fields: parsed, dropped. */
static int rs_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct sg_exchange *x = rs_exchange(p);
    if (x->resp_head_done)
        return 0; /* trailers */
    return sg_hdrs_add_field(&x->rsh, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct sg_exchange *x = rs_exchange(p);
    if (x->resp_head_done)
        return 0;
    return sg_hdrs_add_value(&x->rsh, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value_complete(llhttp_t *p)
{
    struct sg_exchange *x = rs_exchange(p);
    if (x->resp_head_done)
        return 0;
    return sg_hdrs_value_done(&x->rsh) == SG_OK ? 0 : -1;
}

static int rs_on_headers_complete(llhttp_t *p)
{
    struct sg_exchange *x = rs_exchange(p);
    int status = p->status_code;
    sg_hdrs_classify(&x->rsh);
    if (status >= 100 && status < 200) {
        if (status == 101)
            return -1; /* we never ask for an upgrade */
        x->in_1xx = true;
        struct sg_xresp r = {.status = status, .interim = true, .body = SG_XB_NONE};
        x->ops->resp_head(x->cl, &x->rsh, &r);
        return 1;
    }
    uint64_t now_us = sg_now_us();
    if (x->t_sent_us != 0) {
        x->ttfb_us = (int64_t)(now_us - x->t_sent_us);
        /* The longest first-byte wait, for the stall watch's threshold. */
        uint32_t ms = (uint32_t)(x->ttfb_us / 1000);
        uint32_t cur = atomic_load_explicit(&x->backend->ttfb_max_ms, memory_order_relaxed);
        while (ms > cur && !atomic_compare_exchange_weak_explicit(&x->backend->ttfb_max_ms, &cur,
                                                                   ms, memory_order_relaxed,
                                                                   memory_order_relaxed))
            ;
    }
    exchange_outcome(x, x->backend, OBS_RESPONSE, status, 0);
    struct sg_xresp r = {.status = status};
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    bool chunked_in = (p->flags & F_CHUNKED) != 0;
    if (x->rq.head_method || status == 204 || status == 304)
        r.body = SG_XB_NONE;
    else if (has_cl && !chunked_in) {
        r.body = SG_XB_LENGTH;
        r.length = p->content_length;
    } else
        r.body = SG_XB_STREAM;
    x->resp_head_done = true;
    x->ops->resp_head(x->cl, &x->rsh, &r);
    switch (r.body) {
    case SG_XB_NONE:
        return 1;
    case SG_XB_LENGTH:
        if (r.length == 0)
            return 0; /* llhttp completes the message at once */
        /* Content-Length body: moved without parsing (exchange_up_read). */
        x->resp_body_left = r.length;
        return HPE_PAUSED;
    case SG_XB_STREAM:
        break;
    }
    return 0;
}

static int rs_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sg_exchange *x = rs_exchange(p);
    x->ops->resp_body(x->cl, at, len);
    return 0;
}

static int rs_on_message_complete(llhttp_t *p)
{
    struct sg_exchange *x = rs_exchange(p);
    if (x->in_1xx) {
        x->in_1xx = false;
        return 0;
    }
    x->ops->resp_end(x->cl);
    x->resp_done = true;
    return HPE_PAUSED;
}

/* The response parser's callbacks (llhttp only reads them). */
static const llhttp_settings_t rs_settings = {
    .on_message_begin = rs_on_message_begin,
    .on_status = rs_on_status,
    .on_header_field = rs_on_header_field,
    .on_header_value = rs_on_header_value,
    .on_header_value_complete = rs_on_header_value_complete,
    .on_headers_complete = rs_on_headers_complete,
    .on_body = rs_on_body,
    .on_message_complete = rs_on_message_complete,
};

int sg_exchange_init(struct sg_exchange *x, struct sg_worker *w, const struct sg_wfrontend *fe,
                     const struct sg_xclient_ops *ops, void *cl)
{
    memset(x, 0, sizeof(*x));
    x->replay = evbuffer_new();
    if (x->replay == NULL)
        return SG_ERR;
    x->magic = SG_EXCHANGE_MAGIC;
    x->state = SG_XS_IDLE;
    x->w = w;
    x->fe = fe;
    x->ops = ops;
    x->cl = cl;
    x->connect_us = x->ttfb_us = -1;
    llhttp_init(&x->rs, HTTP_RESPONSE, &rs_settings);
    x->rs.data = x;
    sg_hdrs_init(&x->rsh, 8192, SG_RESP_HDR_BYTES, SG_RESP_HEADERS);
    x->rsh.cache = &w->hcache;
    return SG_OK;
}

void sg_exchange_free(struct sg_exchange *x)
{
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    sg_exchange_stop(x);
    if (x->qtimer != NULL)
        event_free(x->qtimer);
    x->qtimer = NULL;
    evbuffer_free(x->replay);
    x->replay = NULL;
    sg_hdrs_free(&x->rsh);
    x->magic = 0;
}

void sg_exchange_begin(struct sg_exchange *x)
{
    SG_DBUG_ON(x->state != SG_XS_IDLE);
    x->wp = NULL;
    x->backend = NULL;
    x->ntried = 0;
    x->stale_retries = 0;
    x->retries_left = 0;
    x->replayable = true;
    x->req_done = x->awaiting = false;
    x->resp_started = x->resp_done = x->in_1xx = x->resp_head_done = false;
    x->resp_body_left = 0;
    x->t_queued_us = x->t_sent_us = x->queue_us = 0;
    x->connect_us = x->ttfb_us = -1;
    x->nretries = 0;
    x->retry_after = 0;
    x->prio = SG_PRIO_NORMAL;
    x->admitted = false;
}

void sg_exchange_park(struct sg_exchange *x)
{
    sg_hdrs_park(&x->rsh);
    evbuffer_drain(x->replay, evbuffer_get_length(x->replay));
}

/* ----------------------------------------------------------- request path */

/* The hash key of the request, per the pool's hash_key (parsed at load):
 * the client address, the request target, a header value or a cookie
 * value. Points into the request head (or client_ip); NULL when absent. */
static void exchange_hash_key(struct sg_exchange *x, const struct sg_cfg_pool *pc)
{
    const struct sg_hdrs *h = x->rq.h;
    const char *name = pc->hash_key + SG_HASH_NAME_OFF;
    size_t nlen = pc->hash_name_len;
    x->hkey = NULL;
    x->hkeylen = 0;
    switch (pc->hash_src) {
    case SG_HASH_SOURCE:
        x->hkey = x->rq.client_ip;
        x->hkeylen = strlen(x->rq.client_ip);
        break;
    case SG_HASH_URI:
        x->hkey = h->buf + h->first_off;
        x->hkeylen = h->first_len;
        break;
    case SG_HASH_HEADER: {
        const struct sg_hdr *f = sg_hdrs_find(h, name);
        if (x->rq.abs_host_len > 0 && strcasecmp(name, "host") == 0) {
            /* the authority routed by (and sent as Host) */
            x->hkey = x->rq.abs_host;
            x->hkeylen = x->rq.abs_host_len;
        } else if (f != NULL) {
            x->hkey = sg_hdr_value(h, f);
            x->hkeylen = f->val_len;
        }
        break;
    }
    case SG_HASH_COOKIE:
        for (uint32_t i = 0; i < h->n; i++) {
            const struct sg_hdr *f = &h->h[i];
            if (!sg_hdr_name_is(h, f, "cookie"))
                continue;
            const char *v = sg_hdr_value(h, f), *end = v + f->val_len;
            while (v < end) {
                while (v < end && (*v == ' ' || *v == '\t' || *v == ';'))
                    v++;
                const char *semi = memchr(v, ';', (size_t)(end - v));
                const char *pe = semi ? semi : end;
                if ((size_t)(pe - v) > nlen && memcmp(v, name, nlen) == 0 && v[nlen] == '=') {
                    x->hkey = v + nlen + 1;
                    x->hkeylen = (size_t)(pe - x->hkey);
                    return;
                }
                v = pe;
            }
        }
        break;
    }
}

void sg_exchange_start(struct sg_exchange *x)
{
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    struct sg_worker *w = x->w;
    const struct sg_hdrs *h = x->rq.h;
    exchange_set_state(x, SG_XS_CONNECT);
    /* Route, then build the forwarded head once (attempts resend it). */
    const struct sg_hdr *host = sg_hdrs_find(h, "host");
    const char *hname = host ? sg_hdr_value(h, host) : NULL;
    size_t hlen = host ? host->val_len : 0;
    if (x->rq.abs_host_len > 0) {
        hname = x->rq.abs_host;
        hlen = x->rq.abs_host_len;
    }
    const char *url = h->buf + h->first_off;
    size_t plen = h->first_len;
    const char *q = memchr(url, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - url);
    const struct sg_cfg_route *rt = sg_route_match(x->fe->cfg, hname, hlen, url, plen);
    int pi = rt != NULL ? rt->pool_index : x->fe->cfg->default_pool_index;
    x->prio = rt != NULL ? (int)rt->prio : SG_PRIO_NORMAL;
    if (pi < 0) {
        exchange_fail_with(x, 503, SG_END_NO_POOL);
        return;
    }
    x->wp = &w->wpools[pi];
    const struct sg_cfg_pool *pc = x->wp->pool->cfg;
    x->retries_left = pc->retries;
    x->active = true;
    atomic_fetch_add_explicit(&x->wp->pool->active, 1, memory_order_relaxed);
    x->hkey = NULL;
    x->hkeylen = 0;
    if (x->wp->pool->lb->flags & SG_LB_F_KEY)
        exchange_hash_key(x, pc);
    const char *mname = llhttp_method_name((llhttp_method_t)x->rq.method);
    struct sg_http1_fwd f = {
        .method = mname,
        .method_len = strlen(mname),
        .client_ip = x->rq.client_ip,
        .proto = "http",
        .client_minor = x->rq.http_minor,
        .chunked = x->rq.chunked,
        .has_length = x->rq.has_length,
        .length = x->rq.length,
        .default_host = NULL,
        .override_host = x->rq.abs_host_len ? x->rq.abs_host : NULL,
        .override_host_len = x->rq.abs_host_len,
    };
    evbuffer_drain(x->replay, evbuffer_get_length(x->replay));
    x->replayable = true;
    /* HTTP/1.0 without Host: name the backend. */
    if (host == NULL) {
        struct sg_backend *b0 = x->wp->pool->ncfg ? &x->wp->pool->backends[0] : NULL;
        f.default_host = b0 && b0->name[0] != '\0' ? b0->name : "localhost";
    }
    sg_http1_write_request_head(x->replay, h, &f);
    exchange_connect(x);
}

static void exchange_enqueue(struct sg_exchange *x, struct sg_lb_req *lr);
static void exchange_on_grant(struct sg_qentry *e);

/* Picks a backend and starts (or reuses) a connection to it, or queues. */
static void exchange_connect(struct sg_exchange *x)
{
    struct sg_pool *pool = x->wp->pool;
    exchange_set_state(x, SG_XS_CONNECT);
    uint64_t now = sg_now_ms();
    struct sg_lb_req lr = {.exclude = x->tried,
                           .nexclude = x->ntried,
                           .key = x->hkey,
                           .keylen = x->hkeylen,
                           .now_ms = now};
    struct sg_backend *b = pool->lb->pick(sg_wpool_lb_state(x->wp), pool, &lr);
    if (b == NULL && x->ntried > 0) {
        /* Every backend was tried: allow them again (a fresh connection). */
        lr.nexclude = 0;
        b = pool->lb->pick(sg_wpool_lb_state(x->wp), pool, &lr);
    }
    /* Another worker may have taken the last slot since the pick. */
    if (b == NULL || !sg_backend_take_slot(b, now)) {
        exchange_enqueue(x, &lr);
        return;
    }
    if (!x->admitted) {
        x->admitted = true;
        sg_queue_count_admitted(pool, x->prio);
    }
    exchange_connect_to(x, b);
}

/* No backend has room: wait in the pool's queue, or answer 503 at once when
 * no backend is usable at all or the queue is full. */
static void exchange_enqueue(struct sg_exchange *x, struct sg_lb_req *lr)
{
    struct sg_pool *pool = x->wp->pool;
    lr->ignore_room = true;
    struct sg_backend *pref = pool->lb->pick(sg_wpool_lb_state(x->wp), pool, lr);
    if (pref == NULL && lr->nexclude > 0) {
        lr->nexclude = 0;
        pref = pool->lb->pick(sg_wpool_lb_state(x->wp), pool, lr);
    }
    /* No usable backend: an autoscaled pool holds the request (up to
     * hold_timeout) while its scale-up brings one; any other pool says 503. */
    const struct sg_cfg_autoscale *as = &pool->cfg->autoscale;
    bool hold = pref == NULL && as->enabled && as->hold_timeout_ms > 0;
    if (pref == NULL && !hold) {
        exchange_fail_with(x, 503, SG_END_NO_BACKEND);
        return;
    }
    /* The queue deadline's timer is made the first time this connection's
     * requests wait: most never do, and an idle connection then holds no
     * struct event for it. */
    if (x->qtimer == NULL &&
        (x->qtimer = evtimer_new(x->w->base, exchange_queue_timeout, x)) == NULL) {
        exchange_fail_with(x, 503, SG_END_PROXY_ERROR);
        return;
    }
    struct sg_qentry *e = &x->qe;
    e->pool = pool;
    e->pref = pref;
    e->exclude = x->tried;
    e->nexclude = &x->ntried;
    e->key = x->hkey;
    e->keylen = x->hkeylen;
    e->since_ms = lr->now_ms;
    e->prio = x->prio;
    e->on_grant = exchange_on_grant;
    uint32_t timeout_ms = hold ? as->hold_timeout_ms : x->w->cfg->timeouts.queue_ms;
    exchange_set_state(x, SG_XS_QUEUED); /* before the push: a grant may run from it */
    /* The queue's overload control may refuse at once (sg_queue_verdict). */
    uint32_t ra = 1;
    enum sg_qverdict v = sg_queue_admit(x->w, e, timeout_ms, &ra);
    if (v != SG_QV_ADMIT) {
        exchange_set_state(x, SG_XS_CONNECT); /* never queued: nothing to cancel */
        x->retry_after = ra;
        exchange_fail_with(x, 503, v == SG_QV_FULL ? SG_END_QUEUE_FULL : SG_END_SHED);
        return;
    }
    if (!x->admitted) {
        x->admitted = true;
        sg_queue_count_admitted(pool, x->prio);
    }
    x->t_queued_us = sg_now_us();
    struct timeval tv;
    sg_timeval_from_ms(&tv, timeout_ms);
    evtimer_add(x->qtimer, &tv);
}

/* A queued request got a slot (on its owner's thread, from the inbox), or
 * none: the queue began to stand and refused it (a sheddable request). */
static void exchange_on_grant(struct sg_qentry *e)
{
    struct sg_exchange *x = (struct sg_exchange *)((char *)e - offsetof(struct sg_exchange, qe));
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    struct sg_backend *b = e->granted;
    e->granted = NULL;
    if (x->state != SG_XS_QUEUED) { /* cannot happen: ending cancels; be safe */
        if (b != NULL)
            sg_queue_put_slot(x->w, b);
        return;
    }
    if (b == NULL) {
        x->retry_after = sg_queue_retry_after_now(x->wp->pool);
        exchange_fail_with(x, 503, SG_END_SHED); /* counted as shed by the queue */
        return;
    }
    event_del(x->qtimer);
    if (x->t_queued_us != 0) {
        x->queue_us += sg_now_us() - x->t_queued_us;
        x->t_queued_us = 0;
    }
    exchange_set_state(x, SG_XS_CONNECT);
    exchange_connect_to(x, b);
}

/* The queue deadline passed (timeouts.queue, or hold_timeout). */
static void exchange_queue_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sg_exchange *x = arg;
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    if (x->state != SG_XS_QUEUED)
        return;
    struct sg_pool *pool = x->wp->pool;
    sg_queue_count_timeout(pool, x->prio);
    x->retry_after = sg_queue_retry_after_now(pool);
    exchange_fail_with(x, 503, SG_END_QUEUE_TIMEOUT); /* exchange_end cancels */
}

static void exchange_fail(struct sg_exchange *x, enum sg_xfail kind);
static void exchange_up_ready(struct sg_exchange *x);

/* Starts (or reuses) a connection to b, on which the caller holds a slot. */
static void exchange_connect_to(struct sg_exchange *x, struct sg_backend *b)
{
    x->backend = b;
    x->slot = true;
    LIST_INSERT_HEAD(&x->wp->wb[b->id].xs, x, on_backend);
    if (x->ntried < SG_EXCHANGE_MAX_TRIES)
        x->tried[x->ntried++] = b->id;
    atomic_fetch_add_explicit(&b->requests, 1, memory_order_relaxed);
    x->attempt_us = sg_now_us();
    bool allow_idle = x->stale_retries == 0;
    x->up = sg_upstream_acquire(x->w, b, allow_idle, exchange_up_read, exchange_up_write,
                                exchange_up_event, x);
    if (x->up == NULL) {
        exchange_fail(x, SG_XF_CONNECT);
        return;
    }
    if (x->up->reused)
        exchange_up_ready(x);
}

/* ------------------------------------------------------------------ retry */

enum sg_xretry sg_exchange_retry_decide(const struct sg_xretry_in *in)
{
    bool down = in->kind == SG_XF_DOWN;
    if (in->resp_started)
        return down ? SG_XR_KEEP : SG_XR_ABORT;
    /* The backend closed a pooled connection as we used it: again on a fresh
     * connection to the same backend, at no retry cost. */
    if (in->replayable && in->was_reused && in->kind == SG_XF_RESET && in->stale_retries < 2)
        return SG_XR_STALE;
    /* Before any response byte: a request that never left the proxy can
     * always go elsewhere; one that was sent, only when idempotent. */
    bool never_sent = in->kind == SG_XF_CONNECT || in->kind == SG_XF_CONNECT_TIMEOUT;
    if (in->replayable && in->retries_left > 0 && (never_sent || in->idempotent)) {
        /* The retry budget bounds the retries a busy pool would pay for
         * twice: after a timeout the backend may still be working on the
         * request, and a backend taken down (SG_XF_DOWN) may have been
         * overloaded. A refused connection, or one closed or reset before
         * any response byte, is the kernel speaking for a backend that is
         * gone (a dead process's sockets, a closed listener, a pooled
         * connection it dropped): the retry adds no work to a busy pool,
         * and a dead backend's whole batch in flight must go elsewhere. */
        if (in->kind == SG_XF_CONNECT || in->kind == SG_XF_RESET)
            return SG_XR_RESEND;
        return SG_XR_RETRY;
    }
    /* A backend taken down may still answer what it was sent: a request
     * that may not go elsewhere waits for it (up to timeouts.server). */
    if (down)
        return SG_XR_KEEP;
    return in->kind == SG_XF_CONNECT_TIMEOUT || in->kind == SG_XF_TIMEOUT ? SG_XR_FAIL_504
                                                                          : SG_XR_FAIL_502;
}

bool sg_retry_budget_allows(const struct sg_cfg_retry_budget *rb, uint32_t active,
                            uint32_t retrying)
{
    double budget = rb->percent * (double)active / 100.0;
    if (budget < (double)rb->min_retries)
        budget = (double)rb->min_retries;
    return (double)retrying < budget;
}

/* Asks the pool's retry budget for one more retry of x, counting it (and
 * a refusal in retries_denied when count_denied). */
static bool exchange_retry_allowed(struct sg_exchange *x, bool count_denied)
{
    struct sg_pool *p = x->wp->pool;
    uint32_t active = atomic_load_explicit(&p->active, memory_order_relaxed);
    uint32_t retrying = atomic_load_explicit(&p->retries_active, memory_order_relaxed);
    if (x->retrying && retrying > 0)
        retrying--; /* this request is already counted */
    if (!sg_retry_budget_allows(&p->cfg->retry_budget, active, retrying)) {
        if (count_denied)
            atomic_fetch_add_explicit(&p->retries_denied, 1, memory_order_relaxed);
        return false;
    }
    if (!x->retrying) {
        x->retrying = true;
        atomic_fetch_add_explicit(&p->retries_active, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&p->retries_total, 1, memory_order_relaxed);
    return true;
}

/* The error kind each failure counts as, for the backend and its pool. */
static const enum sg_ek exchange_fail_kind[] = {[SG_XF_CONNECT] = SG_EK_CONNECT,
                                                [SG_XF_CONNECT_TIMEOUT] = SG_EK_TIMEOUT,
                                                [SG_XF_RESET] = SG_EK_RESET,
                                                [SG_XF_TIMEOUT] = SG_EK_TIMEOUT,
                                                [SG_XF_DOWN] = SG_EK_TIMEOUT};

/* Another attempt, on another backend where there is one: the failed
 * attempt on fb is released and counted already, the budget said yes. */
static void exchange_retry(struct sg_exchange *x, struct sg_backend *fb, const char *why)
{
    x->retries_left--;
    x->nretries++;
    if (fb != NULL)
        sg_wstat_add(&x->wp->wb[fb->id].st.retries, 1);
    sg_wstat_add(&x->wp->st.retries, 1);
    sg_log_debug("%s: retrying after %s on %s", x->rq.client_ip, why, fb ? fb->name : "?");
    exchange_connect(x);
}

/* An upstream attempt failed: retry when sg_exchange_retry_decide allows
 * (and, for SG_XR_RETRY, the budget), else end with 502/504 (or abort
 * mid-response). A retry free of the budget (SG_XR_RESEND) still counts in
 * retries_total, never in retries_active. */
static void exchange_fail(struct sg_exchange *x, enum sg_xfail kind)
{
    struct sg_xretry_in in = {
        .kind = kind,
        .resp_started = x->resp_started,
        .replayable = x->replayable,
        .was_reused = x->up != NULL && x->up->reused,
        .idempotent = x->rq.idempotent,
        .stale_retries = x->stale_retries,
        .retries_left = x->retries_left,
    };
    struct sg_backend *fb = x->backend;
    exchange_release_up(x, false);
    enum sg_xretry d = sg_exchange_retry_decide(&in);
    if (d == SG_XR_ABORT) {
        exchange_end(x);
        x->ops->abort(x->cl, SG_END_NONE);
        return;
    }
    if (d == SG_XR_STALE) {
        x->stale_retries++;
        x->ntried--; /* the same backend may be picked again */
        exchange_connect(x);
        return;
    }
    SG_BUG_ON(d == SG_XR_KEEP); /* only for SG_XF_DOWN */
    exchange_outcome(x, fb, OBS_FAILED, 0, exchange_fail_kind[kind]);
    if (d == SG_XR_RESEND) {
        atomic_fetch_add_explicit(&x->wp->pool->retries_total, 1, memory_order_relaxed);
        exchange_retry(x, fb, kind == SG_XF_CONNECT ? "connect failure" : "connection lost");
        return;
    }
    if (d == SG_XR_RETRY && exchange_retry_allowed(x, true)) {
        exchange_retry(x, fb, kind == SG_XF_CONNECT_TIMEOUT ? "connect timeout" : "timeout");
        return;
    }
    if (kind == SG_XF_CONNECT_TIMEOUT || kind == SG_XF_TIMEOUT)
        exchange_fail_with(x, 504, SG_END_BACKEND_TIMEOUT);
    else
        exchange_fail_with(x, 502, SG_END_BACKEND_ERROR);
}

/* ----------------------------------------------------------- upstream side */

/* The upstream connection is ready: stage the request head (and what body
 * is kept) and let the client side send it and the rest of the body. */
static void exchange_up_ready(struct sg_exchange *x)
{
    struct sg_upconn *c = x->up;
    c->connected = true;
    c->nreq++;
    x->t_sent_us = sg_now_us();
    x->connect_us = (int64_t)(x->t_sent_us - x->attempt_us);
    exchange_set_state(x, SG_XS_RELAY);
    llhttp_init(&x->rs, HTTP_RESPONSE, &rs_settings);
    x->rs.data = x;
    x->resp_started = x->resp_head_done = x->resp_done = x->in_1xx = false;
    x->resp_body_left = 0;
    exchange_server_clock(x);
    if (!c->reused)
        sg_conn_set_write_low(&c->conn, SG_OUT_LOW);
    /* Copy (not move) the replay buffer: a retry may need it again. */
    struct evbuffer *out = x->w->uout;
    struct evbuffer_iovec vec[8];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(x->replay, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(x->replay);
    while (left > 0) {
        int n = evbuffer_peek(x->replay, (ev_ssize_t)left, &pos, vec, 8);
        size_t moved = 0;
        for (int i = 0; i < n && i < 8; i++) {
            evbuffer_add(out, vec[i].iov_base, vec[i].iov_len);
            moved += vec[i].iov_len;
        }
        if (moved == 0)
            break;
        left -= moved;
        evbuffer_ptr_set(x->replay, &pos, moved, EVBUFFER_PTR_ADD);
    }
    x->ops->ready(x->cl);
}

/* Copies the next n bytes of in into the replay buffer while the request is
 * still small enough to be sent again on a retry. */
static void exchange_keep_for_replay(struct sg_exchange *x, struct evbuffer *in, size_t n)
{
    if (!x->replayable)
        return;
    if (evbuffer_get_length(x->replay) + n > SG_REPLAY_MAX) {
        x->replayable = false;
        return;
    }
    struct evbuffer_iovec vec[8];
    int cnt = evbuffer_peek(in, (ev_ssize_t)n, NULL, vec, 8);
    size_t left = n;
    for (int i = 0; i < cnt && i < 8 && left > 0; i++) {
        size_t k = vec[i].iov_len < left ? vec[i].iov_len : left;
        evbuffer_add(x->replay, vec[i].iov_base, k);
        left -= k;
    }
    if (left > 0)
        x->replayable = false; /* more pieces than peeked: give up replay */
}

void sg_exchange_req_body(struct sg_exchange *x, const char *p, size_t n)
{
    SG_BUG_ON(x->up == NULL);
    sg_http1_body_piece(x->w->uout, p, n, x->rq.chunked);
    if (x->replayable) {
        if (evbuffer_get_length(x->replay) + n + 32 > SG_REPLAY_MAX)
            x->replayable = false;
        else
            sg_http1_body_piece(x->replay, p, n, x->rq.chunked);
    }
}

void sg_exchange_req_body_move(struct sg_exchange *x, struct evbuffer *src, size_t n)
{
    exchange_keep_for_replay(x, src, n);
    evbuffer_remove_buffer(src, x->w->uout, n);
}

void sg_exchange_req_end(struct sg_exchange *x)
{
    x->req_done = true;
    exchange_server_clock(x);
    if (x->rq.chunked && x->up != NULL) {
        evbuffer_add(x->w->uout, "0\r\n\r\n", 5);
        if (x->replayable)
            evbuffer_add(x->replay, "0\r\n\r\n", 5);
    }
}

void sg_exchange_send_req(struct sg_exchange *x, bool more)
{
    if (x->up != NULL)
        sg_conn_send(&x->up->conn, x->w->uout, more);
    else
        evbuffer_drain(x->w->uout, evbuffer_get_length(x->w->uout));
}

size_t sg_exchange_out_high(void)
{
    return sg_conn_buffers_full() ? 0 : SG_OUT_HIGH;
}

bool sg_exchange_req_full(const struct sg_exchange *x)
{
    return x->up != NULL && evbuffer_get_length(x->up->conn.out) > sg_exchange_out_high();
}

/* The response is complete: release the connection (reusable when both
 * messages ended cleanly and nothing extra came) and hand over. */
static void exchange_done(struct sg_exchange *x, bool eof)
{
    bool reusable = !eof && x->req_done && llhttp_should_keep_alive(&x->rs) &&
                    evbuffer_get_length(x->up->conn.in) == 0 && !x->rq.upgrade;
    exchange_release_up(x, reusable);
    exchange_end(x);
    x->ops->done(x->cl, eof);
}

/* The next read from the backend takes what SG_OUT_BUDGET leaves beside
 * the response bytes still waiting for the client (4 KiB at least: below
 * that, reading pauses at SG_OUT_HIGH anyway). */
static void exchange_read_room(struct sg_exchange *x)
{
    if (x->up == NULL)
        return;
    size_t held = x->ops->resp_buffered(x->cl);
    size_t room = held < SG_OUT_BUDGET - 128 - 4096 ? SG_OUT_BUDGET - 128 - held : 4096;
    x->up->conn.read_size = room;
}

static void exchange_up_read(struct sg_conn *c, void *arg)
{
    struct sg_exchange *x = arg;
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    if (x->up == NULL || &x->up->conn != c)
        return;
    struct evbuffer *in = c->in;
    const struct sg_xclient_ops *ops = x->ops;
    exchange_progress(x->backend);
    /* Everything staged from this read goes out in one send, so a response
     * head and its body share a segment. */
    while (evbuffer_get_length(in) > 0 && !x->resp_done) {
        if (x->resp_body_left > 0) {
            /* Content-Length body: move whole chains, no copy, no parsing. */
            size_t n = evbuffer_get_length(in);
            if (n > x->resp_body_left)
                n = (size_t)x->resp_body_left;
            ops->resp_body_move(x->cl, in, n);
            x->resp_body_left -= n;
            if (x->resp_body_left == 0)
                x->resp_done = true;
        } else {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t len = v.iov_len < SG_HTTP1_FEED_MAX ? v.iov_len : SG_HTTP1_FEED_MAX;
            x->rsh.exec_seq++;
            llhttp_errno_t err = llhttp_execute(&x->rs, v.iov_base, len);
            if (x->up == NULL)
                return;
            if (err == HPE_OK) {
                evbuffer_drain(in, len);
            } else if (err == HPE_PAUSED) {
                evbuffer_drain(in,
                               (size_t)(llhttp_get_error_pos(&x->rs) - (const char *)v.iov_base));
            } else {
                sg_log_debug("%s: bad response from %s: %s", x->rq.client_ip, x->backend->name,
                             llhttp_get_error_reason(&x->rs));
                exchange_outcome(x, x->backend, OBS_ERROR, 0, SG_EK_BAD_RESPONSE);
                exchange_fail_with(x, 502, SG_END_BAD_RESPONSE);
                return;
            }
        }
        if (ops->resp_buffered(x->cl) > sg_exchange_out_high() && ops->resp_flush(x->cl)) {
            sg_conn_read_off(c);
            x->up_read_paused = true;
            return;
        }
    }
    ops->resp_flush(x->cl);
    if (x->resp_done) {
        exchange_done(x, false);
        return;
    }
    exchange_read_room(x);
}

static void exchange_up_write(struct sg_conn *c, void *arg)
{
    struct sg_exchange *x = arg;
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    if (x->up == NULL || &x->up->conn != c)
        return;
    x->ops->req_resume(x->cl);
}

void sg_exchange_resp_resume(struct sg_exchange *x)
{
    if (!x->up_read_paused || x->up == NULL)
        return;
    x->up_read_paused = false;
    exchange_read_room(x);
    sg_conn_read_on(&x->up->conn);
    exchange_up_read(&x->up->conn, x);
}

static void exchange_up_event(struct sg_conn *c, short what, void *arg)
{
    struct sg_exchange *x = arg;
    SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
    if (x->up == NULL || &x->up->conn != c)
        return;
    if (what & SG_CONN_CONNECTED) {
        exchange_up_ready(x);
        return;
    }
    if (!x->up->connected) {
        exchange_fail(x, (what & SG_CONN_TIMEOUT) ? SG_XF_CONNECT_TIMEOUT : SG_XF_CONNECT);
        return;
    }
    if ((what & SG_CONN_EOF) && x->resp_started && !x->resp_done) {
        /* Body delimited by close: EOF completes it. Anything else is a
         * truncated response and the client must not see it as complete. */
        exchange_up_read(c, x);
        if (x->up == NULL || &x->up->conn != c)
            return;
        if (llhttp_message_needs_eof(&x->rs)) {
            llhttp_errno_t err = llhttp_finish(&x->rs);
            x->ops->resp_flush(x->cl);
            if ((err == HPE_OK || err == HPE_PAUSED) && x->resp_done) {
                exchange_done(x, true);
                return;
            }
        }
        exchange_outcome(x, x->backend, OBS_ERROR, 0, SG_EK_RESET);
        exchange_release_up(x, false);
        exchange_end(x);
        x->ops->abort(x->cl, SG_END_BACKEND_RESET);
        return;
    }
    if (x->resp_started) { /* reset or timeout mid-response */
        bool to = (what & SG_CONN_TIMEOUT) != 0;
        exchange_outcome(x, x->backend, OBS_ERROR, 0, to ? SG_EK_TIMEOUT : SG_EK_RESET);
        exchange_release_up(x, false);
        exchange_end(x);
        x->ops->abort(x->cl, to ? SG_END_BACKEND_TIMEOUT : SG_END_BACKEND_RESET);
        return;
    }
    exchange_fail(x, (what & SG_CONN_TIMEOUT) ? SG_XF_TIMEOUT : SG_XF_RESET);
}

/* ------------------------------------------------- backends taken down */

/* x waits for a response from a backend its health checks took down (a
 * backend that accepts and never answers would hold it until
 * timeouts.server): when it may go elsewhere (sg_exchange_retry_decide with
 * SG_XF_DOWN) and the retry budget allows, the attempt is dropped, counted
 * as a timeout of that backend, and retried; else x keeps waiting. Returns
 * true when only the budget kept it (ask again once retries have ended);
 * `again`: such a second ask, whose refusal is not counted again. */
static bool exchange_backend_down(struct sg_exchange *x, bool again)
{
    if (x->state != SG_XS_RELAY || x->up == NULL)
        return false;
    struct sg_xretry_in in = {
        .kind = SG_XF_DOWN,
        .resp_started = x->resp_started,
        .replayable = x->replayable,
        .was_reused = x->up->reused,
        .idempotent = x->rq.idempotent,
        .stale_retries = x->stale_retries,
        .retries_left = x->retries_left,
    };
    if (sg_exchange_retry_decide(&in) != SG_XR_RETRY)
        return false;
    if (!exchange_retry_allowed(x, !again))
        return true;
    struct sg_backend *fb = x->backend;
    exchange_release_up(x, false);
    exchange_outcome(x, fb, OBS_FAILED, 0, exchange_fail_kind[SG_XF_DOWN]);
    exchange_retry(x, fb, "its backend was taken down by its health checks");
    return false;
}

/* The exchanges of one backend slot taken down. Each is first moved to a
 * local list and put back on the slot's list just before it is handled: a
 * retry (or an end) then unlinks it as usual, and one that another's
 * handling ends leaves the local list by itself. Returns how many only the
 * retry budget kept. */
static uint32_t exchange_slot_down(struct sg_wbackend *wb, bool again)
{
    struct sg_xlist todo = LIST_HEAD_INITIALIZER(todo);
    struct sg_exchange *x;
    uint32_t held = 0;
    while ((x = LIST_FIRST(&wb->xs)) != NULL) {
        LIST_REMOVE(x, on_backend);
        LIST_INSERT_HEAD(&todo, x, on_backend);
    }
    while ((x = LIST_FIRST(&todo)) != NULL) {
        LIST_REMOVE(x, on_backend);
        LIST_INSERT_HEAD(&wb->xs, x, on_backend);
        SG_DCHECK_MAGIC(x, SG_EXCHANGE_MAGIC);
        if (exchange_backend_down(x, again))
            held++;
    }
    return held;
}

uint32_t sg_exchange_backends_down(struct sg_worker *w, bool again)
{
    uint32_t held = 0;
    for (size_t i = 0; i < w->pools->n; i++) {
        struct sg_wpool *wp = &w->wpools[i];
        for (size_t j = 0, n_ = sg_pool_nused(wp->pool); j < n_; j++) {
            struct sg_backend *b = &wp->pool->backends[j];
            struct sg_wbackend *wb = &wp->wb[j];
            if (!again) {
                uint32_t gen = atomic_load_explicit(&b->down_gen, memory_order_relaxed);
                if (gen == wb->down_seen)
                    continue;
                wb->down_seen = gen;
            }
            if (atomic_load_explicit(&b->health, memory_order_relaxed) == SG_HEALTH_DOWN &&
                LIST_FIRST(&wb->xs) != NULL)
                held += exchange_slot_down(wb, again);
        }
    }
    return held;
}
