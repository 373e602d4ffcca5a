/* admin.c: the admin API. evhttp on the main thread's event_base, JSON by
 * jansson. It reads pool and backend state (atomics written by workers,
 * plain fields owned by this thread) and never touches a worker's data. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "surgegate/admin.h"
#include "surgegate/cluster.h"
#include "surgegate/common.h"
#include "surgegate/control.h"
#include "surgegate/discover.h"
#include "surgegate/journal.h"
#include "surgegate/lb-t.h"
#include "surgegate/log.h"
#include "surgegate/metrics.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"
#include "surgegate/stats.h"

struct sg_admin {
    struct evhttp *http;
    const struct sg_cfg *cfg;
    struct sg_pools *pools;
    struct sg_control *ctl;
    json_t *(*reload)(void *arg);  /* POST reload (main.c); NULL: not offered */
    json_t *(*upgrade)(void *arg); /* POST upgrade (main.c); NULL: not offered */
    void *reload_arg;
    struct sg_discover *disc; /* NULL: none (or stopping) */
    uint64_t started_ms;
    char *unix_path; /* unlinked at stop */
};

static void admin_reply(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (out == NULL || txt == NULL) {
        free(txt);
        if (out)
            evbuffer_free(out);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, txt, strlen(txt));
    evbuffer_add(out, "\n", 1);
    free(txt);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    const char *reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 403 ? "Forbidden"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 409 ? "Conflict"
                         : code == 413 ? "Payload Too Large"
                         : code == 415 ? "Unsupported Media Type"
                         : code == 503 ? "Service Unavailable"
                                       : "Error";
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

/* libevent 2.1 (Debian 12) answers what it refuses before admin_handle sees
 * it -- a malformed request line or header, a method it does not know, a
 * head over evhttp_set_max_headers_size, a body over
 * evhttp_set_max_body_size (also on "Expect: 100-continue") -- with
 * evhttp_send_error(), an HTML page; 2.2's evhttp_set_errorcb does not exist
 * in 2.1, and no callback sees those requests. This definition replaces
 * libevent's: the library calls it through its PLT (evhttp_send_error is an
 * exported symbol it calls itself), so the executable's one wins, and every
 * error of the admin listener is {"error": "..."} with the status libevent
 * chose. Like libevent's, it closes the connection after the answer. The
 * admin API is the process's only evhttp server besides the --demo-backend
 * processes, which answer errors in JSON as well. o06_admin_errors checks
 * that the replacement is the one called. */
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    const char *msg;
    switch (error) {
    case 400:
        msg = "bad request: malformed request line or header, or a head over 65536 bytes";
        break;
    case 404:
        msg = "no such endpoint";
        break;
    case 405:
        msg = "method not allowed here";
        break;
    case 501:
        msg = "unknown method: the admin API answers GET, HEAD, POST and DELETE";
        break;
    case 413:
        msg = "request body too large: the limit is 65536 bytes";
        break;
    case 417:
        msg = "expectation failed: only \"Expect: 100-continue\" is understood";
        break;
    case 500:
        msg = "internal error";
        break;
    default:
        msg = reason != NULL && reason[0] != '\0' ? reason : "error";
    }
    struct evbuffer *out = evbuffer_new();
    json_t *o = json_pack("{s:s}", "error", msg);
    char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (out == NULL || txt == NULL) { /* no memory for an answer: drop the connection */
        free(txt);
        if (out != NULL)
            evbuffer_free(out);
        evhttp_connection_free(evhttp_request_get_connection(req));
        return;
    }
    evbuffer_add(out, txt, strlen(txt));
    evbuffer_add(out, "\n", 1);
    free(txt);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_remove_header(oh, "Content-Type");
    evhttp_add_header(oh, "Content-Type", "application/json");
    evhttp_add_header(oh, "Connection", "close");
    evhttp_send_reply(req, error, reason, out);
    evbuffer_free(out);
}

/* The one place an error code becomes an HTTP status. */
static const int admin_err_status[SG_CTL_NERRS] = {
    [SG_CTL_OK] = 200,        [SG_CTL_BAD_REQUEST] = 400, [SG_CTL_UNAUTHORIZED] = 401,
    [SG_CTL_FORBIDDEN] = 403, [SG_CTL_NOT_FOUND] = 404,   [SG_CTL_METHOD] = 405,
    [SG_CTL_EXISTS] = 409,    [SG_CTL_CONFLICT] = 409,    [SG_CTL_TOO_LARGE] = 413,
    [SG_CTL_INTERNAL] = 500,
};

