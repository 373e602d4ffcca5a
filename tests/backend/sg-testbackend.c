/* sg-testbackend.c - a scriptable HTTP/1.1 origin server for surgegate's
 * integration tests.
 *
 * One event loop, bufferevents, llhttp for parsing. Every behaviour a test
 * needs is selected by the request itself (path and query string), so one
 * backend process serves a whole test:
 *
 *   any path              200, "X-Backend: NAME", body "NAME\n"
 *   ?status=N             answer with status N (204/304 carry no body)
 *   ?delay=MS             answer after MS milliseconds (a timer, never a sleep)
 *   /echo                 the request body streamed back (Content-Length when
 *                         the request had one, else chunked)
 *   /headers              the request head exactly as received on the wire
 *   /sink                 body read and discarded, answer {"bytes":N}
 *   /download?bytes=N     N bytes of a repeating pattern, streamed as the
 *                         socket drains; &chunked=1 chunked, &eof=1 no length
 *                         and close to end the body
 *   ?reset_after=N        head with Content-Length: 1000000, N body bytes, RST
 *                         (&chunked=1: a chunked head, N bytes in chunks, RST)
 *   ?reset=1              RST without sending anything
 *   ?stall=MS             do not read the request body for MS ms after the
 *                         head (the client must see backpressure)
 *   ?close=1              "Connection: close" and close after the response
 *   ?garbage=1            "NOT HTTP\r\n\r\n" then close
 *   /__stats              {"connections":C,"requests":R,"accepted":A,"open":O,
 *                         "healthz":H,"inflight":I,"max_inflight":M}; open: sockets
 *                         open now; healthz: health checks (not in "requests");
 *                         inflight: requests being handled now (head received,
 *                         response not yet queued; health checks excluded);
 *                         max_inflight: the peak of inflight since start or
 *                         since the last /__stats?reset=1
 *   /healthz              a health check: 200 "ok" (503 "down" with
 *                         --refuse-health, or as set by /__control?health=N).
 *                         A request with "User-Agent: surgegate-health" (the
 *                         proxy's checker, on by default at "/") is a health
 *                         check whatever its path
 *   /__control?health=N&status=N&delay=MS&reset=1
 *                         runtime defaults, kept until changed: the /healthz
 *                         status; the status of every other request without
 *                         its own ?status= (0: normal); the delay of every
 *                         other request without its own ?delay= (0: none).
 *                         reset=1 first restores the startup defaults. Answers
 *                         200 "ok"; neither counted nor logged.
 *
 * Options: --close-after N closes each connection after N responses (with
 * "Connection: close"); --drop-after N does the same silently (no header, as
 * a backend that drops keep-alive connections does); --idle-timeout MS closes
 * a connection idle between requests for MS ms, silently; --delay MS answers
 * every request (but /__stats, /__control and /healthz) after MS ms unless
 * it has its own ?delay= (a delayed /echo answers without the body, as with
 * ?delay=).
 *
 * --workers N gives the backend a fixed capacity, as an app server with N
 * worker processes has: at most N requests are in service at once, each for
 * its delay (--delay, ?delay=, /__control), so the capacity is N / delay
 * requests a second; the others wait in one FIFO, in arrival order, and their
 * delay starts only when a worker takes them. A worker keeps a request for
 * its whole delay even when the client goes away meanwhile (the work is
 * done, the answer dropped), and a waiting request whose client half-closed
 * is still served, as a busy app server does; a waiting request whose
 * connection is gone leaves the FIFO. Health checks, /__stats, /__control and
 * an /echo that streams (no delay) take no worker. /__stats adds
 * "in_service", "max_in_service" (reset with max_inflight) and "waiting".
 *
 * --demo-backend ADDR listens like --listen (port 0: one the kernel picks)
 * and prints "listening on HOST:PORT" instead of "ready", with the name
 * "demo-PORT" unless --name is given: what surgegate --demo-backend prints,
 * so hooks/local-spawn can start this backend (a wrapper named in
 * SURGEGATE_BIN; tests/bench/surge.py does so).
 *
 * Pipelining: the parser is paused at the end of every request and resumed
 * only once its response has been queued completely, so responses leave in
 * request order. Memory stays bounded: input stops being read past a high
 * watermark, and downloads reference one static pattern block.
 *
 * Counting: /__stats and /__control requests are never counted; health
 * checks count only in "healthz" (never logged, never in "requests"), so a
 * test sees its own traffic whether or not the proxy checks this backend. A
 * connection counts in "connections" once it carries its first counted
 * request ("accepted" counts every accepted socket).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <llhttp.h>

#define TB_PATTERN_SIZE (64 * 1024)   /* static download block */
#define TB_OUT_LOW      (256 * 1024)  /* refill / resume below this */
#define TB_OUT_HIGH     (1024 * 1024) /* stop producing above this */
#define TB_IN_HIGH      (1024 * 1024) /* stop reading above this */
#define TB_MAX_HEAD     (1024 * 1024) /* request head cap */
#define TB_MAX_URL      (64 * 1024)
#define TB_MAX_HDR      8192 /* one header field or value */
#define TB_RST_DELAY_MS 100

