/* session.c: the client side of an HTTP/1 connection.
 *
 * A session owns the client connection (conn.c): it reads and parses requests
 * (llhttp), keeps the connection alive between them and holds pipelined ones
 * back, answers with the proxy's own errors, and writes the responses that
 * its exchange (exchange.c) relays from a backend, framed for this client.
 * The request parser is paused (HPE_PAUSED) at the end of the request head,
 * so no body byte is consumed before the exchange has a backend connection,
 * and at the end of every message, so pipelined requests wait in the input
 * buffer until the current response is complete. Bodies stream through with
 * backpressure: when the peer's output buffer passes SG_OUT_HIGH the reading
 * side is disabled until the write callback sees it drained to SG_OUT_LOW.
 *
 * The exchange talks back through session_xops (struct sg_xclient_ops); the
 * session never touches a backend connection.
 *
 * Ownership: a session is never freed inside one of its own callbacks; it is
 * marked CLOSED and freed from free_ev on the next loop iteration (Redis's
 * freeClientAsync pattern). Every callback checks for CLOSED first. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"
#include "surgegate/conn.h"
#include "surgegate/exchange.h"
#include "surgegate/http1.h"
#include "surgegate/log.h"
#include "surgegate/session.h"
#include "surgegate/worker-t.h"

#include "session-internal.h"

#define SG_IN_HIGH      (64 * 1024) /* socket read high watermark */
#define SG_LINGER_MS    2000
#define SG_STOP_IDLE_MS 500 /* graceful stop: an idle connection's wait for one more request */

static void session_process(struct sg_session *s);
static void session_finish(struct sg_session *s);
static void session_start_exchange(struct sg_session *s);

static inline bool session_dead(const struct sg_session *s)
{
    return s->state == SG_SS_CLOSED;
}

static void session_set_state(struct sg_session *s, enum sg_session_state to)
{
#ifdef SG_DEBUG_CHECKS
    static const unsigned legal[SG_SS__COUNT] = {
        [SG_SS_HEAD] =
            1u << SG_SS_HEAD | 1u << SG_SS_EXCHANGE | 1u << SG_SS_DRAIN | 1u << SG_SS_CLOSED,
        [SG_SS_EXCHANGE] = 1u << SG_SS_HEAD | 1u << SG_SS_DRAIN | 1u << SG_SS_CLOSED,
        [SG_SS_DRAIN] = 1u << SG_SS_LINGER | 1u << SG_SS_CLOSED,
        [SG_SS_LINGER] = 1u << SG_SS_CLOSED,
    };
    SG_CHECK_MAGIC(s, SG_SESSION_MAGIC);
    SG_BUG_ON((unsigned)s->state >= SG_SS__COUNT || !(legal[s->state] & (1u << to)));
#endif
    s->state = to;
}

/* Arms the session's timer for one deadline (replacing any other). */
static void session_deadline(struct sg_session *s, enum sg_session_deadline d, uint32_t ms)
{
    struct timeval tv;
    sg_timeval_from_ms(&tv, ms);
    s->timer_for = d;
    evtimer_add(&s->timer, &tv);
}

static void session_no_deadline(struct sg_session *s)
{
    s->timer_for = SG_SD_NONE;
    event_del(&s->timer);
}

/* Output staging. Bytes for the client are built in the worker's scratch
 * buffer (w->cout) and handed over with session_flush_client() right after
 * each parser run, before any other session can run: it writes straight to
 * the socket when nothing is queued, which saves the EPOLLOUT round trip (two
 * epoll_ctl calls and a loop pass) that waiting for writability costs, and
 * queues only what the kernel did not take. The exchange stages bytes for
 * the backend in w->uout the same way (sg_exchange_send_req). */
static void session_flush_client(struct sg_session *s)
{
    if (!session_dead(s)) {
        if (s->resp_head_sent && evbuffer_get_length(s->w->cout) > 0)
            s->resp_flushed = true;
        sg_conn_send(&s->cc, s->w->cout, s->resp_body_left > 0);
    } else
        evbuffer_drain(s->w->cout, evbuffer_get_length(s->w->cout));
}

static void session_flush_up(struct sg_session *s)
{
    sg_exchange_send_req(&s->x, s->req_body_left > 0);
}

/* ---------------------------------------------------------------- lifecycle */

static void session_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    event_del(&s->free_ev);
    s->magic = 0;
    free(s);
}

