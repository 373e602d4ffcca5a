/* fuzz_proxy.h: the real data plane in one process, for the HTTP/1 fuzz
 * targets. A worker (sg_worker_new, its loop run here, no thread) with one
 * frontend and one pool whose backend is a loopback socket this harness
 * plays; each input opens a client connection (a socketpair handed to
 * sg_session_new, as an accept would), feeds what the client sends in two
 * writes, plays the backend, and runs the loop until the session is gone or
 * nothing moves any more. What the backend received and what the client got
 * are returned for the targets' oracles; ASan and UBSan watch the rest.
 *
 * Not a copy of the request path: the bytes go through session.c,
 * exchange.c, http1.c, upstream.c and conn.c as they do in production. */
#ifndef SURGEGATE_FUZZ_PROXY_H
#define SURGEGATE_FUZZ_PROXY_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/gate.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/session.h"
#include "surgegate/upstream.h"
#include "surgegate/worker.h"

/* The loop passes one input may take; each pass that moves no byte counts
 * towards FZ_IDLE_PASSES, after which the input is over. */
#define FZ_MAX_PASSES  400
#define FZ_IDLE_PASSES 6

/* How the played backend answers. */
enum fz_backend_mode {
    FZ_BACKEND_OK,  /* "200 OK, 2 bytes" to every complete request it parses */
    FZ_BACKEND_RAW, /* the given bytes, in two writes, once the first request
                     * head is in; then it closes */
};

struct fz_proxy {
    struct sg_cfg *cfg;
    struct sg_pools pools;
    struct sg_worker *w;
    struct sg_gate gate; /* the frontend's connection limit */
    int lfd;             /* the backend's listening socket */
};

struct fz_exchange {
    enum fz_backend_mode mode;
    const uint8_t *raw[2]; /* FZ_BACKEND_RAW: the two writes */
    size_t rawlen[2];
    int nraw_sent;
    struct evbuffer *at_backend; /* every byte the backend received */
    struct evbuffer *at_client;  /* every byte the client received */
    llhttp_t bp;                 /* FZ_BACKEND_OK: parses what arrives */
    int answers_due;
    bool backend_bad;       /* what the backend received does not parse */
    bool client_stays_open; /* the client never ends its sending side */
};

static int fz_bp_complete(llhttp_t *p)
{
    ((struct fz_exchange *)p->data)->answers_due++;
    return 0;
}

static struct fz_proxy *fz_proxy_get(void)
{
    static struct fz_proxy fp;
    if (fp.w != NULL)
        return &fp;
    sg_log_set_level(SG_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN); /* as main.c does: a write to a closed peer fails */
    fp.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    if (fp.lfd < 0 || bind(fp.lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(fp.lfd, 64) != 0 || getsockname(fp.lfd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("fuzz_proxy: backend socket");
        abort();
    }
    /* The frontend's listener is never accepted from (sessions start on
     * socketpairs), but it needs a port: one the kernel just handed out. */
    struct sockaddr_in fsin = sin;
    socklen_t fsl = sizeof(fsin);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fsin.sin_port = 0;
    if (tfd < 0 || bind(tfd, (struct sockaddr *)&fsin, sizeof(fsin)) != 0 ||
        getsockname(tfd, (struct sockaddr *)&fsin, &fsl) != 0)
        abort();
    close(tfd);
    char conf[1024];
    snprintf(
        conf, sizeof(conf),
        "workers = 1; io_uring = false; sched_batch = false;\n"
        "timeouts = { connect = \"1s\"; http_request = \"1s\"; client = \"1s\";\n"
        "             server = \"1s\"; queue = \"1s\"; keepalive = \"1s\"; };\n"
        "limits = { max_body_size = \"64k\"; };\n"
        "frontends = ( { name = \"fz\"; listen = \"127.0.0.1:%u\"; default_pool = \"p\"; } );\n"
        "pools = ( { name = \"p\"; retries = 0; backends = ( { address = \"127.0.0.1:%u\"; "
        "} ); } );\n",
        (unsigned)ntohs(fsin.sin_port), (unsigned)ntohs(sin.sin_port));
    struct sg_cfg_diags diags = {0};
    fp.cfg = sg_cfg_load_string(conf, "fuzz_proxy", &diags);
    if (fp.cfg == NULL) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "fuzz_proxy: %s\n", diags.items[i].msg);
        abort();
    }
    sg_cfg_diags_free(&diags);
    if (sg_pools_build(&fp.pools, fp.cfg) != SG_OK)
        abort();
    sg_gate_init(&fp.gate, fp.cfg->frontends[0].maxconn, 1);
    fp.w = sg_worker_new(0, 1, fp.cfg, &fp.pools, &fp.gate, NULL);
    if (fp.w == NULL)
        abort();
    return &fp;
}

/* Reads what fd has into out; false once the peer closed or failed. */
static bool fz_drain(int fd, struct evbuffer *out, bool *moved)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            evbuffer_add(out, buf, (size_t)n);
            *moved = true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        return false;
    }
}