enum tb_kind {
    TB_DEFAULT,
    TB_ECHO,
    TB_HEADERS,
    TB_SINK,
    TB_DOWNLOAD,
    TB_STATS,
    TB_HEALTH,
    TB_CONTROL
};
enum tb_pause { TB_P_NONE, TB_P_BEGIN, TB_P_HEADERS, TB_P_COMPLETE };
enum tb_timer { TB_T_NONE, TB_T_DELAY, TB_T_STALL, TB_T_IDLE };

struct tb_conn {
    struct bufferevent *bev;
    struct event *timer;
    enum tb_timer tmode; /* what c->timer is armed for */
    llhttp_t parser;
    enum tb_pause pause; /* why the last llhttp_execute() paused */
    int kick;            /* run a zero-length execute after a head pause */
    int busy;            /* a response is pending (timer or stream) */
    int closing;         /* close once the output is flushed */
    int rst;             /* ... with an RST instead of a FIN */
    int rst_armed;       /* RST timer running */
    int read_paused;     /* reading stopped for output backpressure */
    int peer_eof;
    int counted;  /* counted in "connections" */
    int inflight; /* the current request counts in "inflight" */
    unsigned responses;

    /* request being parsed */
    int in_head;
    int in_message;        /* between message begin and complete */
    struct evbuffer *head; /* raw head bytes */
    char url[TB_MAX_URL + 1];
    size_t url_len;
    int url_overflow;
    char hfield[TB_MAX_HDR + 1];
    size_t hfield_len;
    char hvalue[TB_MAX_HDR + 1];
    size_t hvalue_len;
    int expect_continue;
    int ua_check;  /* User-Agent: surgegate-health */
    int keepalive; /* from llhttp at headers/message complete */
    int is_head;
    int http11; /* client speaks >= HTTP/1.1 */
    int req_chunked;
    int req_has_cl;
    uint64_t req_cl;
    uint64_t body_bytes;

    /* response */
    enum tb_kind kind;
    int status;
    int status_q; /* ?status= given */
    long delay_ms;
    int delay_q;     /* ?delay= given */
    int stats_reset; /* /__stats?reset=1 */
    int want_close;
    int garbage;
    long long reset_after; /* -1: not asked */
    int reset_now;
    long stall_ms;
    uint64_t dl_bytes;
    int dl_chunked_q;
    int dl_eof_q;
    int echo_chunked;     /* echo body framed as chunks */
    int echo_close_delim; /* echo body delimited by close */
    int head_sent;        /* a response head went out for this request */
    int close_after;      /* this response ends the connection */

    /* download stream */
    int streaming;
    uint64_t dl_left;
    int dl_chunked;

    /* --workers: the worker serving this request, or its place in the FIFO */
    struct tb_worker *worker;
    int waiting;
    struct tb_conn *wait_next, *wait_prev;
};

/* One of --workers N: serves one request at a time for its delay. conn is
 * NULL while idle and once the connection it serves is gone (the worker
 * stays busy until its timer fires). */
struct tb_worker {
    struct event *timer;
    struct tb_conn *conn;
    int busy;
};

static struct event_base *tb_base;
static const char *tb_name = "backend";
static unsigned long tb_close_after; /* 0: unlimited */
static unsigned long tb_drop_after;  /* 0: never */
static long tb_idle_ms;              /* 0: never */
static FILE *tb_log;
static int tb_refuse_health;
static long tb_start_delay_ms; /* --delay */
/* runtime defaults (/__control) */
static int tb_health_status = 200;
static int tb_default_status; /* 0: normal */
static long tb_default_delay_ms;
static unsigned long long tb_stat_conns, tb_stat_reqs, tb_stat_accepted, tb_stat_health;
static long long tb_stat_open, tb_inflight, tb_max_inflight;
static char tb_pattern[TB_PATTERN_SIZE];
static llhttp_settings_t tb_settings;
/* --workers: 0 = no limit */
static long tb_nworkers;
static struct tb_worker *tb_workers;
static long long tb_in_service, tb_max_in_service, tb_waiting;
static struct tb_conn *tb_wait_head, *tb_wait_tail;

static void conn_process(struct tb_conn *c);
static int conn_check_close(struct tb_conn *c);

static const char *tb_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static int tb_status_has_body(int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200));
}

static void tb_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sg-testbackend: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- request parsing callbacks (never free the connection here) ---- */

static struct tb_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int tb_on_message_begin(llhttp_t *p)
{
    struct tb_conn *c = conn_of(p);
    c->url_len = 0;
    c->url_overflow = 0;
    c->hfield_len = c->hvalue_len = 0;
    c->expect_continue = 0;
    c->ua_check = 0;
    c->body_bytes = 0;
    c->kind = TB_DEFAULT;
    c->status = 200;
    c->status_q = 0;
    c->delay_ms = 0;
    c->delay_q = 0;
    c->stats_reset = 0;
    c->want_close = 0;
    c->garbage = 0;
    c->reset_after = -1;
    c->reset_now = 0;
    c->stall_ms = 0;
    c->in_message = 1;
    c->dl_bytes = 0;
    c->dl_chunked_q = 0;
    c->dl_eof_q = 0;
    c->echo_chunked = 0;
    c->echo_close_delim = 0;
    c->head_sent = 0;
    c->close_after = 0;
    evbuffer_drain(c->head, evbuffer_get_length(c->head));
    c->pause = TB_P_BEGIN;
    return HPE_PAUSED;
}

