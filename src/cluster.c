/* cluster.c: leader election and shared metrics through etcd v3's JSON
 * gateway, with libevent's evhttp client on the control thread. See
 * cluster.h for the protocol and the roles.
 *
 * Calls: grant, keepalive, put, txn and range, each on its own keep-alive
 * connection to the current endpoint (so a slow range never delays a
 * keepalive), at most one of each in flight, each bounded by a timeout. A
 * transport failure moves to the next endpoint of cluster.etcd. Requests are
 * only ever sent from the timer or from sg_cluster_publish(), never from a
 * response callback, so a connection is never freed inside its own
 * callback. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "surgegate/cfg-t.h"
#include "surgegate/cluster.h"
#include "surgegate/common.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"

#define CLUSTER_TIMER_MS   250u /* how often the lease and the role are looked at */
#define CLUSTER_NAME_MAX   128u
#define CLUSTER_BODY_MAX   (1u << 20) /* larger etcd answers are refused */
#define CLUSTER_REGRANT_MS 1000u      /* between failed lease grants */

enum cluster_call { CC_GRANT, CC_KEEPALIVE, CC_PUT, CC_TXN, CC_RANGE, CC_REVOKE, CC_N };
static const char *const cluster_paths[CC_N] = {"/v3/lease/grant", "/v3/lease/keepalive",
                                                "/v3/kv/put",      "/v3/kv/txn",
                                                "/v3/kv/range",    "/v3/lease/revoke"};

struct cluster_ep {
    char host[256];
    uint16_t port;
};

/* The callback argument of one kind of call. */
struct cluster_slot {
    struct sg_cluster *cl;
    enum cluster_call call;
    struct evhttp_connection *conn; /* to endpoint conn_ep */
    size_t conn_ep;
    struct evhttp_request *req; /* in flight, or NULL */
    uint64_t sent_ms;
    int64_t lease; /* the lease the call was made with (put, txn, keepalive) */
};

struct sg_cluster {
    struct event_base *base;
    const struct sg_cfg_cluster *cfg; /* &own: a reload may free the config it came from */
    struct sg_cfg_cluster own;
    char name[CLUSTER_NAME_MAX];
    struct cluster_ep *ep;
    size_t nep, cur;
    struct cluster_slot slot[CC_N];
    uint64_t started_ms, last_ok_ms;
    int64_t lease;        /* 0: none */
    uint64_t lease_until; /* monotonic ms: counted alive until */
    uint64_t next_grant_ms, next_keepalive_ms;
    bool leader_mine;              /* the last txn: the leader key carries our lease */
    char leader[CLUSTER_NAME_MAX]; /* as last seen */
    enum sg_cluster_role role;     /* as last journaled */
    json_t *others;                /* name -> record, this instance left out */
    uint64_t others_ms;
    char *record; /* the last record published (JSON text) */
    struct event *timer;
    uint64_t errors, terms;
    char last_error[200];
    bool stepped_down; /* stopping: no lease, no record, never the leader again */
};

/* ------------------------------------------------------------ base64 */

static char *cluster_b64(const char *s, size_t n)
{
    char *out = sg_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* Decodes s into a NUL-terminated string (*len without the NUL); NULL when
 * s is not base64. */
static char *cluster_unb64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        return NULL;
    char *out = sg_xmalloc(n / 4 * 3 + 1);
    int k = n > 0 ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n) : 0;
    if (k < 0) {
        free(out);
        return NULL;
    }
    size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
    *len = (size_t)k - pad;
    out[*len] = '\0';
    return out;
}

/* ------------------------------------------------------------ roles */

const char *sg_cluster_role_name(enum sg_cluster_role r)
{
    switch (r) {
    case SG_CLUSTER_LEADER:
        return "leader";
    case SG_CLUSTER_FOLLOWER:
        return "follower";
    case SG_CLUSTER_LOST:
        return "lost";
    default:
        return "alone";
    }
}

static enum sg_cluster_role cluster_compute(const struct sg_cluster *cl, uint64_t now)
{
    if (cl->lease != 0 && now < cl->lease_until && cl->leader_mine)
        return SG_CLUSTER_LEADER;
    uint64_t since = cl->last_ok_ms != 0 ? cl->last_ok_ms : cl->started_ms;
    return now - since <= cl->cfg->ttl_ms ? SG_CLUSTER_FOLLOWER : SG_CLUSTER_LOST;
}

