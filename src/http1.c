/* http1.c: HTTP/1.x header collection from llhttp spans, header classification
 * (hop-by-hop, framing, forwarding headers), the checks llhttp leaves to the
 * caller, and generation of forwarded heads and the proxy's own responses. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "surgegate/common.h"
#include "surgegate/http1.h"

void sg_hdrs_init(struct sg_hdrs *hs, uint32_t max_first, uint32_t max_hdr_bytes,
                  uint32_t max_headers)
{
    memset(hs, 0, sizeof(*hs));
    hs->max_first = max_first;
    hs->max_hdr_bytes = max_hdr_bytes;
    hs->max_headers = max_headers;
    /* room for both parts plus a terminator per string */
    hs->limit = max_first + max_hdr_bytes + 2 * max_headers + 16;
}

void sg_hdrs_free(struct sg_hdrs *hs)
{
    sg_hdrs_park(hs);
}

void sg_hdrs_park(struct sg_hdrs *hs)
{
    struct sg_hdrs_cache *c = hs->cache;
    if (hs->buf != NULL) {
        if (c != NULL && hs->cap == SG_HDRS_BUF0 && c->nbuf < SG_HDRS_CACHE)
            c->buf[c->nbuf++] = hs->buf;
        else
            free(hs->buf);
    }
    if (hs->h != NULL) {
        if (c != NULL && hs->hcap == SG_HDRS_H0 && c->nh < SG_HDRS_CACHE)
            c->h[c->nh++] = hs->h;
        else
            free(hs->h);
    }
    hs->buf = NULL;
    hs->h = NULL;
    hs->cap = hs->hcap = 0;
    sg_hdrs_reset(hs);
}

void sg_hdrs_cache_free(struct sg_hdrs_cache *c)
{
    while (c->nbuf > 0)
        free(c->buf[--c->nbuf]);
    while (c->nh > 0)
        free(c->h[--c->nh]);
}

void sg_hdrs_reset(struct sg_hdrs *hs)
{
    hs->len = 0;
    hs->n = 0;
    hs->first_off = hs->first_len = 0;
    hs->hdr_bytes = 0;
    hs->last = SG_HCB_NONE;
    hs->too_many = hs->too_large = hs->first_too_long = hs->folded = false;
}

/* Appends bytes to the buffer, growing it geometrically up to limit. */
static int hdrs_append(struct sg_hdrs *hs, const char *at, size_t len)
{
    if ((size_t)hs->len + len + 1 > (size_t)hs->limit + 1) {
        hs->too_large = true;
        return SG_ERR;
    }
    if (hs->buf == NULL && hs->cache != NULL && hs->cache->nbuf > 0) {
        hs->buf = hs->cache->buf[--hs->cache->nbuf];
        hs->cap = SG_HDRS_BUF0;
    }
    if (hs->len + len + 1 > hs->cap) {
        uint32_t ncap = hs->cap ? hs->cap : SG_HDRS_BUF0;
        while (ncap < hs->len + len + 1)
            ncap *= 2;
        if (ncap > hs->limit + 1)
            ncap = hs->limit + 1;
        char *nb = realloc(hs->buf, ncap);
        if (nb == NULL)
            return SG_ERR;
        hs->buf = nb;
        hs->cap = ncap;
    }
    memcpy(hs->buf + hs->len, at, len);
    hs->len += (uint32_t)len;
    hs->buf[hs->len] = '\0';
    return SG_OK;
}

int sg_hdrs_add_first(struct sg_hdrs *hs, const char *at, size_t len)
{
    if (hs->first_len == 0)
        hs->first_off = hs->len;
    else
        hs->len--; /* continue: overwrite the terminator */
    if ((size_t)hs->first_len + len > hs->max_first) {
        hs->first_too_long = true;
        return SG_ERR;
    }
    if (hdrs_append(hs, at, len) != SG_OK) {
        hs->first_too_long = true;
        return SG_ERR;
    }
    hs->first_len += (uint32_t)len;
    hs->len++; /* keep the NUL terminator */
    return SG_OK;
}

