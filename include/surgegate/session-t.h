/* session-t.h: one client connection and the request in progress on it. */
#ifndef SURGEGATE_SESSION_T_H
#define SURGEGATE_SESSION_T_H

#include <event2/event_struct.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>

#include "surgegate/conn-t.h"
#include "surgegate/http1-t.h"
#include "surgegate/queue-t.h"

#define SG_SESSION_MAGIC 0x5e5510a5u

struct evbuffer;
struct sg_worker;
struct sg_wfrontend;
struct sg_wpool;
struct sg_upconn;
struct sg_pool;
struct sg_backend;

enum sg_session_state {
    SG_SS_HEAD,    /* reading a request head (or idle between requests) */
    SG_SS_CONNECT, /* head parsed; waiting for an upstream connection */
    SG_SS_FORWARD, /* upstream connected: body up, response down */
    SG_SS_DRAIN,   /* last response written; flushing, then close */
    SG_SS_LINGER,  /* flushed and shut for writing; discarding input, then close */
};

#define SG_SESSION_MAX_TRIES 12

struct sg_session {
    uint32_t magic;
    enum sg_session_state state;
    struct sg_worker *w;
    struct sg_wfrontend *fe;
    struct sg_session *prev, *next; /* worker's session list */
    struct sg_conn cc;              /* client side; owned */
    char client_ip[48];

    llhttp_t rq, rs;         /* request and response parsers */
    struct sg_hdrs rqh, rsh; /* request and response heads */
    struct evbuffer *replay; /* forwarded head (+ small body) kept for retries */
    struct event timer;      /* header deadline / keep-alive idle */
    struct event free_ev;    /* deferred free */

    struct sg_upconn *up;
    struct sg_wpool *wp;
    struct sg_backend *backend;
    uint32_t tried[SG_SESSION_MAX_TRIES];
    uint32_t ntried;
    uint32_t retries_left;
    uint32_t stale_retries;
    struct sg_qentry qe; /* waiting in the pool queue (queued) */
    const char *hkey;    /* hash key of the current request (hash balancer) */
    size_t hkeylen;
    uint64_t attempt_us; /* monotonic start of the current attempt */

    /* per-request facts for the stats and the access log */
    uint64_t t_start_us;  /* monotonic: first byte of the request */
    uint64_t t_queued_us; /* monotonic: entered the queue (0 = not queued now) */
    uint64_t t_sent_us;   /* monotonic: request head handed to the backend */
    uint64_t queue_us;    /* time spent in the queue */
    int64_t connect_us;   /* last attempt's connect time; -1 none */
    int64_t ttfb_us;      /* request sent -> response head; -1 none */
    uint64_t in0, out0;   /* client byte counters when the request began */
    uint32_t nretries;
    int resp_status; /* final status sent to the client */
    const char *end; /* how the request ended (access log); NULL = ok */
    bool accounted;  /* this request was recorded */

    uint64_t body_bytes;                 /* request body bytes received */
    uint64_t req_body_left;              /* Content-Length request body bytes still to move */
    uint64_t resp_body_left;             /* Content-Length response body bytes still to move */
    uint32_t abs_host_off, abs_host_len; /* authority of an absolute-form target */
    uint32_t chunk_ext_bytes;            /* chunk extension bytes in the current chunk */
    int pending_error;                   /* status chosen by a parser callback */
    const char *error_why;
    uint32_t nrequests;

    /* request facts */
    bool head_started; /* a byte of the current request arrived */
    bool head_ready;   /* on_headers_complete fired (parser paused) */
    bool head_lf;      /* obs-fold scan: last head byte seen was LF */
    bool req_has_body;
    bool req_chunked_out;
    bool req_done;   /* request message complete */
    bool replayable; /* replay holds everything sent upstream so far */
    bool idempotent;
    bool head_method;
    bool expect_continue;
    bool client_10;          /* HTTP/1.0 client */
    bool client_close;       /* close after this response */
    bool rq_upgrade;         /* parser stopped with HPE_PAUSED_UPGRADE */
    bool kick;               /* run the parser once even with no new input */
    bool client_read_paused; /* backpressure: upstream output full */

    /* response facts */
    bool resp_started;   /* a response byte arrived from upstream */
    bool resp_head_sent; /* response head written to the client */
    bool resp_chunked_out;
    bool resp_done;
    bool in_1xx;
    bool up_read_paused; /* backpressure: client output full */
    bool linger;         /* unread request bytes: lingering close */
    bool slot;           /* holds a request slot on `backend` (its inflight) */
    bool queued;         /* waiting in the pool queue for a slot */
    bool active;         /* counted in the pool's active requests */
    bool retrying;       /* counted in the pool's active retries */
    bool dead;           /* closed; waiting for deferred free */
};

#endif