enum sg_cluster_role sg_cluster_role(const struct sg_cluster *cl)
{
    return cl == NULL ? SG_CLUSTER_ALONE : cluster_compute(cl, sg_now_ms());
}

const char *sg_cluster_name(const struct sg_cluster *cl)
{
    return cl == NULL ? "" : cl->name;
}

const char *sg_cluster_leader(const struct sg_cluster *cl)
{
    if (cl == NULL)
        return "";
    return cluster_compute(cl, sg_now_ms()) == SG_CLUSTER_LOST ? "" : cl->leader;
}

/* Journals and logs a change of role (once per change). */
static void cluster_update(struct sg_cluster *cl)
{
    uint64_t now = sg_now_ms();
    enum sg_cluster_role r = cluster_compute(cl, now);
    enum sg_cluster_role was = cl->role;
    if (r == was)
        return;
    cl->role = r;
    if (was == SG_CLUSTER_LOST)
        sg_journal_emit("cluster_connected",
                        json_pack("{s:s, s:s}", "name", cl->name, "etcd", cl->cfg->etcd[cl->cur]));
    if (r == SG_CLUSTER_LEADER) {
        cl->terms++;
        sg_journal_emit("cluster_leader", json_pack("{s:s, s:I, s:I}", "name", cl->name, "ttl_ms",
                                                    (json_int_t)cl->cfg->ttl_ms, "uptime_ms",
                                                    (json_int_t)(now - cl->started_ms)));
        sg_log_info("cluster: this instance ('%s') is the leader: it runs the scale hooks",
                    cl->name);
    } else if (r == SG_CLUSTER_FOLLOWER) {
        sg_journal_emit("cluster_follower",
                        json_pack("{s:s, s:s}", "name", cl->name, "leader", cl->leader));
        if (was == SG_CLUSTER_LEADER)
            sg_log_warn("cluster: this instance ('%s') is no longer the leader", cl->name);
        else
            sg_log_info("cluster: following (leader '%s'): scale hooks run on the leader only",
                        cl->leader);
    } else {
        sg_journal_emit("cluster_lost",
                        json_pack("{s:s, s:s, s:I, s:s}", "name", cl->name, "etcd",
                                  cl->cfg->etcd[cl->cur], "ttl_ms", (json_int_t)cl->cfg->ttl_ms,
                                  "error", cl->last_error));
        sg_log_warn("cluster: etcd has not answered for more than %" PRIu32
                    " ms (%s): nobody is known to lead, so this instance runs no scale hooks "
                    "until it answers again",
                    cl->cfg->ttl_ms, cl->last_error[0] ? cl->last_error : "no answer yet");
    }
}

/* ------------------------------------------------------------ calls */

static void cluster_error(struct sg_cluster *cl, enum cluster_call c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cluster_error(struct sg_cluster *cl, enum cluster_call c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[160];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cl->errors++;
    bool repeat = strstr(cl->last_error, msg) != NULL;
    snprintf(cl->last_error, sizeof(cl->last_error), "%s %s: %s", cl->cfg->etcd[cl->cur],
             cluster_paths[c], msg);
    if (!repeat)
        sg_log_warn("cluster: %s", cl->last_error);
}

static void cluster_done(struct evhttp_request *req, void *arg);

/* Sends call c with body (JSON text, owned by the caller) unless one is in
 * flight. */
static void cluster_send(struct sg_cluster *cl, enum cluster_call c, const char *body)
{
    struct cluster_slot *s = &cl->slot[c];
    if (s->req != NULL)
        return;
    if (s->conn != NULL && s->conn_ep != cl->cur) {
        evhttp_connection_free(s->conn);
        s->conn = NULL;
    }
    if (s->conn == NULL) {
        const struct cluster_ep *e = &cl->ep[cl->cur];
        s->conn = evhttp_connection_base_new(cl->base, NULL, e->host, e->port);
        if (s->conn == NULL) {
            cluster_error(cl, c, "cannot create a connection");
            return;
        }
        s->conn_ep = cl->cur;
        uint32_t t = cl->cfg->ttl_ms / 4;
        t = t < 500 ? 500 : t > 2000 ? 2000 : t;
        struct timeval tv = {t / 1000, (t % 1000) * 1000};
        evhttp_connection_set_timeout_tv(s->conn, &tv);
        evhttp_connection_set_retries(s->conn, 0);
        evhttp_connection_set_max_body_size(s->conn, CLUSTER_BODY_MAX);
    }
    struct evhttp_request *req = evhttp_request_new(cluster_done, s);
    if (req == NULL)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s:%u", cl->ep[cl->cur].host, cl->ep[cl->cur].port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Content-Type", "application/json");
    char len[32];
    snprintf(len, sizeof(len), "%zu", strlen(body));
    evhttp_add_header(h, "Content-Length", len);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, cluster_paths[c]) != 0) {
        cluster_error(cl, c, "cannot send the request"); /* req freed by libevent */
        return;
    }
    s->req = req;
    s->sent_ms = sg_now_ms();
    s->lease = cl->lease;
}

