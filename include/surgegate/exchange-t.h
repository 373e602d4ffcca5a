/* exchange-t.h: one request's exchange with a backend (exchange.c).
 *
 * A client side (today the HTTP/1 session, later an HTTP/2 stream) hands a
 * parsed request head to an exchange; the exchange routes it to a pool, asks
 * the balancer for a backend, takes a slot or waits in the pool's queue,
 * connects (or reuses an idle connection), sends the request, relays the
 * response back through the client side's operations, and retries on another
 * backend when that is safe. The client side never sees a backend
 * connection; the exchange never writes a client byte itself. */
#ifndef SURGEGATE_EXCHANGE_T_H
#define SURGEGATE_EXCHANGE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event_struct.h>
#include <llhttp.h>

#include "surgegate/accesslog-t.h"
#include "surgegate/http1-t.h"
#include "surgegate/queue-t.h"

#define SG_EXCHANGE_MAGIC     0xe8c4a2e5u
#define SG_EXCHANGE_MAX_TRIES 12

struct evbuffer;
struct sg_worker;
struct sg_wfrontend;
struct sg_wpool;
struct sg_upconn;
struct sg_backend;

/* The exchange's one state. Legal moves (sg_exchange_set_state checks them
 * in debug builds):
 *   IDLE -> CONNECT            a request was handed over
 *   CONNECT -> QUEUED          no backend had room: waiting for a slot
 *   QUEUED -> CONNECT          a slot was granted
 *   CONNECT -> RELAY           connected (or reused): request sent, response awaited
 *   RELAY -> CONNECT           retry on a fresh connection or another backend
 *   CONNECT -> CONNECT         retry after a connect that failed at once
 *   any -> IDLE                over: response delivered, failed, or aborted */
enum sg_xstate { SG_XS_IDLE = 0, SG_XS_CONNECT, SG_XS_QUEUED, SG_XS_RELAY, SG_XS__COUNT };

/* How an upstream attempt failed (before the response started, or within it). */
enum sg_xfail {
    SG_XF_CONNECT,         /* connect refused / no socket */
    SG_XF_CONNECT_TIMEOUT, /* connect took longer than timeouts.connect */
    SG_XF_RESET,           /* connection closed or reset after the request was sent */
    SG_XF_TIMEOUT,         /* no response within timeouts.server */
    SG_XF_DOWN,            /* still waiting when health checks took the backend down */
};

/* What to do after a failed attempt (sg_exchange_retry_decide). */
enum sg_xretry {
    SG_XR_ABORT,    /* the response had started: close the client connection */
    SG_XR_STALE,    /* a pooled connection was stale: again, same backend, free */
    SG_XR_RETRY,    /* another attempt (costs a retry, subject to the budget) */
    SG_XR_RESEND,   /* another attempt that costs a retry but not the budget: the
                     * connection was refused, or closed before any response
                     * byte - the backend is gone, not busy */
    SG_XR_FAIL_502, /* answer 502 Bad Gateway */
    SG_XR_FAIL_504, /* answer 504 Gateway Timeout */
    SG_XR_KEEP,     /* SG_XF_DOWN only: no retry; keep waiting for this backend */
};

/* The facts sg_exchange_retry_decide weighs: a pure function of these. */
struct sg_xretry_in {
    enum sg_xfail kind;
    bool resp_started;      /* a response byte arrived on this attempt */
    bool replayable;        /* everything sent so far is kept for a resend */
    bool was_reused;        /* the attempt used a pooled keep-alive connection */
    bool idempotent;        /* the method is safe to send twice */
    uint32_t stale_retries; /* stale-connection retries already made */
    uint32_t retries_left;  /* the pool's `retries` not yet used */
};

/* Response body framing, as the backend sent it. */
enum sg_xbody {
    SG_XB_NONE,   /* no body (HEAD, 204, 304, or interim 1xx) */
    SG_XB_LENGTH, /* Content-Length: `length` bytes, moved without parsing */
    SG_XB_STREAM, /* chunked or until close: parsed, delivered piece by piece */
};

/* A response head handed to the client side. */
struct sg_xresp {
    int status;
    bool interim; /* a 1xx (not 101): more heads follow */
    enum sg_xbody body;
    uint64_t length; /* SG_XB_LENGTH */
};

/* The request as the client side parsed it. The head and strings are the
 * client side's and stay valid until the exchange is over. */
struct sg_xreq {
    const struct sg_hdrs *h; /* head; target = h->buf + h->first_off (origin-form) */
    const char *client_ip;   /* text, NUL-terminated */
    const char *abs_host;    /* authority of an absolute-form target, or NULL */
    uint64_t length;         /* Content-Length (has_length) */
    uint32_t abs_host_len;
    uint8_t method; /* llhttp_method_t */
    uint8_t http_minor;
    bool idempotent;
    bool head_method;
    bool chunked;    /* body forwarded chunked */
    bool has_length; /* Content-Length */
    bool upgrade;    /* an Upgrade request: forwarded plainly, connection ends */
};