/* Answers {"error": msg} with the status of error code e. */
static void admin_error(struct evhttp_request *req, enum sg_ctl_err e, const char *msg)
{
    SG_BUG_ON((unsigned)e >= SG_CTL_NERRS || e == SG_CTL_OK);
    admin_reply(req, admin_err_status[e], json_pack("{s:s}", "error", msg));
}

static double admin_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

/* {"total":{"10s":{"count","p50",...},"1m":..,"5m":..},"queue":..,"connect":..,"ttfb":..} */
static json_t *admin_latency_json(const struct sg_snap *s)
{
    json_t *o = json_object();
    for (int k = 0; k < SG_LAT_N; k++) {
        json_t *wins = json_object();
        for (int w = 0; w < SG_WIN_N; w++) {
            const struct sg_hist_summary *h = &s->sum[k][w];
            json_object_set_new(wins, sg_win_name((enum sg_win)w),
                                json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "count",
                                          (json_int_t)h->count, "p50", admin_ms(h->p50), "p90",
                                          admin_ms(h->p90), "p95", admin_ms(h->p95), "p99",
                                          admin_ms(h->p99), "max", admin_ms(h->max)));
        }
        json_object_set_new(o, sg_lat_name((enum sg_lat)k), wins);
    }
    return o;
}

static json_t *admin_counts_json(const struct sg_counts *c)
{
    json_t *r = json_pack("{s:I, s:I, s:I, s:I, s:I}", "1xx", (json_int_t)c->responses[0], "2xx",
                          (json_int_t)c->responses[1], "3xx", (json_int_t)c->responses[2], "4xx",
                          (json_int_t)c->responses[3], "5xx", (json_int_t)c->responses[4]);
    json_t *e = json_object();
    for (int k = 0; k < SG_EK_N; k++)
        json_object_set_new(e, sg_ek_name((enum sg_ek)k), json_integer((json_int_t)c->errors[k]));
    json_t *ce = json_object();
    for (int k = 0; k < SG_CE_N; k++)
        json_object_set_new(ce, sg_ce_name((enum sg_ce)k),
                            json_integer((json_int_t)c->client_errors[k]));
    return json_pack("{s:o, s:o, s:o}", "responses", r, "errors", e, "client_errors", ce);
}

/* Copies the members of tmp into o and drops tmp. */
static void admin_merge(json_t *o, json_t *tmp)
{
    json_object_update(o, tmp);
    json_decref(tmp);
}

static json_t *admin_backend_json(struct sg_admin *a, const struct sg_backend *b, uint64_t now)
{
    /* Out until the control thread ends it: with health checks on, past its
     * time until a check passes. */
    bool ejected = atomic_load(&b->eject_until) != 0;
    enum sg_backend_state st = sg_backend_state(b, now);
    const struct sg_snap *s = sg_stats_backend(sg_control_stats(a->ctl), b);
    char since[40];
    sg_control_iso_time(b->state_since_ms, since, sizeof(since));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, "
        "s:I, s:b}",
        "address", b->name, "state", sg_backend_state_name(st), "reason", b->reason, "since", since,
        "since_ms", (json_int_t)b->state_since_ms, "weight", (json_int_t)atomic_load(&b->weight),
        "weight_now", (double)sg_backend_weight(b, now) / SG_WEIGHT_SCALE, "maxconn",
        (json_int_t)sg_backend_maxconn(b, now), "inflight", (json_int_t)atomic_load(&b->inflight),
        "queue_depth", (json_int_t)atomic_load(&b->queue_depth), "queue_depth_max",
        (json_int_t)s->queue_depth_max, "conns_active", (json_int_t)s->conns_active, "conns_idle",
        (json_int_t)s->conns_idle, "requests", (json_int_t)s->cum.requests, "failures",
        (json_int_t)atomic_load(&b->failures), "ejected", ejected, "backup", b->backup, "ejections",
        (json_int_t)sg_outlier_nejections(b), "removing", (int)atomic_load(&b->removing));
    admin_merge(o, admin_counts_json(&s->cum));
    json_object_set_new(o, "retries", json_integer((json_int_t)s->cum.retries));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)s->cum.bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)s->cum.bytes_out));
    json_object_set_new(o, "rps", json_real(s->rps));
    json_object_set_new(o, "error_rate", json_real(s->error_rate));
    json_object_set_new(o, "latency_ms", admin_latency_json(s));
    json_object_set_new(o, "origin", json_string(sg_backend_origin_name(b->origin)));
    json_object_set_new(o, "in_group", json_boolean(sg_pool_in_group(b)));
    return o;
}