static void cluster_send_json(struct sg_cluster *cl, enum cluster_call c, json_t *body)
{
    char *t = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (t != NULL)
        cluster_send(cl, c, t);
    free(t);
}

static void cluster_drop_lease(struct sg_cluster *cl, const char *why)
{
    if (cl->lease != 0)
        sg_log_warn("cluster: lease %" PRIx64 " lost (%s): granting a new one", (uint64_t)cl->lease,
                    why);
    cl->lease = 0;
    cl->leader_mine = false;
}

static char *cluster_key(const struct sg_cluster *cl, const char *a, const char *b)
{
    size_t n = strlen(cl->cfg->prefix) + strlen(a) + strlen(b) + 1;
    char *k = sg_xmalloc(n);
    snprintf(k, n, "%s%s%s", cl->cfg->prefix, a, b);
    return k;
}

static json_t *cluster_b64_json(const char *s)
{
    char *b = cluster_b64(s, strlen(s));
    json_t *j = json_string(b);
    free(b);
    return j;
}

static json_t *cluster_lease_json(int64_t lease)
{
    char id[32];
    snprintf(id, sizeof(id), "%" PRId64, lease);
    return json_string(id);
}

/* A lease ID, a TTL or a revision: the gateway writes int64 as strings. */
static int64_t cluster_int(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (!json_is_string(v))
        return 0;
    char *end;
    long long x = strtoll(json_string_value(v), &end, 10);
    return *end == '\0' ? (int64_t)x : 0;
}

static void cluster_on_grant(struct sg_cluster *cl, struct cluster_slot *s, json_t *r)
{
    int64_t id = cluster_int(json_object_get(r, "ID"));
    int64_t ttl = cluster_int(json_object_get(r, "TTL"));
    if (id == 0 || ttl <= 0) {
        cluster_error(cl, CC_GRANT, "no lease in the answer");
        cl->next_grant_ms = sg_now_ms() + CLUSTER_REGRANT_MS;
        return;
    }
    cl->lease = id;
    cl->lease_until = s->sent_ms + (uint64_t)ttl * 1000;
    cl->next_keepalive_ms = s->sent_ms + cl->cfg->ttl_ms / 3;
    cl->leader_mine = false;
    sg_log_info("cluster: lease %" PRIx64 " granted (%" PRId64 " s)", (uint64_t)id, ttl);
}

static void cluster_on_keepalive(struct sg_cluster *cl, struct cluster_slot *s, json_t *r)
{
    json_t *res = json_object_get(r, "result");
    int64_t ttl = cluster_int(json_object_get(res != NULL ? res : r, "TTL"));
    if (s->lease != cl->lease)
        return; /* an answer about a lease already dropped */
    if (ttl <= 0) {
        cluster_drop_lease(cl, "etcd says it expired");
        return;
    }
    cl->lease_until = s->sent_ms + (uint64_t)ttl * 1000;
}