static void fz_write_all(int fd, const void *p, size_t n)
{
    /* Socket buffers hold far more than an input (-max_len): a short write
     * only happens once the proxy stopped reading, and then it may drop. */
    (void)!write(fd, p, n);
}

/* The backend's side of one pass: accept, read, answer. */
static bool fz_backend_pass(struct fz_proxy *fp, struct fz_exchange *fx, int *bfd)
{
    bool moved = false;
    if (*bfd < 0) {
        *bfd = accept4(fp->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (*bfd < 0)
            return false;
        moved = true;
        llhttp_settings_t *st = (llhttp_settings_t *)fx->bp.settings;
        llhttp_init(&fx->bp, HTTP_REQUEST, st);
        fx->bp.data = fx;
    }
    size_t before = evbuffer_get_length(fx->at_backend);
    bool open = fz_drain(*bfd, fx->at_backend, &moved);
    size_t n = evbuffer_get_length(fx->at_backend) - before;
    if (n > 0 && fx->mode == FZ_BACKEND_OK && !fx->backend_bad) {
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(fx->at_backend, &pos, before, EVBUFFER_PTR_SET);
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(fx->at_backend, (ev_ssize_t)n, &pos, v, 8);
        for (int i = 0; i < nv && i < 8 && !fx->backend_bad; i++) {
            llhttp_errno_t err = llhttp_execute(&fx->bp, v[i].iov_base, v[i].iov_len);
            fx->backend_bad = err != HPE_OK;
        }
    }
    if (fx->mode == FZ_BACKEND_OK) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (; fx->answers_due > 0; fx->answers_due--)
            fz_write_all(*bfd, ok, sizeof(ok) - 1);
    } else if (fx->nraw_sent < 2) {
        struct evbuffer_ptr hit = evbuffer_search(fx->at_backend, "\r\n\r\n", 4, NULL);
        if (hit.pos >= 0) {
            fz_write_all(*bfd, fx->raw[fx->nraw_sent], fx->rawlen[fx->nraw_sent]);
            if (++fx->nraw_sent == 2)
                shutdown(*bfd, SHUT_WR);
            moved = true;
        }
    }
    if (!open) {
        close(*bfd);
        *bfd = -1;
    }
    return moved;
}

/* One client connection through the proxy: `client` in two writes (split
 * at `split`), then the client's end of sending (unless client_stays_open). */
static void fz_proxy_run(const uint8_t *client, size_t len, size_t split, struct fz_exchange *fx)
{
    static llhttp_settings_t bst;
    static bool bst_ready;
    if (!bst_ready) {
        llhttp_settings_init(&bst);
        bst.on_message_complete = fz_bp_complete;
        bst_ready = true;
    }
    struct fz_proxy *fp = fz_proxy_get();
    struct sg_worker *w = fp->w;
    llhttp_init(&fx->bp, HTTP_REQUEST, &bst);
    fx->bp.data = fx;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    struct sg_wfrontend *fe = &w->fes[0];
    if (sg_session_new(w, fe, sv[0], (struct sockaddr *)&peer, sizeof(peer)) != SG_OK)
        abort();
    if (!sg_gate_take(fe->gate)) /* what the accept callback does */
        abort();
    fe->nconn++;
    int bfd = -1;
    int idle = 0, written = 0;
    bool client_open = true;
    for (int pass = 0; pass < FZ_MAX_PASSES && idle < FZ_IDLE_PASSES; pass++) {
        bool moved = false;
        if (written == 0) {
            fz_write_all(sv[1], client, split);
            written = 1;
            moved = true;
        } else if (written == 1 && pass >= 2) {
            fz_write_all(sv[1], client + split, len - split);
            if (!fx->client_stays_open)
                shutdown(sv[1], SHUT_WR);
            written = 2;
            moved = true;
        }
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        if (fz_backend_pass(fp, fx, &bfd))
            moved = true;
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        if (client_open)
            client_open = fz_drain(sv[1], fx->at_client, &moved);
        if (w->sessions == NULL && !client_open && bfd < 0)
            break;
        idle = moved ? 0 : idle + 1;
    }
    /* Whatever still waits (a response the backend never sends, a body
     * never finished) is cut off, as a timeout would. */
    while (w->sessions != NULL)
        sg_session_abort(w->sessions);
    sg_upstream_close_idle(w);
    event_base_loop(w->base, EVLOOP_NONBLOCK); /* deferred frees */
    if (client_open)
        (void)fz_drain(sv[1], fx->at_client, &(bool){false});
    if (bfd >= 0)
        close(bfd);
    for (int fd; (fd = accept4(fp->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0;)
        close(fd);
    close(sv[1]);
    if (getenv("FZ_VERBOSE") != NULL) /* to see what an input did */
        fprintf(stderr, "fuzz_proxy: backend got %zu bytes, client got %zu:\n%.*s\n",
                evbuffer_get_length(fx->at_backend), evbuffer_get_length(fx->at_client),
                (int)evbuffer_get_length(fx->at_client),
                (const char *)evbuffer_pullup(fx->at_client, -1));
}

#endif