/* The queue's overload control: its target and state, the measured drain
 * rate, and per priority the requests admitted, queued and shed (by reason). */
static json_t *admin_queue_json(const struct sg_pool *p)
{
    const struct sg_pqueue *q = &p->queue;
    const struct sg_cfg_queue *qc = &p->cfg->queue;
    json_t *prios = json_object();
    for (int i = 0; i < SG_PRIO_N; i++) {
        json_t *shed = json_object();
        for (int r = 0; r < SG_SHED_N; r++)
            json_object_set_new(shed, sg_shed_name(r),
                                json_integer((json_int_t)atomic_load(&q->shed[i][r])));
        json_object_set_new(prios, sg_prio_name(i),
                            json_pack("{s:I, s:I, s:o}", "admitted",
                                      (json_int_t)atomic_load(&q->admitted[i]), "queued",
                                      (json_int_t)atomic_load(&q->queued[i]), "shed", shed));
    }
    const char *state = qc->target_ms == 0 ? "off" : atomic_load(&q->standing) ? "standing" : "ok";
    return json_pack("{s:I, s:I, s:b, s:s, s:I, s:I, s:o}", "queue_target_ms",
                     (json_int_t)qc->target_ms, "queue_interval_ms", (json_int_t)qc->interval_ms,
                     "queue_lifo", qc->lifo, "queue_state", state, "drain_rps",
                     (json_int_t)atomic_load(&q->drain_rps), "shedding_episodes",
                     (json_int_t)atomic_load(&q->episodes), "priorities", prios);
}

static json_t *admin_pool_json(struct sg_admin *a, const struct sg_pool *p, bool with_backends)
{
    uint64_t now = sg_now_ms();
    json_t *bs = json_array();
    uint64_t inflight = 0;
    uint32_t up = 0, total = 0;
    for (size_t i = 0, n = sg_pool_nused(p); i < n; i++) {
        const struct sg_backend *b = &p->backends[i];
        if (!sg_backend_live(b))
            continue;
        total++;
        inflight += atomic_load(&b->inflight);
        if (sg_backend_usable(b, now))
            up++;
        if (with_backends)
            json_array_append_new(bs, admin_backend_json(a, b, now));
    }
    const struct sg_snap *s = sg_stats_pool(sg_control_stats(a->ctl), p);
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}",
        "name", p->name, "balance", p->lb->name, "queue_depth",
        (json_int_t)atomic_load(&p->queue.depth), "queue_depth_max", (json_int_t)s->queue_depth_max,
        "maxqueue", (json_int_t)p->cfg->maxqueue, "inflight", (json_int_t)inflight, "active",
        (json_int_t)atomic_load(&p->active), "retries_total",
        (json_int_t)atomic_load(&p->retries_total), "retries_denied",
        (json_int_t)atomic_load(&p->retries_denied), "backends_up", (json_int_t)up,
        "backends_total", (json_int_t)total, "requests", (json_int_t)s->cum.requests, "rps", s->rps,
        "error_rate", s->error_rate, "queue_overflows",
        (json_int_t)atomic_load(&p->queue.overflows), "conns_active", (json_int_t)s->conns_active,
        "conns_idle", (json_int_t)s->conns_idle);
    admin_merge(o, admin_counts_json(&s->cum));
    json_object_set_new(o, "retries", json_integer((json_int_t)s->cum.retries));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)s->cum.bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)s->cum.bytes_out));
    json_object_set_new(o, "latency_ms", admin_latency_json(s));
    json_object_set_new(o, "autoscale", sg_control_autoscale_json(a->ctl, p));
    json_object_set_new(o, "discover", sg_discover_pool_json(a->disc, p));
    admin_merge(o, admin_queue_json(p));
    if (with_backends)
        json_object_set_new(o, "backends", bs);
    else
        json_decref(bs);
    return o;
}