static int tb_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct tb_conn *c = conn_of(p);
    if (c->url_len + len > TB_MAX_URL) {
        c->url_overflow = 1;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int tb_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct tb_conn *c = conn_of(p);
    size_t n = len;
    if (c->hfield_len + n > TB_MAX_HDR)
        n = TB_MAX_HDR - c->hfield_len;
    memcpy(c->hfield + c->hfield_len, at, n);
    c->hfield_len += n;
    c->hfield[c->hfield_len] = '\0';
    return 0;
}

static int tb_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct tb_conn *c = conn_of(p);
    size_t n = len;
    if (c->hvalue_len + n > TB_MAX_HDR)
        n = TB_MAX_HDR - c->hvalue_len;
    memcpy(c->hvalue + c->hvalue_len, at, n);
    c->hvalue_len += n;
    c->hvalue[c->hvalue_len] = '\0';
    return 0;
}

static int tb_on_header_value_complete(llhttp_t *p)
{
    struct tb_conn *c = conn_of(p);
    if (strcasecmp(c->hfield, "expect") == 0 && strcasecmp(c->hvalue, "100-continue") == 0)
        c->expect_continue = 1;
    if (strcasecmp(c->hfield, "user-agent") == 0 && strcmp(c->hvalue, "surgegate-health") == 0)
        c->ua_check = 1;
    c->hfield_len = c->hvalue_len = 0;
    c->hfield[0] = c->hvalue[0] = '\0';
    return 0;
}

static int tb_on_headers_complete(llhttp_t *p)
{
    struct tb_conn *c = conn_of(p);
    c->keepalive = llhttp_should_keep_alive(p);
    c->is_head = llhttp_get_method(p) == HTTP_HEAD;
    c->http11 = llhttp_get_http_major(p) > 1 ||
                (llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1);
    c->req_chunked = (p->flags & F_CHUNKED) != 0;
    c->req_has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
    c->req_cl = c->req_has_cl ? p->content_length : 0;
    c->pause = TB_P_HEADERS;
    return HPE_PAUSED;
}

static void conn_write_echo(struct tb_conn *c, const char *at, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (len == 0)
        return;
    if (c->echo_chunked) {
        evbuffer_add_printf(out, "%zx\r\n", len);
        evbuffer_add(out, at, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, at, len);
    }
}

static int tb_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct tb_conn *c = conn_of(p);
    c->body_bytes += len;
    if (c->kind == TB_ECHO && !c->is_head)
        conn_write_echo(c, at, len);
    return 0;
}

static int tb_on_message_complete(llhttp_t *p)
{
    struct tb_conn *c = conn_of(p);
    c->keepalive = llhttp_should_keep_alive(p);
    c->in_message = 0;
    c->pause = TB_P_COMPLETE;
    return HPE_PAUSED;
}

/* ---- responses ---- */

/* Writes a status line and the common headers. len < 0: no Content-Length;
 * chunked: Transfer-Encoding: chunked. The Connection header follows
 * c->close_after, which the caller has decided. */
static void conn_write_head(struct tb_conn *c, int status, long long len, int chunked,
                            const char *ctype)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nX-Backend: %s\r\n", status, tb_reason(status),
                        tb_name);
    if (ctype)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (chunked)
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    else if (len >= 0)
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", len);
    if (c->close_after)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (!c->http11)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add(out, "\r\n", 2);
    c->head_sent = 1;
}

/* A complete response with an in-memory body. */
static void conn_write_simple(struct tb_conn *c, int status, const char *ctype, const void *body,
                              size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!tb_status_has_body(status)) {
        conn_write_head(c, status, -1, 0, NULL);
        return;
    }
    conn_write_head(c, status, (long long)len, 0, ctype);
    if (!c->is_head && len)
        evbuffer_add(out, body, len);
}

static void conn_decide_close(struct tb_conn *c)
{
    c->close_after = !c->keepalive || c->want_close || c->garbage || c->dl_eof_q ||
                     (tb_close_after && c->responses + 1 >= tb_close_after);
}

static uint64_t tb_parse_u64(const char *s, size_t n)
{
    char tmp[32];
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return strtoull(tmp, NULL, 10);
}

static int tb_path_is(const char *path, size_t plen, const char *want)
{
    return strlen(want) == plen && memcmp(path, want, plen) == 0;
}

/* The query of /__stats (reset=1: restart max_inflight) and of /__control
 * (applied at once: the runtime defaults). */
static void tb_parse_control(struct tb_conn *c, const char *query)
{
    long health = -1, status = -1, delay = -1;
    int reset = 0;

    for (const char *s = query; *s;) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        size_t klen = eq ? (size_t)(eq - s) : n;
        const char *v = eq ? eq + 1 : s + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        uint64_t num = tb_parse_u64(v, vlen);
#define KEY(k) (klen == strlen(k) && memcmp(s, k, klen) == 0)
        if (KEY("reset"))
            reset = num != 0;
        else if (KEY("health") && num >= 100 && num <= 999)
            health = (long)num;
        else if (KEY("status") && (num == 0 || (num >= 100 && num <= 999)))
            status = (long)num;
        else if (KEY("delay"))
            delay = num > 600000 ? 600000 : (long)num;
#undef KEY
        s += n;
        if (*s == '&')
            s++;
    }
    if (c->kind == TB_STATS) {
        c->stats_reset = reset;
        return;
    }
    if (reset) {
        tb_health_status = tb_refuse_health ? 503 : 200;
        tb_default_status = 0;
        tb_default_delay_ms = tb_start_delay_ms;
    }
    if (health >= 0)
        tb_health_status = (int)health;
    if (status >= 0)
        tb_default_status = (int)status;
    if (delay >= 0)
        tb_default_delay_ms = delay;
}

