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
#include "surgegate/common.h"
#include "surgegate/lb-t.h"
#include "surgegate/log.h"
#include "surgegate/outlier.h"
#include "surgegate/pool.h"

#define ADMIN_MAX_BODY (64 * 1024)

struct sg_admin {
    struct evhttp *http;
    const struct sg_cfg *cfg;
    struct sg_pools *pools;
    sg_admin_changed_cb changed;
    void *arg;
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
                         : code == 413 ? "Payload Too Large"
                                       : "Error";
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

static void admin_error(struct evhttp_request *req, int code, const char *msg)
{
    admin_reply(req, code, json_pack("{s:s}", "error", msg));
}

static json_t *admin_backend_json(const struct sg_backend *b, uint64_t now)
{
    uint64_t until = atomic_load(&b->eject_until);
    bool ejected = until > now;
    enum sg_backend_state st = sg_backend_state(b, now);
    const char *reason = b->reason;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I}", "address",
        b->name, "state", sg_backend_state_name(st), "reason", reason, "since_ms",
        (json_int_t)b->state_since_ms, "weight", (json_int_t)b->weight, "weight_now",
        (double)sg_backend_weight(b, now) / SG_WEIGHT_SCALE, "maxconn",
        (json_int_t)sg_backend_maxconn(b, now), "inflight", (json_int_t)atomic_load(&b->inflight),
        "queue_depth", (json_int_t)atomic_load(&b->queue_depth), "requests",
        (json_int_t)atomic_load(&b->requests), "failures", (json_int_t)atomic_load(&b->failures),
        "ejected", ejected, "backup", b->backup, "ejections", (json_int_t)sg_outlier_nejections(b));
    return o;
}

static json_t *admin_pool_json(const struct sg_pool *p, bool with_backends)
{
    uint64_t now = sg_now_ms();
    json_t *bs = json_array();
    uint64_t inflight = 0;
    uint32_t up = 0;
    for (size_t i = 0; i < p->nbackends; i++) {
        const struct sg_backend *b = &p->backends[i];
        inflight += atomic_load(&b->inflight);
        if (sg_backend_usable(b, now))
            up++;
        if (with_backends)
            json_array_append_new(bs, admin_backend_json(b, now));
    }
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", p->name, "balance",
                  p->lb->name, "queue_depth", (json_int_t)atomic_load(&p->queue.depth), "inflight",
                  (json_int_t)inflight, "active", (json_int_t)atomic_load(&p->active),
                  "retries_total", (json_int_t)atomic_load(&p->retries_total), "retries_denied",
                  (json_int_t)atomic_load(&p->retries_denied), "backends_up", (json_int_t)up,
                  "backends_total", (json_int_t)p->nbackends);
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

static struct sg_backend *admin_find_backend(struct sg_pool *p, const char *addr, size_t len)
{
    for (size_t i = 0; i < p->nbackends; i++)
        if (strlen(p->backends[i].name) == len && memcmp(p->backends[i].name, addr, len) == 0)
            return &p->backends[i];
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
    admin_error(req, 401, "missing or invalid token");
    return NULL;
}

/* Reads the request body as a JSON object; answers 400 and returns NULL on
 * anything else. */
static json_t *admin_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > ADMIN_MAX_BODY) {
        admin_error(req, 413, "body too large");
        return NULL;
    }
    char *txt = malloc(n + 1);
    if (txt == NULL) {
        admin_error(req, 500, "out of memory");
        return NULL;
    }
    evbuffer_copyout(in, txt, n);
    txt[n] = '\0';
    json_error_t err;
    json_t *o = json_loadb(txt, n, 0, &err);
    free(txt);
    if (o == NULL || !json_is_object(o)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "body is not a JSON object: %s",
                 o == NULL ? err.text : "wrong type");
        json_decref(o);
        admin_error(req, 400, msg);
        return NULL;
    }
    return o;
}

