/* fuzz_http1_response.c: libFuzzer target for the backend side of the HTTP/1
 * glue: llhttp (strict) parsing a backend's response with callbacks that
 * drive src/http1.c the way session.c's rs_on_* callbacks do (interim 1xx
 * responses, trailers ignored, the pause after a Content-Length head whose
 * body then moves without parsing, re-chunking for HTTP/1.1 clients, close
 * delimited bodies ended by llhttp_finish at EOF, a kept-alive connection
 * parsing the next response with a fresh parser). Every head written for the
 * client is parsed back (fuzz_http1.h).
 *
 * Input: byte 0 picks where the rest is split into two reads; byte 1 holds
 * the request's facts (HEAD, HTTP/1.0 client, request body still arriving,
 * the header buffer cache); the rest is what the backend sends. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "fuzz.h"
#include "fuzz_http1.h"
#include "surgegate/common.h"
#include "surgegate/http1.h"

#define FZ_RESP_HDR_BYTES (64 * 1024) /* session.c's SG_RESP_HDR_BYTES */
#define FZ_RESP_HEADERS   256         /* session.c's SG_RESP_HEADERS */

struct fz_resp {
    llhttp_t p;
    struct sg_hdrs hs;
    struct evbuffer *client; /* what the client receives */
    bool head_method, client_10, req_done;
    bool client_close, resp_started, resp_head_sent, resp_done, resp_chunked_out, in_1xx;
    bool dead;
    uint64_t resp_body_left;
};

static struct fz_resp *fz(llhttp_t *p)
{
    return p->data;
}

static int rs_on_message_begin(llhttp_t *p)
{
    struct fz_resp *f = fz(p);
    sg_hdrs_reset(&f->hs);
    f->resp_started = true;
    return 0;
}