int sg_hdrs_add_field(struct sg_hdrs *hs, const char *at, size_t len)
{
    if (hs->last != SG_HCB_FIELD) {
        if (hs->n >= hs->max_headers) {
            hs->too_many = true;
            return SG_ERR;
        }
        if (hs->h == NULL && hs->cache != NULL && hs->cache->nh > 0) {
            hs->h = hs->cache->h[--hs->cache->nh];
            hs->hcap = SG_HDRS_H0;
        }
        if (hs->n == hs->hcap) {
            uint32_t ncap = hs->hcap ? hs->hcap * 2 : SG_HDRS_H0;
            struct sg_hdr *nh = realloc(hs->h, ncap * sizeof(*nh));
            if (nh == NULL)
                return SG_ERR;
            hs->h = nh;
            hs->hcap = ncap;
        }
        struct sg_hdr *h = &hs->h[hs->n++];
        memset(h, 0, sizeof(*h));
        h->name_off = hs->len;
        hs->hdr_bytes += 4; /* ": " and CRLF */
    }
    struct sg_hdr *h = &hs->h[hs->n - 1];
    /* name bytes are appended and the NUL moved along */
    if (hs->last == SG_HCB_FIELD)
        hs->len--; /* overwrite previous terminator */
    if (hdrs_append(hs, at, len) != SG_OK)
        return SG_ERR;
    hs->len++;
    h->name_len += (uint32_t)len;
    hs->hdr_bytes += (uint32_t)len;
    hs->last = SG_HCB_FIELD;
    if (hs->hdr_bytes > hs->max_hdr_bytes) {
        hs->too_large = true;
        return SG_ERR;
    }
    return SG_OK;
}

int sg_hdrs_add_value(struct sg_hdrs *hs, const char *at, size_t len)
{
    if (hs->n == 0)
        return SG_ERR;
    struct sg_hdr *h = &hs->h[hs->n - 1];
    if (hs->last == SG_HCB_VALUE && hs->last_value_seq == hs->exec_seq) {
        hs->folded = true; /* obs-fold continuation line */
        return SG_ERR;
    }
    if (hs->last == SG_HCB_VALUE_DONE) {
        hs->folded = true;
        return SG_ERR;
    }
    /* llhttp skips leading OWS, so a value that starts with SP/HTAB is the
     * continuation line of a fold whose first line was empty. */
    if (hs->last == SG_HCB_FIELD && len > 0 && (at[0] == ' ' || at[0] == '\t')) {
        hs->folded = true;
        return SG_ERR;
    }
    if (hs->last == SG_HCB_FIELD)
        h->val_off = hs->len;
    else
        hs->len--; /* continue the value: overwrite its terminator */
    if (hdrs_append(hs, at, len) != SG_OK)
        return SG_ERR;
    hs->len++;
    h->val_len += (uint32_t)len;
    hs->hdr_bytes += (uint32_t)len;
    hs->last = SG_HCB_VALUE;
    hs->last_value_seq = hs->exec_seq;
    if (hs->hdr_bytes > hs->max_hdr_bytes) {
        hs->too_large = true;
        return SG_ERR;
    }
    return SG_OK;
}

int sg_hdrs_value_done(struct sg_hdrs *hs)
{
    if (hs->n == 0)
        return SG_ERR;
    struct sg_hdr *h = &hs->h[hs->n - 1];
    if (hs->last == SG_HCB_FIELD) {
        /* empty value */
        if (hdrs_append(hs, "", 0) != SG_OK)
            return SG_ERR;
        h->val_off = hs->len;
        hs->len++;
    }
    hs->last = SG_HCB_VALUE_DONE;
    const unsigned char *v = (const unsigned char *)hs->buf + h->val_off;
    for (uint32_t i = 0; i < h->val_len; i++) {
        if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            return SG_ERR;
    }
    /* trim trailing whitespace (llhttp keeps it); leading OWS is skipped by llhttp */
    while (h->val_len > 0 && (v[h->val_len - 1] == ' ' || v[h->val_len - 1] == '\t'))
        h->val_len--;
    hs->buf[h->val_off + h->val_len] = '\0';
    return SG_OK;
}

