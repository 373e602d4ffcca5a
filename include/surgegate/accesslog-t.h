/* accesslog-t.h: types of the access log (accesslog.c): one line per
 * request, JSON lines or the combined format, formatted by each worker into
 * its own buffer and written by one writer thread off the request path. */
#ifndef SURGEGATE_ACCESSLOG_T_H
#define SURGEGATE_ACCESSLOG_T_H

#include <stddef.h>
#include <stdint.h>

enum sg_alog_format { SG_ALOG_JSON, SG_ALOG_COMBINED };

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
    /* how it ended: "ok", "client_closed", "backend_error", "backend_timeout",
     * "queue_timeout", "queue_full", "no_backend", "bad_request",
     * "proxy_error" ... (a static string; NULL is written as "-" / null) */
    const char *end;
};

/* Opaque: the log (one per process) and a worker's buffer (one per worker thread). */
struct sg_alog;
struct sg_alog_w;

#endif