/* Splits c->url into path and query and sets the request's behaviour. */
static void conn_parse_target(struct tb_conn *c)
{
    const char *url = c->url;
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);
    const char *path = url;

    /* absolute-form: skip scheme://authority */
    if (plen > 7 && (strncasecmp(url, "http://", 7) == 0)) {
        const char *slash = memchr(url + 7, '/', plen - 7);
        path = slash ? slash : url + plen;
        plen = (size_t)(url + plen - path);
    }
    if (tb_path_is(path, plen, "/echo"))
        c->kind = TB_ECHO;
    else if (tb_path_is(path, plen, "/headers"))
        c->kind = TB_HEADERS;
    else if (tb_path_is(path, plen, "/sink"))
        c->kind = TB_SINK;
    else if (tb_path_is(path, plen, "/download"))
        c->kind = TB_DOWNLOAD;
    else if (tb_path_is(path, plen, "/__stats"))
        c->kind = TB_STATS;
    else if (tb_path_is(path, plen, "/healthz"))
        c->kind = TB_HEALTH;
    else if (tb_path_is(path, plen, "/__control"))
        c->kind = TB_CONTROL;
    if (c->ua_check && c->kind != TB_STATS && c->kind != TB_CONTROL)
        c->kind = TB_HEALTH; /* the proxy's checker, whatever path it was given */

    if (c->kind == TB_STATS || c->kind == TB_CONTROL) {
        if (q)
            tb_parse_control(c, q + 1);
        return;
    }
    if (!q)
        goto defaults;
    for (const char *s = q + 1; *s;) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        size_t klen = eq ? (size_t)(eq - s) : n;
        const char *v = eq ? eq + 1 : s + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        uint64_t num = tb_parse_u64(v, vlen);
#define KEY(k) (klen == strlen(k) && memcmp(s, k, klen) == 0)
        if (KEY("status") && num >= 100 && num <= 999) {
            c->status = (int)num;
            c->status_q = 1;
        } else if (KEY("delay")) {
            c->delay_ms = num > 600000 ? 600000 : (long)num;
            c->delay_q = 1;
        } else if (KEY("bytes"))
            c->dl_bytes = num;
        else if (KEY("chunked"))
            c->dl_chunked_q = num != 0;
        else if (KEY("eof"))
            c->dl_eof_q = num != 0;
        else if (KEY("reset_after"))
            c->reset_after = num > 1000000 ? 1000000 : (long long)num;
        else if (KEY("reset"))
            c->reset_now = num != 0;
        else if (KEY("stall"))
            c->stall_ms = num > 600000 ? 600000 : (long)num;
        else if (KEY("close"))
            c->want_close = num != 0;
        else if (KEY("garbage"))
            c->garbage = num != 0;
#undef KEY
        s += n;
        if (*s == '&')
            s++;
    }
defaults:
    if (c->kind != TB_HEALTH) {
        if (!c->status_q && tb_default_status)
            c->status = tb_default_status;
        if (!c->delay_q)
            c->delay_ms = tb_default_delay_ms;
    }
}

/* Called once the request head is complete (parser paused there). */
static void conn_on_head(struct tb_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *method = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));

    conn_parse_target(c);
    if (c->kind == TB_HEALTH) {
        tb_stat_health++;
    } else if (c->kind != TB_STATS && c->kind != TB_CONTROL) {
        tb_stat_reqs++;
        c->inflight = 1;
        if (++tb_inflight > tb_max_inflight)
            tb_max_inflight = tb_inflight;
        if (!c->counted) {
            c->counted = 1;
            tb_stat_conns++;
        }
        if (tb_log) {
            fprintf(tb_log, "%s %s\n", method, c->url);
            fflush(tb_log);
        }
    }
    if (c->expect_continue && c->http11 && (c->req_chunked || c->req_cl > 0))
        evbuffer_add_printf(out, "HTTP/1.1 100 Continue\r\n\r\n");

    if (c->kind == TB_ECHO && !c->garbage && c->reset_after < 0 && !c->reset_now &&
        c->delay_ms == 0) {
        /* Stream the body back as it arrives. */
        conn_decide_close(c);
        if (c->req_has_cl) {
            conn_write_head(c, c->status, (long long)c->req_cl, 0, "application/octet-stream");
        } else if (c->req_chunked && c->http11 && !c->is_head) {
            c->echo_chunked = 1;
            conn_write_head(c, c->status, -1, 1, "application/octet-stream");
        } else if (c->req_chunked) {
            c->echo_close_delim = 1;
            c->close_after = 1;
            conn_write_head(c, c->status, -1, 0, "application/octet-stream");
        } else {
            conn_write_head(c, c->status, 0, 0, "application/octet-stream");
        }
    }
}

