/* session-t.h: one client connection and the request in progress on it. */
#ifndef SURGEGATE_SESSION_T_H
#define SURGEGATE_SESSION_T_H

#include <event2/event_struct.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>

#include "surgegate/conn-t.h"
#include "surgegate/exchange-t.h"
#include "surgegate/http1-t.h"

#define SG_SESSION_MAGIC 0x5e5510a5u

struct sg_worker;
struct sg_wfrontend;

/* The session's one state. Legal moves (session_set_state checks them in
 * debug builds):
 *   HEAD -> EXCHANGE      a request head was parsed and handed to the exchange
 *   EXCHANGE -> HEAD      response delivered; the connection stays (keep-alive)
 *   HEAD|EXCHANGE -> DRAIN    the last response is written: flush, then close
 *   DRAIN -> LINGER       flushed with request bytes unread: discard, then close
 *   any -> CLOSED         closed; memory freed on the next loop pass */
enum sg_session_state {
    SG_SS_HEAD = 0, /* reading a request head (or idle between requests) */
    SG_SS_EXCHANGE, /* the request is with the exchange (connect, body up, response down) */
    SG_SS_DRAIN,    /* last response written; flushing, then close */
    SG_SS_LINGER,   /* flushed and shut for writing; discarding input, then close */
    SG_SS_CLOSED,   /* closed; waiting for the deferred free */
    SG_SS__COUNT
};

/* The one deadline the session's timer stands for at a time. */
enum sg_session_deadline {
    SG_SD_NONE = 0,
    SG_SD_HEAD,   /* timeouts.http_request: the request head must be complete */
    SG_SD_IDLE,   /* timeouts.keepalive: waiting for the next request */
    SG_SD_LINGER, /* lingering close: stop discarding input and close */
    SG_SD_STOP,   /* graceful stop: an idle connection's last chance to send a request */
};

struct sg_session {
    uint32_t magic;
    enum sg_session_state state;
    struct sg_worker *w;
    struct sg_wfrontend *fe;
    struct sg_session *prev, *next; /* worker's session list */
    struct sg_conn cc;              /* client side; owned */
    char client_ip[48];

    llhttp_t rq;          /* request parser */
    struct sg_hdrs rqh;   /* request head */
    struct sg_exchange x; /* the request's exchange with a backend */
    struct event timer;   /* the deadline in `timer_for` */
    enum sg_session_deadline timer_for;
    struct event free_ev; /* deferred free */

    /* per-request facts for the stats and the access log */
    uint64_t t_start_us; /* monotonic: first byte of the request */
    uint64_t in0, out0;  /* client byte counters when the request began */
    int resp_status;     /* final status sent to the client */
    enum sg_end end;     /* how the request ended (access log); NONE = ok */
    bool accounted;      /* this request was recorded */
    /* two flags of the request and the response, here in the padding after
     * `accounted` (the session stays at 1,656 bytes): */
    bool line_done;    /* the request line's target was followed by a version */
    bool resp_flushed; /* a byte of the final response went to the client connection */

    uint64_t body_bytes;                 /* request body bytes received */
    uint64_t req_body_left;              /* Content-Length request body bytes still to move */
    uint64_t resp_body_left;             /* Content-Length response body bytes still to send */
    uint32_t abs_host_off, abs_host_len; /* authority of an absolute-form target */
    uint32_t chunk_ext_bytes;            /* chunk extension bytes in the current chunk */
    int pending_error;                   /* status chosen by a parser callback */
    const char *error_why;
    uint32_t nrequests;
    uint32_t req_reads; /* client reads since the current request began */

    /* request facts */
    bool head_started; /* a byte of the current request arrived */
    bool head_ready;   /* on_headers_complete fired (parser paused) */
    bool head_lf;      /* obs-fold scan: last head byte seen was LF */
    bool req_has_body;
    bool req_done; /* request message complete */
    bool expect_continue;
    bool client_10;          /* HTTP/1.0 client */
    bool client_close;       /* close after this response */
    bool rq_upgrade;         /* parser stopped with HPE_PAUSED_UPGRADE */
    bool kick;               /* run the parser once even with no new input */
    bool client_read_paused; /* backpressure: upstream output full */
    bool reads_stopped;      /* not read after a request that asked to close */

    /* response facts */
    bool resp_head_sent; /* response head written to the client (staged in w->cout) */
    bool resp_chunked_out;
    bool linger; /* unread request bytes: lingering close */
};

#endif
