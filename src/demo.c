/* demo.c: the demo of `surgegate --demo`: its backends (`--demo-backend`,
 * built on libevent's evhttp: a complete, maintained HTTP server, no reason
 * to write another), run as processes of their own that the demo starts,
 * watches and stops, together with those hooks/local-spawn started. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

char *sg_demo_subst(const char *text, const char *mark, const char *value)
{
    const size_t ml = strlen(mark), dl = strlen(value);
    size_t n = 0;
    for (const char *p = strstr(text, mark); ml > 0 && p != NULL; p = strstr(p + ml, mark))
        n++;
    char *out = sg_xmalloc(strlen(text) + n * dl + 1), *o = out;
    const char *p = text, *q;
    while (ml > 0 && (q = strstr(p, mark)) != NULL) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, value, dl);
        o += dl;
        p = q + ml;
    }
    strcpy(o, p);
    return out;
}

char *sg_demo_conf_fill(const char *tmpl, const char *hooks_dir)
{
    static const char *const defaults[][2] = {
        {"@LISTEN@", SG_DEMO_LISTEN},       {"@ADMIN@", SG_DEMO_ADMIN},
        {"@BACKEND1@", "127.0.0.1:9001"},   {"@BACKEND2@", "127.0.0.1:9002"},
        {"@STATE@", SG_DEMO_STATE_DEFAULT},
    };
    char *out = sg_demo_subst(tmpl, "@HOOKS@", hooks_dir);
    for (size_t i = 0; i < SG_ARRAY_SIZE(defaults); i++) {
        char *next = sg_demo_subst(out, defaults[i][0], defaults[i][1]);
        free(out);
        out = next;
    }
    return out;
}

/* The process whose end ends a demo backend (SURGEGATE_DEMO_OWNER). */
struct demo_owner {
    pid_t pid;
    struct event_base *base;
};

/* Twice a second: the demo that started us (directly, or through
 * local-spawn) is gone, even killed with SIGKILL: so is this backend. */
static void demo_owner_check(evutil_socket_t fd, short what, void *arg)
{
    struct demo_owner *o = arg;
    if (kill(o->pid, 0) != 0 && errno == ESRCH)
        event_base_loopexit(o->base, NULL);
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
    struct event *sterm = NULL, *sint = NULL, *owner_ev = NULL;
    struct demo_owner owner = {0};
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
    const char *own = getenv("SURGEGATE_DEMO_OWNER");
    if (own != NULL && atol(own) > 1) {
        owner.pid = (pid_t)atol(own);
        owner.base = db.base;
        struct timeval half = {0, 500 * 1000};
        owner_ev = event_new(db.base, -1, EV_PERSIST, demo_owner_check, &owner);
        if (owner_ev == NULL || event_add(owner_ev, &half) != 0)
            goto out;
    }
    printf("listening on %s\n", db.addr);
    fflush(stdout);
    event_base_dispatch(db.base);
    rc = 0;
out:
    if (sterm)
        event_free(sterm);
    if (sint)
        event_free(sint);
    if (owner_ev)
        event_free(owner_ev);
    if (db.http)
        evhttp_free(db.http);
    if (db.base)
        event_base_free(db.base);
    sg_cfg_addr_free(&a);
    return rc;
}

/* ------------------------------------------------------------ processes */

int sg_demo_port_check(const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        snprintf(err, errlen, "bad address %s", host);
        return SG_ERR;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return SG_ERR;
    }
    /* SO_REUSEADDR as the real listener has, not SO_REUSEPORT: a port that
     * another surgegate holds (with SO_REUSEPORT) is busy to us. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    int e = errno;
    close(fd);
    if (rc == 0)
        return SG_OK;
    snprintf(err, errlen, "%s:%d %s", host, port,
             e == EADDRINUSE ? "is already in use" : strerror(e));
    return SG_ERR;
}

/* Reads the child's first line ("listening on HOST:PORT") from fd into
 * addr, waiting at most until deadline_ms (monotonic). */
static int demo_read_addr(int fd, uint64_t deadline_ms, char *addr, size_t len)
{
    char line[160];
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        uint64_t now = sg_now_ms();
        if (now >= deadline_ms)
            return SG_ERR;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(deadline_ms - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return SG_ERR;
        ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return SG_ERR;
        n += (size_t)r;
        line[n] = '\0';
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            continue;
        *nl = '\0';
        static const char pre[] = "listening on ";
        if (strncmp(line, pre, sizeof(pre) - 1) != 0 || strlen(line + sizeof(pre) - 1) >= len)
            return SG_ERR;
        snprintf(addr, len, "%s", line + sizeof(pre) - 1);
        return SG_OK;
    }
    return SG_ERR;
}