bool sg_hdr_name_is(const struct sg_hdrs *hs, const struct sg_hdr *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(hs->buf + h->name_off, name, n) == 0;
}

const struct sg_hdr *sg_hdrs_find(const struct sg_hdrs *hs, const char *name)
{
    for (uint32_t i = 0; i < hs->n; i++)
        if (sg_hdr_name_is(hs, &hs->h[i], name))
            return &hs->h[i];
    return NULL;
}

unsigned sg_hdrs_count(const struct sg_hdrs *hs, const char *name)
{
    unsigned c = 0;
    for (uint32_t i = 0; i < hs->n; i++)
        if (sg_hdr_name_is(hs, &hs->h[i], name))
            c++;
    return c;
}

/* Calls fn for every comma-separated, OWS-trimmed element of v[0..len). */
static bool list_contains(const char *v, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
            return true;
    }
    return false;
}

bool sg_hdrs_has_token(const struct sg_hdrs *hs, const char *name, const char *token)
{
    size_t tlen = strlen(token);
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *h = &hs->h[i];
        if (sg_hdr_name_is(hs, h, name) &&
            list_contains(sg_hdr_value(hs, h), h->val_len, token, tlen))
            return true;
    }
    return false;
}

static const struct {
    const char *name;
    uint16_t flag;
} hdr_classes[] = {
    {"connection", SG_HDR_HOPBYHOP},
    {"keep-alive", SG_HDR_HOPBYHOP},
    {"te", SG_HDR_HOPBYHOP},
    {"trailer", SG_HDR_HOPBYHOP},
    {"upgrade", SG_HDR_HOPBYHOP},
    {"proxy-connection", SG_HDR_HOPBYHOP},
    {"content-length", SG_HDR_FRAMING},
    {"transfer-encoding", SG_HDR_FRAMING},
    {"host", SG_HDR_HOST},
    {"x-forwarded-for", SG_HDR_XFF},
    {"x-forwarded-proto", SG_HDR_XFWD},
    {"x-forwarded-host", SG_HDR_XFWD},
    {"via", SG_HDR_VIA},
    {"expect", SG_HDR_EXPECT},
};

void sg_hdrs_classify(struct sg_hdrs *hs)
{
    for (uint32_t i = 0; i < hs->n; i++) {
        struct sg_hdr *h = &hs->h[i];
        h->flags = 0;
        for (size_t k = 0; k < SG_ARRAY_SIZE(hdr_classes); k++) {
            if (sg_hdr_name_is(hs, h, hdr_classes[k].name)) {
                h->flags = hdr_classes[k].flag;
                break;
            }
        }
    }
    /* Headers named by Connection are hop-by-hop too (RFC 9110 7.6.1). */
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *c = &hs->h[i];
        if (!sg_hdr_name_is(hs, c, "connection"))
            continue;
        const char *v = sg_hdr_value(hs, c);
        for (uint32_t j = 0; j < hs->n; j++) {
            struct sg_hdr *h = &hs->h[j];
            if (h->flags & (SG_HDR_FRAMING | SG_HDR_HOST))
                continue; /* never let Connection hide framing or Host */
            char name[128];
            if (h->name_len >= sizeof(name))
                continue;
            memcpy(name, sg_hdr_name(hs, h), h->name_len);
            name[h->name_len] = '\0';
            if (list_contains(v, c->val_len, name, h->name_len))
                h->flags |= SG_HDR_HOPBYHOP;
        }
    }
}

/* RFC 9110 tchar. */
static bool http1_is_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != 0 && strchr(extra, c) != NULL)))
            return false;
    }
    return true;
}