static void cluster_on_txn(struct sg_cluster *cl, struct cluster_slot *s, json_t *r)
{
    if (s->lease != cl->lease || cl->lease == 0)
        return;
    if (json_is_true(json_object_get(r, "succeeded"))) {
        cl->leader_mine = true;
        snprintf(cl->leader, sizeof(cl->leader), "%s", cl->name);
        return;
    }
    json_t *kv = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(r, "responses"), 0), "response_range"),
            "kvs"),
        0);
    const char *v = json_string_value(json_object_get(kv, "value"));
    size_t n = 0;
    char *name = v != NULL ? cluster_unb64(v, &n) : NULL;
    bool mine = kv != NULL && cluster_int(json_object_get(kv, "lease")) == cl->lease;
    char old[CLUSTER_NAME_MAX];
    snprintf(old, sizeof(old), "%s", cl->leader);
    snprintf(cl->leader, sizeof(cl->leader), "%s", name != NULL ? name : "");
    free(name);
    /* A name written by someone else: keep it to the names' alphabet in
     * logs and the admin API. */
    for (char *c = cl->leader; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            *c = '?';
    cl->leader_mine = mine;
    if (!mine && strcmp(old, cl->leader) != 0 && cl->role == SG_CLUSTER_FOLLOWER &&
        cl->leader[0] != '\0') {
        sg_journal_emit("cluster_follower",
                        json_pack("{s:s, s:s}", "name", cl->name, "leader", cl->leader));
        sg_log_info("cluster: the leader is now '%s'", cl->leader);
    }
}

static void cluster_on_range(struct sg_cluster *cl, json_t *r)
{
    char *pfx = cluster_key(cl, "members/", "");
    size_t plen = strlen(pfx);
    json_t *others = json_object();
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(r, "kvs"), i, kv)
    {
        size_t kn = 0, vn = 0;
        const char *kb = json_string_value(json_object_get(kv, "key"));
        const char *vb = json_string_value(json_object_get(kv, "value"));
        char *k = kb != NULL ? cluster_unb64(kb, &kn) : NULL;
        char *v = vb != NULL ? cluster_unb64(vb, &vn) : NULL;
        if (k != NULL && v != NULL && kn > plen && strncmp(k, pfx, plen) == 0 && strlen(k) == kn &&
            strcmp(k + plen, cl->name) != 0) {
            json_t *rec = json_loadb(v, vn, 0, NULL);
            if (json_is_object(rec))
                json_object_set(others, k + plen, rec);
            json_decref(rec);
        }
        free(k);
        free(v);
    }
    free(pfx);
    json_decref(cl->others);
    cl->others = others;
    cl->others_ms = sg_now_ms();
}

static void cluster_done(struct evhttp_request *req, void *arg)
{
    struct cluster_slot *s = arg;
    struct sg_cluster *cl = s->cl;
    s->req = NULL;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        /* connection refused, reset or timed out: try the next endpoint */
        cluster_error(cl, s->call, "no answer (connection refused, closed or timed out)");
        if (s->conn_ep == cl->cur && cl->nep > 1)
            cl->cur = (cl->cur + 1) % cl->nep;
        if (s->call == CC_GRANT)
            cl->next_grant_ms = sg_now_ms() + CLUSTER_REGRANT_MS;
        cluster_update(cl);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    json_error_t je;
    /* keepalive answers are a stream of JSON values: the first is ours */
    json_t *r = body != NULL ? json_loadb(body, n, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    if (!json_is_object(r)) {
        cluster_error(cl, s->call, "HTTP %d with a body that is not a JSON object", code);
        if (s->call == CC_GRANT)
            cl->next_grant_ms = sg_now_ms() + CLUSTER_REGRANT_MS;
        json_decref(r);
        return;
    }
    cl->last_ok_ms = sg_now_ms(); /* etcd answered */
    const char *err = json_string_value(json_object_get(r, "error"));
    if (err == NULL)
        err = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    if (code != 200 || err != NULL) {
        cluster_error(cl, s->call, "HTTP %d: %.100s", code, err != NULL ? err : "(no message)");
        if (err != NULL && strstr(err, "lease not found") != NULL && s->lease == cl->lease)
            cluster_drop_lease(cl, err);
        if (s->call == CC_GRANT)
            cl->next_grant_ms = sg_now_ms() + CLUSTER_REGRANT_MS;
    } else {
        switch (s->call) {
        case CC_GRANT:
            cluster_on_grant(cl, s, r);
            break;
        case CC_KEEPALIVE:
            cluster_on_keepalive(cl, s, r);
            break;
        case CC_TXN:
            cluster_on_txn(cl, s, r);
            break;
        case CC_RANGE:
            cluster_on_range(cl, r);
            break;
        default:
            break;
        }
    }
    json_decref(r);
    cluster_update(cl);
}

/* ------------------------------------------------------------ timer */

static void cluster_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sg_cluster *cl = arg;
    uint64_t now = sg_now_ms();
    if (cl->stepped_down)
        return;
    if (cl->lease != 0 && now >= cl->lease_until)
        cluster_drop_lease(cl, "no keepalive answered within its TTL");
    if (cl->lease == 0 && now >= cl->next_grant_ms) {
        json_t *b = json_pack("{s:I}", "TTL", (json_int_t)(cl->cfg->ttl_ms / 1000));
        cluster_send_json(cl, CC_GRANT, b);
    } else if (cl->lease != 0 && now >= cl->next_keepalive_ms) {
        cluster_send_json(cl, CC_KEEPALIVE,
                          json_pack("{s:o}", "ID", cluster_lease_json(cl->lease)));
        cl->next_keepalive_ms = now + cl->cfg->ttl_ms / 3;
    }
    cluster_update(cl);
}