/* Starts argv in process group pgid (0: a new one, its own pid), stdin from
 * /dev/null, stdout to out_fd (-1: /dev/null), stderr ours, signals at
 * their defaults and none blocked. Returns the pid, or -1 (errno). */
static pid_t demo_spawn(char *const argv[], char *const envp[], pid_t pgid, int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    pid_t pid = -1;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGCHLD);
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    if (posix_spawnattr_init(&at) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_setpgroup(&at, pgid);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

extern char **environ;

int sg_demo_spawn(struct sg_demo_procs *dp, const char *exe, size_t n, char *err, size_t errlen)
{
    memset(dp, 0, sizeof(*dp));
    if (n > SG_DEMO_MAX_BACKENDS)
        n = SG_DEMO_MAX_BACKENDS;
    uint64_t deadline = sg_now_ms() + 5000;
    for (size_t i = 0; i < n; i++) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) != 0) {
            snprintf(err, errlen, "pipe: %s", strerror(errno));
            goto fail;
        }
        char *argv[] = {(char *)exe, "--demo-backend", "127.0.0.1:0", NULL};
        pid_t pid = demo_spawn(argv, environ, dp->pgid, pfd[1]);
        int e = errno;
        close(pfd[1]);
        if (pid < 0) {
            close(pfd[0]);
            snprintf(err, errlen, "cannot start %s --demo-backend: %s", exe, strerror(e));
            goto fail;
        }
        if (dp->pgid == 0)
            dp->pgid = pid;
        dp->pid[dp->n++] = pid;
        int rc = demo_read_addr(pfd[0], deadline, dp->addr[i], sizeof(dp->addr[i]));
        close(pfd[0]);
        if (rc != SG_OK) {
            snprintf(err, errlen, "demo backend %zu (pid %d) did not say where it listens", i + 1,
                     (int)pid);
            goto fail;
        }
    }
    return SG_OK;
fail:
    sg_demo_reap(dp);
    return SG_ERR;
}

/* Waits (at most until deadline_ms) for pid to exit; true when it did. */
static bool demo_wait(pid_t pid, uint64_t deadline_ms, int *status)
{
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD))
            return true;
        if (sg_now_ms() >= deadline_ms)
            return false;
        usleep(20 * 1000);
    }
}

void sg_demo_poll(struct sg_demo_procs *dp)
{
    for (size_t i = 0; i < dp->n; i++) {
        int st = 0;
        if (dp->pid[i] <= 0 || waitpid(dp->pid[i], &st, WNOHANG) != dp->pid[i])
            continue;
        char how[48];
        if (WIFSIGNALED(st))
            snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(st));
        else
            snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
        sg_log_warn("demo backend %s (pid %d) %s: the health checks take it down and its "
                    "requests go to the others",
                    dp->addr[i], (int)dp->pid[i], how);
        dp->pid[i] = 0;
    }
}

void sg_demo_reap(struct sg_demo_procs *dp)
{
    if (dp->pgid <= 0)
        return;
    (void)kill(-dp->pgid, SIGTERM);
    uint64_t deadline = sg_now_ms() + 3000;
    for (size_t i = 0; i < dp->n; i++) {
        int st;
        if (dp->pid[i] > 0 && !demo_wait(dp->pid[i], deadline, &st)) {
            (void)kill(-dp->pgid, SIGKILL);
            demo_wait(dp->pid[i], sg_now_ms() + 2000, &st);
        }
        dp->pid[i] = 0;
    }
    dp->pgid = 0;
}

int sg_demo_stop_spawned(char *const *hook, const char *pool, uint32_t n)
{
    char cur[32], pl[160];
    snprintf(cur, sizeof(cur), "SURGEGATE_CURRENT=%" PRIu32, n);
    snprintf(pl, sizeof(pl), "SURGEGATE_POOL=%s", pool);
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "SURGEGATE_ACTION=scale_down",
                    cur,
                    "SURGEGATE_DESIRED=0",
                    pl,
                    NULL};
    pid_t pid = demo_spawn(hook, envp, 0, -1);
    if (pid < 0)
        return SG_ERR;
    int st = 0;
    if (!demo_wait(pid, sg_now_ms() + 8000, &st)) {
        (void)kill(-pid, SIGKILL);
        demo_wait(pid, sg_now_ms() + 2000, &st);
        return SG_ERR;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? SG_OK : SG_ERR;
}
