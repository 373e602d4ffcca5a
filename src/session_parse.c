/* session_parse.c: the HTTP/1 request parser's callbacks for a session:
 * llhttp (strict) over the client's bytes, the head collected into
 * s->rqh with the configured limits, the checks http1.c leaves to the
 * caller (request target, framing, version, CONNECT, body size, chunk
 * extension cap), a pause at the end of the head and of every message, and
 * body pieces handed to the exchange. session.c drives the parser. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "surgegate/cfg-t.h"
#include "surgegate/common.h"
#include "surgegate/exchange.h"
#include "surgegate/http1.h"
#include "surgegate/session-t.h"
#include "surgegate/worker-t.h"

#include "session-internal.h"

/* --------------------------------------------------- request parser callbacks */

static inline struct sg_session *rq_session(llhttp_t *p)
{
    return p->data;
}

static int rq_on_message_begin(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    sg_hdrs_reset(&s->rqh);
    sg_exchange_begin(&s->x);
    s->head_started = true;
    s->head_ready = false;
    s->req_done = false;
    s->req_has_body = false;
    s->body_bytes = 0;
    s->pending_error = 0;
    s->error_why = NULL;
    s->expect_continue = false;
    s->resp_head_sent = false;
    s->resp_flushed = false;
    s->resp_chunked_out = false;
    s->head_lf = false;
    s->line_done = false;
    s->req_body_left = 0;
    s->resp_body_left = 0;
    s->chunk_ext_bytes = 0;
    s->t_start_us = sg_now_us();
    s->in0 = s->cc.nin - evbuffer_get_length(s->cc.in);
    s->out0 = s->cc.nout;
    s->resp_status = 0;
    s->end = SG_END_NONE;
    s->accounted = false;
    s->req_reads = 1; /* the read that brought its first byte */
    s->reads_stopped = false;
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

/* The target is complete and llhttp has seen the byte after its end. On
 * the HTTP/1.x path that byte starts "HTTP/": the line goes on to a version.
 * On the HTTP/0.9 path (the line ends after the target: no version) llhttp
 * sets the version to 0.9 just before this callback, and would go on to
 * read header lines a 0.9 client never sends: refused here. On the 1.x path
 * the version of this message is not parsed yet and the previous message's
 * cannot be 0.9 (refused, connection closed). llhttp calls this only once
 * the byte after the line's end arrives; a 0.9 client that sent its line
 * and waits is caught by session_request_is_09 (session.c). */
static int rq_on_url_complete(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    if (p->http_major == 0 && p->http_minor == 9) {
        s->pending_error = 400;
        s->error_why = "HTTP/0.9 request";
        return -1;
    }
    s->line_done = true;
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

/* Accepts origin-form, "*" for OPTIONS, and absolute-form "http://auth/path".
 * RFC 9112 3.2.2 makes the target's authority replace Host; a request whose
 * Host names another origin is ambiguous (a cache or filter in front may have
 * judged it by Host, the proxy would route it by the authority), so it is
 * refused, as HAProxy does. When Host agrees (same host ignoring case, same
 * port with 80 for none) or is absent (HTTP/1.0), the one authority is used
 * for routing, the Host sent to the backend and the access log; the target is
 * forwarded in origin-form. Returns NULL, or why the target is refused. */
static const char *rq_check_target(struct sg_session *s)
{
    struct sg_hdrs *hs = &s->rqh;
    const char *u = hs->buf + hs->first_off;
    s->abs_host_off = s->abs_host_len = 0;
    if (hs->first_len > 0 && u[0] == '/')
        return NULL;
    if (hs->first_len == 1 && u[0] == '*' && s->rq.method == HTTP_OPTIONS)
        return NULL;
    if (hs->first_len > 7 && strncasecmp(u, "http://", 7) == 0) {
        const char *auth = u + 7;
        const char *slash = memchr(auth, '/', hs->first_len - 7);
        if (slash == NULL || slash == auth)
            return "request target"; /* "http://host" without a path, or no authority */
        for (const char *c = auth; c < slash; c++)
            if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '@' || *c == '?' ||
                *c == '#' || *c == '\\')
                return "request target";
        const struct sg_hdr *h = sg_hdrs_find(hs, "host");
        if (h != NULL && !sg_http1_same_authority(auth, (size_t)(slash - auth), sg_hdr_value(hs, h),
                                                  h->val_len, 80))
            return "absolute-form authority differs from Host";
        s->abs_host_off = (uint32_t)(auth - hs->buf);
        s->abs_host_len = (uint32_t)(slash - auth);
        hs->first_len -= (uint32_t)(slash - u);
        hs->first_off += (uint32_t)(slash - u);
        return NULL;
    }
    return "request target";
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
    if ((why = rq_check_target(s)) != NULL) {
        s->pending_error = 400;
        s->error_why = why;
        return -1;
    }
    if (has_cl && cfg->limits.max_body_size > 0 && p->content_length > cfg->limits.max_body_size) {
        s->pending_error = 413;
        return -1;
    }
    sg_hdrs_classify(&s->rqh);
    s->client_10 = (p->http_major == 1 && p->http_minor == 0);
    s->req_has_body = chunked || (has_cl && p->content_length > 0);
    struct sg_xreq *xr = &s->x.rq;
    xr->method = p->method;
    xr->http_minor = p->http_minor;
    xr->chunked = chunked;
    xr->has_length = has_cl;
    xr->length = p->content_length;
    xr->head_method = (p->method == HTTP_HEAD);
    switch (p->method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
        xr->idempotent = true;
        break;
    default:
        xr->idempotent = false;
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
    sg_exchange_req_body(&s->x, at, len);
    return 0;
}

static int rq_on_message_complete(llhttp_t *p)
{
    struct sg_session *s = rq_session(p);
    s->req_done = true;
    sg_exchange_req_end(&s->x);
    return HPE_PAUSED;
}

/* The request parser's callbacks (llhttp only reads them). */
const llhttp_settings_t sg_session_rq_settings = {
    .on_message_begin = rq_on_message_begin,
    .on_url = rq_on_url,
    .on_url_complete = rq_on_url_complete,
    .on_header_field = rq_on_header_field,
    .on_header_value = rq_on_header_value,
    .on_header_value_complete = rq_on_header_value_complete,
    .on_headers_complete = rq_on_headers_complete,
    .on_body = rq_on_body,
    .on_chunk_extension_name = rq_on_chunk_ext,
    .on_chunk_extension_value = rq_on_chunk_ext,
    .on_chunk_complete = rq_on_chunk_complete,
    .on_message_complete = rq_on_message_complete,
};
