/* session.c: the client side of the proxy and the life of one request.
 *
 * A session owns the client connection (conn.c) and, while a request is in flight,
 * one upstream connection. The request is parsed by llhttp; the parser is
 * paused (HPE_PAUSED) at the end of the request head, so no body byte is
 * consumed before an upstream connection is ready, and at the end of every
 * message, so pipelined requests wait in the input buffer until the current
 * response is complete. Responses are parsed by a second llhttp instance and
 * re-framed for the client. Bodies stream through with backpressure: when the
 * peer's output buffer passes SG_OUT_HIGH the reading side is disabled until
 * the write callback sees it drained to SG_OUT_LOW.
 *
 * Ownership: a session is never freed inside one of its own callbacks; it is
 * marked dead and freed from free_ev on the next loop iteration (Redis's
 * freeClientAsync pattern). Every callback checks `dead` first. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/http1.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"
#include "surgegate/route.h"
#include "surgegate/session.h"
#include "surgegate/stats.h"
#include "surgegate/upstream.h"
#include "surgegate/worker.h"

#define SG_OUT_HIGH       (256 * 1024) /* pause the producer above this */
#define SG_OUT_LOW        (64 * 1024)  /* resume it at or below this */
#define SG_IN_HIGH        (64 * 1024)  /* socket read high watermark */
#define SG_FEED_MAX       (64 * 1024)  /* bytes handed to llhttp per call */
#define SG_REPLAY_MAX     (64 * 1024)  /* request bytes kept for a retry */
#define SG_RESP_HDR_BYTES (64 * 1024)
#define SG_RESP_HEADERS   256

enum session_upfail { UPFAIL_CONNECT, UPFAIL_CONNECT_TIMEOUT, UPFAIL_RESET, UPFAIL_TIMEOUT };

static void session_client_read(struct sg_conn *bev, void *arg);
static void session_client_write(struct sg_conn *bev, void *arg);
static void session_client_event(struct sg_conn *bev, short what, void *arg);
static void session_up_read(struct sg_conn *bev, void *arg);
static void session_up_write(struct sg_conn *bev, void *arg);
static void session_up_event(struct sg_conn *bev, short what, void *arg);
static void session_process(struct sg_session *s);
static void session_connect(struct sg_session *s);
static void session_finish(struct sg_session *s);

/* Output staging. Bytes for the client and for the backend are built in the
 * worker's scratch buffers (w->cout, w->uout) and handed over with
 * session_send() right after each parser run, before any other session can
 * run: it writes straight to the socket when nothing is queued, which saves
 * the EPOLLOUT round trip (two epoll_ctl calls and a loop pass) that waiting
 * for writability costs, and queues only what the kernel did not take. */
static void session_flush_client(struct sg_session *s)
{
    if (!s->dead)
        sg_conn_send(&s->cc, s->w->cout, s->resp_body_left > 0);
    else
        evbuffer_drain(s->w->cout, evbuffer_get_length(s->w->cout));
}

static void session_flush_up(struct sg_session *s)
{
    if (!s->dead && s->up != NULL)
        sg_conn_send(&s->up->conn, s->w->uout, s->req_body_left > 0);
    else
        evbuffer_drain(s->w->uout, evbuffer_get_length(s->w->uout));
}

/* ---------------------------------------------------------------- lifecycle */

static void session_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    event_del(&s->free_ev);
    s->magic = 0;
    free(s);
}

/* Gives back the request slot on s->backend (kicking the pool's queue). */
static void session_put_slot(struct sg_session *s)
{
    if (!s->slot)
        return;
    s->slot = false;
    sg_queue_put_slot(s->w, s->backend);
}