static struct sg_pool *admin_find_pool(struct sg_admin *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->pools->n; i++) {
        struct sg_pool *p = &a->pools->pools[i];
        if (strlen(p->name) == len && memcmp(p->name, name, len) == 0)
            return p;
    }
    return NULL;
}

/* Checks the bearer token when tokens are configured. Returns the role
 * ("admin" or "read"), or NULL after answering 401. */
static const char *admin_auth(struct sg_admin *a, struct evhttp_request *req)
{
    if (a->cfg->admin.ntokens == 0)
        return "admin"; /* protected by the socket's permissions / bind address */
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        for (size_t i = 0; i < a->cfg->admin.ntokens; i++) {
            const struct sg_cfg_token *t = &a->cfg->admin.tokens[i];
            size_t n = strlen(t->token);
            /* constant-time compare */
            if (strlen(tok) == n) {
                unsigned char d = 0;
                for (size_t k = 0; k < n; k++)
                    d |= (unsigned char)(tok[k] ^ t->token[k]);
                if (d == 0)
                    return t->role;
            }
        }
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    admin_error(req, SG_CTL_UNAUTHORIZED, "missing or invalid token");
    return NULL;
}

/* An optional integer member in [lo, hi]: SG_OK (v set when present), or
 * SG_ERR with the message in err. */
static int admin_int_member(const json_t *body, const char *key, json_int_t lo, json_int_t hi,
                            json_int_t *v, char *err, size_t errlen)
{
    json_t *m = json_object_get(body, key);
    if (m == NULL)
        return SG_OK;
    if (!json_is_integer(m) || json_integer_value(m) < lo || json_integer_value(m) > hi) {
        sg_errf(err, errlen, "\"%s\" must be an integer from %lld to %lld", key, (long long)lo,
                (long long)hi);
        return SG_ERR;
    }
    *v = json_integer_value(m);
    return SG_OK;
}

static int admin_parse_state(const json_t *body, struct sg_admin_req *rq, char *err, size_t errlen)
{
    const char *st = json_string_value(json_object_get(body, "state"));
    if (st != NULL && strcmp(st, "drain") == 0) {
        rq->state = SG_ADMIN_DRAIN;
        rq->state_name = "drain";
    } else if (st != NULL && strcmp(st, "maint") == 0) {
        rq->state = SG_ADMIN_MAINT;
        rq->state_name = "maint";
    } else if (st != NULL && strcmp(st, "ready") == 0) {
        rq->state = SG_ADMIN_READY;
        rq->state_name = "ready";
    } else {
        sg_errf(err, errlen, "\"state\" must be \"drain\", \"maint\" or \"ready\"");
        return SG_ERR;
    }
    return SG_OK;
}

static int admin_parse_weight(const json_t *body, struct sg_admin_req *rq, char *err, size_t errlen)
{
    json_int_t w = -1;
    if (admin_int_member(body, "weight", 0, 256, &w, err, errlen) != SG_OK)
        return SG_ERR;
    if (w < 0) {
        sg_errf(err, errlen, "\"weight\" (0..256) is required");
        return SG_ERR;
    }
    rq->weight = (uint32_t)w;
    return SG_OK;
}

/* SG_OK, SG_ERR (a bad body) or SG_AGAIN (out of memory). */
static int admin_parse_add(const json_t *body, struct sg_admin_req *rq, char *err, size_t errlen)
{
    const char *addr = json_string_value(json_object_get(body, "address"));
    json_int_t w = 1, mc = 0;
    if (addr == NULL) {
        sg_errf(err, errlen, "\"address\" (\"host:port\") is required");
        return SG_ERR;
    }
    if (admin_int_member(body, "weight", 0, 256, &w, err, errlen) != SG_OK ||
        admin_int_member(body, "maxconn", 0, 1000000, &mc, err, errlen) != SG_OK)
        return SG_ERR;
    rq->address = strdup(addr);
    if (rq->address == NULL) {
        sg_errf(err, errlen, "out of memory");
        return SG_AGAIN;
    }
    rq->weight = (uint32_t)w;
    rq->maxconn = (uint32_t)mc;
    return SG_OK;
}

