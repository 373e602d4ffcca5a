/* http1-t.h: types for HTTP/1.x header handling (llhttp glue). */
#ifndef SURGEGATE_HTTP1_T_H
#define SURGEGATE_HTTP1_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One header: offsets into sg_hdrs.buf. */
struct sg_hdr {
    uint32_t name_off, name_len;
    uint32_t val_off, val_len;
    uint16_t flags; /* SG_HDR_* classification, set by sg_hdrs_classify() */
};

/* Header flags. */
#define SG_HDR_HOPBYHOP                                                                        \
    0x01                    /* Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection, \
                               or named by Connection: never forwarded */
#define SG_HDR_FRAMING 0x02 /* Content-Length / Transfer-Encoding: regenerated, never forwarded */
#define SG_HDR_HOST    0x04
#define SG_HDR_XFF     0x08 /* X-Forwarded-For (merged into ours) */
#define SG_HDR_XFWD    0x10 /* X-Forwarded-Proto / -Host (replaced by ours) */
#define SG_HDR_VIA     0x20 /* Via (merged into ours) */
#define SG_HDR_EXPECT  0x40 /* Expect (answered by the proxy) */
#define SG_HDR_DROP \
    (SG_HDR_HOPBYHOP | SG_HDR_FRAMING | SG_HDR_XFF | SG_HDR_XFWD | SG_HDR_VIA | SG_HDR_EXPECT)

#define SG_HDRS_BUF0  1024 /* first buffer size */
#define SG_HDRS_H0    16   /* first header-index size */
#define SG_HDRS_CACHE 256  /* parked buffers kept per worker */

/* Buffers of the first size, parked by idle sessions and reused by busy
 * ones, so that idle keep-alive connections hold no header memory and busy
 * ones do not malloc per request. One per worker; no locking. */
struct sg_hdrs_cache {
    char *buf[SG_HDRS_CACHE];
    struct sg_hdr *h[SG_HDRS_CACHE];
    uint32_t nbuf, nh;
};

/* A message head being collected from llhttp callbacks. The buffer holds the
 * URL (requests) or reason phrase (responses) followed by header names and
 * values; it grows up to `limit` bytes. Owned by a session; reused between
 * messages with sg_hdrs_reset() so steady-state traffic does not allocate. */
struct sg_hdrs {
    char *buf;
    uint32_t len, cap, limit; /* buffer bytes: used, allocated, most allowed */
    uint32_t max_first, max_hdr_bytes;
    uint32_t first_off, first_len; /* URL or reason phrase */
    struct sg_hdr *h;
    uint32_t n, hcap, max_headers;
    uint32_t hdr_bytes; /* header block size as counted for the limit */
    uint8_t last;       /* last callback seen: SG_HCB_* */
    bool too_many, too_large, first_too_long, folded;
    /* llhttp reports an obs-fold continuation as a second value span of the
     * same header inside one execute call; a value merely split across reads
     * arrives in different calls. The caller bumps exec_seq per execute. */
    uint32_t exec_seq, last_value_seq;
    struct sg_hdrs_cache *cache; /* may be NULL */
};

enum { SG_HCB_NONE, SG_HCB_FIELD, SG_HCB_VALUE, SG_HCB_VALUE_DONE };

#endif