/* The request leaves the pool's active count (and its retry count). */
static void session_req_end(struct sg_session *s)
{
    if (s->queued) {
        sg_queue_cancel(s->w, &s->qe);
        s->queued = false;
    }
    if (s->wp == NULL)
        return;
    struct sg_pool *p = s->wp->pool;
    if (s->retrying) {
        s->retrying = false;
        atomic_fetch_sub_explicit(&p->retries_active, 1, memory_order_relaxed);
    }
    if (s->active) {
        s->active = false;
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------ stats */

/* Counts an upstream error of kind k against backend b (and its pool). */
static void session_count_error(struct sg_session *s, struct sg_backend *b, enum sg_ek k)
{
    if (s->wp == NULL || b == NULL)
        return;
    sg_wstat_add(&s->wp->wb[b->id].st.errors[k], 1);
    sg_wstat_add(&s->wp->st.errors[k], 1);
}

static void session_record(struct sg_wstats *st, int cls, uint64_t bin, uint64_t bout,
                           const struct sg_session *s, uint64_t total)
{
    sg_wstat_add(&st->requests, 1);
    if (cls >= 0)
        sg_wstat_add(&st->responses[cls], 1);
    sg_wstat_add(&st->bytes_in, bin);
    sg_wstat_add(&st->bytes_out, bout);
    sg_wstats_lat(st, SG_LAT_QUEUE, s->queue_us);
    if (s->connect_us >= 0)
        sg_wstats_lat(st, SG_LAT_CONNECT, (uint64_t)s->connect_us);
    if (s->ttfb_us >= 0)
        sg_wstats_lat(st, SG_LAT_TTFB, (uint64_t)s->ttfb_us);
    sg_wstats_lat(st, SG_LAT_TOTAL, total);
}

/* One access log line for the request that just ended. */
static void session_log(struct sg_session *s, int status, uint64_t now, uint64_t total,
                        uint64_t bin, uint64_t bout)
{
    struct sg_alog_rec r = {
        .start_us = sg_wall_us() - (now - s->t_start_us),
        .client_ip = s->client_ip,
        .http_minor = s->rq.http_minor,
        .frontend = s->fe->cfg->name,
        .pool = s->wp != NULL ? s->wp->pool->name : NULL,
        .backend = s->backend != NULL ? s->backend->name : NULL,
        .status = status,
        .bytes_in = bin,
        .bytes_out = bout,
        .queue_us = s->wp != NULL ? (int64_t)s->queue_us : -1,
        .connect_us = s->connect_us,
        .ttfb_us = s->ttfb_us,
        .total_us = (int64_t)total,
        .retries = s->nretries,
        .end = s->end != NULL ? s->end : "ok",
    };
    if (s->head_ready) {
        r.method = llhttp_method_name((llhttp_method_t)s->rq.method);
        r.method_len = strlen(r.method);
        r.target = s->rqh.buf + s->rqh.first_off;
        r.target_len = s->rqh.first_len;
        const struct sg_hdr *h = sg_hdrs_find(&s->rqh, "host");
        if (h != NULL) {
            r.host = sg_hdr_value(&s->rqh, h);
            r.host_len = h->val_len;
        }
        if ((h = sg_hdrs_find(&s->rqh, "referer")) != NULL) {
            r.referer = sg_hdr_value(&s->rqh, h);
            r.referer_len = h->val_len;
        }
        if ((h = sg_hdrs_find(&s->rqh, "user-agent")) != NULL) {
            r.user_agent = sg_hdr_value(&s->rqh, h);
            r.ua_len = h->val_len;
        }
    }
    sg_alog_write(s->w->alog, &r);
}

/* The request in progress ended with `status` sent to the client (0: none):
 * records it once in the pool's and the backend's stats. */
static void session_account(struct sg_session *s, int status)
{
    if (s->accounted)
        return;
    s->accounted = true;
    uint64_t now = sg_now_us();
    if (s->t_queued_us != 0) {
        s->queue_us += now - s->t_queued_us;
        s->t_queued_us = 0;
    }
    uint64_t total = now - s->t_start_us;
    uint64_t bin = s->cc.nin - s->in0, bout = s->cc.nout - s->out0;
    int cls = status >= 100 && status < 600 ? status / 100 - 1 : -1;
    if (s->wp != NULL) { /* else never routed (bad request, no pool) */
        session_record(&s->wp->st, cls, bin, bout, s, total);
        if (s->backend != NULL)
            session_record(&s->wp->wb[s->backend->id].st, cls, bin, bout, s, total);
    }
    if (s->w->alog != NULL)
        session_log(s, status, now, total, bin, bout);
}

/* Closes everything the session holds and schedules its memory to be freed.
 * Safe to call from any of the session's callbacks; idempotent. */
static void session_close(struct sg_session *s)
{
    if (s->dead)
        return;
    s->dead = true;
    struct sg_worker *w = s->w;
    if (!s->accounted) {
        if (s->end == NULL)
            s->end = "closed";
        session_account(s, s->resp_head_sent ? s->resp_status : 0);
    }
    if (s->up != NULL) {
        sg_upstream_free(s->up);
        s->up = NULL;
    }
    session_put_slot(s);
    session_req_end(s);
    sg_conn_close(&s->cc);

    event_del(&s->timer);
    if (s->replay)
        evbuffer_free(s->replay);
    sg_hdrs_free(&s->rqh);
    sg_hdrs_free(&s->rsh);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
    event_active(&s->free_ev, EV_TIMEOUT, 0);
    sg_worker_session_closed(w, s->fe);
}

void sg_session_abort(struct sg_session *s)
{
    session_close(s);
}

static bool session_idle(const struct sg_session *s)
{
    return s->state == SG_SS_HEAD && !s->head_started;
}

void sg_session_shutdown(struct sg_session *s)
{
    if (s->dead)
        return;
    if (session_idle(s) && evbuffer_get_length(s->cc.in) == 0) {
        session_close(s);
        return;
    }
    s->client_close = true; /* Connection: close on the response in progress */
}

#define SG_LINGER_MS 2000

/* The last response is out: close, or linger first. Closing a socket whose
 * receive queue holds unread bytes makes the kernel send RST, which can
 * destroy the response still on its way to the client (a 400 or 413 answered
 * before the body was read). So when the request was not read to its end,
 * stop writing (FIN), discard what still arrives until the client closes or
 * SG_LINGER_MS pass, then close: nginx's lingering close. */
static void session_drain_done(struct sg_session *s)
{
    if (!s->linger) {
        session_close(s);
        return;
    }
    s->state = SG_SS_LINGER;
    (void)shutdown(s->cc.fd, SHUT_WR);
    evbuffer_drain(s->cc.in, evbuffer_get_length(s->cc.in));
    struct timeval tv;
    sg_timeval_from_ms(&tv, SG_LINGER_MS);
    evtimer_add(&s->timer, &tv);
    sg_conn_set_timeouts(&s->cc, NULL, NULL);
    sg_conn_read_on(&s->cc);
}

/* Writes what is queued to the client, then closes (or lingers). */
static void session_drain(struct sg_session *s)
{
    s->state = SG_SS_DRAIN;
    s->linger = !s->req_done || evbuffer_get_length(s->cc.in) > 0;
    event_del(&s->timer);
    sg_conn_read_off(&s->cc);
    sg_conn_set_write_low(&s->cc, 0);
    if (evbuffer_get_length(s->cc.out) == 0)
        session_drain_done(s);
    else
        sg_conn_fin_follows(&s->cc);
}

/* Gives the upstream connection back (or closes it) and forgets it. */
static void session_release_up(struct sg_session *s, bool reusable)
{
    if (s->up != NULL) {
        sg_upstream_release(s->up, reusable);
        s->up = NULL;
    }
    /* After the connection is parked, so a queued request can reuse it. */
    session_put_slot(s);
}

/* Answers the current request with one of the proxy's own responses. When a
 * response is already under way the only honest thing left is to close. */
static void session_error(struct sg_session *s, int status, const char *why)
{
    if (s->dead)
        return;
    if (s->resp_head_sent) {
        session_close(s);
        return;
    }
    session_release_up(s, false);
    if (s->end == NULL)
        s->end = status >= 500 ? "proxy_error" : status == 408 ? "client_timeout" : "bad_request";
    s->resp_status = status;
    session_account(s, status);
    session_req_end(s);
    if (status >= 500)
        sg_log_debug("%s: %d %s", s->client_ip, status, why ? why : "");
    /* Keep the connection only when the request was read to its end. */
    bool close = !s->req_done || s->client_close || status < 500 || s->rq_upgrade;
    sg_http1_write_error(s->w->cout, status, close);
    session_flush_client(s);
    s->resp_head_sent = true;
    s->resp_done = true;
    if (close) {
        session_drain(s);
        return;
    }
    session_finish(s);
}

/* The current exchange is complete on both sides: next request or close. */
static void session_finish(struct sg_session *s)
{
    session_account(s, s->resp_status);
    s->nrequests++;
    session_req_end(s);
    if (s->client_close || s->w->stopping || s->rq_upgrade) {
        session_drain(s);
        return;
    }
    s->state = SG_SS_HEAD;
    s->head_started = false;
    s->head_ready = false;
    s->backend = NULL;
    /* Idle until the next request: hold no header or replay memory. */
    sg_hdrs_park(&s->rqh);
    sg_hdrs_park(&s->rsh);
    evbuffer_drain(s->replay, evbuffer_get_length(s->replay));
    llhttp_resume(&s->rq);
    struct timeval tv;
    sg_timeval_from_ms(&tv, s->w->cfg->timeouts.keepalive_ms);
    evtimer_add(&s->timer, &tv);
    if (s->client_read_paused) {
        s->client_read_paused = false;
        sg_conn_read_on(&s->cc);
    }
    /* Pipelined requests may already be waiting in the input buffer. */
    if (evbuffer_get_length(s->cc.in) > 0)
        session_process(s);
}

/* --------------------------------------------------- request parser callbacks */

static inline struct sg_session *rq_session(llhttp_t *p)
{
    return p->data;
}

static int rq_on_message_begin(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    sg_hdrs_reset(&s->rqh);
    s->head_started = true;
    s->head_ready = false;
    s->req_done = false;
    s->req_has_body = false;
    s->req_chunked_out = false;
    s->body_bytes = 0;
    s->pending_error = 0;
    s->error_why = NULL;
    s->expect_continue = false;
    s->resp_started = s->resp_head_sent = s->resp_done = false;
    s->resp_chunked_out = false;
    s->in_1xx = false;
    s->ntried = 0;
    s->head_lf = false;
    s->req_body_left = 0;
    s->chunk_ext_bytes = 0;
    s->stale_retries = 0;
    s->retries_left = 0;
    s->replayable = true;
    s->t_start_us = sg_now_us();
    s->t_queued_us = s->t_sent_us = s->queue_us = 0;
    s->connect_us = s->ttfb_us = -1;
    s->in0 = s->cc.nin - evbuffer_get_length(s->cc.in);
    s->out0 = s->cc.nout;
    s->nretries = 0;
    s->resp_status = 0;
    s->end = NULL;
    s->accounted = false;
    return 0;
}

static int rq_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = rq_session(p);
    /* The request line limit counts "METHOD SP target SP HTTP/1.1". */
    if (s->rqh.first_len == 0) {
        size_t fixed = strlen(llhttp_method_name((llhttp_method_t)p->method)) + 10;
        uint32_t max = s->w->cfg->limits.max_request_line;
        s->rqh.max_first = max > fixed ? max - (uint32_t)fixed : 1;
    }
    if (sg_hdrs_add_first(&s->rqh, at, len) != SG_OK) {
        s->pending_error = 414;
        return -1;
    }
    return 0;
}

static int hdrs_error(struct sg_session *s, const struct sg_hdrs *hs)
{
    if (hs->too_many || hs->too_large)
        s->pending_error = 431;
    else if (hs->folded) {
        s->pending_error = 400;
        s->error_why = "obs-fold";
    } else
        s->pending_error = 400;
    return -1;
}

static int rq_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = rq_session(p);
    if (s->head_ready)
        return 0; /* trailer fields: not forwarded */
    if (sg_hdrs_add_field(&s->rqh, at, len) != SG_OK)
        return hdrs_error(s, &s->rqh);
    return 0;
}

