/* ctl_http.c: surgectl's transport: parse the admin address, connect (unix
 * socket or TCP) with a deadline, send one HTTP/1.1 request with
 * "Connection: close" and parse the response with llhttp. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "ctl.h"

#define CTL_MAX_RESPONSE (64u * 1024 * 1024)

static char *xstrndup(const char *s, size_t n)
{
    char *d = ctl_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int ctl_addr_parse(const char *text, struct ctl_addr *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(text, "unix:", 5) == 0 || text[0] == '/') {
        const char *p = text[0] == '/' ? text : text + 5;
        if (p[0] == '\0') {
            snprintf(err, errlen, "admin address '%s': empty unix socket path", text);
            return -1;
        }
        if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "admin address '%s': unix socket path too long", text);
            return -1;
        }
        a->is_unix = true;
        a->path = ctl_xstrdup(p);
        a->text = ctl_xstrdup(text);
        return 0;
    }
    const char *host, *hend, *port;
    if (text[0] == '[') {
        host = text + 1;
        hend = strchr(host, ']');
        if (hend == NULL || hend[1] != ':') {
            snprintf(err, errlen, "admin address '%s': want unix:/path or host:port", text);
            return -1;
        }
        port = hend + 2;
    } else {
        hend = strrchr(text, ':');
        if (hend == NULL) {
            snprintf(err, errlen, "admin address '%s': want unix:/path or host:port", text);
            return -1;
        }
        host = text;
        port = hend + 1;
    }
    char *end;
    errno = 0;
    long pn = strtol(port, &end, 10);
    if (hend == host || port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0 || pn < 1 ||
        pn > 65535) {
        snprintf(err, errlen, "admin address '%s': want unix:/path or host:port (port 1-65535)",
                 text);
        return -1;
    }
    a->host = xstrndup(host, (size_t)(hend - host));
    a->port = ctl_xstrdup(port);
    a->text = ctl_xstrdup(text);
    return 0;
}

void ctl_addr_free(struct ctl_addr *a)
{
    free(a->path);
    free(a->host);
    free(a->port);
    free(a->text);
    memset(a, 0, sizeof(*a));
}

void ctl_resp_free(struct ctl_resp *r)
{
    free(r->reason);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline. Returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR || ctl_stop)
            return -1;
    }
}

/* Non-blocking connect of a fresh socket to sa with a deadline. Returns the
 * fd, or -1 with errno set (ETIMEDOUT when the deadline passed). */
static int connect_one(int family, const struct sockaddr *sa, socklen_t salen, int64_t deadline)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, sa, salen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int w = wait_fd(fd, POLLOUT, deadline);
    if (w <= 0) {
        int e = w == 0 ? ETIMEDOUT : errno;
        close(fd);
        errno = e;
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        close(fd);
        errno = soerr;
        return -1;
    }
    return fd;
}

static int connect_addr(const struct ctl_addr *a, int64_t deadline, char *err, size_t errlen)
{
    if (a->is_unix) {
        struct sockaddr_un un;
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        memcpy(un.sun_path, a->path, strlen(a->path) + 1); /* length checked at parse */
        int fd = connect_one(AF_UNIX, (const struct sockaddr *)&un, sizeof(un), deadline);
        if (fd < 0)
            snprintf(err, errlen, "%s", strerror(errno));
        return fd;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(a->host, a->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1, e = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
        if (fd < 0)
            e = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "%s", strerror(e));
    return fd;
}

/* ---- response parsing ---- */

struct resp_state {
    struct ctl_resp *r;
    size_t cap;
    bool complete;
    bool too_big;
};

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct resp_state *st = p->data;
    size_t old = st->r->reason ? strlen(st->r->reason) : 0;
    if (old + len > 256)
        return 0; /* a reason phrase this long is only kept in part */
    st->r->reason = ctl_xrealloc(st->r->reason, old + len + 1);
    memcpy(st->r->reason + old, at, len);
    st->r->reason[old + len] = '\0';
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct resp_state *st = p->data;
    struct ctl_resp *r = st->r;
    if (r->len + len > CTL_MAX_RESPONSE) {
        st->too_big = true;
        return -1;
    }
    if (r->len + len + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < r->len + len + 1)
            cap *= 2;
        r->body = ctl_xrealloc(r->body, cap);
        st->cap = cap;
    }
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct resp_state *st = p->data;
    /* an interim 1xx response precedes the real one: forget it */
    free(st->r->reason);
    st->r->reason = NULL;
    st->r->len = 0;
    if (st->r->body)
        st->r->body[0] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct resp_state *st = p->data;
    if (p->status_code >= 100 && p->status_code < 200)
        return 0;
    st->complete = true;
    return HPE_PAUSED;
}

