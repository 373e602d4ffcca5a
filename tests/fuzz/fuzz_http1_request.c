/* fuzz_http1_request.c: libFuzzer target for the client side of the HTTP/1
 * glue: llhttp (strict, as built by CMake) with callbacks that drive
 * src/http1.c the way session.c's rq_on_* callbacks do (limits, the pause at
 * headers-complete, the chunk extension cap, the request target check, the
 * Content-Length body moved without parsing, pipelined requests), then the
 * forwarded head (sg_http1_write_request_head) and body re-framing
 * (sg_http1_body_piece). Every forwarded head is parsed back as a backend
 * would parse it (fuzz_http1.h).
 *
 * Input: byte 0 picks where the rest is split into two reads; byte 1 holds
 * option bits (small limits, a body size limit, the header buffer cache,
 * https, IPv6 client); the rest is what the client sends. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "fuzz.h"
#include "fuzz_http1.h"
#include "surgegate/common.h"
#include "surgegate/http1.h"

#define FZ_CHUNK_EXT_MAX 4096 /* session.c's SG_CHUNK_EXT_MAX */

/* The slice of struct sg_session that the request path uses. */
struct fz_req {
    llhttp_t p;
    struct sg_hdrs hs;
    struct evbuffer *up;     /* bytes forwarded to the backend */
    struct evbuffer *client; /* the proxy's own answers */
    uint32_t max_request_line;
    uint64_t max_body_size;
    const char *client_ip, *proto;
    int pending_error;
    const char *why;
    bool head_ready, forwarding, req_done, req_has_body, req_chunked_out;
    bool client_close, client_10, upgrade, head_lf, kick, dead;
    uint64_t body_bytes, body_left;
    size_t chunk_ext_bytes;
    uint32_t abs_host_off, abs_host_len;
};

static struct fz_req *fz(llhttp_t *p)
{
    return p->data;
}

static int rq_on_message_begin(llhttp_t *p)
{
    struct fz_req *f = fz(p);
    sg_hdrs_reset(&f->hs);
    f->head_ready = f->req_done = f->req_has_body = f->req_chunked_out = false;
    f->body_bytes = f->body_left = 0;
    f->pending_error = 0;
    f->why = NULL;
    f->head_lf = false;
    f->chunk_ext_bytes = 0;
    return 0;
}

static int rq_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *f = fz(p);
    if (f->hs.first_len == 0) {
        size_t fixed = strlen(llhttp_method_name((llhttp_method_t)p->method)) + 10;
        uint32_t max = f->max_request_line;
        f->hs.max_first = max > fixed ? max - (uint32_t)fixed : 1;
    }
    if (sg_hdrs_add_first(&f->hs, at, len) != SG_OK) {
        f->pending_error = 414;
        return -1;
    }
    return 0;
}

static int hdrs_error(struct fz_req *f)
{
    f->pending_error = (f->hs.too_many || f->hs.too_large) ? 431 : 400;
    return -1;
}

static int rq_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *f = fz(p);
    if (f->head_ready)
        return 0; /* trailers */
    return sg_hdrs_add_field(&f->hs, at, len) == SG_OK ? 0 : hdrs_error(f);
}

static int rq_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *f = fz(p);
    if (f->head_ready)
        return 0;
    return sg_hdrs_add_value(&f->hs, at, len) == SG_OK ? 0 : hdrs_error(f);
}

static int rq_on_header_value_complete(llhttp_t *p)
{
    struct fz_req *f = fz(p);
    if (f->head_ready)
        return 0;
    if (sg_hdrs_value_done(&f->hs) != SG_OK) {
        f->pending_error = 400;
        return -1;
    }
    return 0;
}

/* session.c's rq_check_target: origin-form, "*" for OPTIONS, absolute-form. */
static int rq_check_target(struct fz_req *f)
{
    struct sg_hdrs *hs = &f->hs;
    const char *u = hs->buf + hs->first_off;
    f->abs_host_off = f->abs_host_len = 0;
    if (hs->first_len > 0 && u[0] == '/')
        return SG_OK;
    if (hs->first_len == 1 && u[0] == '*' && f->p.method == HTTP_OPTIONS)
        return SG_OK;
    if (hs->first_len > 7 && strncasecmp(u, "http://", 7) == 0) {
        const char *auth = u + 7;
        const char *slash = memchr(auth, '/', hs->first_len - 7);
        if (slash == NULL || slash == auth)
            return SG_ERR;
        for (const char *c = auth; c < slash; c++)
            if ((unsigned char)*c <= ' ' || *c == '@' || *c == '?' || *c == '#' || *c == '\\')
                return SG_ERR;
        f->abs_host_off = (uint32_t)(auth - hs->buf);
        f->abs_host_len = (uint32_t)(slash - auth);
        hs->first_len -= (uint32_t)(slash - u);
        hs->first_off += (uint32_t)(slash - u);
        return SG_OK;
    }
    return SG_ERR;
}