void sg_cluster_publish(struct sg_cluster *cl, json_t *record)
{
    if (cl == NULL || cl->stepped_down) {
        json_decref(record);
        return;
    }
    json_object_set_new(record, "name", json_string(cl->name));
    json_object_set_new(record, "time_ms", json_integer((json_int_t)sg_wall_ms()));
    free(cl->record);
    cl->record = json_dumps(record, JSON_COMPACT);
    json_decref(record);
    if (cl->lease != 0) {
        char *mk = cluster_key(cl, "members/", cl->name);
        if (cl->record != NULL)
            cluster_send_json(cl, CC_PUT,
                              json_pack("{s:o, s:o, s:o}", "key", cluster_b64_json(mk), "value",
                                        cluster_b64_json(cl->record), "lease",
                                        cluster_lease_json(cl->lease)));
        free(mk);
        char *lk = cluster_key(cl, "leader", "");
        json_t *txn =
            json_pack("{s:[{s:o, s:s, s:s, s:s}], s:[{s:{s:o, s:o, s:o}}], s:[{s:{s:o}}]}",
                      "compare", "key", cluster_b64_json(lk), "result", "EQUAL", "target", "CREATE",
                      "create_revision", "0", "success", "request_put", "key", cluster_b64_json(lk),
                      "value", cluster_b64_json(cl->name), "lease", cluster_lease_json(cl->lease),
                      "failure", "request_range", "key", cluster_b64_json(lk));
        free(lk);
        cluster_send_json(cl, CC_TXN, txn);
    }
    char *from = cluster_key(cl, "members/", ""), *to = cluster_key(cl, "members0", "");
    cluster_send_json(
        cl, CC_RANGE,
        json_pack("{s:o, s:o}", "key", cluster_b64_json(from), "range_end", cluster_b64_json(to)));
    free(from);
    free(to);
    cluster_update(cl);
}

void sg_cluster_step_down(struct sg_cluster *cl)
{
    if (cl == NULL || cl->stepped_down)
        return;
    bool led = cluster_compute(cl, sg_now_ms()) == SG_CLUSTER_LEADER;
    if (cl->lease != 0) {
        /* Revoking the lease deletes the leader key and our record at once:
         * another instance leads at its next transaction, not after ttl. */
        cluster_send_json(cl, CC_REVOKE, json_pack("{s:o}", "ID", cluster_lease_json(cl->lease)));
        sg_log_info("cluster: stopping: lease %" PRIx64 " revoked%s", (uint64_t)cl->lease,
                    led ? ", the leader role goes to another instance" : "");
    }
    cl->stepped_down = true;
    cl->lease = 0;
    cl->leader_mine = false;
    if (led)
        sg_journal_emit("cluster_step_down", json_pack("{s:s}", "name", cl->name));
    cl->role = cluster_compute(cl, sg_now_ms());
}

/* ------------------------------------------------------------ reading */

size_t sg_cluster_pool_raws(const struct sg_cluster *cl, const char *pool,
                            struct sg_cluster_raw *out, size_t max)
{
    if (cl == NULL || cl->others == NULL || sg_now_ms() - cl->others_ms > cl->cfg->ttl_ms)
        return 0;
    size_t n = 0;
    const char *name;
    json_t *rec;
    uint64_t wall = sg_wall_ms();
    json_object_foreach(cl->others, name, rec)
    {
        json_t *t = json_object_get(rec, "time_ms");
        uint64_t at = json_is_integer(t) ? (uint64_t)json_integer_value(t) : 0;
        if (n >= max || at + 3ull * cl->cfg->ttl_ms < wall)
            continue;
        json_t *po = json_object_get(json_object_get(rec, "pools"), pool);
        if (po != NULL && sg_cluster_raw_parse(po, &out[n]) == SG_OK)
            n++;
    }
    return n;
}