static int rq_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = rq_session(p);
    if (s->head_ready)
        return 0;
    if (sg_hdrs_add_value(&s->rqh, at, len) != SG_OK)
        return hdrs_error(s, &s->rqh);
    return 0;
}

static int rq_on_header_value_complete(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    if (s->head_ready)
        return 0;
    if (sg_hdrs_value_done(&s->rqh) != SG_OK) {
        s->pending_error = 400;
        s->error_why = "invalid header value";
        return -1;
    }
    return 0;
}

/* Accepts origin-form, "*" for OPTIONS, and absolute-form "http://auth/path"
 * (RFC 9112 3.2.2: the target's authority wins over any Host header; the
 * target is forwarded in origin-form with Host set to the authority). */
static int rq_check_target(struct sg_session *s)
{
    struct sg_hdrs *hs = &s->rqh;
    const char *u = hs->buf + hs->first_off;
    s->abs_host_off = s->abs_host_len = 0;
    if (hs->first_len > 0 && u[0] == '/')
        return 0;
    if (hs->first_len == 1 && u[0] == '*' && s->rq.method == HTTP_OPTIONS)
        return 0;
    if (hs->first_len > 7 && strncasecmp(u, "http://", 7) == 0) {
        const char *auth = u + 7;
        const char *slash = memchr(auth, '/', hs->first_len - 7);
        if (slash == NULL || slash == auth)
            return SG_ERR; /* "http://host" without a path, or no authority */
        for (const char *c = auth; c < slash; c++)
            if ((unsigned char)*c <= ' ' || *c == '@' || *c == '?' || *c == '#' || *c == '\\')
                return SG_ERR;
        s->abs_host_off = (uint32_t)(auth - hs->buf);
        s->abs_host_len = (uint32_t)(slash - auth);
        hs->first_len -= (uint32_t)(slash - u);
        hs->first_off += (uint32_t)(slash - u);
        return 0;
    }
    return SG_ERR;
}

static int rq_on_headers_complete(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    const struct sg_cfg *cfg = s->w->cfg;
    bool has_te = (p->flags & F_TRANSFER_ENCODING) != 0;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    const char *why = NULL;
    int st = sg_http1_check_request(&s->rqh, p->http_major, p->http_minor, has_te, chunked, has_cl,
                                    &why);
    if (st != 0) {
        s->pending_error = st;
        s->error_why = why;
        return -1;
    }
    if (p->http_major != 1) {
        /* HTTP/0.9 has no headers to check; HTTP/2 does not speak this framing. */
        s->pending_error = p->http_major == 0 ? 400 : 505;
        s->error_why = "HTTP version";
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        s->pending_error = 405;
        s->error_why = "CONNECT";
        return -1;
    }
    if (rq_check_target(s) != SG_OK) {
        s->pending_error = 400;
        s->error_why = "request target";
        return -1;
    }
    if (has_cl && cfg->limits.max_body_size > 0 && p->content_length > cfg->limits.max_body_size) {
        s->pending_error = 413;
        return -1;
    }
    sg_hdrs_classify(&s->rqh);
    s->client_10 = (p->http_major == 1 && p->http_minor == 0);
    s->req_has_body = chunked || (has_cl && p->content_length > 0);
    s->req_chunked_out = chunked;
    s->head_method = (p->method == HTTP_HEAD);
    switch (p->method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
        s->idempotent = true;
        break;
    default:
        s->idempotent = false;
    }
    s->expect_continue = sg_hdrs_has_token(&s->rqh, "expect", "100-continue");
    if (!llhttp_should_keep_alive(p) || p->upgrade)
        s->client_close = true; /* an Upgrade request ends the connection */
    s->head_ready = true;
    return HPE_PAUSED;
}

/* Chunk extensions are parsed and dropped, never forwarded; their size is
 * capped so they cannot become an unmetered stream (CVE-2024-22019). */
#define SG_CHUNK_EXT_MAX 4096

static int rq_on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = rq_session(p);
    s->chunk_ext_bytes += len;
    if (s->chunk_ext_bytes > SG_CHUNK_EXT_MAX) {
        s->pending_error = 400;
        s->error_why = "chunk extension too long";
        return -1;
    }
    return 0;
}

static int rq_on_chunk_complete(llhttp_t *p)
{
    rq_session(p)->chunk_ext_bytes = 0;
    return 0;
}

static int rq_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = rq_session(p);
    uint64_t max = s->w->cfg->limits.max_body_size;
    s->body_bytes += len;
    if (max > 0 && s->body_bytes > max) {
        s->pending_error = 413;
        return -1;
    }
    SG_BUG_ON(s->up == NULL);
    sg_http1_body_piece(s->w->uout, at, len, s->req_chunked_out);
    if (s->replayable) {
        if (evbuffer_get_length(s->replay) + len + 32 > SG_REPLAY_MAX)
            s->replayable = false;
        else
            sg_http1_body_piece(s->replay, at, len, s->req_chunked_out);
    }
    return 0;
}

static int rq_on_message_complete(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    s->req_done = true;
    if (s->req_chunked_out && s->up != NULL) {
        evbuffer_add(s->w->uout, "0\r\n\r\n", 5);
        if (s->replayable)
            evbuffer_add(s->replay, "0\r\n\r\n", 5);
    }
    return HPE_PAUSED;
}

static llhttp_settings_t rq_settings;

/* -------------------------------------------------- response parser callbacks */

static int rs_on_message_begin(llhttp_t *p)
{
    struct sg_session *s = p->data;
    sg_hdrs_reset(&s->rsh);
    s->resp_started = true;
    return 0;
}