/* Queues as much of the download as the output watermark allows. Returns 1
 * once the whole body is queued. */
static int conn_fill_download(struct tb_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (c->dl_left > 0 && evbuffer_get_length(out) < TB_OUT_HIGH) {
        size_t n = c->dl_left > TB_PATTERN_SIZE ? TB_PATTERN_SIZE : (size_t)c->dl_left;
        if (c->dl_chunked)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_reference(out, tb_pattern, n, NULL, NULL);
        if (c->dl_chunked)
            evbuffer_add(out, "\r\n", 2);
        c->dl_left -= n;
    }
    if (c->dl_left > 0)
        return 0;
    if (c->dl_chunked)
        evbuffer_add(out, "0\r\n\r\n", 5);
    return 1;
}

/* The current request no longer counts in "inflight" (answered, or its
 * connection is gone). */
static void conn_inflight_done(struct tb_conn *c)
{
    if (c->inflight) {
        c->inflight = 0;
        tb_inflight--;
    }
}

/* The response has been queued completely: allow the next request. */
static void conn_finish_response(struct tb_conn *c)
{
    conn_inflight_done(c);
    c->responses++;
    c->busy = 0;
    c->streaming = 0;
    if (c->close_after || (tb_drop_after && c->responses >= tb_drop_after)) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}

/* Writes the response for a fully received request (after any delay). */
static void conn_send_response(struct tb_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[256];
    int n;

    if (c->reset_now) {
        c->close_after = 1;
        c->rst = 1;
        conn_finish_response(c);
        return;
    }
    if (c->garbage) {
        evbuffer_add_printf(out, "NOT HTTP\r\n\r\n");
        c->close_after = 1;
        conn_finish_response(c);
        return;
    }
    if (c->reset_after >= 0) {
        int chunked = c->dl_chunked_q && c->http11;
        c->close_after = 0;
        conn_write_head(c, c->status, chunked ? -1 : 1000000, chunked, "application/octet-stream");
        for (long long left = c->reset_after; left > 0;) {
            size_t k = left > TB_PATTERN_SIZE ? TB_PATTERN_SIZE : (size_t)left;
            if (chunked)
                evbuffer_add_printf(out, "%zx\r\n", k);
            evbuffer_add_reference(out, tb_pattern, k, NULL, NULL);
            if (chunked)
                evbuffer_add(out, "\r\n", 2);
            left -= k;
        }
        c->close_after = 1;
        c->rst = 1;
        conn_finish_response(c);
        return;
    }
    if (c->kind == TB_ECHO && c->head_sent) {
        if (c->echo_chunked)
            evbuffer_add(out, "0\r\n\r\n", 5);
        conn_finish_response(c);
        return;
    }
    conn_decide_close(c);
    switch (c->kind) {
    case TB_STATS:
        n = snprintf(body, sizeof(body),
                     "{\"connections\":%llu,\"requests\":%llu,\"accepted\":%llu,"
                     "\"open\":%lld,\"healthz\":%llu,\"inflight\":%lld,\"max_inflight\":%lld,"
                     "\"in_service\":%lld,\"max_in_service\":%lld,\"waiting\":%lld}\n",
                     tb_stat_conns, tb_stat_reqs, tb_stat_accepted, tb_stat_open, tb_stat_health,
                     tb_inflight, tb_max_inflight, tb_in_service, tb_max_in_service, tb_waiting);
        if (c->stats_reset) {
            tb_max_inflight = tb_inflight;
            tb_max_in_service = tb_in_service;
        }
        conn_write_simple(c, 200, "application/json", body, (size_t)n);
        break;
    case TB_CONTROL:
        conn_write_simple(c, 200, "text/plain", "ok", 2);
        break;
    case TB_HEALTH:
        if (c->status_q)
            conn_write_simple(c, c->status, "text/plain", "ok", 2);
        else if (tb_health_status >= 200 && tb_health_status < 300)
            conn_write_simple(c, tb_health_status, "text/plain", "ok", 2);
        else
            conn_write_simple(c, tb_health_status, "text/plain", "down\n", 5);
        break;
    case TB_SINK:
        n = snprintf(body, sizeof(body), "{\"bytes\":%" PRIu64 "}", c->body_bytes);
        conn_write_simple(c, c->status, "application/json", body, (size_t)n);
        break;
    case TB_HEADERS: {
        size_t len = evbuffer_get_length(c->head);
        if (!tb_status_has_body(c->status)) {
            conn_write_head(c, c->status, -1, 0, NULL);
            break;
        }
        conn_write_head(c, c->status, (long long)len, 0, "text/plain");
        if (!c->is_head)
            evbuffer_add_buffer(out, c->head);
        break;
    }
    case TB_ECHO: /* delayed echo: the body was not kept, answer empty */
        conn_write_simple(c, c->status, "application/octet-stream", "", 0);
        break;
    case TB_DOWNLOAD:
        if (!tb_status_has_body(c->status)) {
            conn_write_head(c, c->status, -1, 0, NULL);
            break;
        }
        c->dl_chunked = 0;
        if (c->dl_eof_q) {
            c->close_after = 1;
            conn_write_head(c, c->status, -1, 0, "application/octet-stream");
        } else if (c->dl_chunked_q && c->http11) {
            c->dl_chunked = 1;
            conn_write_head(c, c->status, -1, 1, "application/octet-stream");
        } else if (c->dl_chunked_q) {
            c->close_after = 1;
            conn_write_head(c, c->status, -1, 0, "application/octet-stream");
        } else {
            conn_write_head(c, c->status, (long long)c->dl_bytes, 0, "application/octet-stream");
        }
        if (c->is_head)
            break;
        c->dl_left = c->dl_bytes;
        if (!conn_fill_download(c)) {
            c->streaming = 1;
            c->busy = 1;
            return; /* the write callback continues */
        }
        break;
    case TB_DEFAULT:
    default:
        n = snprintf(body, sizeof(body), "%s\n", tb_name);
        conn_write_simple(c, c->status, "text/plain", body, (size_t)n);
        break;
    }
    conn_finish_response(c);
}