enum sg_ctl_err sg_admin_parse_body(enum sg_admin_body kind, const char *body, size_t len,
                                    struct sg_admin_req *rq, char *err, size_t errlen)
{
    memset(rq, 0, sizeof(*rq));
    if (len > SG_ADMIN_MAX_BODY) {
        sg_errf(err, errlen, "body too large");
        return SG_CTL_TOO_LARGE;
    }
    json_error_t jerr;
    json_t *o = json_loadb(body, len, 0, &jerr);
    if (o == NULL || !json_is_object(o)) {
        sg_errf(err, errlen, "body is not a JSON object: %s", o == NULL ? jerr.text : "wrong type");
        json_decref(o);
        return SG_CTL_BAD_REQUEST;
    }
    int rc = SG_ERR;
    switch (kind) {
    case SG_ADMIN_BODY_ADD:
        rc = admin_parse_add(o, rq, err, errlen);
        break;
    case SG_ADMIN_BODY_WEIGHT:
        rc = admin_parse_weight(o, rq, err, errlen);
        break;
    case SG_ADMIN_BODY_STATE:
        rc = admin_parse_state(o, rq, err, errlen);
        break;
    }
    json_decref(o);
    if (rc != SG_OK) {
        sg_admin_req_free(rq);
        return rc == SG_AGAIN ? SG_CTL_INTERNAL : SG_CTL_BAD_REQUEST;
    }
    return SG_CTL_OK;
}

void sg_admin_req_free(struct sg_admin_req *rq)
{
    if (rq == NULL)
        return;
    free(rq->address);
    memset(rq, 0, sizeof(*rq));
}

/* Parses the request's body for the endpoint `kind`: true with *rq filled,
 * or false after answering (400, 413, 500). */
static bool admin_body(struct evhttp_request *req, enum sg_admin_body kind, struct sg_admin_req *rq)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    /* Only a body that will be parsed is made contiguous: a longer one is
     * refused (413) on its length alone, before a byte is read. */
    const char *txt = "";
    if (n > 0 && n <= SG_ADMIN_MAX_BODY) {
        txt = (const char *)evbuffer_pullup(in, -1);
        if (txt == NULL) {
            admin_error(req, SG_CTL_INTERNAL, "out of memory");
            return false;
        }
    }
    char msg[200];
    enum sg_ctl_err e = sg_admin_parse_body(kind, txt, n, rq, msg, sizeof(msg));
    if (e != SG_CTL_OK) {
        admin_error(req, e, msg);
        return false;
    }
    return true;
}

static void admin_set_state(struct sg_admin *a, struct evhttp_request *req, struct sg_backend *b)
{
    struct sg_admin_req rq;
    if (!admin_body(req, SG_ADMIN_BODY_STATE, &rq))
        return;
    if (atomic_load(&b->removing)) {
        admin_error(req, SG_CTL_CONFLICT, "backend is being removed");
        return;
    }
    int old = atomic_exchange(&b->admin, rq.state);
    if (old != rq.state) {
        sg_log_info("backend %s of pool '%s': state set to %s by the admin API", b->name,
                    b->pool->name, rq.state_name);
        snprintf(b->reason, sizeof(b->reason), "admin: %s", rq.state_name);
        b->state_since_ms = sg_wall_ms();
        sg_control_backend_changed(a->ctl, b);
    }
    admin_reply(req, 200, admin_backend_json(a, b, sg_now_ms()));
}

static void admin_set_weight(struct sg_admin *a, struct evhttp_request *req, struct sg_backend *b)
{
    struct sg_admin_req rq;
    if (!admin_body(req, SG_ADMIN_BODY_WEIGHT, &rq))
        return;
    sg_control_set_weight(a->ctl, b, rq.weight, "admin");
    admin_reply(req, 200, admin_backend_json(a, b, sg_now_ms()));
}

static void admin_add_backend(struct sg_admin *a, struct evhttp_request *req, struct sg_pool *p)
{
    struct sg_admin_req rq;
    if (!admin_body(req, SG_ADMIN_BODY_ADD, &rq))
        return;
    char err[400];
    struct sg_backend *b = NULL;
    bool revived = false;
    enum sg_ctl_err rc = sg_control_add_backend(a->ctl, p, rq.address, rq.weight, rq.maxconn,
                                                "admin", &b, &revived, err, sizeof(err));
    sg_admin_req_free(&rq);
    if (rc != SG_CTL_OK) {
        admin_error(req, rc, err);
        return;
    }
    /* 200: the backend was there, being removed, and stays */
    admin_reply(req, revived ? 200 : 201, admin_backend_json(a, b, sg_now_ms()));
}