static int rq_on_headers_complete(llhttp_t *p)
{
    struct fz_req *f = fz(p);
    bool has_te = (p->flags & F_TRANSFER_ENCODING) != 0;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    const char *why = NULL;
    int st =
        sg_http1_check_request(&f->hs, p->http_major, p->http_minor, has_te, chunked, has_cl, &why);
    if (st != 0) {
        if (why == NULL)
            abort(); /* the contract: a status comes with a reason */
        f->pending_error = st;
        f->why = why;
        return -1;
    }
    if (p->http_major != 1) {
        f->pending_error = p->http_major == 0 ? 400 : 505;
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        f->pending_error = 405;
        return -1;
    }
    if (rq_check_target(f) != SG_OK) {
        f->pending_error = 400;
        return -1;
    }
    if (has_cl && f->max_body_size > 0 && p->content_length > f->max_body_size) {
        f->pending_error = 413;
        return -1;
    }
    sg_hdrs_classify(&f->hs);
    f->client_10 = p->http_minor == 0;
    f->req_has_body = chunked || (has_cl && p->content_length > 0);
    f->req_chunked_out = chunked;
    /* What the access log and the hash balancer read. */
    (void)sg_hdrs_find(&f->hs, "referer");
    (void)sg_hdrs_find(&f->hs, "user-agent");
    (void)sg_hdrs_has_token(&f->hs, "expect", "100-continue");
    if (!llhttp_should_keep_alive(p) || p->upgrade)
        f->client_close = true;
    f->head_ready = true;
    return HPE_PAUSED;
}

static int rq_on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *f = fz(p);
    (void)at;
    f->chunk_ext_bytes += len;
    if (f->chunk_ext_bytes > FZ_CHUNK_EXT_MAX) {
        f->pending_error = 400;
        return -1;
    }
    return 0;
}

static int rq_on_chunk_complete(llhttp_t *p)
{
    fz(p)->chunk_ext_bytes = 0;
    return 0;
}

static int rq_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct fz_req *f = fz(p);
    f->body_bytes += len;
    if (f->max_body_size > 0 && f->body_bytes > f->max_body_size) {
        f->pending_error = 413;
        return -1;
    }
    if (!f->forwarding)
        abort(); /* session.c: SG_BUG_ON(s->up == NULL): no body byte before the pause */
    sg_http1_body_piece(f->up, at, len, f->req_chunked_out);
    return 0;
}

static int rq_on_message_complete(llhttp_t *p)
{
    struct fz_req *f = fz(p);
    f->req_done = true;
    if (f->req_chunked_out && f->forwarding)
        evbuffer_add(f->up, "0\r\n\r\n", 5);
    return HPE_PAUSED;
}

static llhttp_settings_t rq_settings;

static void rq_settings_setup(void)
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
}

/* session_head_has_fold: a head line starting with SP/HTAB is an obs-fold. */
static bool head_has_fold(struct fz_req *f, const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (f->head_lf && (d[i] == ' ' || d[i] == '\t'))
            return true;
        f->head_lf = d[i] == '\n';
    }
    return false;
}

/* session_connect + session_up_ready: the head goes upstream, then the body
 * flows (Content-Length: raw; chunked: through the parser). */
static void rq_forward(struct fz_req *f)
{
    struct sg_hdrs *hs = &f->hs;
    const struct sg_hdr *host = sg_hdrs_find(hs, "host");
    const char *mname = llhttp_method_name((llhttp_method_t)f->p.method);
    struct sg_http1_fwd fw = {
        .method = mname,
        .method_len = strlen(mname),
        .client_ip = f->client_ip,
        .proto = f->proto,
        .client_minor = f->p.http_minor,
        .chunked = f->req_chunked_out,
        .has_length = (f->p.flags & F_CONTENT_LENGTH) != 0,
        .length = f->p.content_length,
        .default_host = host == NULL ? "localhost" : NULL,
        .override_host = f->abs_host_len ? hs->buf + f->abs_host_off : NULL,
        .override_host_len = f->abs_host_len,
    };
    struct evbuffer *head = evbuffer_new();
    if (head == NULL || sg_http1_write_request_head(head, hs, &fw) != SG_OK)
        abort();
    fuzz_reparse_head(head, HTTP_REQUEST, fw.chunked, fw.has_length, fw.length, false);
    evbuffer_add_buffer(f->up, head);
    evbuffer_free(head);
    f->forwarding = true;
    if (f->req_done)
        return;
    if (!f->req_chunked_out && f->req_has_body) {
        f->body_left = f->p.content_length - f->body_bytes;
    } else {
        llhttp_resume(&f->p);
        f->kick = true;
    }
}

