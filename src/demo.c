/* demo.c: demo backends for `surgegate --demo`, built on libevent's evhttp
 * (a complete, maintained HTTP server: no reason to write another). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/demo.h"
#include "surgegate/log.h"

struct demo_backend {
    struct evhttp *http;
    struct event_base *base;
    char name[32];
    char addr[80];
    unsigned long served;
    uint32_t delay_ms; /* simulated service time of "/" requests */
};

/* A reply held for its simulated service time. */
struct demo_later {
    struct evhttp_request *req;
    struct evbuffer *out;
};

static void demo_send_later(evutil_socket_t fd, short what, void *arg)
{
    struct demo_later *l = arg;
    evhttp_send_reply(l->req, 200, "OK", l->out);
    evbuffer_free(l->out);
    free(l);
}

struct sg_demo {
    struct demo_backend *b;
    size_t n;
};

static void demo_handle(struct evhttp_request *req, void *arg)
{
    struct demo_backend *db = arg;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "text/plain");
    evhttp_add_header(oh, "X-Backend", db->name);
    if (uri != NULL && strcmp(uri, "/healthz") == 0) {
        evbuffer_add_printf(out, "ok\n");
    } else {
        db->served++;
        evbuffer_add_printf(out, "hello from %s (%s), request #%lu\n", db->name, db->addr,
                            db->served);
        if (db->delay_ms > 0) {
            struct demo_later *l = malloc(sizeof(*l));
            struct timeval tv = {db->delay_ms / 1000, (db->delay_ms % 1000) * 1000};
            if (l != NULL) {
                l->req = req;
                l->out = out;
                if (event_base_once(db->base, -1, EV_TIMEOUT, demo_send_later, l, &tv) == 0)
                    return;
                free(l);
            }
        }
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

char *sg_demo_conf_fill(const char *tmpl, const char *hooks_dir)
{
    static const char mark[] = "@HOOKS@";
    const size_t ml = sizeof(mark) - 1, dl = strlen(hooks_dir);
    size_t n = 0;
    for (const char *p = strstr(tmpl, mark); p != NULL; p = strstr(p + ml, mark))
        n++;
    char *out = sg_xmalloc(strlen(tmpl) + n * dl + 1), *o = out;
    const char *p = tmpl, *q;
    while ((q = strstr(p, mark)) != NULL) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, hooks_dir, dl);
        o += dl;
        p = q + ml;
    }
    strcpy(o, p);
    return out;
}

struct sg_demo *sg_demo_start(struct event_base *base, const struct sg_cfg *cfg)
{
    if (cfg->npools == 0)
        return NULL;
    const struct sg_cfg_pool *p = &cfg->pools[0];
    struct sg_demo *d = sg_xcalloc(1, sizeof(*d));
    d->b = sg_xcalloc(p->nbackends, sizeof(struct demo_backend));
    for (size_t i = 0; i < p->nbackends; i++) {
        struct demo_backend *db = &d->b[i];
        snprintf(db->name, sizeof(db->name), "demo-%zu", i + 1);
        snprintf(db->addr, sizeof(db->addr), "%s", p->backends[i].address.text);
        db->base = base;
        db->delay_ms = SG_DEMO_DELAY_MS;
        char host[sizeof(db->addr)];
        snprintf(host, sizeof(host), "%s", db->addr);
        char *colon = strrchr(host, ':');
        if (colon == NULL)
            goto fail;
        *colon = '\0';
        int port = atoi(colon + 1);
        db->http = evhttp_new(base);
        if (db->http == NULL || evhttp_bind_socket(db->http, host, (ev_uint16_t)port) != 0) {
            sg_log_error("demo: cannot listen on %s (is another demo running?)", db->addr);
            goto fail;
        }
        evhttp_set_gencb(db->http, demo_handle, db);
        d->n = i + 1;
    }
    return d;
fail:
    d->n = p->nbackends;
    sg_demo_free(d);
    return NULL;
}

void sg_demo_free(struct sg_demo *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        if (d->b[i].http)
            evhttp_free(d->b[i].http);
    free(d->b);
    free(d);
}

/* SIGTERM: the replies under way (20 ms each) still go out before the end. */
static void demo_backend_stop(evutil_socket_t sig, short what, void *arg)
{
    struct timeval tv = {0, 300 * 1000};
    event_base_loopexit(arg, &tv);
}

int sg_demo_backend_run(const char *addr, uint32_t delay_ms)
{
    struct sg_cfg_addr a = {0};
    char why[160], buf[128];
    /* Port 0 (any free port) is not a backend address: parse it as port 1. */
    size_t al = strlen(addr);
    bool any = al > 2 && al < sizeof(buf) && strcmp(addr + al - 2, ":0") == 0;
    if (any) {
        snprintf(buf, sizeof(buf), "%.*s:1", (int)(al - 2), addr);
        addr = buf;
    }
    if (sg_cfg_parse_addr(addr, &a, why, sizeof(why)) != SG_OK || a.is_unix) {
        fprintf(stderr, "surgegate: --demo-backend: bad address '%s': %s\n", addr,
                a.is_unix ? "a TCP host:port is needed" : why);
        sg_cfg_addr_free(&a);
        return 2;
    }
    if (any && a.ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a.ss)->sin_port = 0;
    else if (any && a.ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a.ss)->sin6_port = 0;
    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    struct demo_backend db = {.delay_ms = delay_ms};
    struct event *sterm = NULL, *sint = NULL;
    db.base = event_base_new();
    if (db.base == NULL)
        goto out;
    db.http = evhttp_new(db.base);
    evutil_socket_t fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (db.http == NULL || fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&a.ss, a.sslen) != 0 || listen(fd, 511) != 0 ||
        evhttp_accept_socket(db.http, fd) != 0) {
        fprintf(stderr, "surgegate: --demo-backend: cannot listen on %s\n", addr);
        if (fd >= 0)
            evutil_closesocket(fd);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[64] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            char h6[56];
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h6, sizeof(h6));
            snprintf(host, sizeof(host), "[%s]", h6);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(db.addr, sizeof(db.addr), "%s:%d", host, port);
    snprintf(db.name, sizeof(db.name), "demo-%d", port);
    evhttp_set_gencb(db.http, demo_handle, &db);
    sterm = evsignal_new(db.base, SIGTERM, demo_backend_stop, db.base);
    sint = evsignal_new(db.base, SIGINT, demo_backend_stop, db.base);
    if (sterm == NULL || sint == NULL || evsignal_add(sterm, NULL) != 0 ||
        evsignal_add(sint, NULL) != 0)
        goto out;
    printf("listening on %s\n", db.addr);
    fflush(stdout);
    event_base_dispatch(db.base);
    rc = 0;
out:
    if (sterm)
        event_free(sterm);
    if (sint)
        event_free(sint);
    if (db.http)
        evhttp_free(db.http);
    if (db.base)
        event_base_free(db.base);
    sg_cfg_addr_free(&a);
    return rc;
}