static int rs_on_status(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = p->data;
    return sg_hdrs_add_first(&s->rsh, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = p->data;
    if (s->resp_head_sent && !s->in_1xx)
        return 0; /* trailers */
    return sg_hdrs_add_field(&s->rsh, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = p->data;
    if (s->resp_head_sent && !s->in_1xx)
        return 0;
    return sg_hdrs_add_value(&s->rsh, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value_complete(llhttp_t *p)
{
    struct sg_session *s = p->data;
    if (s->resp_head_sent && !s->in_1xx)
        return 0;
    return sg_hdrs_value_done(&s->rsh) == SG_OK ? 0 : -1;
}

static int rs_on_headers_complete(llhttp_t *p)
{
    struct sg_session *s = p->data;
    struct evbuffer *out = s->w->cout;
    int status = p->status_code;
    sg_hdrs_classify(&s->rsh);
    if (status >= 100 && status < 200) {
        if (status == 101)
            return -1; /* we never ask for an upgrade */
        s->in_1xx = true;
        if (status != 100 && !s->client_10) {
            struct sg_http1_resp r = {.status = status, .head_only = true};
            sg_http1_write_response_head(out, &s->rsh, &r);
        }
        return 1;
    }
    struct sg_backend *b = s->backend;
    uint64_t now_us = sg_now_us();
    s->resp_status = status;
    if (s->t_sent_us != 0)
        s->ttfb_us = (int64_t)(now_us - s->t_sent_us);
    if (b != NULL) {
        uint64_t now = now_us / 1000u;
        if (status >= 500)
            atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
        sg_outlier_observe(b, status >= 500, now);
        const struct sg_lb_ops *lb = s->wp->pool->lb;
        if (lb->observe != NULL)
            lb->observe(s->wp->lb_state, b, now, now_us - s->attempt_us);
    }
    struct sg_http1_resp r = {.status = status};
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    bool chunked_in = (p->flags & F_CHUNKED) != 0;
    if (s->head_method || status == 204 || status == 304) {
        r.head_only = true;
        r.keep_cl = status != 204;
    } else if (has_cl && !chunked_in) {
        r.has_length = true;
        r.length = p->content_length;
    } else if (!s->client_10) {
        r.chunked = true;
    } else {
        s->client_close = true; /* HTTP/1.0: the close ends the body */
    }
    /* A response that arrives before the whole request body means the rest
     * of the body can never be parsed reliably: close after it. */
    if (!s->req_done || s->w->stopping)
        s->client_close = true;
    r.close = s->client_close;
    r.keepalive_10 = s->client_10 && !r.close;
    s->resp_chunked_out = r.chunked;
    sg_http1_write_response_head(out, &s->rsh, &r);
    s->resp_head_sent = true;
    if (r.head_only)
        return 1;
    if (r.has_length) {
        if (r.length == 0)
            return 0; /* llhttp completes the message at once */
        /* Content-Length body: moved without parsing (session_up_read). */
        s->resp_body_left = r.length;
        return HPE_PAUSED;
    }
    return 0;
}

static int rs_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sg_session *s = p->data;
    sg_http1_body_piece(s->w->cout, at, len, s->resp_chunked_out);
    return 0;
}

static int rs_on_message_complete(llhttp_t *p)
{
    struct sg_session *s = p->data;
    if (s->in_1xx) {
        s->in_1xx = false;
        return 0;
    }
    if (s->resp_chunked_out)
        evbuffer_add(s->w->cout, "0\r\n\r\n", 5);
    s->resp_done = true;
    return HPE_PAUSED;
}

static llhttp_settings_t rs_settings;

static pthread_once_t session_parsers_once = PTHREAD_ONCE_INIT;

/* Fills the parser settings once, whichever worker gets there first. */
static void session_parsers_setup(void)
{
    llhttp_settings_init(&rq_settings);
    rq_settings.on_message_begin = rq_on_message_begin;
    rq_settings.on_url = rq_on_url;
    rq_settings.on_header_field = rq_on_header_field;
    rq_settings.on_header_value = rq_on_header_value;
    rq_settings.on_header_value_complete = rq_on_header_value_complete;
    rq_settings.on_headers_complete = rq_on_headers_complete;
    rq_settings.on_body = rq_on_body;
    rq_settings.on_chunk_extension_name = rq_on_chunk_ext;
    rq_settings.on_chunk_extension_value = rq_on_chunk_ext;
    rq_settings.on_chunk_complete = rq_on_chunk_complete;
    rq_settings.on_message_complete = rq_on_message_complete;
    llhttp_settings_init(&rs_settings);
    rs_settings.on_message_begin = rs_on_message_begin;
    rs_settings.on_status = rs_on_status;
    rs_settings.on_header_field = rs_on_header_field;
    rs_settings.on_header_value = rs_on_header_value;
    rs_settings.on_header_value_complete = rs_on_header_value_complete;
    rs_settings.on_headers_complete = rs_on_headers_complete;
    rs_settings.on_body = rs_on_body;
    rs_settings.on_message_complete = rs_on_message_complete;
}

static void session_parsers_init(void)
{
    pthread_once(&session_parsers_once, session_parsers_setup);
}

/* ------------------------------------------------------------ request path */

/* Maps a request parse failure to the status to answer. */
static int session_parse_status(struct sg_session *s, llhttp_errno_t err)
{
    if (s->pending_error)
        return s->pending_error;
    if (s->rqh.first_too_long)
        return 414;
    if (s->rqh.too_many || s->rqh.too_large)
        return 431;
    SG_UNUSED(err);
    return 400;
}

/* llhttp folds "Name:<CRLF> value" into a plain value without a trace, so
 * the raw head bytes are scanned for a line starting with SP/HTAB (obs-fold,
 * RFC 9112 5.2: rejected). `head_lf` carries an LF seen at the end of the
 * previous chunk. Only head bytes are scanned: the parser pauses at the end
 * of the head. */
static bool session_head_has_fold(struct sg_session *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->head_lf && (p[i] == ' ' || p[i] == '\t'))
            return true;
        s->head_lf = p[i] == '\n';
    }
    return false;
}

/* Copies the next n input bytes into the replay buffer while the request
 * is still small enough to be sent again on a retry. */
static void session_keep_for_replay(struct sg_session *s, struct evbuffer *in, size_t n)
{
    if (!s->replayable)
        return;
    if (evbuffer_get_length(s->replay) + n > SG_REPLAY_MAX) {
        s->replayable = false;
        return;
    }
    struct evbuffer_iovec vec[8];
    int cnt = evbuffer_peek(in, (ev_ssize_t)n, NULL, vec, 8);
    size_t left = n;
    for (int i = 0; i < cnt && i < 8 && left > 0; i++) {
        size_t k = vec[i].iov_len < left ? vec[i].iov_len : left;
        evbuffer_add(s->replay, vec[i].iov_base, k);
        left -= k;
    }
    if (left > 0)
        s->replayable = false; /* more pieces than peeked: give up replay */
}

/* Runs the request parser over buffered client input until it pauses, needs
 * more bytes, fails, or backpressure says stop. */
static void session_feed_request_run(struct sg_session *s)
{
    struct evbuffer *in = s->cc.in;
    for (;;) {
        if (s->dead || (s->head_ready && s->state != SG_SS_FORWARD))
            return;
        if (s->state == SG_SS_FORWARD) {
            if (s->req_done)
                return;
            if (evbuffer_get_length(s->up->conn.out) > SG_OUT_HIGH) {
                sg_conn_read_off(&s->cc);
                s->client_read_paused = true;
                return;
            }
        }
        size_t avail = evbuffer_get_length(in);
        if (s->state == SG_SS_FORWARD && s->req_body_left > 0) {
            if (avail == 0)
                return;
            size_t n = avail < s->req_body_left ? avail : (size_t)s->req_body_left;
            session_keep_for_replay(s, in, n);
            evbuffer_remove_buffer(in, s->w->uout, n);
            s->req_body_left -= n;
            s->body_bytes += n;
            session_flush_up(s);
            if (s->req_body_left == 0) {
                /* What on_message_complete would do, then a clean parser for
                 * the next request on this connection. */
                s->req_done = true;
                llhttp_reset(&s->rq);
                sg_conn_set_timeouts(&s->cc, NULL, &s->w->tv_client);
                return;
            }
            continue;
        }
        if (avail == 0 && !s->kick)
            return;
        s->kick = false;
        struct evbuffer_iovec v;
        const char *data = "";
        size_t len = 0;
        if (avail > 0 && evbuffer_peek(in, -1, NULL, &v, 1) >= 1) {
            data = v.iov_base;
            len = v.iov_len < SG_FEED_MAX ? v.iov_len : SG_FEED_MAX;
        }
        if (!s->head_started && len > 0 && s->state == SG_SS_HEAD && s->nrequests > 0) {
            /* First byte of a later request: its header deadline starts now
             * (the first request's deadline counts from accept). */
            struct timeval tv;
            sg_timeval_from_ms(&tv, s->w->cfg->timeouts.http_request_ms);
            evtimer_add(&s->timer, &tv);
            s->head_started = true;
        }
        s->rqh.exec_seq++;
        bool in_head = s->state == SG_SS_HEAD;
        llhttp_errno_t err = llhttp_execute(&s->rq, data, len);
        if (err == HPE_OK || err == HPE_PAUSED)
            session_flush_up(s);
        else
            evbuffer_drain(s->w->uout, evbuffer_get_length(s->w->uout));
        if (s->dead)
            return;
        if (in_head && (err == HPE_OK || err == HPE_PAUSED)) {
            size_t used = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&s->rq) - data);
            if (session_head_has_fold(s, data, used)) {
                err = HPE_USER;
                s->pending_error = 400;
                s->error_why = "obs-fold";
                s->head_ready = false;
            }
        }
        if (err == HPE_OK) {
            evbuffer_drain(in, len);
            if (len == 0)
                return;
            continue;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            size_t used = (size_t)(llhttp_get_error_pos(&s->rq) - data);
            evbuffer_drain(in, used);
            if (err == HPE_PAUSED_UPGRADE) {
                /* A bodyless Upgrade request: forwarded as a plain request
                 * (Upgrade is hop-by-hop); the connection ends after it. */
                s->rq_upgrade = true;
                s->req_done = true;
            }
            if (s->head_ready && s->state == SG_SS_HEAD) {
                event_del(&s->timer);
                session_connect(s);
                return;
            }
            if (s->req_done && s->state == SG_SS_FORWARD) {
                if (s->req_has_body) /* the body read timeout is over */
                    sg_conn_set_timeouts(&s->cc, NULL, &s->w->tv_client);
                /* The client asked to close after this request: nothing more
                 * is read from it until the response is out (a reset shows
                 * when the response is written; what it sent past the
                 * request is dealt with by the lingering close). A new
                 * connection then never costs an epoll_ctl (conn.c). */
                if (s->client_close && !s->rq_upgrade)
                    sg_conn_read_off(&s->cc);
                return;
            }
            /* An Upgrade request the parser stopped on between requests: the
             * connection cannot be parsed further. */
            session_drain(s);
            return;
        }
        /* Framing or limit error: nothing after it is ever forwarded. */
        int st = session_parse_status(s, err);
        sg_log_debug("%s: request rejected with %d: %s (%s)", s->client_ip, st,
                     s->error_why ? s->error_why : llhttp_get_error_reason(&s->rq),
                     llhttp_errno_name(err));
        if (s->up != NULL || s->state == SG_SS_CONNECT)
            session_release_up(s, false);
        s->req_done = false; /* forces close */
        session_error(s, st, s->error_why);
        return;
    }
}

