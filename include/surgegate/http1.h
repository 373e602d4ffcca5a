/* http1.h: HTTP/1.x header collection, classification and message-head
 * generation. Pure functions over buffers: no sockets, no event loop. */
#ifndef SURGEGATE_HTTP1_H
#define SURGEGATE_HTTP1_H

#include <event2/buffer.h>

#include "surgegate/http1-t.h"

/* Bytes handed to llhttp per call (requests and responses alike): bounds the
 * work one parser run does before the caller looks at backpressure. */
#define SG_HTTP1_FEED_MAX (64 * 1024)

/* max_first bounds the URL (or reason phrase), max_hdr_bytes the header
 * block (names + values + 4 bytes per line), max_headers the header count. */
void sg_hdrs_init(struct sg_hdrs *hs, uint32_t max_first, uint32_t max_hdr_bytes,
                  uint32_t max_headers);
void sg_hdrs_free(struct sg_hdrs *hs);
/* Gives the buffers back (to hs->cache when they have the first size and it
 * has room, else to the allocator); the next append takes them again. */
void sg_hdrs_park(struct sg_hdrs *hs);
/* Frees every parked buffer. */
void sg_hdrs_cache_free(struct sg_hdrs_cache *c);
void sg_hdrs_reset(struct sg_hdrs *hs);

/* Appenders for the llhttp span callbacks. Return SG_OK, or SG_ERR when a
 * limit is crossed (then too_many / too_large / first_too_long says which). */
int sg_hdrs_add_first(struct sg_hdrs *hs, const char *at, size_t len);
int sg_hdrs_add_field(struct sg_hdrs *hs, const char *at, size_t len);
int sg_hdrs_add_value(struct sg_hdrs *hs, const char *at, size_t len);
/* Marks the end of a header value; returns SG_ERR when the value holds a
 * byte that is not allowed (CR, LF, NUL or another control other than HTAB). */
int sg_hdrs_value_done(struct sg_hdrs *hs);

static inline const char *sg_hdr_name(const struct sg_hdrs *hs, const struct sg_hdr *h)
{
    return hs->buf + h->name_off;
}
static inline const char *sg_hdr_value(const struct sg_hdrs *hs, const struct sg_hdr *h)
{
    return hs->buf + h->val_off;
}

/* Case-insensitive comparison of a header name. */
bool sg_hdr_name_is(const struct sg_hdrs *hs, const struct sg_hdr *h, const char *name);
/* Finds the first header named `name`; NULL when absent. */
const struct sg_hdr *sg_hdrs_find(const struct sg_hdrs *hs, const char *name);
/* Counts headers named `name`. */
unsigned sg_hdrs_count(const struct sg_hdrs *hs, const char *name);
/* True when a comma-separated header list (all headers named `name`)
 * contains `token` (case-insensitive). */
bool sg_hdrs_has_token(const struct sg_hdrs *hs, const char *name, const char *token);

/* Sets SG_HDR_* flags on every header: hop-by-hop ones (including those the
 * Connection header names), framing, Host, X-Forwarded-*, Via, Expect. */
void sg_hdrs_classify(struct sg_hdrs *hs);

/* Checks llhttp leaves to the caller. Returns 0 when the request head is
 * acceptable, else the HTTP status to answer (400) and sets *why. */
int sg_http1_check_request(const struct sg_hdrs *hs, int http_major, int http_minor, bool has_te,
                           bool chunked, bool has_cl, const char **why);

/* True when two authorities ("host[:port]", "[v6][:port]") name the same
 * origin: hosts equal ignoring case, ports equal as numbers, an absent or
 * empty port being default_port (RFC 9110 4.2.3). False when either is
 * malformed (empty host, bad port, unclosed bracket). */
bool sg_http1_same_authority(const char *a, size_t alen, const char *b, size_t blen,
                             unsigned default_port);

/* Facts the request head generator needs. */
struct sg_http1_fwd {
    const char *method;
    size_t method_len;
    const char *client_ip; /* appended to X-Forwarded-For */
    const char *proto;     /* "http" or "https" */
    int client_minor;      /* client HTTP/1.<minor> */
    /* framing to send: */
    bool chunked;    /* Transfer-Encoding: chunked */
    bool has_length; /* Content-Length: length */
    uint64_t length;
    const char *default_host;  /* Host to send when the client sent none (HTTP/1.0) */
    const char *override_host; /* authority of an absolute-form target: replaces Host */
    size_t override_host_len;
};

/* Writes the request head to forward upstream into `out`: request line
 * (origin-form URL as received), the client's end-to-end headers, merged
 * X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Via, regenerated
 * framing. The headers must have been classified. */
int sg_http1_write_request_head(struct evbuffer *out, const struct sg_hdrs *hs,
                                const struct sg_http1_fwd *f);

struct sg_http1_resp {
    int status;
    bool head_only; /* no body follows (HEAD, 1xx, 204, 304) */
    bool keep_cl;   /* HEAD/304: pass the backend's Content-Length through */
    bool has_length;
    uint64_t length;
    bool chunked;      /* re-chunk the body to the client */
    bool close;        /* Connection: close */
    bool keepalive_10; /* Connection: keep-alive (HTTP/1.0 client) */
};

/* Writes the response head for the client. */
int sg_http1_write_response_head(struct evbuffer *out, const struct sg_hdrs *hs,
                                 const struct sg_http1_resp *r);

/* Writes one of the proxy's own small error responses (400, 408, 413, 414,
 * 431, 500, 501, 502, 503 with Retry-After, 504). A 503's Retry-After is
 * `retry_after` seconds (0: 1 s). `close` adds Connection: close;
 * `head_only` (the answer to a HEAD request) leaves the body out and keeps
 * the Content-Length a GET would get (RFC 9110 9.3.2). */
void sg_http1_write_error(struct evbuffer *out, int status, uint32_t retry_after, bool close,
                          bool head_only);
const char *sg_http1_reason(int status);

/* Chunk framing helpers. */
void sg_http1_chunk_header(struct evbuffer *out, size_t len);
/* Appends a piece of body, framed as one chunk when `chunked`. */
void sg_http1_body_piece(struct evbuffer *out, const char *at, size_t len, bool chunked);

#endif