/* ---- --workers: a fixed number of requests in service ---- */

static void worker_start(struct tb_worker *w, struct tb_conn *c)
{
    struct timeval tv = {c->delay_ms / 1000, (c->delay_ms % 1000) * 1000};
    w->busy = 1;
    w->conn = c;
    c->worker = w;
    if (++tb_in_service > tb_max_in_service)
        tb_max_in_service = tb_in_service;
    evtimer_add(w->timer, &tv);
}

static struct tb_worker *worker_idle(void)
{
    for (long i = 0; i < tb_nworkers; i++)
        if (!tb_workers[i].busy)
            return &tb_workers[i];
    return NULL;
}

static void wait_unlink(struct tb_conn *c)
{
    if (!c->waiting)
        return;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        tb_wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        tb_wait_tail = c->wait_prev;
    c->wait_next = c->wait_prev = NULL;
    c->waiting = 0;
    tb_waiting--;
}

/* Idle workers take the oldest waiting requests. */
static void workers_dispatch(void)
{
    struct tb_worker *w;
    while (tb_wait_head && (w = worker_idle()) != NULL) {
        struct tb_conn *c = tb_wait_head;
        wait_unlink(c);
        worker_start(w, c);
    }
}

/* A worker's request is done: its answer goes out (if its connection is
 * still there) and the worker takes the next waiting request first, so a
 * pipelined request on the same connection queues behind the older ones. */
static void worker_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tb_worker *w = arg;
    struct tb_conn *c = w->conn;
    (void)fd;
    (void)what;
    w->busy = 0;
    w->conn = NULL;
    tb_in_service--;
    workers_dispatch();
    if (!c)
        return;
    c->worker = NULL;
    conn_send_response(c);
    conn_process(c);
    conn_check_close(c);
}

/* Does this request take a worker? Counted requests do, but an /echo that
 * already streams its answer. */
static int conn_needs_worker(const struct tb_conn *c)
{
    return tb_nworkers > 0 && c->inflight && !(c->kind == TB_ECHO && c->head_sent);
}

static void conn_respond(struct tb_conn *c)
{
    if (conn_needs_worker(c)) {
        struct tb_worker *w = worker_idle();
        c->busy = 1;
        if (w && !tb_wait_head) {
            worker_start(w, c);
            return;
        }
        c->waiting = 1;
        c->wait_prev = tb_wait_tail;
        if (tb_wait_tail)
            tb_wait_tail->wait_next = c;
        else
            tb_wait_head = c;
        tb_wait_tail = c;
        tb_waiting++;
        return;
    }
    if (c->delay_ms > 0) {
        struct timeval tv = {c->delay_ms / 1000, (c->delay_ms % 1000) * 1000};
        c->busy = 1;
        c->tmode = TB_T_DELAY;
        evtimer_add(c->timer, &tv);
        return;
    }
    conn_send_response(c);
}

static void conn_bad_request(struct tb_conn *c)
{
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n";
    if (!c->head_sent)
        evbuffer_add(bufferevent_get_output(c->bev), msg, sizeof(msg) - 1);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
}

/* Feeds buffered input to the parser until a response is pending, the input
 * is exhausted, or output backpressure stops it. Never frees c. */
static void conn_process(struct tb_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    static const char zero[1];

    while (!c->busy && !c->closing) {
        struct evbuffer_iovec v;
        const char *data;
        size_t len, used;
        enum llhttp_errno err;

        if (evbuffer_get_length(out) > TB_OUT_HIGH) {
            c->read_paused = 1;
            bufferevent_disable(c->bev, EV_READ);
            return;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
            if (!c->kick)
                break;
            data = zero;
            len = 0;
        } else {
            data = v.iov_base;
            len = v.iov_len;
        }
        c->kick = 0;
        c->pause = TB_P_NONE;
        err = llhttp_execute(&c->parser, data, len);
        used = len;
        if (err == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
        } else if (err != HPE_OK) {
            conn_bad_request(c);
            return;
        }
        if (c->in_head) {
            evbuffer_remove_buffer(in, c->head, used);
            if (evbuffer_get_length(c->head) > TB_MAX_HEAD) {
                conn_bad_request(c);
                return;
            }
        } else {
            evbuffer_drain(in, used);
        }
        switch (c->pause) {
        case TB_P_BEGIN:
            c->in_head = 1;
            break;
        case TB_P_HEADERS:
            c->in_head = 0;
            c->kick = 1;
            if (c->url_overflow) {
                conn_bad_request(c);
                return;
            }
            conn_on_head(c);
            if (c->stall_ms > 0 && (c->req_chunked || c->req_cl > 0)) {
                struct timeval tv = {c->stall_ms / 1000, (c->stall_ms % 1000) * 1000};
                c->busy = 1;
                c->tmode = TB_T_STALL;
                bufferevent_disable(c->bev, EV_READ);
                evtimer_add(c->timer, &tv);
            }
            break;
        case TB_P_COMPLETE:
            conn_respond(c);
            break;
        case TB_P_NONE:
            break;
        }
    }
    if (!c->busy && !c->closing && c->peer_eof && evbuffer_get_length(in) == 0) {
        c->closing = 1;
    }
    if (tb_idle_ms > 0 && !c->busy && !c->closing && !c->in_message &&
        evbuffer_get_length(in) == 0 && c->tmode != TB_T_IDLE) {
        struct timeval tv = {tb_idle_ms / 1000, (tb_idle_ms % 1000) * 1000};
        c->tmode = TB_T_IDLE;
        evtimer_add(c->timer, &tv);
    }
}