/* DELETE pools/P/backends/ADDR[?force=1]: force is needed to remove the
 * pool's last backend. */
static void admin_remove_backend(struct sg_admin *a, struct evhttp_request *req,
                                 struct sg_backend *b, const char *query)
{
    bool force = false;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
        admin_error(req, SG_CTL_BAD_REQUEST, "malformed query string");
        return;
    }
    const char *f = evhttp_find_header(&q, "force");
    if (f != NULL) {
        if (strcmp(f, "1") == 0 || strcmp(f, "true") == 0) {
            force = true;
        } else if (strcmp(f, "0") != 0 && strcmp(f, "false") != 0) {
            evhttp_clear_headers(&q);
            admin_error(req, SG_CTL_BAD_REQUEST, "\"force\" must be 1 (or true) or 0 (or false)");
            return;
        }
    }
    evhttp_clear_headers(&q);
    char err[300];
    enum sg_ctl_err rc = sg_control_remove_backend(a->ctl, b, "admin", force, err, sizeof(err));
    if (rc != SG_CTL_OK) {
        admin_error(req, rc, err);
        return;
    }
    admin_reply(req, 202, admin_backend_json(a, b, sg_now_ms()));
}

static void admin_events(struct sg_admin *a, struct evhttp_request *req, const char *query)
{
    uint64_t since = 0;
    size_t limit = 1000;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
        admin_error(req, SG_CTL_BAD_REQUEST, "malformed query string");
        return;
    }
    const char *s = evhttp_find_header(&q, "since");
    const char *l = evhttp_find_header(&q, "limit");
    if (s != NULL && sg_journal_parse_time(s, &since) != SG_OK) {
        evhttp_clear_headers(&q);
        admin_error(req, SG_CTL_BAD_REQUEST,
                    "\"since\" must be an ISO-8601 time such as 2026-11-30T19:40:22Z");
        return;
    }
    if (l != NULL) {
        char *end;
        unsigned long v = strtoul(l, &end, 10);
        if (*l == '\0' || *end != '\0' || v == 0 || v > 1000000) {
            evhttp_clear_headers(&q);
            admin_error(req, SG_CTL_BAD_REQUEST, "\"limit\" must be an integer from 1 to 1000000");
            return;
        }
        limit = v;
    }
    evhttp_clear_headers(&q);
    SG_UNUSED(a);
    json_t *ev = sg_journal_default_since(since, limit);
    admin_reply(req, 200, ev != NULL ? ev : json_array());
}

static void admin_metrics(struct sg_admin *a, struct evhttp_request *req)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    sg_metrics_write(out, a->pools, sg_control_stats(a->ctl), a->ctl);
    sg_discover_metrics(a->disc, out);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

#define ADMIN_MAX_SEGS 6