/* What the exchange asks of its client side. Every operation runs on the
 * worker's thread, from inside an exchange call or callback; `cl` is the
 * pointer given to sg_exchange_init. After `done`, `fail` or `abort` the
 * exchange is IDLE and touches nothing more of the request: those three may
 * start the client's next request on the same exchange. */
struct sg_xclient_ops {
    /* Connected: the head is staged in w->uout (the client side flushes it
     * with sg_exchange_send_req) and the request body may flow. */
    void (*ready)(void *cl);
    /* Upstream output drained below its low mark: request body may flow again. */
    void (*req_resume)(void *cl);
    /* A response head: interim (1xx) or final. */
    void (*resp_head)(void *cl, const struct sg_hdrs *h, const struct sg_xresp *r);
    /* Response body bytes (copied from p, or moved out of src). */
    void (*resp_body)(void *cl, const char *p, size_t n);
    void (*resp_body_move)(void *cl, struct evbuffer *src, size_t n);
    /* The response message is complete (after its last body byte). */
    void (*resp_end)(void *cl);
    /* Bytes staged or queued towards the client (backpressure). */
    size_t (*resp_buffered)(void *cl);
    /* Sends what is staged; true when the client's output is still above
     * its high mark (the exchange then stops reading the backend until
     * sg_exchange_resp_resume). */
    bool (*resp_flush)(void *cl);
    /* Over: the response was delivered and the backend connection released.
     * `eof` when the response was delimited by the backend's close. */
    void (*done)(void *cl, bool eof);
    /* Over before any response head: answer `status` (502, 503, 504). */
    void (*fail)(void *cl, int status, enum sg_end end);
    /* Over in the middle of a response: the client connection must close. */
    void (*abort)(void *cl, enum sg_end end);
};

/* One request's exchange. Embedded in its client side; reused for every
 * request of a keep-alive connection. */
struct sg_exchange {
    uint32_t magic;
    enum sg_xstate state;
    struct sg_worker *w;
    const struct sg_wfrontend *fe;
    const struct sg_xclient_ops *ops;
    void *cl;
    struct sg_xreq rq;

    llhttp_t rs;             /* response parser */
    struct sg_hdrs rsh;      /* response head */
    struct evbuffer *replay; /* forwarded head (+ small body) kept for retries */
    struct event *qtimer;    /* the queue deadline (timeouts.queue or hold_timeout);
                              * made on the first wait in the queue */

    struct sg_upconn *up;
    struct sg_wpool *wp; /* routed pool; NULL before routing */
    struct sg_backend *backend;
    LIST_ENTRY(sg_exchange) on_backend; /* in wp->wb[backend->id].xs while `slot` */
    uint32_t tried[SG_EXCHANGE_MAX_TRIES];
    uint32_t ntried;
    uint32_t retries_left;
    uint32_t stale_retries;
    struct sg_qentry qe; /* waiting in the pool queue (QUEUED) */
    const char *hkey;    /* hash key of the request (balancers with SG_LB_F_KEY) */
    size_t hkeylen;
    uint64_t resp_body_left; /* Content-Length response body bytes still to move */

    /* facts for the stats and the access log (per request) */
    uint64_t attempt_us;  /* monotonic start of the current attempt */
    uint64_t t_queued_us; /* monotonic: entered the queue (0 = not queued now) */
    uint64_t t_sent_us;   /* monotonic: request head handed to the backend */
    uint64_t queue_us;    /* time spent in the queue */
    int64_t connect_us;   /* last attempt's connect time; -1 none */
    int64_t ttfb_us;      /* request sent -> response head; -1 none */
    uint32_t nretries;
    uint32_t retry_after; /* Retry-After (s) of a 503 the queue decided; 0 = the default */
    int prio;             /* enum sg_prio of the route taken */

    bool admitted;       /* counted in the pool's admitted requests */
    bool replayable;     /* replay holds everything sent upstream so far */
    bool req_done;       /* the client side sent the whole request */
    bool awaiting;       /* counted in backend->awaiting (exchange_await) */
    bool resp_started;   /* a response byte arrived on this attempt */
    bool resp_head_done; /* the final head went to the client side (then: trailers) */
    bool resp_done;      /* the response message is complete */
    bool in_1xx;         /* inside an interim response */
    bool up_read_paused; /* backpressure: client output full */
    bool slot;           /* holds a request slot on `backend` (its inflight) */
    bool active;         /* counted in the pool's active requests */
    bool retrying;       /* counted in the pool's active retries */
};

#endif