static enum ctl_http_result send_all(int fd, const char *buf, size_t len, int64_t deadline,
                                     char *err, size_t errlen)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w == 0) {
                snprintf(err, errlen, "timed out sending the request");
                return CTL_HTTP_TIMEOUT;
            }
            if (w > 0)
                continue;
        }
        snprintf(err, errlen, "sending the request: %s", strerror(errno));
        return CTL_HTTP_IO;
    }
    return CTL_HTTP_OK;
}

enum ctl_http_result ctl_http_exchange(const struct ctl_addr *a, const char *method,
                                       const char *target, const char *token, const char *body,
                                       int timeout_ms, struct ctl_resp *resp, char *err,
                                       size_t errlen)
{
    memset(resp, 0, sizeof(*resp));
    int fd = connect_addr(a, now_ms() + timeout_ms, err, errlen);
    if (fd < 0)
        return CTL_HTTP_CONNECT;
    int64_t deadline = now_ms() + timeout_ms;

    /* the request */
    const char *host = a->is_unix ? "localhost" : a->text;
    size_t blen = body ? strlen(body) : 0;
    size_t cap =
        strlen(method) + strlen(target) + strlen(host) + (token ? strlen(token) : 0) + blen + 256;
    char *req = ctl_xmalloc(cap);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: surgectl/" SG_VERSION
                     "\r\nAccept: application/json\r\nConnection: close\r\n",
                     method, target, host);
    if (token != NULL)
        n += snprintf(req + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (body != NULL)
        n += snprintf(req + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    else if (strcmp(method, "POST") == 0)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: 0\r\n");
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body != NULL) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    enum ctl_http_result rc = send_all(fd, req, (size_t)n, deadline, err, errlen);
    free(req);
    if (rc != CTL_HTTP_OK) {
        close(fd);
        return rc;
    }

    /* the response */
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_status = on_status;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    struct resp_state st = {.r = resp};
    parser.data = &st;
    char buf[16384];
    rc = CTL_HTTP_OK;
    while (!st.complete) {
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0) {
            snprintf(err, errlen, "no complete answer within %d s", timeout_ms / 1000);
            rc = CTL_HTTP_TIMEOUT;
            break;
        }
        ssize_t got = w > 0 ? recv(fd, buf, sizeof(buf), 0) : -1;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            snprintf(err, errlen, "reading the answer: %s", strerror(errno));
            rc = CTL_HTTP_IO;
            break;
        }
        llhttp_errno_t pe =
            got == 0 ? llhttp_finish(&parser) : llhttp_execute(&parser, buf, (size_t)got);
        if (st.complete)
            break;
        if (pe != HPE_OK) {
            if (st.too_big)
                snprintf(err, errlen, "the answer is larger than %u MiB",
                         CTL_MAX_RESPONSE / (1024 * 1024));
            else
                snprintf(err, errlen, "not a valid HTTP response (%s: %s)", llhttp_errno_name(pe),
                         llhttp_get_error_reason(&parser) ? llhttp_get_error_reason(&parser) : "?");
            rc = CTL_HTTP_PROTOCOL;
            break;
        }
        if (got == 0) {
            snprintf(err, errlen, "the connection closed before a complete answer");
            rc = CTL_HTTP_IO;
            break;
        }
    }
    close(fd);
    if (rc != CTL_HTTP_OK) {
        ctl_resp_free(resp);
        return rc;
    }
    resp->status = parser.status_code;
    if (resp->body == NULL)
        resp->body = ctl_xstrdup("");
    if (resp->reason == NULL)
        resp->reason = ctl_xstrdup("");
    return CTL_HTTP_OK;
}