/* Feeds the parser, then lets the socket read again if its input had filled up. */
static void session_feed_request(struct sg_session *s)
{
    session_feed_request_run(s);
    if (!s->dead)
        sg_conn_input_drained(&s->cc);
}

static void session_process(struct sg_session *s)
{
    if (s->dead)
        return;
    switch (s->state) {
    case SG_SS_HEAD:
    case SG_SS_FORWARD:
        session_feed_request(s);
        break;
    case SG_SS_LINGER:
        evbuffer_drain(s->cc.in, evbuffer_get_length(s->cc.in));
        sg_conn_input_drained(&s->cc);
        break;
    case SG_SS_CONNECT:
    case SG_SS_DRAIN:
        break;
    }
}

/* The upstream connection is ready: send what we have and let the body flow. */
static void session_up_ready(struct sg_session *s)
{
    struct sg_upconn *c = s->up;
    c->connected = true;
    c->nreq++;
    s->t_sent_us = sg_now_us();
    s->connect_us = (int64_t)(s->t_sent_us - s->attempt_us);
    s->state = SG_SS_FORWARD;
    llhttp_init(&s->rs, HTTP_RESPONSE, &rs_settings);
    s->rs.data = s;
    s->resp_started = s->resp_head_sent = s->resp_done = s->in_1xx = false;
    s->resp_body_left = 0;
    if (!c->reused) {
        sg_conn_set_timeouts(&c->conn, &s->w->tv_server, &s->w->tv_server);
        sg_conn_set_write_low(&c->conn, SG_OUT_LOW);
    }
    /* Copy (not move) the replay buffer: a retry may need it again. */
    struct evbuffer *out = s->w->uout;
    struct evbuffer_iovec vec[8];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(s->replay, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(s->replay);
    while (left > 0) {
        int n = evbuffer_peek(s->replay, (ev_ssize_t)left, &pos, vec, 8);
        size_t moved = 0;
        for (int i = 0; i < n && i < 8; i++) {
            evbuffer_add(out, vec[i].iov_base, vec[i].iov_len);
            moved += vec[i].iov_len;
        }
        if (moved == 0)
            break;
        left -= moved;
        evbuffer_ptr_set(s->replay, &pos, moved, EVBUFFER_PTR_ADD);
    }
    session_flush_up(s);
    if (s->req_done) {
        return; /* everything is sent; wait for the response */
    }
    if (s->expect_continue && !s->client_10 && s->body_bytes == 0 && s->req_has_body) {
        evbuffer_add(s->w->cout, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        session_flush_client(s);
        s->expect_continue = false;
    }
    if (!s->req_chunked_out && s->req_has_body) {
        /* Content-Length body: moved without parsing (session_feed_request);
         * the parser stays paused and is reset when the body is complete.
         * On a retry the replay buffer already carried body_bytes of it. */
        s->req_body_left = s->rq.content_length - s->body_bytes;
    } else {
        llhttp_resume(&s->rq);
        s->kick = true; /* let the parser reach message-complete for bodyless requests */
    }
    if (s->req_has_body && s->body_bytes == 0) /* inactivity limit while the body arrives */
        sg_conn_set_timeouts(&s->cc, &s->w->tv_client, &s->w->tv_client);
    session_feed_request(s);
}

static void session_fail_upstream(struct sg_session *s, enum session_upfail kind);
static void session_enqueue(struct sg_session *s, struct sg_lb_req *lr);
static void session_on_grant(struct sg_qentry *e);
static void session_connect_to(struct sg_session *s, struct sg_backend *b);

/* The hash balancer's key for the current request, per the pool's hash_key:
 * the client address, the request target, a header value or a cookie value.
 * Points into the request head (or client_ip); empty when absent. */
static void session_hash_key(struct sg_session *s, const struct sg_cfg_pool *pc)
{
    const char *name = pc->hash_key + SG_HASH_NAME_OFF;
    size_t nlen = pc->hash_name_len;
    s->hkey = NULL;
    s->hkeylen = 0;
    switch (pc->hash_src) {
    case SG_HASH_SOURCE:
        s->hkey = s->client_ip;
        s->hkeylen = strlen(s->client_ip);
        break;
    case SG_HASH_URI:
        s->hkey = s->rqh.buf + s->rqh.first_off;
        s->hkeylen = s->rqh.first_len;
        break;
    case SG_HASH_HEADER: {
        const struct sg_hdr *h = sg_hdrs_find(&s->rqh, name);
        if (h != NULL) {
            s->hkey = sg_hdr_value(&s->rqh, h);
            s->hkeylen = h->val_len;
        }
        break;
    }
    case SG_HASH_COOKIE:
        for (uint32_t i = 0; i < s->rqh.n; i++) {
            const struct sg_hdr *h = &s->rqh.h[i];
            if (!sg_hdr_name_is(&s->rqh, h, "cookie"))
                continue;
            const char *v = sg_hdr_value(&s->rqh, h), *end = v + h->val_len;
            while (v < end) {
                while (v < end && (*v == ' ' || *v == '\t' || *v == ';'))
                    v++;
                const char *semi = memchr(v, ';', (size_t)(end - v));
                const char *pe = semi ? semi : end;
                if ((size_t)(pe - v) > nlen && memcmp(v, name, nlen) == 0 && v[nlen] == '=') {
                    s->hkey = v + nlen + 1;
                    s->hkeylen = (size_t)(pe - s->hkey);
                    return;
                }
                v = pe;
            }
        }
        break;
    }
}

/* Picks a backend and starts (or reuses) a connection to it. */
static void session_connect(struct sg_session *s)
{
    struct sg_worker *w = s->w;
    s->state = SG_SS_CONNECT;
    if (s->ntried == 0) {
        /* First attempt: route, build the forwarded head once. */
        const struct sg_hdr *host = sg_hdrs_find(&s->rqh, "host");
        const char *hname = host ? sg_hdr_value(&s->rqh, host) : NULL;
        size_t hlen = host ? host->val_len : 0;
        if (s->abs_host_len > 0) {
            hname = s->rqh.buf + s->abs_host_off;
            hlen = s->abs_host_len;
        }
        const char *url = s->rqh.buf + s->rqh.first_off;
        size_t plen = s->rqh.first_len;
        const char *q = memchr(url, '?', plen);
        if (q != NULL)
            plen = (size_t)(q - url);
        int pi = sg_route_pick(s->fe->cfg, hname, hlen, url, plen);
        if (pi < 0) {
            s->end = "no_pool";
            session_error(s, 503, "no pool for request");
            return;
        }
        s->wp = &w->wpools[pi];
        s->retries_left = s->wp->pool->cfg->retries;
        s->active = true;
        atomic_fetch_add_explicit(&s->wp->pool->active, 1, memory_order_relaxed);
        s->hkey = NULL;
        s->hkeylen = 0;
        if (s->wp->pool->lb->flags & SG_LB_F_KEY)
            session_hash_key(s, s->wp->pool->cfg);
        const char *mname = llhttp_method_name((llhttp_method_t)s->rq.method);
        struct sg_http1_fwd f = {
            .method = mname,
            .method_len = strlen(mname),
            .client_ip = s->client_ip,
            .proto = "http",
            .client_minor = s->rq.http_minor,
            .chunked = s->req_chunked_out,
            .has_length = (s->rq.flags & F_CONTENT_LENGTH) != 0,
            .length = s->rq.content_length,
            .default_host = NULL,
            .override_host = s->abs_host_len ? s->rqh.buf + s->abs_host_off : NULL,
            .override_host_len = s->abs_host_len,
        };
        evbuffer_drain(s->replay, evbuffer_get_length(s->replay));
        s->replayable = true;
        /* HTTP/1.0 without Host: name the backend (filled per attempt below). */
        if (host == NULL) {
            struct sg_backend *b0 = s->wp->pool->ncfg ? &s->wp->pool->backends[0] : NULL;
            f.default_host = b0 && b0->name[0] != '\0' ? b0->name : "localhost";
        }
        sg_http1_write_request_head(s->replay, &s->rqh, &f);
    }
    struct sg_pool *pool = s->wp->pool;
    uint64_t now = sg_now_ms();
    struct sg_lb_req lr = {.exclude = s->tried,
                           .nexclude = s->ntried,
                           .key = s->hkey,
                           .keylen = s->hkeylen,
                           .now_ms = now};
    struct sg_backend *b = pool->lb->pick(sg_wpool_lb_state(s->wp), pool, &lr);
    if (b == NULL && s->ntried > 0) {
        /* Every backend was tried: allow them again (a fresh connection). */
        lr.nexclude = 0;
        b = pool->lb->pick(sg_wpool_lb_state(s->wp), pool, &lr);
    }
    /* Another worker may have taken the last slot since the pick. */
    if (b == NULL || !sg_backend_take_slot(b, now)) {
        session_enqueue(s, &lr);
        return;
    }
    session_connect_to(s, b);
}

/* No backend has room: wait in the pool's queue, or answer 503 at once when
 * no backend is usable at all or the queue is full. */
static void session_enqueue(struct sg_session *s, struct sg_lb_req *lr)
{
    struct sg_pool *pool = s->wp->pool;
    lr->ignore_room = true;
    struct sg_backend *pref = pool->lb->pick(sg_wpool_lb_state(s->wp), pool, lr);
    if (pref == NULL && lr->nexclude > 0) {
        lr->nexclude = 0;
        pref = pool->lb->pick(sg_wpool_lb_state(s->wp), pool, lr);
    }
    /* No usable backend: an autoscaled pool holds the request (up to
     * hold_timeout) while its scale-up brings one; any other pool says 503. */
    const struct sg_cfg_autoscale *as = &pool->cfg->autoscale;
    bool hold = pref == NULL && as->enabled && as->hold_timeout_ms > 0;
    if (pref == NULL && !hold) {
        s->end = "no_backend";
        session_error(s, 503, "no usable backend");
        return;
    }
    struct sg_qentry *e = &s->qe;
    e->pool = pool;
    e->pref = pref;
    e->exclude = s->tried;
    e->nexclude = &s->ntried;
    e->key = s->hkey;
    e->keylen = s->hkeylen;
    e->since_ms = lr->now_ms;
    e->on_grant = session_on_grant;
    s->queued = true; /* before the push: a grant may run from it */
    if (pool->cfg->maxqueue == 0 || !sg_queue_push(s->w, e, pool->cfg->maxqueue)) {
        s->queued = false;
        s->end = "queue_full";
        session_error(s, 503, "queue full");
        return;
    }
    s->t_queued_us = sg_now_us();
    struct timeval tv;
    sg_timeval_from_ms(&tv, hold ? as->hold_timeout_ms : s->w->cfg->timeouts.queue_ms);
    evtimer_add(&s->timer, &tv);
}

/* A queued request got a slot (on its owner's thread, from the inbox). */
static void session_on_grant(struct sg_qentry *e)
{
    struct sg_session *s = (struct sg_session *)((char *)e - offsetof(struct sg_session, qe));
    struct sg_backend *b = e->granted;
    e->granted = NULL;
    s->queued = false;
    event_del(&s->timer);
    if (s->t_queued_us != 0) {
        s->queue_us += sg_now_us() - s->t_queued_us;
        s->t_queued_us = 0;
    }
    if (s->dead) { /* cannot happen: closing cancels; be safe */
        sg_queue_put_slot(s->w, b);
        return;
    }
    session_connect_to(s, b);
}

/* Starts (or reuses) a connection to b, on which the caller holds a slot. */
static void session_connect_to(struct sg_session *s, struct sg_backend *b)
{
    struct sg_worker *w = s->w;
    s->backend = b;
    s->slot = true;
    if (s->ntried < SG_SESSION_MAX_TRIES)
        s->tried[s->ntried++] = b->id;
    atomic_fetch_add_explicit(&b->requests, 1, memory_order_relaxed);
    s->attempt_us = sg_now_us();
    bool allow_idle = s->stale_retries == 0;
    s->up = sg_upstream_acquire(w, b, allow_idle, session_up_read, session_up_write,
                                session_up_event, s);
    if (s->up == NULL) {
        session_fail_upstream(s, UPFAIL_CONNECT);
        return;
    }
    if (s->up->reused)
        session_up_ready(s);
}

/* Envoy's retry budget: retries in flight stay under `percent` of the pool's
 * active requests, with `min_retries` always allowed. */
static bool session_retry_allowed(struct sg_session *s)
{
    struct sg_pool *p = s->wp->pool;
    const struct sg_cfg_retry_budget *rb = &p->cfg->retry_budget;
    uint32_t active = atomic_load_explicit(&p->active, memory_order_relaxed);
    uint32_t retrying = atomic_load_explicit(&p->retries_active, memory_order_relaxed);
    if (s->retrying && retrying > 0)
        retrying--; /* this request is already counted */
    double budget = rb->percent * (double)active / 100.0;
    if (budget < (double)rb->min_retries)
        budget = (double)rb->min_retries;
    if ((double)retrying >= budget) {
        atomic_fetch_add_explicit(&p->retries_denied, 1, memory_order_relaxed);
        return false;
    }
    if (!s->retrying) {
        s->retrying = true;
        atomic_fetch_add_explicit(&p->retries_active, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&p->retries_total, 1, memory_order_relaxed);
    return true;
}

/* An upstream attempt failed before any response byte: retry on another
 * backend when allowed, else answer 502/504. */
static void session_fail_upstream(struct sg_session *s, enum session_upfail kind)
{
    bool was_reused = s->up != NULL && s->up->reused;
    struct sg_backend *fb = s->backend;
    session_release_up(s, false);
    if (s->resp_started) {
        session_close(s);
        return;
    }
    if (s->replayable && was_reused && kind == UPFAIL_RESET && s->stale_retries < 2) {
        /* The backend closed a pooled connection as we used it: retry on a
         * fresh connection to the same backend, at no retry cost. */
        s->stale_retries++;
        s->ntried--; /* same backend may be picked again */
        session_connect(s);
        return;
    }
    if (fb != NULL) {
        atomic_fetch_add_explicit(&fb->failures, 1, memory_order_relaxed);
        sg_outlier_observe(fb, true, sg_now_ms());
        static const enum sg_ek ek[] = {[UPFAIL_CONNECT] = SG_EK_CONNECT,
                                        [UPFAIL_CONNECT_TIMEOUT] = SG_EK_TIMEOUT,
                                        [UPFAIL_RESET] = SG_EK_RESET,
                                        [UPFAIL_TIMEOUT] = SG_EK_TIMEOUT};
        session_count_error(s, fb, ek[kind]);
    }
    /* Before any response byte: a request that never left the proxy can
     * always go elsewhere; one that was sent, only when idempotent. */
    bool never_sent = kind == UPFAIL_CONNECT || kind == UPFAIL_CONNECT_TIMEOUT;
    if (s->replayable && s->retries_left > 0 && (never_sent || s->idempotent) &&
        session_retry_allowed(s)) {
        s->retries_left--;
        s->nretries++;
        if (fb != NULL)
            sg_wstat_add(&s->wp->wb[fb->id].st.retries, 1);
        sg_wstat_add(&s->wp->st.retries, 1);
        sg_log_debug("%s: retrying after %s failure on %s", s->client_ip,
                     never_sent ? "connect" : "upstream", fb ? fb->name : "?");
        session_connect(s);
        return;
    }
    switch (kind) {
    case UPFAIL_CONNECT_TIMEOUT:
    case UPFAIL_TIMEOUT:
        s->end = "backend_timeout";
        session_error(s, 504, "upstream timeout");
        break;
    default:
        s->end = "backend_error";
        session_error(s, 502, "upstream failed");
        break;
    }
}

/* ----------------------------------------------------------- upstream side */

static void session_up_read(struct sg_conn *bev, void *arg)
{
    struct sg_session *s = arg;
    if (s->dead || s->up == NULL)
        return;
    struct evbuffer *in = (bev)->in;
    struct evbuffer *cout = s->w->cout;
    /* Everything staged from this read goes out in one send, so a response
     * head and its body share a segment. */
    while (evbuffer_get_length(in) > 0 && !s->resp_done) {
        if (s->resp_body_left > 0) {
            /* Content-Length body: move whole chains, no copy, no parsing. */
            size_t n = evbuffer_get_length(in);
            if (n > s->resp_body_left)
                n = (size_t)s->resp_body_left;
            evbuffer_remove_buffer(in, cout, n);
            s->resp_body_left -= n;
            if (s->resp_body_left == 0)
                s->resp_done = true;
        } else {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t len = v.iov_len < SG_FEED_MAX ? v.iov_len : SG_FEED_MAX;
            s->rsh.exec_seq++;
            llhttp_errno_t err = llhttp_execute(&s->rs, v.iov_base, len);
            if (s->dead)
                return;
            if (err == HPE_OK) {
                evbuffer_drain(in, len);
            } else if (err == HPE_PAUSED) {
                evbuffer_drain(in,
                               (size_t)(llhttp_get_error_pos(&s->rs) - (const char *)v.iov_base));
            } else {
                sg_log_debug("%s: bad response from %s: %s", s->client_ip, s->backend->name,
                             llhttp_get_error_reason(&s->rs));
                evbuffer_drain(cout, evbuffer_get_length(cout));
                session_count_error(s, s->backend, SG_EK_BAD_RESPONSE);
                s->end = "bad_response";
                session_error(s, 502, "bad response");
                return;
            }
        }
        if (evbuffer_get_length(cout) + evbuffer_get_length(s->cc.out) > SG_OUT_HIGH) {
            session_flush_client(s);
            if (evbuffer_get_length(s->cc.out) > SG_OUT_HIGH) {
                sg_conn_read_off(bev);
                s->up_read_paused = true;
                return;
            }
        }
    }
    session_flush_client(s);
    if (s->resp_done) {
        /* Reusable only when both messages ended cleanly and nothing extra came. */
        bool reusable = s->req_done && llhttp_should_keep_alive(&s->rs) &&
                        evbuffer_get_length(in) == 0 && !s->rq_upgrade;
        session_release_up(s, reusable);
        if (!s->req_done) {
            session_drain(s);
            return;
        }
        session_finish(s);
    }
}

static void session_up_write(struct sg_conn *bev, void *arg)
{
    struct sg_session *s = arg;
    if (s->dead)
        return;
    if (s->client_read_paused) {
        s->client_read_paused = false;
        sg_conn_read_on(&s->cc);
        session_feed_request(s);
    }
}

static void session_up_event(struct sg_conn *bev, short what, void *arg)
{
    struct sg_session *s = arg;
    if (s->dead || s->up == NULL)
        return;
    if (what & SG_CONN_CONNECTED) {
        session_up_ready(s);
        return;
    }
    if (!s->up->connected) {
        session_fail_upstream(s,
                              (what & SG_CONN_TIMEOUT) ? UPFAIL_CONNECT_TIMEOUT : UPFAIL_CONNECT);
        return;
    }
    if ((what & SG_CONN_EOF) && s->resp_started && !s->resp_done) {
        /* Body delimited by close: EOF completes it. Anything else is a
         * truncated response and the client must not see it as complete. */
        session_up_read(bev, s);
        if (s->dead || s->up == NULL)
            return;
        if (llhttp_message_needs_eof(&s->rs)) {
            llhttp_errno_t err = llhttp_finish(&s->rs);
            session_flush_client(s);
            if ((err == HPE_OK || err == HPE_PAUSED) && s->resp_done) {
                session_release_up(s, false);
                s->client_close = s->client_close || !s->req_done;
                session_finish(s);
                return;
            }
        }
        session_count_error(s, s->backend, SG_EK_RESET);
        s->end = "backend_reset";
        session_close(s);
        return;
    }
    if (s->resp_started) {
        session_count_error(s, s->backend, (what & SG_CONN_TIMEOUT) ? SG_EK_TIMEOUT : SG_EK_RESET);
        s->end = (what & SG_CONN_TIMEOUT) ? "backend_timeout" : "backend_reset";
        session_close(s); /* reset or timeout mid-response */
        return;
    }
    session_fail_upstream(s, (what & SG_CONN_TIMEOUT) ? UPFAIL_TIMEOUT : UPFAIL_RESET);
}

/* ------------------------------------------------------------- client side */

static void session_client_read(struct sg_conn *bev, void *arg)
{
    struct sg_session *s = arg;
    session_process(s);
}

static void session_client_write(struct sg_conn *bev, void *arg)
{
    struct sg_session *s = arg;
    if (s->dead)
        return;
    if (s->state == SG_SS_DRAIN) {
        if (evbuffer_get_length(bev->out) == 0)
            session_drain_done(s);
        return;
    }
    if (s->up_read_paused && s->up != NULL) {
        s->up_read_paused = false;
        sg_conn_read_on(&s->up->conn);
        session_up_read(&s->up->conn, s);
    }
}

static void session_client_event(struct sg_conn *bev, short what, void *arg)
{
    struct sg_session *s = arg;
    if (s->dead)
        return;
    if ((what & SG_CONN_TIMEOUT) && (what & SG_CONN_READING) && s->state == SG_SS_FORWARD &&
        !s->req_done && !s->resp_head_sent) {
        session_error(s, 408, "client body timeout");
        return;
    }
    /* Half-close: a client that shut its side after a complete request still
     * gets its response; then the connection ends. */
    if ((what & SG_CONN_EOF) && (s->state == SG_SS_CONNECT || s->state == SG_SS_FORWARD) &&
        (s->req_done || !s->req_has_body)) {
        s->client_close = true;
        sg_conn_read_off(bev);
        return;
    }
    /* EOF, reset, or a write/read timeout: nothing more can be delivered. */
    if (s->end == NULL)
        s->end = (what & SG_CONN_TIMEOUT) ? "client_timeout" : "client_closed";
    session_close(s);
}

/* Header deadline or keep-alive idle timer. */
static void session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    if (!s->dead && s->queued) {
        sg_queue_cancel(s->w, &s->qe);
        s->queued = false;
        s->end = "queue_timeout";
        session_error(s, 503, "queue timeout");
        return;
    }
    if (!s->dead && s->state == SG_SS_LINGER) {
        session_close(s);
        return;
    }
    if (s->dead || s->state != SG_SS_HEAD)
        return;
    if (!s->head_started && evbuffer_get_length(s->cc.in) == 0) {
        session_close(s); /* idle keep-alive connection: close quietly */
        return;
    }
    s->req_done = false;
    session_error(s, 408, "request head timeout");
}

int sg_session_new(struct sg_worker *w, struct sg_wfrontend *fe, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen)
{
    session_parsers_init();
    const struct sg_cfg_limits *lim = &w->cfg->limits;
    struct sg_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        evutil_closesocket(fd);
        return SG_ERR;
    }
    s->magic = SG_SESSION_MAGIC;
    s->w = w;
    s->fe = fe;
    s->accounted = true;                              /* no request yet */
    if (sg_conn_init(&s->cc, w->base, fd) != SG_OK) { /* closes fd */
        free(s);
        return SG_ERR;
    }
    evtimer_assign(&s->timer, w->base, session_timer_cb, s);
    event_assign(&s->free_ev, w->base, -1, 0, session_free_cb, s);
    s->replay = evbuffer_new();
    if (s->replay == NULL) {
        sg_conn_close(&s->cc);
        free(s);
        return SG_ERR;
    }
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->client_ip,
                  sizeof(s->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, s->client_ip,
                  sizeof(s->client_ip));
    else
        strcpy(s->client_ip, "unix");
    SG_UNUSED(salen);
    llhttp_init(&s->rq, HTTP_REQUEST, &rq_settings);
    s->rq.data = s;
    llhttp_init(&s->rs, HTTP_RESPONSE, &rs_settings);
    s->rs.data = s;
    sg_hdrs_init(&s->rqh, lim->max_request_line, lim->max_header_size, lim->max_headers);
    sg_hdrs_init(&s->rsh, 8192, SG_RESP_HDR_BYTES, SG_RESP_HEADERS);
    s->rqh.cache = &w->hcache;
    s->rsh.cache = &w->hcache;
    s->state = SG_SS_HEAD;

    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;

    sg_conn_setcb(&s->cc, session_client_read, session_client_write, session_client_event, s);
    s->cc.read_high = SG_IN_HIGH;
    sg_conn_set_write_low(&s->cc, SG_OUT_LOW);
    sg_conn_set_timeouts(&s->cc, NULL, &w->tv_client);
    /* The header deadline counts from accept for the first request. */
    struct timeval tv;
    sg_timeval_from_ms(&tv, w->cfg->timeouts.http_request_ms);
    evtimer_add(&s->timer, &tv);
    sg_conn_read_on(&s->cc);
    return SG_OK;
}
