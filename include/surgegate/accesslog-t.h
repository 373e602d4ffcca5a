/* accesslog-t.h: types of the access log (accesslog.c): one line per
 * request, JSON lines or the combined format, formatted by each worker into
 * its own buffer and written by one writer thread off the request path. */
#ifndef SURGEGATE_ACCESSLOG_T_H
#define SURGEGATE_ACCESSLOG_T_H

#include <stddef.h>
#include <stdint.h>

enum sg_alog_format { SG_ALOG_JSON, SG_ALOG_COMBINED };

/* How a request ended: the access log's "end" field (sg_end_name() gives
 * its text). SG_END_NONE: not decided yet; written as "ok". */
enum sg_end {
    SG_END_NONE = 0,
    SG_END_OK,
    SG_END_CLOSED,          /* the connection closed under a request in progress */
    SG_END_CLIENT_CLOSED,   /* the client went away */
    SG_END_CLIENT_TIMEOUT,  /* the client was too slow (408, or a write timeout) */
    SG_END_BAD_REQUEST,     /* 4xx answered by the proxy */
    SG_END_PROXY_ERROR,     /* 5xx answered by the proxy, no better reason */
    SG_END_NO_POOL,         /* no route and no default pool */
    SG_END_NO_BACKEND,      /* no usable backend */
    SG_END_QUEUE_FULL,      /* the pool's queue held maxqueue requests */
    SG_END_QUEUE_TIMEOUT,   /* waited timeouts.queue (or hold_timeout) for a slot */
    SG_END_BACKEND_ERROR,   /* connect or send failed, retries spent */
    SG_END_BACKEND_TIMEOUT, /* connect or response timeout */
    SG_END_BACKEND_RESET,   /* the backend closed mid-response */
    SG_END_BAD_RESPONSE,    /* the backend's response did not parse */
    SG_END_SHED,            /* refused at once: the pool's queue is overloaded */
    SG_END__COUNT
};

/* One request as the access log sees it. Strings are borrowed for the call
 * only; lengths are in bytes and the bytes may be anything (they are
 * escaped). */
struct sg_alog_rec {
    uint64_t start_us;     /* wall clock µs since the epoch when the request began */
    const char *client_ip; /* text, NUL-terminated; NULL = unknown */
    const char *method;
    size_t method_len; /* NULL: no request line was parsed */
    const char *target;
    size_t target_len; /* request target as received */
    const char *host;
    size_t host_len; /* may be NULL */
    const char *referer;
    size_t referer_len; /* may be NULL */
    const char *user_agent;
    size_t ua_len;                         /* may be NULL */
    int http_minor;                        /* HTTP/1.<minor> */
    const char *frontend, *pool, *backend; /* NUL-terminated; NULL when none */
    int status;                            /* status sent to the client (0 = none sent) */
    uint64_t bytes_in, bytes_out;          /* client bytes read / written for this request */
    int64_t queue_us, connect_us, ttfb_us, total_us; /* -1 = not reached */
    uint32_t retries;
    const char *end; /* sg_end_name() of how it ended; NULL is written as "-" / null */
};

/* Opaque: the log (one per process) and a worker's buffer (one per worker thread). */
struct sg_alog;
struct sg_alog_w;

#endif