bool sg_cluster_leader_acted(const struct sg_cluster *cl, const char *pool,
                             struct sg_as_decision *d, uint64_t *id)
{
    if (cl == NULL || cl->others == NULL || cl->leader[0] == '\0' || cl->leader_mine)
        return false;
    json_t *a = json_object_get(
        json_object_get(json_object_get(json_object_get(cl->others, cl->leader), "pools"), pool),
        "acted");
    const char *act = json_string_value(json_object_get(a, "action"));
    json_t *cur = json_object_get(a, "current"), *des = json_object_get(a, "desired");
    json_t *i = json_object_get(a, "id");
    if (act == NULL || !json_is_integer(cur) || !json_is_integer(des) || !json_is_integer(i))
        return false;
    memset(d, 0, sizeof(*d));
    d->action = strcmp(act, "scale_up") == 0     ? SG_AS_UP
                : strcmp(act, "scale_down") == 0 ? SG_AS_DOWN
                                                 : SG_AS_NONE;
    d->current = (uint32_t)json_integer_value(cur);
    d->desired = (uint32_t)json_integer_value(des);
    d->rule = -1;
    snprintf(d->reason, sizeof(d->reason), "acted on by the leader '%s'", cl->leader);
    *id = (uint64_t)json_integer_value(i);
    return d->action != SG_AS_NONE;
}

json_t *sg_cluster_json(const struct sg_cluster *cl)
{
    if (cl == NULL)
        return json_pack("{s:s}", "role", "alone");
    uint64_t now = sg_now_ms();
    enum sg_cluster_role r = cluster_compute(cl, now);
    json_t *members = json_array();
    json_array_append_new(members, json_string(cl->name));
    const char *name;
    json_t *rec;
    if (cl->others != NULL && now - cl->others_ms <= cl->cfg->ttl_ms)
        json_object_foreach(cl->others, name, rec)
            json_array_append_new(members, json_string(name));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I}", "role", sg_cluster_role_name(r),
                  "name", cl->name, "leader", r == SG_CLUSTER_LOST ? "" : cl->leader, "members",
                  members, "etcd", cl->cfg->etcd[cl->cur], "ttl_ms", (json_int_t)cl->cfg->ttl_ms,
                  "leader_terms", (json_int_t)cl->terms, "etcd_errors", (json_int_t)cl->errors);
    json_object_set_new(o, "last_contact_ms_ago",
                        cl->last_ok_ms ? json_integer((json_int_t)(now - cl->last_ok_ms))
                                       : json_null());
    json_object_set_new(o, "lease_left_ms",
                        cl->lease != 0 && cl->lease_until > now
                            ? json_integer((json_int_t)(cl->lease_until - now))
                            : json_integer(0));
    if (cl->last_error[0] != '\0')
        json_object_set_new(o, "last_error", json_string(cl->last_error));
    return o;
}

void sg_cluster_metrics(const struct sg_cluster *cl, struct evbuffer *out)
{
    if (cl == NULL)
        return;
    uint64_t now = sg_now_ms();
    enum sg_cluster_role r = cluster_compute(cl, now);
    size_t members = 1 + (cl->others != NULL && now - cl->others_ms <= cl->cfg->ttl_ms
                              ? json_object_size(cl->others)
                              : 0);
    evbuffer_add_printf(out,
                        "# HELP surgegate_cluster_leader 1 when this instance leads its cluster "
                        "(runs the scale hooks).\n"
                        "# TYPE surgegate_cluster_leader gauge\n"
                        "surgegate_cluster_leader{instance=\"%s\"} %d\n"
                        "# HELP surgegate_cluster_lost 1 while etcd has not answered for more than "
                        "the lease TTL.\n"
                        "# TYPE surgegate_cluster_lost gauge\n"
                        "surgegate_cluster_lost %d\n"
                        "# HELP surgegate_cluster_members Live instances seen in etcd, this one "
                        "included.\n"
                        "# TYPE surgegate_cluster_members gauge\n"
                        "surgegate_cluster_members %zu\n"
                        "# HELP surgegate_cluster_etcd_errors_total etcd calls that failed.\n"
                        "# TYPE surgegate_cluster_etcd_errors_total counter\n"
                        "surgegate_cluster_etcd_errors_total %" PRIu64 "\n",
                        cl->name, r == SG_CLUSTER_LEADER, r == SG_CLUSTER_LOST,
                        r == SG_CLUSTER_LOST ? (size_t)1 : members, cl->errors);
}