int sg_http1_check_request(const struct sg_hdrs *hs, int http_major, int http_minor, bool has_te,
                           bool chunked, bool has_cl, const char **why)
{
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *h = &hs->h[i];
        if (h->name_len == 0 || !http1_is_token(sg_hdr_name(hs, h), h->name_len)) {
            *why = "invalid header name";
            return 400;
        }
    }
    unsigned hosts = sg_hdrs_count(hs, "host");
    if (hosts > 1) {
        *why = "duplicate Host";
        return 400;
    }
    if (hosts == 0 && http_major == 1 && http_minor >= 1) {
        *why = "missing Host";
        return 400;
    }
    if (hosts == 1) {
        const struct sg_hdr *h = sg_hdrs_find(hs, "host");
        const char *v = sg_hdr_value(hs, h);
        if (h->val_len == 0) {
            *why = "empty Host";
            return 400;
        }
        for (uint32_t i = 0; i < h->val_len; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c <= ' ' || c == '/' || c == '\\' || c == '@' || c == '?' || c == '#' ||
                c >= 0x7f) {
                *why = "invalid Host";
                return 400;
            }
        }
    }
    if (has_te && (http_major == 1 && http_minor == 0)) {
        *why = "Transfer-Encoding in HTTP/1.0";
        return 400;
    }
    if (has_te && has_cl) {
        *why = "Content-Length with Transfer-Encoding";
        return 400;
    }
    if (has_te && !chunked) {
        *why = "Transfer-Encoding without final chunked";
        return 400;
    }
    if (sg_hdrs_count(hs, "transfer-encoding") > 1) {
        *why = "duplicate Transfer-Encoding";
        return 400;
    }
    if (has_te) {
        /* only exactly "chunked" is accepted: no codings stacked before it */
        const struct sg_hdr *te = sg_hdrs_find(hs, "transfer-encoding");
        if (te == NULL || strcasecmp(sg_hdr_value(hs, te), "chunked") != 0) {
            *why = "unsupported Transfer-Encoding";
            return 400;
        }
    }
    return 0;
}

/* Splits an authority "host[:port]" or "[v6][:port]" into the host's length
 * and its port (default_port when absent or empty, RFC 3986 3.2.3). Returns
 * false when the port is not 1-5 digits up to 65535 or a bracket is unclosed. */
