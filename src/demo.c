/* demo.c: demo backends for `surgegate --demo`, built on libevent's evhttp
 * (a complete, maintained HTTP server: no reason to write another). */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "surgegate/common.h"
#include "surgegate/demo.h"
#include "surgegate/log.h"

struct demo_backend {
    struct evhttp *http;
    char name[32];
    char addr[64];
    unsigned long served;
};

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
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
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
        char host[64];
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