/* session_finish after the response: the next (pipelined) request, or the end. */
static void rq_finish(struct fz_req *f)
{
    if (f->client_close || f->upgrade) {
        f->dead = true;
        return;
    }
    f->forwarding = f->head_ready = f->req_done = false;
    sg_hdrs_park(&f->hs);
    llhttp_resume(&f->p);
    evbuffer_drain(f->up, evbuffer_get_length(f->up));
}

static void rq_fail(struct fz_req *f)
{
    int st = f->pending_error;
    if (st == 0)
        st = f->hs.first_too_long ? 414 : (f->hs.too_many || f->hs.too_large) ? 431 : 400;
    evbuffer_drain(f->up, evbuffer_get_length(f->up));
    sg_http1_write_error(f->client, st, true);
    f->dead = true;
}

/* session_feed_request_run over one read of len bytes. */
static void rq_feed(struct fz_req *f, const char *data, size_t len)
{
    while (!f->dead) {
        if (f->forwarding && f->body_left > 0) {
            if (len == 0)
                return;
            size_t n = len < f->body_left ? len : (size_t)f->body_left;
            evbuffer_add(f->up, data, n);
            data += n;
            len -= n;
            f->body_left -= n;
            f->body_bytes += n;
            if (f->body_left == 0) {
                f->req_done = true;
                llhttp_reset(&f->p);
                rq_finish(f);
            }
            continue;
        }
        if (len == 0 && !f->kick)
            return;
        f->kick = false;
        f->hs.exec_seq++;
        bool in_head = !f->forwarding;
        llhttp_errno_t err = llhttp_execute(&f->p, data, len);
        if (in_head && (err == HPE_OK || err == HPE_PAUSED)) {
            size_t used = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&f->p) - data);
            if (head_has_fold(f, data, used)) {
                rq_fail(f);
                return;
            }
        }
        if (err == HPE_OK) {
            data += len;
            len = 0;
            return;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            size_t used = (size_t)(llhttp_get_error_pos(&f->p) - data);
            if (used > len)
                abort();
            data += used;
            len -= used;
            if (err == HPE_PAUSED_UPGRADE) {
                f->upgrade = true;
                f->req_done = true;
            }
            if (f->head_ready && !f->forwarding) {
                rq_forward(f);
                if (f->req_done)
                    rq_finish(f);
                continue;
            }
            if (f->req_done && f->forwarding) {
                rq_finish(f);
                continue;
            }
            f->dead = true;
            return;
        }
        rq_fail(f);
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (rq_settings.on_url == NULL)
        rq_settings_setup();
    uint8_t opt = data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2, split = fuzz_split(data[0], len);

    static struct sg_hdrs_cache cache;
    struct fz_req f;
    memset(&f, 0, sizeof(f));
    f.up = evbuffer_new();
    f.client = evbuffer_new();
    if (f.up == NULL || f.client == NULL)
        abort();
    /* bit 0: small limits (else the config defaults); bit 1: max_body_size */
    uint32_t max_line = (opt & 1) ? 64 : 8192, max_hdr = (opt & 1) ? 256 : 32768;
    uint32_t max_headers = (opt & 1) ? 4 : 100;
    f.max_request_line = max_line;
    f.max_body_size = (opt & 2) ? 16 : 0;
    f.proto = (opt & 8) ? "https" : "http";
    f.client_ip = (opt & 16) ? "2001:db8::1" : "192.0.2.1";
    llhttp_init(&f.p, HTTP_REQUEST, &rq_settings);
    f.p.data = &f;
    sg_hdrs_init(&f.hs, max_line, max_hdr, max_headers);
    if (opt & 4)
        f.hs.cache = &cache; /* bit 2: the worker's parked-buffer cache */

    rq_feed(&f, in, split);
    rq_feed(&f, in + split, len - split);

    sg_hdrs_free(&f.hs);
    evbuffer_free(f.up);
    evbuffer_free(f.client);
    return 0;
}