static void conn_free(struct tb_conn *c)
{
    conn_inflight_done(c);
    wait_unlink(c);
    if (c->worker) /* the worker finishes its delay, then takes the next */
        c->worker->conn = NULL;
    tb_stat_open--;
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->head)
        evbuffer_free(c->head);
    free(c);
}

static void conn_rst_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tb_conn *c = arg;
    struct linger lg = {1, 0};
    (void)fd;
    (void)what;
    setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    conn_free(c);
}

/* Frees c when it is closing and its output has been flushed. Returns 1 if
 * c is gone (or about to be, for an RST). */
static int conn_check_close(struct tb_conn *c)
{
    if (c->rst_armed)
        return 1;
    if (!c->closing || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return 0;
    if (c->rst) {
        struct timeval tv = {0, TB_RST_DELAY_MS * 1000};
        c->rst_armed = 1;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        event_free(c->timer);
        c->timer = evtimer_new(tb_base, conn_rst_cb, c);
        evtimer_add(c->timer, &tv);
        return 1;
    }
    conn_free(c);
    return 1;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct tb_conn *c = arg;
    (void)bev;
    if (c->tmode == TB_T_IDLE) {
        evtimer_del(c->timer);
        c->tmode = TB_T_NONE;
    }
    conn_process(c);
    conn_check_close(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct tb_conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(bev);

    if (c->rst_armed)
        return;
    if (c->streaming && evbuffer_get_length(out) < TB_OUT_LOW) {
        if (conn_fill_download(c))
            conn_finish_response(c);
    }
    if (c->read_paused && evbuffer_get_length(out) < TB_OUT_LOW) {
        c->read_paused = 0;
        if (!c->peer_eof)
            bufferevent_enable(bev, EV_READ);
    }
    conn_process(c);
    conn_check_close(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tb_conn *c = arg;
    enum tb_timer mode = c->tmode;
    (void)fd;
    (void)what;
    c->tmode = TB_T_NONE;
    switch (mode) {
    case TB_T_IDLE:
        conn_free(c); /* silently, as a backend's keep-alive timeout does */
        return;
    case TB_T_STALL:
        c->busy = 0;
        if (!c->peer_eof)
            bufferevent_enable(c->bev, EV_READ);
        break;
    case TB_T_DELAY:
        conn_send_response(c);
        break;
    case TB_T_NONE:
        break;
    }
    conn_process(c);
    conn_check_close(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tb_conn *c = arg;
    (void)bev;
    if (c->rst_armed)
        return;
    if (what & BEV_EVENT_EOF) {
        /* Requests already buffered are still answered (a client may
         * half-close after sending); a partial request is dropped. */
        c->peer_eof = 1;
        conn_process(c);
        if (!c->busy && !c->read_paused)
            c->closing = 1;
        conn_check_close(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

static void tb_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int socklen, void *arg)
{
    struct tb_conn *c = calloc(1, sizeof(*c));
    (void)l;
    (void)sa;
    (void)socklen;
    (void)arg;
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    tb_stat_accepted++;
    tb_stat_open++;
    c->bev = bufferevent_socket_new(tb_base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(tb_base, conn_timer_cb, c);
    c->head = evbuffer_new();
    if (!c->bev || !c->timer || !c->head) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &tb_settings);
    c->parser.data = c;
    bufferevent_set_max_single_read(c->bev, 256 * 1024);
    bufferevent_setwatermark(c->bev, EV_READ, 0, TB_IN_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, TB_OUT_LOW, 0);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void tb_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopexit(tb_base, NULL);
}

/* evutil_parse_sockaddr_port() refuses port 0: "HOST:0" is parsed with
 * port 1, then set to 0 (any port the kernel picks). */
static int tb_parse_listen(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    char tmp[256];
    size_t n = strlen(addr);
    if (n < 2 || n >= sizeof(tmp) || strcmp(addr + n - 2, ":0") != 0)
        return evutil_parse_sockaddr_port(addr, (struct sockaddr *)ss, sslen);
    memcpy(tmp, addr, n + 1);
    tmp[n - 1] = '1';
    if (evutil_parse_sockaddr_port(tmp, (struct sockaddr *)ss, sslen) != 0)
        return -1;
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    return 0;
}

static void tb_usage(void)
{
    fprintf(stderr, "usage: sg-testbackend --listen HOST:PORT | --demo-backend HOST:PORT "
                    "[--name NAME] [--close-after N] [--drop-after N] [--idle-timeout MS] "
                    "[--log FILE] [--refuse-health] [--delay MS] [--workers N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'n'},
        {"close-after", required_argument, NULL, 'c'},
        {"drop-after", required_argument, NULL, 'd'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"log", required_argument, NULL, 'L'},
        {"refuse-health", no_argument, NULL, 'r'},
        {"delay", required_argument, NULL, 'D'},
        {"workers", required_argument, NULL, 'w'},
        {"demo-backend", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_addr = NULL;
    int demo = 0, named = 0;
    char demo_name[32];
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct evconnlistener *lst;
    struct event *sigterm, *sigint;
    int opt;

    while ((opt = getopt_long(argc, argv, "l:n:c:d:i:L:rD:w:B:h", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'B':
            listen_addr = optarg;
            demo = 1;
            break;
        case 'n':
            tb_name = optarg;
            named = 1;
            break;
        case 'w':
            errno = 0;
            tb_nworkers = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || tb_nworkers < 1 || tb_nworkers > 100000)
                tb_fail("bad --workers '%s': expected 1..100000", optarg);
            break;
        case 'c':
            tb_close_after = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            tb_drop_after = strtoul(optarg, NULL, 10);
            break;
        case 'i':
            tb_idle_ms = strtol(optarg, NULL, 10);
            break;
        case 'L':
            tb_log = fopen(optarg, "a");
            if (!tb_log)
                tb_fail("cannot open log %s: %s", optarg, strerror(errno));
            break;
        case 'r':
            tb_refuse_health = 1;
            break;
        case 'D':
            tb_start_delay_ms = strtol(optarg, NULL, 10);
            if (tb_start_delay_ms < 0 || tb_start_delay_ms > 600000)
                tb_fail("bad --delay '%s': expected 0..600000 ms", optarg);
            break;
        default:
            tb_usage();
        }
    }
    if (!listen_addr || optind != argc)
        tb_usage();
    tb_health_status = tb_refuse_health ? 503 : 200;
    tb_default_delay_ms = tb_start_delay_ms;
    for (size_t i = 0; i < sizeof(tb_pattern); i++)
        tb_pattern[i] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"[i % 64];

    llhttp_settings_init(&tb_settings);
    tb_settings.on_message_begin = tb_on_message_begin;
    tb_settings.on_url = tb_on_url;
    tb_settings.on_header_field = tb_on_header_field;
    tb_settings.on_header_value = tb_on_header_value;
    tb_settings.on_header_value_complete = tb_on_header_value_complete;
    tb_settings.on_headers_complete = tb_on_headers_complete;
    tb_settings.on_body = tb_on_body;
    tb_settings.on_message_complete = tb_on_message_complete;

    signal(SIGPIPE, SIG_IGN);
    memset(&ss, 0, sizeof(ss));
    if (tb_parse_listen(listen_addr, &ss, &sslen) != 0)
        tb_fail("bad --listen address '%s'", listen_addr);
    tb_base = event_base_new();
    if (!tb_base)
        tb_fail("event_base_new failed");
    lst = evconnlistener_new_bind(tb_base, tb_accept_cb, NULL,
                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
                                  (struct sockaddr *)&ss, sslen);
    if (!lst)
        tb_fail("cannot listen on %s: %s", listen_addr, strerror(errno));
    if (tb_nworkers > 0) {
        tb_workers = calloc((size_t)tb_nworkers, sizeof(*tb_workers));
        if (!tb_workers)
            tb_fail("out of memory for %ld workers", tb_nworkers);
        for (long i = 0; i < tb_nworkers; i++) {
            tb_workers[i].timer = evtimer_new(tb_base, worker_done_cb, &tb_workers[i]);
            if (!tb_workers[i].timer)
                tb_fail("evtimer_new failed");
        }
    }
    sigterm = evsignal_new(tb_base, SIGTERM, tb_signal_cb, NULL);
    sigint = evsignal_new(tb_base, SIGINT, tb_signal_cb, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    if (demo) {
        /* the port the kernel gave, as surgegate --demo-backend says it */
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        char host[64];
        int port = 0;
        memset(&bound, 0, sizeof(bound));
        if (getsockname(evconnlistener_get_fd(lst), (struct sockaddr *)&bound, &blen) != 0)
            tb_fail("getsockname: %s", strerror(errno));
        if (bound.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&bound;
            evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
            printf("listening on %s:%d\n", host, port);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&bound;
            evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
            printf("listening on [%s]:%d\n", host, port);
        }
        if (!named) {
            snprintf(demo_name, sizeof(demo_name), "demo-%d", port);
            tb_name = demo_name;
        }
    } else {
        printf("ready\n");
    }
    fflush(stdout);
    event_base_dispatch(tb_base);

    evconnlistener_free(lst);
    for (long i = 0; i < tb_nworkers; i++)
        event_free(tb_workers[i].timer);
    free(tb_workers);
    event_free(sigterm);
    event_free(sigint);
    if (tb_log)
        fclose(tb_log);
    /* live connections are reclaimed by process exit */
    return 0;
}