static int rs_on_status(llhttp_t *p, const char *at, size_t len)
{
    return sg_hdrs_add_first(&fz(p)->hs, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct fz_resp *f = fz(p);
    if (f->resp_head_sent && !f->in_1xx)
        return 0; /* trailers */
    return sg_hdrs_add_field(&f->hs, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct fz_resp *f = fz(p);
    if (f->resp_head_sent && !f->in_1xx)
        return 0;
    return sg_hdrs_add_value(&f->hs, at, len) == SG_OK ? 0 : -1;
}

static int rs_on_header_value_complete(llhttp_t *p)
{
    struct fz_resp *f = fz(p);
    if (f->resp_head_sent && !f->in_1xx)
        return 0;
    return sg_hdrs_value_done(&f->hs) == SG_OK ? 0 : -1;
}

/* Writes a head for the client and checks that it parses back. */
static void rs_write_head(struct fz_resp *f, const struct sg_http1_resp *r)
{
    struct evbuffer *head = evbuffer_new();
    if (head == NULL || sg_http1_write_response_head(head, &f->hs, r) != SG_OK)
        abort();
    fuzz_reparse_head(head, HTTP_RESPONSE, r->chunked, r->has_length, r->length,
                      r->head_only || r->status < 200);
    evbuffer_add_buffer(f->client, head);
    evbuffer_free(head);
}

static int rs_on_headers_complete(llhttp_t *p)
{
    struct fz_resp *f = fz(p);
    int status = p->status_code;
    sg_hdrs_classify(&f->hs);
    if (status >= 100 && status < 200) {
        if (status == 101)
            return -1;
        f->in_1xx = true;
        if (status != 100 && !f->client_10) {
            struct sg_http1_resp r = {.status = status, .head_only = true};
            rs_write_head(f, &r);
        }
        return 1;
    }
    struct sg_http1_resp r = {.status = status};
    bool has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    bool chunked_in = (p->flags & F_CHUNKED) != 0;
    if (f->head_method || status == 204 || status == 304) {
        r.head_only = true;
        r.keep_cl = status != 204;
    } else if (has_cl && !chunked_in) {
        r.has_length = true;
        r.length = p->content_length;
    } else if (!f->client_10) {
        r.chunked = true;
    } else {
        f->client_close = true;
    }
    if (!f->req_done)
        f->client_close = true;
    r.close = f->client_close;
    r.keepalive_10 = f->client_10 && !r.close;
    f->resp_chunked_out = r.chunked;
    rs_write_head(f, &r);
    f->resp_head_sent = true;
    if (r.head_only)
        return 1;
    if (r.has_length) {
        if (r.length == 0)
            return 0;
        f->resp_body_left = r.length;
        return HPE_PAUSED;
    }
    return 0;
}

static int rs_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct fz_resp *f = fz(p);
    sg_http1_body_piece(f->client, at, len, f->resp_chunked_out);
    return 0;
}

static int rs_on_message_complete(llhttp_t *p)
{
    struct fz_resp *f = fz(p);
    if (f->in_1xx) {
        f->in_1xx = false;
        return 0;
    }
    if (f->resp_chunked_out)
        evbuffer_add(f->client, "0\r\n\r\n", 5);
    f->resp_done = true;
    return HPE_PAUSED;
}

static llhttp_settings_t rs_settings;

static void rs_settings_setup(void)
{
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

/* session_up_ready: a fresh parser for the response to the next request. */
static void rs_start(struct fz_resp *f)
{
    llhttp_init(&f->p, HTTP_RESPONSE, &rs_settings);
    f->p.data = f;
    f->resp_started = f->resp_head_sent = f->resp_done = f->in_1xx = false;
    f->resp_chunked_out = false;
    f->resp_body_left = 0;
}

/* session_up_read over one read of len bytes. */
static void rs_feed(struct fz_resp *f, const char *data, size_t len)
{
    while (!f->dead && len > 0 && !f->resp_done) {
        if (f->resp_body_left > 0) {
            size_t n = len < f->resp_body_left ? len : (size_t)f->resp_body_left;
            evbuffer_add(f->client, data, n);
            data += n;
            len -= n;
            f->resp_body_left -= n;
            if (f->resp_body_left == 0)
                f->resp_done = true;
            continue;
        }
        f->hs.exec_seq++;
        llhttp_errno_t err = llhttp_execute(&f->p, data, len);
        if (err == HPE_OK) {
            len = 0;
        } else if (err == HPE_PAUSED) {
            size_t used = (size_t)(llhttp_get_error_pos(&f->p) - data);
            if (used > len)
                abort();
            data += used;
            len -= used;
        } else {
            evbuffer_drain(f->client, evbuffer_get_length(f->client));
            sg_http1_write_error(f->client, 502, true);
            f->dead = true;
            return;
        }
    }
    if (f->resp_done) {
        /* Reusable only when both messages ended cleanly and nothing extra
         * came: then the next read is the next exchange's response. */
        bool reusable = f->req_done && llhttp_should_keep_alive(&f->p) && len == 0;
        if (!reusable || f->client_close) {
            f->dead = true;
            return;
        }
        sg_hdrs_park(&f->hs);
        evbuffer_drain(f->client, evbuffer_get_length(f->client));
        rs_start(f);
    }
}

/* The backend closed: a close-delimited body ends here. */
static void rs_eof(struct fz_resp *f)
{
    if (f->dead || !f->resp_started || f->resp_done || !llhttp_message_needs_eof(&f->p))
        return;
    /* Complete (resp_done) or a truncated response: session.c handles both. */
    (void)llhttp_finish(&f->p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (rs_settings.on_status == NULL)
        rs_settings_setup();
    uint8_t opt = data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2, split = fuzz_split(data[0], len);

    static struct sg_hdrs_cache cache;
    struct fz_resp f;
    memset(&f, 0, sizeof(f));
    f.client = evbuffer_new();
    if (f.client == NULL)
        abort();
    f.head_method = (opt & 1) != 0;
    f.client_10 = (opt & 2) != 0;
    f.req_done = (opt & 4) == 0;
    sg_hdrs_init(&f.hs, 8192, FZ_RESP_HDR_BYTES, FZ_RESP_HEADERS);
    if (opt & 8)
        f.hs.cache = &cache;
    rs_start(&f);

    rs_feed(&f, in, split);
    rs_feed(&f, in + split, len - split);
    rs_eof(&f);

    sg_hdrs_free(&f.hs);
    evbuffer_free(f.client);
    return 0;
}