/* The request in progress ended with `status` sent to the client (0: none):
 * the exchange records it once in the stats and the access log. */
static void session_account(struct sg_session *s, int status)
{
    if (s->accounted)
        return;
    s->accounted = true;
    struct sg_alog_rec r = {
        .client_ip = s->client_ip,
        .http_minor = s->rq.http_minor,
        .status = status,
        .bytes_in = s->cc.nin - s->in0,
        .bytes_out = s->cc.nout - s->out0,
        .end = sg_end_name(s->end),
    };
    if (s->w->alog != NULL && s->head_ready) {
        r.method = llhttp_method_name((llhttp_method_t)s->rq.method);
        r.method_len = strlen(r.method);
        r.target = s->rqh.buf + s->rqh.first_off;
        r.target_len = s->rqh.first_len;
        /* The authority the request was routed by: an absolute-form
         * target's (session_parse.c), else Host. */
        const struct sg_hdr *h = sg_hdrs_find(&s->rqh, "host");
        if (s->abs_host_len > 0) {
            r.host = s->rqh.buf + s->abs_host_off;
            r.host_len = s->abs_host_len;
        } else if (h != NULL) {
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
    sg_exchange_record(&s->x, &r, s->t_start_us, s->end);
}

/* Closes everything the session holds and schedules its memory to be freed.
 * Safe to call from any of the session's callbacks; idempotent. */
static void session_close(struct sg_session *s)
{
    if (session_dead(s))
        return;
    struct sg_worker *w = s->w;
    if (!s->accounted) {
        if (s->end == SG_END_NONE)
            s->end = SG_END_CLOSED;
        session_account(s, s->resp_head_sent ? s->resp_status : 0);
    }
    session_set_state(s, SG_SS_CLOSED);
    sg_exchange_free(&s->x);
    sg_conn_close(&s->cc);

    session_no_deadline(s);
    sg_hdrs_free(&s->rqh);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
    event_active(&s->free_ev, EV_TIMEOUT, 0);
    w->on_session_closed(w, s->fe);
}

void sg_session_abort(struct sg_session *s)
{
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    session_close(s);
}

/* Between requests, nothing of the next one read. */
static bool session_idle(const struct sg_session *s)
{
    return s->state == SG_SS_HEAD && !s->head_started && evbuffer_get_length(s->cc.in) == 0;
}

/* Graceful stop, for an idle connection. Closing it now would race with
 * its client: a keep-alive client sends its next request as soon as it has
 * read a response, and a request that reaches a closed socket is lost (the
 * client sees the close after sending), or worse, one that sits unread in
 * the socket when it is closed makes the kernel send a reset. So the client
 * gets a moment to send one more request, answered with Connection: close
 * (xop_resp_head, session_error); a connection still idle after it ends
 * with a lingering close (session_timer_cb). Bounded by timeouts.grace
 * (half of it at most, leaving the rest to the lingering close). */
static void session_stop_idle(struct sg_session *s)
{
    uint32_t ms = SG_STOP_IDLE_MS;
    if (ms > s->w->cfg->timeouts.grace_ms / 2)
        ms = s->w->cfg->timeouts.grace_ms / 2;
    session_deadline(s, SG_SD_STOP, ms);
}

void sg_session_shutdown(struct sg_session *s)
{
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    if (session_dead(s))
        return;
    /* A busy session needs nothing here: w->stopping puts Connection: close
     * on its response (unless that is under way already; then it goes on the
     * next one: session_finish makes the connection idle, which comes here
     * again), and the close that follows lingers (session_drain). */
    if (session_idle(s))
        session_stop_idle(s);
}

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
    session_set_state(s, SG_SS_LINGER);
    sg_conn_shutdown(&s->cc);
    evbuffer_drain(s->cc.in, evbuffer_get_length(s->cc.in));
    session_deadline(s, SG_SD_LINGER, SG_LINGER_MS);
    sg_conn_set_timeouts(&s->cc, NULL, NULL);
    sg_conn_read_on(&s->cc);
}

/* Writes what is queued to the client, then closes (or lingers). */
static void session_drain(struct sg_session *s)
{
    session_set_state(s, SG_SS_DRAIN);
    /* A client that asked to close is not read after its request (that saves
     * an epoll_ctl per connection). One whose request came in a single read
     * is done sending; one that dribbled it over several reads may still be
     * sending (against RFC 9112 9.6, but a slow or hostile client does), and
     * a byte arriving after close(2) makes the kernel answer RST, which
     * destroys the response the client has not read yet: linger for it. */
    /* On a graceful stop the proxy closes, not the client, who may be
     * sending its next request already: linger. */
    s->linger = !s->req_done || evbuffer_get_length(s->cc.in) > 0 ||
                (s->reads_stopped && s->req_reads > 1) || s->w->stopping;
    session_no_deadline(s);
    sg_conn_read_off(&s->cc);
    sg_conn_set_write_low(&s->cc, 0);
    if (evbuffer_get_length(s->cc.out) == 0)
        session_drain_done(s);
    else
        sg_conn_fin_follows(&s->cc);
}

/* Answers the current request with one of the proxy's own responses. When a
 * response is already under way the only honest thing left is to close. */
static void session_error(struct sg_session *s, int status, const char *why)
{
    if (session_dead(s))
        return;
    if (s->resp_head_sent) {
        session_close(s);
        return;
    }
    sg_exchange_stop(&s->x);
    if (s->end == SG_END_NONE)
        s->end = status >= 500   ? SG_END_PROXY_ERROR
                 : status == 408 ? SG_END_CLIENT_TIMEOUT
                                 : SG_END_BAD_REQUEST;
    s->resp_status = status;
    session_account(s, status);
    if (status >= 500)
        sg_log_debug("%s: %d %s", s->client_ip, status, why ? why : "");
    /* Keep the connection only when the request was read to its end. */
    bool close = !s->req_done || s->client_close || status < 500 || s->rq_upgrade || s->w->stopping;
    bool head_only = s->head_ready && s->rq.method == HTTP_HEAD;
    sg_http1_write_error(s->w->cout, status, s->x.retry_after, close, head_only);
    session_flush_client(s);
    s->resp_head_sent = true;
    if (close) {
        session_drain(s);
        return;
    }
    session_finish(s);
}

/* The current request is complete on both sides: next request or close. */
static void session_finish(struct sg_session *s)
{
    session_account(s, s->resp_status);
    s->nrequests++;
    /* Stopping, a response that did not say Connection: close (its head
     * went out before the stop) is followed by one more request (the
     * client's answer to a close it was not told of would be a lost
     * request): the connection goes idle for session_stop_idle. */
    if (s->client_close || s->rq_upgrade) {
        session_drain(s);
        return;
    }
    session_set_state(s, SG_SS_HEAD);
    s->head_started = false;
    s->head_ready = false;
    /* Idle until the next request: hold no header or replay memory. */
    sg_hdrs_park(&s->rqh);
    sg_exchange_park(&s->x);
    llhttp_resume(&s->rq);
    if (s->w->stopping)
        session_stop_idle(s);
    else
        session_deadline(s, SG_SD_IDLE, s->w->cfg->timeouts.keepalive_ms);
    if (s->client_read_paused) {
        s->client_read_paused = false;
        sg_conn_read_on(&s->cc);
    }
    /* Pipelined requests may already be waiting in the input buffer. */
    if (evbuffer_get_length(s->cc.in) > 0)
        session_process(s);
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

/* True when the request so far is an HTTP/0.9 line ("GET /path" and its
 * end, no version), which llhttp holds until one more byte arrives: the
 * line ended (the last head byte was LF) before on_url_complete saw a byte
 * after the target, which on the 1.x path is the "H" of the version, long
 * before the line's LF. Such a client sends nothing more: answer at once. */
static bool session_request_is_09(const struct sg_session *s)
{
    return s->head_started && !s->head_ready && !s->line_done && s->head_lf && s->rqh.first_len > 0;
}

/* Runs the request parser over buffered client input until it pauses, needs
 * more bytes, fails, or backpressure says stop. */
static void session_feed_request_run(struct sg_session *s)
{
    struct evbuffer *in = s->cc.in;
    for (;;) {
        bool relaying = sg_exchange_relaying(&s->x);
        if (session_dead(s) || (s->head_ready && !relaying))
            return;
        if (relaying) {
            if (s->req_done)
                return;
            if (sg_exchange_req_full(&s->x)) {
                sg_conn_read_off(&s->cc);
                s->client_read_paused = true;
                return;
            }
        }
        size_t avail = evbuffer_get_length(in);
        if (relaying && s->req_body_left > 0) {
            if (avail == 0)
                return;
            size_t n = avail < s->req_body_left ? avail : (size_t)s->req_body_left;
            sg_exchange_req_body_move(&s->x, in, n);
            s->req_body_left -= n;
            s->body_bytes += n;
            session_flush_up(s);
            if (s->req_body_left == 0) {
                /* What on_message_complete would do, then a clean parser for
                 * the next request on this connection. */
                s->req_done = true;
                sg_exchange_req_end(&s->x);
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
            len = v.iov_len < SG_HTTP1_FEED_MAX ? v.iov_len : SG_HTTP1_FEED_MAX;
        }
        if (!s->head_started && len > 0 && s->state == SG_SS_HEAD &&
            (s->nrequests > 0 || s->timer_for == SG_SD_STOP)) {
            /* First byte of a later request: its header deadline starts now
             * (the first request's deadline counts from accept, unless a
             * graceful stop replaced it). */
            session_deadline(s, SG_SD_HEAD, s->w->cfg->timeouts.http_request_ms);
            s->head_started = true;
        }
        s->rqh.exec_seq++;
        bool in_head = s->state == SG_SS_HEAD;
        llhttp_errno_t err = llhttp_execute(&s->rq, data, len);
        if (err == HPE_OK || err == HPE_PAUSED)
            session_flush_up(s);
        else
            evbuffer_drain(s->w->uout, evbuffer_get_length(s->w->uout));
        if (session_dead(s))
            return;
        if (in_head && (err == HPE_OK || err == HPE_PAUSED)) {
            size_t used = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&s->rq) - data);
            if (session_head_has_fold(s, data, used)) {
                err = HPE_USER;
                s->pending_error = 400;
                s->error_why = "obs-fold";
                s->head_ready = false;
            } else if (err == HPE_OK && session_request_is_09(s)) {
                err = HPE_USER;
                s->pending_error = 400;
                s->error_why = "HTTP/0.9 request";
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
                sg_exchange_req_end(&s->x);
            }
            if (s->head_ready && s->state == SG_SS_HEAD) {
                session_no_deadline(s);
                session_start_exchange(s);
                return;
            }
            if (s->req_done && sg_exchange_relaying(&s->x)) {
                if (s->req_has_body) /* the body read timeout is over */
                    sg_conn_set_timeouts(&s->cc, NULL, &s->w->tv_client);
                /* The client asked to close after this request: nothing more
                 * is read from it until the response is out (a reset shows
                 * when the response is written; what it sent past the
                 * request is dealt with by the lingering close). A new
                 * connection then never costs an epoll_ctl (conn.c). */
                if (s->client_close && !s->rq_upgrade) {
                    sg_conn_read_off(&s->cc);
                    s->reads_stopped = true;
                }
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
        s->req_done = false; /* forces close */
        session_error(s, st, s->error_why);
        return;
    }
}

/* Feeds the parser, then lets the socket read again if its input had filled up. */
static void session_feed_request(struct sg_session *s)
{
    session_feed_request_run(s);
    if (!session_dead(s))
        sg_conn_input_drained(&s->cc);
}

static void session_process(struct sg_session *s)
{
    switch (s->state) {
    case SG_SS_HEAD:
    case SG_SS_EXCHANGE:
        session_feed_request(s);
        break;
    case SG_SS_LINGER:
        evbuffer_drain(s->cc.in, evbuffer_get_length(s->cc.in));
        sg_conn_input_drained(&s->cc);
        break;
    case SG_SS_DRAIN:
    case SG_SS_CLOSED:
    case SG_SS__COUNT:
        break;
    }
}

/* Hands the parsed request head to the exchange (HEAD -> EXCHANGE). */
static void session_start_exchange(struct sg_session *s)
{
    struct sg_xreq *xr = &s->x.rq;
    xr->h = &s->rqh;
    xr->client_ip = s->client_ip;
    xr->abs_host = s->abs_host_len > 0 ? s->rqh.buf + s->abs_host_off : NULL;
    xr->abs_host_len = s->abs_host_len;
    xr->upgrade = s->rq_upgrade;
    session_set_state(s, SG_SS_EXCHANGE);
    sg_exchange_start(&s->x);
}

/* ------------------------------------------- what the exchange asks of us */

static inline struct sg_session *xop_session(void *cl)
{
    struct sg_session *s = cl;
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    return s;
}

/* A backend connection is ready: send the head, then let the body flow. */
static void xop_ready(void *cl)
{
    struct sg_session *s = xop_session(cl);
    session_flush_up(s);
    if (s->req_done)
        return; /* everything is sent; wait for the response */
    if (s->expect_continue && !s->client_10 && s->body_bytes == 0 && s->req_has_body) {
        evbuffer_add(s->w->cout, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        session_flush_client(s);
        s->expect_continue = false;
    }
    if (!s->x.rq.chunked && s->req_has_body) {
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

static void xop_req_resume(void *cl)
{
    struct sg_session *s = xop_session(cl);
    if (s->client_read_paused) {
        s->client_read_paused = false;
        sg_conn_read_on(&s->cc);
        session_feed_request(s);
    }
}

/* Frames the backend's response head for this client. */
static void xop_resp_head(void *cl, const struct sg_hdrs *h, const struct sg_xresp *xr)
{
    struct sg_session *s = xop_session(cl);
    struct evbuffer *out = s->w->cout;
    if (xr->interim) {
        if (xr->status != 100 && !s->client_10) {
            struct sg_http1_resp r = {.status = xr->status, .head_only = true};
            sg_http1_write_response_head(out, h, &r);
        }
        return;
    }
    s->resp_status = xr->status;
    struct sg_http1_resp r = {.status = xr->status};
    switch (xr->body) {
    case SG_XB_NONE:
        r.head_only = true;
        r.keep_cl = xr->status != 204;
        break;
    case SG_XB_LENGTH:
        r.has_length = true;
        r.length = xr->length;
        break;
    case SG_XB_STREAM:
        if (!s->client_10)
            r.chunked = true;
        else
            s->client_close = true; /* HTTP/1.0: the close ends the body */
        break;
    }
    /* A response that arrives before the whole request body means the rest
     * of the body can never be parsed reliably: close after it. */
    if (!s->req_done || s->w->stopping)
        s->client_close = true;
    r.close = s->client_close;
    r.keepalive_10 = s->client_10 && !r.close;
    s->resp_chunked_out = r.chunked;
    s->resp_body_left = r.has_length ? r.length : 0;
    sg_http1_write_response_head(out, h, &r);
    s->resp_head_sent = true;
}

static void xop_resp_body(void *cl, const char *p, size_t n)
{
    struct sg_session *s = cl;
    sg_http1_body_piece(s->w->cout, p, n, s->resp_chunked_out);
}

static void xop_resp_body_move(void *cl, struct evbuffer *src, size_t n)
{
    struct sg_session *s = cl;
    evbuffer_remove_buffer(src, s->w->cout, n);
    s->resp_body_left -= n;
}

static void xop_resp_end(void *cl)
{
    struct sg_session *s = cl;
    if (s->resp_chunked_out)
        evbuffer_add(s->w->cout, "0\r\n\r\n", 5);
}

static size_t xop_resp_buffered(void *cl)
{
    struct sg_session *s = cl;
    return evbuffer_get_length(s->w->cout) + evbuffer_get_length(s->cc.out);
}

static bool xop_resp_flush(void *cl)
{
    struct sg_session *s = cl;
    session_flush_client(s);
    return evbuffer_get_length(s->cc.out) > sg_exchange_out_high();
}

static void xop_done(void *cl, bool eof)
{
    struct sg_session *s = xop_session(cl);
    if (eof) {
        s->client_close = s->client_close || !s->req_done;
        session_finish(s);
        return;
    }
    if (!s->req_done) {
        session_drain(s);
        return;
    }
    session_finish(s);
}

static void xop_fail(void *cl, int status, enum sg_end end)
{
    struct sg_session *s = xop_session(cl);
    /* A response cut short by a bad byte: what was staged of it goes nowhere.
     * When none of it reached the client connection yet (the head and the
     * bad framing came in one read: exchange_up_read flushes at the end of
     * a read), the client gets the proxy's own error instead of a cut
     * connection; once a byte went out only an abort is left. */
    evbuffer_drain(s->w->cout, evbuffer_get_length(s->w->cout));
    if (s->resp_head_sent && !s->resp_flushed) {
        s->resp_head_sent = false;
        s->resp_chunked_out = false;
        s->resp_body_left = 0;
    }
    if (s->end == SG_END_NONE)
        s->end = end;
    session_error(s, status, sg_end_name(end));
}

static void xop_abort(void *cl, enum sg_end end)
{
    struct sg_session *s = xop_session(cl);
    if (s->end == SG_END_NONE)
        s->end = end;
    session_close(s);
}

static const struct sg_xclient_ops session_xops = {
    .ready = xop_ready,
    .req_resume = xop_req_resume,
    .resp_head = xop_resp_head,
    .resp_body = xop_resp_body,
    .resp_body_move = xop_resp_body_move,
    .resp_end = xop_resp_end,
    .resp_buffered = xop_resp_buffered,
    .resp_flush = xop_resp_flush,
    .done = xop_done,
    .fail = xop_fail,
    .abort = xop_abort,
};

/* ------------------------------------------------------------- client side */

static void session_client_read(struct sg_conn *c, void *arg)
{
    struct sg_session *s = arg;
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    s->req_reads++;
    session_process(s);
}

static void session_client_write(struct sg_conn *c, void *arg)
{
    struct sg_session *s = arg;
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    if (session_dead(s))
        return;
    if (s->state == SG_SS_DRAIN) {
        if (evbuffer_get_length(c->out) == 0)
            session_drain_done(s);
        return;
    }
    /* Stopping, and the end of the last response has just left: the client
     * has its moment for one more request from now on. */
    if (s->timer_for == SG_SD_STOP && session_idle(s))
        session_stop_idle(s);
    sg_exchange_resp_resume(&s->x);
}

static void session_client_event(struct sg_conn *c, short what, void *arg)
{
    struct sg_session *s = arg;
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    if (session_dead(s))
        return;
    if ((what & SG_CONN_TIMEOUT) && (what & SG_CONN_READING) && sg_exchange_relaying(&s->x) &&
        !s->req_done && !s->resp_head_sent) {
        session_error(s, 408, "client body timeout");
        return;
    }
    /* Half-close: a client that shut its side after a complete request still
     * gets its response; then the connection ends. */
    if ((what & SG_CONN_EOF) && s->state == SG_SS_EXCHANGE && (s->req_done || !s->req_has_body)) {
        s->client_close = true;
        sg_conn_read_off(c);
        return;
    }
    /* EOF, reset, or a write/read timeout: nothing more can be delivered. */
    if (s->end == SG_END_NONE)
        s->end = (what & SG_CONN_TIMEOUT) ? SG_END_CLIENT_TIMEOUT : SG_END_CLIENT_CLOSED;
    session_close(s);
}

/* The session's deadline (timer_for) passed. */
static void session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    SG_DCHECK_MAGIC(s, SG_SESSION_MAGIC);
    enum sg_session_deadline d = s->timer_for;
    s->timer_for = SG_SD_NONE;
    switch (d) {
    case SG_SD_LINGER:
        session_close(s);
        return;
    case SG_SD_STOP:
    case SG_SD_HEAD:
    case SG_SD_IDLE:
        if (s->state != SG_SS_HEAD)
            return;
        if (!s->head_started && evbuffer_get_length(s->cc.in) == 0) {
            /* idle keep-alive connection: close quietly (while stopping,
             * lingering: its client may be sending right now) */
            if (s->w->stopping)
                session_drain(s);
            else
                session_close(s);
            return;
        }
        s->req_done = false;
        session_error(s, 408, "request head timeout");
        return;
    case SG_SD_NONE:
        return;
    }
}

int sg_session_new(struct sg_worker *w, struct sg_wfrontend *fe, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen)
{
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
    if (sg_exchange_init(&s->x, w, fe, &session_xops, s) != SG_OK) {
        sg_conn_close(&s->cc);
        free(s);
        return SG_ERR;
    }
    evtimer_assign(&s->timer, w->base, session_timer_cb, s);
    event_assign(&s->free_ev, w->base, -1, 0, session_free_cb, s);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->client_ip,
                  sizeof(s->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, s->client_ip,
                  sizeof(s->client_ip));
    else
        strcpy(s->client_ip, "unix");
    SG_UNUSED(salen);
    llhttp_init(&s->rq, HTTP_REQUEST, &sg_session_rq_settings);
    s->rq.data = s;
    sg_hdrs_init(&s->rqh, lim->max_request_line, lim->max_header_size, lim->max_headers);
    s->rqh.cache = &w->hcache;
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
    session_deadline(s, SG_SD_HEAD, w->cfg->timeouts.http_request_ms);
    sg_conn_read_on(&s->cc);
    return SG_OK;
}