static void admin_handle(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    const char *role = admin_auth(a, req);
    if (role == NULL)
        return;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    bool admin_role = strcmp(role, "admin") == 0;
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?");
    const char *query = uri[plen] == '?' ? uri + plen + 1 : NULL;
    if (plen == 8 && memcmp(uri, "/metrics", 8) == 0) {
        if (!get) {
            admin_error(req, SG_CTL_METHOD, "method not allowed here");
            return;
        }
        admin_metrics(a, req);
        return;
    }
    static const char pre[] = "/api/v1/";
    if (plen < sizeof(pre) - 1 || memcmp(uri, pre, sizeof(pre) - 1) != 0) {
        admin_error(req, SG_CTL_NOT_FOUND, "no such endpoint");
        return;
    }
    const char *path = uri + sizeof(pre) - 1;
    plen -= sizeof(pre) - 1;
    /* split into percent-decoded segments */
    char *seg[ADMIN_MAX_SEGS] = {0};
    size_t slen[ADMIN_MAX_SEGS], nseg = 0;
    size_t i = 0;
    bool bad = false;
    while (i < plen && !bad) {
        size_t j = i;
        while (j < plen && path[j] != '/')
            j++;
        if (nseg == ADMIN_MAX_SEGS) {
            bad = true;
            break;
        }
        char raw[512];
        if (j - i >= sizeof(raw)) {
            bad = true;
            break;
        }
        memcpy(raw, path + i, j - i);
        raw[j - i] = '\0';
        size_t dlen = 0;
        seg[nseg] = evhttp_uridecode(raw, 0, &dlen);
        if (seg[nseg] == NULL || strlen(seg[nseg]) != dlen) {
            free(seg[nseg]);
            seg[nseg] = NULL;
            bad = true;
            break;
        }
        slen[nseg++] = dlen;
        i = j + 1;
    }
    if (bad) {
        admin_error(req, SG_CTL_NOT_FOUND, "no such endpoint");
        goto out;
    }
#define SEG_IS(k, lit) (slen[k] == sizeof(lit) - 1 && memcmp(seg[k], lit, sizeof(lit) - 1) == 0)
#define NEED_ADMIN()                                                        \
    do {                                                                    \
        if (!admin_role) {                                                  \
            admin_error(req, SG_CTL_FORBIDDEN, "this token may only read"); \
            goto out;                                                       \
        }                                                                   \
    } while (0)
    if (nseg == 1 && SEG_IS(0, "stats")) {
        if (!get)
            goto bad_method;
        json_t *ps = json_array();
        for (size_t k = 0; k < a->pools->n; k++)
            json_array_append_new(ps, admin_pool_json(a, &a->pools->pools[k], true));
        char now[40];
        sg_control_iso_time(sg_wall_ms(), now, sizeof(now));
        admin_reply(req, 200,
                    json_pack("{s:s, s:s, s:I, s:o, s:o}", "version", SG_VERSION, "time", now,
                              "uptime_s", (json_int_t)((sg_now_ms() - a->started_ms) / 1000),
                              "cluster", sg_cluster_json(sg_control_cluster(a->ctl)), "pools", ps));
        goto out;
    }
    if (nseg == 1 && SEG_IS(0, "reload")) {
        if (cmd != EVHTTP_REQ_POST)
            goto bad_method;
        NEED_ADMIN();
        if (a->reload == NULL) {
            admin_error(req, SG_CTL_CONFLICT, "this instance cannot reload (demo mode)");
            goto out;
        }
        json_t *r = a->reload(a->reload_arg);
        admin_reply(req, json_is_true(json_object_get(r, "reloaded")) ? 200 : 400, r);
        goto out;
    }
    if (nseg == 1 && SEG_IS(0, "upgrade")) {
        if (cmd != EVHTTP_REQ_POST)
            goto bad_method;
        NEED_ADMIN();
        if (a->upgrade == NULL) {
            admin_error(req, SG_CTL_CONFLICT, "this instance cannot upgrade (demo mode)");
            goto out;
        }
        /* Answered before the handover: the admin listener closes during it. */
        json_t *r = a->upgrade(a->reload_arg);
        admin_reply(req, json_is_true(json_object_get(r, "started")) ? 202 : 409, r);
        goto out;
    }
    if (nseg == 1 && SEG_IS(0, "events")) {
        if (!get)
            goto bad_method;
        admin_events(a, req, query);
        goto out;
    }
    if (nseg >= 1 && SEG_IS(0, "pools")) {
        if (nseg == 1) {
            if (!get)
                goto bad_method;
            json_t *ps = json_array();
            for (size_t k = 0; k < a->pools->n; k++)
                json_array_append_new(ps, admin_pool_json(a, &a->pools->pools[k], false));
            admin_reply(req, 200, ps);
            goto out;
        }
        struct sg_pool *p = admin_find_pool(a, seg[1], slen[1]);
        if (p == NULL) {
            admin_error(req, SG_CTL_NOT_FOUND, "no such pool");
            goto out;
        }
        if (nseg == 2) {
            if (!get)
                goto bad_method;
            admin_reply(req, 200, admin_pool_json(a, p, true));
            goto out;
        }
        if (SEG_IS(2, "backends")) {
            if (nseg == 3) {
                if (cmd == EVHTTP_REQ_POST) {
                    NEED_ADMIN();
                    admin_add_backend(a, req, p);
                    goto out;
                }
                if (!get)
                    goto bad_method;
                json_t *o = admin_pool_json(a, p, true);
                json_t *bs = json_incref(json_object_get(o, "backends"));
                json_decref(o);
                admin_reply(req, 200, bs);
                goto out;
            }
            struct sg_backend *b = sg_pool_find_backend(p, seg[3], slen[3]);
            if (b == NULL) {
                admin_error(req, SG_CTL_NOT_FOUND, "no such backend");
                goto out;
            }
            if (nseg == 4) {
                if (cmd == EVHTTP_REQ_DELETE) {
                    NEED_ADMIN();
                    admin_remove_backend(a, req, b, query);
                    goto out;
                }
                if (!get)
                    goto bad_method;
                admin_reply(req, 200, admin_backend_json(a, b, sg_now_ms()));
                goto out;
            }
            if (nseg == 5 && SEG_IS(4, "state")) {
                if (cmd != EVHTTP_REQ_POST)
                    goto bad_method;
                NEED_ADMIN();
                admin_set_state(a, req, b);
                goto out;
            }
            if (nseg == 5 && SEG_IS(4, "weight")) {
                if (cmd != EVHTTP_REQ_POST)
                    goto bad_method;
                NEED_ADMIN();
                admin_set_weight(a, req, b);
                goto out;
            }
        }
    }
#undef SEG_IS
#undef NEED_ADMIN
    admin_error(req, SG_CTL_NOT_FOUND, "no such endpoint");
    goto out;
bad_method:
    admin_error(req, SG_CTL_METHOD, "method not allowed here");
out:
    for (size_t k = 0; k < nseg; k++)
        free(seg[k]);
}