static void admin_set_state(struct sg_admin *a, struct evhttp_request *req, struct sg_backend *b)
{
    json_t *body = admin_body(req);
    if (body == NULL)
        return;
    const char *st = json_string_value(json_object_get(body, "state"));
    int adm;
    if (st != NULL && strcmp(st, "drain") == 0)
        adm = SG_ADMIN_DRAIN;
    else if (st != NULL && strcmp(st, "maint") == 0)
        adm = SG_ADMIN_MAINT;
    else if (st != NULL && strcmp(st, "ready") == 0)
        adm = SG_ADMIN_READY;
    else {
        json_decref(body);
        admin_error(req, 400, "\"state\" must be \"drain\", \"maint\" or \"ready\"");
        return;
    }
    int old = atomic_exchange(&b->admin, adm);
    if (old != adm) {
        sg_log_info("backend %s of pool '%s': state set to %s by the admin API", b->name,
                    b->pool->name, st);
        if (adm == SG_ADMIN_READY && b->pool->slowstart_ms > 0)
            atomic_store(&b->ramp_from, sg_now_ms());
        if (a->changed)
            a->changed(b, a->arg);
    }
    json_decref(body);
    admin_reply(req, 200, admin_backend_json(b, sg_now_ms()));
}

static void admin_handle(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    const char *role = admin_auth(a, req);
    if (role == NULL)
        return;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    const char *path = uri;
    size_t plen = strcspn(path, "?");
    static const char pre[] = "/api/v1/";
    if (plen < sizeof(pre) - 1 || memcmp(path, pre, sizeof(pre) - 1) != 0) {
        admin_error(req, 404, "no such endpoint");
        return;
    }
    path += sizeof(pre) - 1;
    plen -= sizeof(pre) - 1;
    /* split into at most 6 segments */
    const char *seg[6];
    size_t slen[6], nseg = 0;
    size_t i = 0;
    while (i < plen && nseg < 6) {
        size_t j = i;
        while (j < plen && path[j] != '/')
            j++;
        seg[nseg] = path + i;
        slen[nseg++] = j - i;
        i = j + 1;
    }
    if (i < plen) {
        admin_error(req, 404, "no such endpoint");
        return;
    }
#define SEG_IS(k, lit) (slen[k] == sizeof(lit) - 1 && memcmp(seg[k], lit, sizeof(lit) - 1) == 0)
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if (nseg == 1 && SEG_IS(0, "stats")) {
        if (!get)
            goto bad_method;
        json_t *ps = json_array();
        for (size_t k = 0; k < a->pools->n; k++)
            json_array_append_new(ps, admin_pool_json(&a->pools->pools[k], true));
        admin_reply(req, 200, json_pack("{s:o}", "pools", ps));
        return;
    }
    if (nseg >= 1 && SEG_IS(0, "pools")) {
        if (nseg == 1) {
            if (!get)
                goto bad_method;
            json_t *ps = json_array();
            for (size_t k = 0; k < a->pools->n; k++)
                json_array_append_new(ps, admin_pool_json(&a->pools->pools[k], false));
            admin_reply(req, 200, ps);
            return;
        }
        struct sg_pool *p = admin_find_pool(a, seg[1], slen[1]);
        if (p == NULL) {
            admin_error(req, 404, "no such pool");
            return;
        }
        if (nseg == 2) {
            if (!get)
                goto bad_method;
            admin_reply(req, 200, admin_pool_json(p, true));
            return;
        }
        if (SEG_IS(2, "backends")) {
            if (nseg == 3) {
                if (!get)
                    goto bad_method;
                json_t *o = admin_pool_json(p, true);
                json_t *bs = json_incref(json_object_get(o, "backends"));
                json_decref(o);
                admin_reply(req, 200, bs);
                return;
            }
            struct sg_backend *b = admin_find_backend(p, seg[3], slen[3]);
            if (b == NULL) {
                admin_error(req, 404, "no such backend");
                return;
            }
            if (nseg == 4) {
                if (!get)
                    goto bad_method;
                admin_reply(req, 200, admin_backend_json(b, sg_now_ms()));
                return;
            }
            if (nseg == 5 && SEG_IS(4, "state")) {
                if (cmd != EVHTTP_REQ_POST)
                    goto bad_method;
                if (strcmp(role, "admin") != 0) {
                    admin_error(req, 403, "this token may only read");
                    return;
                }
                admin_set_state(a, req, b);
                return;
            }
        }
    }
#undef SEG_IS
    admin_error(req, 404, "no such endpoint");
    return;
bad_method:
    admin_error(req, 405, "method not allowed here");
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
        (void)chmod(*unix_path, 0660);
    return fd;
}

struct sg_admin *sg_admin_start(struct event_base *base, const struct sg_cfg *cfg,
                                struct sg_pools *pools, sg_admin_changed_cb changed, void *arg)
{
    struct sg_admin *a = sg_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->pools = pools;
    a->changed = changed;
    a->arg = arg;
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
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_gencb(a->http, admin_handle, a);
    sg_log_info("admin API listening on %s", cfg->admin.listen.text);
    return a;
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