/* ------------------------------------------------------------ life */

/* "http://host:port[/]" (checked at load) -> host and port. */
static void cluster_parse_ep(const char *url, struct cluster_ep *e)
{
    const char *h = url + strlen("http://");
    const char *colon;
    if (*h == '[') {
        const char *end = strchr(h, ']');
        snprintf(e->host, sizeof(e->host), "%.*s", (int)(end - h - 1), h + 1);
        colon = end + 1;
    } else {
        colon = strchr(h, ':');
        snprintf(e->host, sizeof(e->host), "%.*s", (int)(colon - h), h);
    }
    e->port = (uint16_t)strtoul(colon + 1, NULL, 10);
}

struct sg_cluster *sg_cluster_new(struct event_base *base, const struct sg_cfg_cluster *cfg)
{
    if (cfg == NULL || !cfg->enabled || cfg->etcd == NULL)
        return NULL;
    struct sg_cluster *cl = sg_xcalloc(1, sizeof(*cl));
    cl->base = base;
    cl->own.enabled = true;
    cl->own.ttl_ms = cfg->ttl_ms;
    cl->own.prefix = sg_xstrdup(cfg->prefix != NULL ? cfg->prefix : "/surgegate/");
    while (cfg->etcd[cl->nep] != NULL)
        cl->nep++;
    cl->own.etcd = sg_xcalloc(cl->nep + 1, sizeof(char *));
    for (size_t i = 0; i < cl->nep; i++)
        cl->own.etcd[i] = sg_xstrdup(cfg->etcd[i]);
    cl->cfg = &cl->own;
    if (cfg->name != NULL) {
        snprintf(cl->name, sizeof(cl->name), "%s", cfg->name);
    } else {
        char host[64] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "surgegate");
        snprintf(cl->name, sizeof(cl->name), "%s-%ld", host, (long)getpid());
    }
    cl->ep = sg_xcalloc(cl->nep, sizeof(*cl->ep));
    for (size_t i = 0; i < cl->nep; i++)
        cluster_parse_ep(cfg->etcd[i], &cl->ep[i]);
    for (int c = 0; c < CC_N; c++) {
        cl->slot[c].cl = cl;
        cl->slot[c].call = (enum cluster_call)c;
    }
    cl->started_ms = sg_now_ms();
    cl->role = SG_CLUSTER_FOLLOWER;
    cl->timer = event_new(base, -1, EV_PERSIST, cluster_timer_cb, cl);
    struct timeval tv = {0, CLUSTER_TIMER_MS * 1000};
    if (cl->timer == NULL || event_add(cl->timer, &tv) != 0) {
        sg_log_error("cluster: cannot start its timer");
        sg_cluster_free(cl);
        return NULL;
    }
    sg_log_info("cluster: instance '%s', etcd %s%s, lease TTL %" PRIu32 " ms, prefix %s", cl->name,
                cfg->etcd[0], cl->nep > 1 ? " (and others)" : "", cfg->ttl_ms, cfg->prefix);
    cluster_timer_cb(-1, 0, cl); /* the first grant now */
    return cl;
}

void sg_cluster_free(struct sg_cluster *cl)
{
    if (cl == NULL)
        return;
    if (cl->timer != NULL)
        event_free(cl->timer);
    for (int c = 0; c < CC_N; c++) {
        struct cluster_slot *s = &cl->slot[c];
        if (s->req != NULL)
            evhttp_cancel_request(s->req);
        if (s->conn != NULL)
            evhttp_connection_free(s->conn);
    }
    json_decref(cl->others);
    free(cl->record);
    free(cl->ep);
    for (size_t i = 0; i < cl->nep; i++)
        free(cl->own.etcd[i]);
    free(cl->own.etcd);
    free(cl->own.prefix);
    free(cl);
}