static int admin_listen_fd(const struct sg_cfg_addr *addr, char **unix_path)
{
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (addr->is_unix) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&addr->ss;
        unlink(un->sun_path);
        *unix_path = sg_xstrdup(un->sun_path);
    } else {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->sslen) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (addr->is_unix)
        (void)chmod(*unix_path, 0600);
    return fd;
}

struct sg_admin *sg_admin_start(struct event_base *base, const struct sg_cfg *cfg,
                                struct sg_pools *pools, struct sg_control *ctl)
{
    struct sg_admin *a = sg_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->pools = pools;
    a->ctl = ctl;
    a->started_ms = sg_now_ms();
    int fd = admin_listen_fd(&cfg->admin.listen, &a->unix_path);
    if (fd < 0) {
        sg_log_warn("admin: cannot listen on %s: %s", cfg->admin.listen.text, strerror(errno));
        sg_admin_stop(a);
        return NULL;
    }
    a->http = evhttp_new(base);
    if (a->http == NULL || evhttp_accept_socket(a->http, fd) != 0) {
        close(fd);
        sg_log_warn("admin: cannot serve on %s", cfg->admin.listen.text);
        sg_admin_stop(a);
        return NULL;
    }
    /* libevent refuses a body over its limit itself, without reading it (413
     * by evhttp_send_error above); admin_body() says the same for a body
     * between the two limits. A head is bounded too (libevent's default is
     * none). */
    evhttp_set_max_body_size(a->http, SG_ADMIN_MAX_BODY);
    evhttp_set_max_headers_size(a->http, 64 * 1024);
    evhttp_set_timeout(a->http, 10);
    /* Every method reaches admin_handle, which answers 405 in JSON. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT);
    evhttp_set_gencb(a->http, admin_handle, a);
    sg_log_info("admin API listening on %s", cfg->admin.listen.text);
    return a;
}

void sg_admin_set_reload(struct sg_admin *a, json_t *(*reload)(void *arg),
                         json_t *(*upgrade)(void *arg), void *arg)
{
    if (a == NULL)
        return;
    a->reload = reload;
    a->upgrade = upgrade;
    a->reload_arg = arg;
}

void sg_admin_retarget(struct sg_admin *a, const struct sg_cfg *cfg, struct sg_pools *pools)
{
    if (a == NULL)
        return;
    a->cfg = cfg;
    a->pools = pools;
}

void sg_admin_set_discover(struct sg_admin *a, struct sg_discover *d)
{
    if (a != NULL)
        a->disc = d;
}

void sg_admin_stop(struct sg_admin *a)
{
    if (a == NULL)
        return;
    if (a->http)
        evhttp_free(a->http);
    if (a->unix_path) {
        unlink(a->unix_path);
        free(a->unix_path);
    }
    free(a);
}