static bool http1_split_authority(const char *a, size_t len, unsigned default_port,
                                  size_t *host_len, unsigned *port)
{
    const char *colon;
    if (len > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (rb == NULL)
            return false;
        colon = rb + 1 < a + len ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return false;
    } else {
        colon = memchr(a, ':', len);
    }
    *host_len = colon ? (size_t)(colon - a) : len;
    *port = default_port;
    if (colon == NULL || colon + 1 == a + len)
        return true;
    unsigned v = 0;
    size_t nd = 0;
    for (const char *c = colon + 1; c < a + len; c++, nd++) {
        if (*c < '0' || *c > '9' || nd >= 5)
            return false;
        v = v * 10 + (unsigned)(*c - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

bool sg_http1_same_authority(const char *a, size_t alen, const char *b, size_t blen,
                             unsigned default_port)
{
    size_t ah, bh;
    unsigned ap, bp;
    if (!http1_split_authority(a, alen, default_port, &ah, &ap) ||
        !http1_split_authority(b, blen, default_port, &bh, &bp))
        return false;
    return ah > 0 && ah == bh && ap == bp && strncasecmp(a, b, ah) == 0;
}

/* Head writer: heads are written into one region reserved in the output
 * evbuffer (no intermediate copy, no printf), sized from an upper bound
 * computed before writing. */
struct head_writer {
    char *p;
};

static inline void hw_put(struct head_writer *w, const char *s, size_t n)
{
    memcpy(w->p, s, n);
    w->p += n;
}

#define HW_LIT(w, lit) hw_put((w), (lit), sizeof(lit) - 1)

static void hw_u64(struct head_writer *w, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *w->p++ = tmp[--n];
}

static void hw_line(struct head_writer *w, const struct sg_hdrs *hs, const struct sg_hdr *h)
{
    hw_put(w, sg_hdr_name(hs, h), h->name_len);
    HW_LIT(w, ": ");
    hw_put(w, sg_hdr_value(hs, h), h->val_len);
    HW_LIT(w, "\r\n");
}

/* Writes "Name: v1, v2, extra\r\n" merging every header with `flag`. */
static void hw_merged(struct head_writer *w, const struct sg_hdrs *hs, uint16_t flag,
                      const char *name, size_t name_len, const char *extra)
{
    hw_put(w, name, name_len);
    HW_LIT(w, ": ");
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *h = &hs->h[i];
        if ((h->flags & flag) && h->val_len > 0) {
            hw_put(w, sg_hdr_value(hs, h), h->val_len);
            HW_LIT(w, ", ");
        }
    }
    hw_put(w, extra, strlen(extra));
    HW_LIT(w, "\r\n");
}

/* Reserves `bound` contiguous bytes in out; SG_ERR when memory is short. */
static int hw_begin(struct head_writer *w, struct evbuffer *out, size_t bound,
                    struct evbuffer_iovec *vec)
{
    if (evbuffer_reserve_space(out, (ev_ssize_t)bound, vec, 1) < 1 || vec->iov_len < bound)
        return SG_ERR;
    w->p = vec->iov_base;
    return SG_OK;
}

static int hw_end(struct head_writer *w, struct evbuffer *out, struct evbuffer_iovec *vec,
                  size_t bound)
{
    size_t used = (size_t)(w->p - (char *)vec->iov_base);
    SG_BUG_ON(used > bound);
    vec->iov_len = used;
    return evbuffer_commit_space(out, vec, 1) == 0 ? SG_OK : SG_ERR;
}

int sg_http1_write_request_head(struct evbuffer *out, const struct sg_hdrs *hs,
                                const struct sg_http1_fwd *f)
{
    /* Host first, as clients send it: the absolute-form authority, else the
     * client's Host, else (HTTP/1.0 without one) the default. */
    const char *host = f->override_host;
    size_t host_len = f->override_host_len;
    for (uint32_t i = 0; i < hs->n && host == NULL; i++) {
        if (hs->h[i].flags & SG_HDR_HOST) {
            host = sg_hdr_value(hs, &hs->h[i]);
            host_len = hs->h[i].val_len;
        }
    }
    if (host == NULL && f->default_host != NULL) {
        host = f->default_host;
        host_len = strlen(host);
    }
    /* hs->len covers the target and every name and value once; each line
     * adds at most 4 bytes, each merged value 2. */
    size_t bound = (size_t)hs->len + 6 * (size_t)hs->n + f->method_len + 2 * host_len +
                   strlen(f->client_ip) + strlen(f->proto) + 256;
    struct evbuffer_iovec vec;
    struct head_writer w;
    if (hw_begin(&w, out, bound, &vec) != SG_OK)
        return SG_ERR;
    hw_put(&w, f->method, f->method_len);
    HW_LIT(&w, " ");
    hw_put(&w, hs->buf + hs->first_off, hs->first_len);
    HW_LIT(&w, " HTTP/1.1\r\n");
    if (host != NULL) {
        HW_LIT(&w, "Host: ");
        hw_put(&w, host, host_len);
        HW_LIT(&w, "\r\n");
    }
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *h = &hs->h[i];
        if (h->flags & (SG_HDR_DROP | SG_HDR_HOST))
            continue;
        hw_line(&w, hs, h);
    }
    hw_merged(&w, hs, SG_HDR_XFF, "X-Forwarded-For", 15, f->client_ip);
    HW_LIT(&w, "X-Forwarded-Proto: ");
    hw_put(&w, f->proto, strlen(f->proto));
    HW_LIT(&w, "\r\n");
    if (host != NULL && f->default_host != host) {
        HW_LIT(&w, "X-Forwarded-Host: ");
        hw_put(&w, host, host_len);
        HW_LIT(&w, "\r\n");
    }
    hw_merged(&w, hs, SG_HDR_VIA, "Via", 3,
              f->client_minor == 0 ? "1.0 surgegate" : "1.1 surgegate");
    if (f->chunked) {
        HW_LIT(&w, "Transfer-Encoding: chunked\r\n");
    } else if (f->has_length) {
        HW_LIT(&w, "Content-Length: ");
        hw_u64(&w, f->length);
        HW_LIT(&w, "\r\n");
    }
    HW_LIT(&w, "\r\n");
    return hw_end(&w, out, &vec, bound);
}

int sg_http1_write_response_head(struct evbuffer *out, const struct sg_hdrs *hs,
                                 const struct sg_http1_resp *r)
{
    size_t bound = (size_t)hs->len + 4 * (size_t)hs->n + 160;
    struct evbuffer_iovec vec;
    struct head_writer w;
    if (hw_begin(&w, out, bound, &vec) != SG_OK)
        return SG_ERR;
    HW_LIT(&w, "HTTP/1.1 ");
    hw_u64(&w, (uint64_t)(r->status % 1000));
    HW_LIT(&w, " ");
    if (hs->first_len > 0) {
        hw_put(&w, hs->buf + hs->first_off, hs->first_len);
    } else {
        const char *reason = sg_http1_reason(r->status);
        hw_put(&w, reason, strlen(reason));
    }
    HW_LIT(&w, "\r\n");
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct sg_hdr *h = &hs->h[i];
        if (h->flags & (SG_HDR_HOPBYHOP | SG_HDR_FRAMING)) {
            if (r->keep_cl && sg_hdr_name_is(hs, h, "content-length"))
                hw_line(&w, hs, h);
            continue;
        }
        hw_line(&w, hs, h);
    }
    if (!r->head_only) {
        if (r->chunked) {
            HW_LIT(&w, "Transfer-Encoding: chunked\r\n");
        } else if (r->has_length) {
            HW_LIT(&w, "Content-Length: ");
            hw_u64(&w, r->length);
            HW_LIT(&w, "\r\n");
        }
    }
    if (r->close)
        HW_LIT(&w, "Connection: close\r\n");
    else if (r->keepalive_10)
        HW_LIT(&w, "Connection: keep-alive\r\n");
    HW_LIT(&w, "\r\n");
    return hw_end(&w, out, &vec, bound);
}

const char *sg_http1_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void sg_http1_write_error(struct evbuffer *out, int status, uint32_t retry_after, bool close,
                          bool head_only)
{
    const char *reason = sg_http1_reason(status);
    char body[96], ra[40] = "";
    int blen = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    if (status == 503)
        snprintf(ra, sizeof(ra), "Retry-After: %u\r\n",
                 retry_after > 0 ? (unsigned)retry_after : 1u);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "Cache-Control: no-cache\r\n%s%s\r\n%s",
                        status, reason, blen, ra, close ? "Connection: close\r\n" : "",
                        head_only ? "" : body);
}

void sg_http1_chunk_header(struct evbuffer *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char b[24];
    int n = (int)sizeof(b);
    b[--n] = '\n';
    b[--n] = '\r';
    do {
        b[--n] = hex[len & 0xf];
        len >>= 4;
    } while (len > 0);
    evbuffer_add(out, b + n, sizeof(b) - (size_t)n);
}

void sg_http1_body_piece(struct evbuffer *out, const char *at, size_t len, bool chunked)
{
    if (chunked)
        sg_http1_chunk_header(out, len);
    evbuffer_add(out, at, len);
    if (chunked)
        evbuffer_add(out, "\r\n", 2);
}
