/* upgrade.c: binary upgrade without dropping a connection (upgrade.h).
 *
 * The running process (old) starts the executable again (new) with one end
 * of a socket pair in SURGEGATE_UPGRADE_FD. Over it old sends, in order:
 * a 4-byte big-endian length and a JSON text ({"version": 1, "listeners":
 * [{"worker": N, "ss": "<hex of the sockaddr>"}...], "state": {...}}), then
 * the listening sockets themselves, in the order of "listeners", in
 * messages of at most UPGRADE_FDS_PER_MSG descriptors (SCM_RIGHTS) with one
 * byte of payload each. new builds its generation on those sockets (no
 * port is ever closed), applies the state, starts, and answers one byte,
 * 'R'. old then stops gracefully. Anything else (EOF, a timeout) and old
 * keeps running. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/upgrade.h"
#include "surgegate/worker.h"

#define UPGRADE_FDS_PER_MSG 64
#define UPGRADE_JSON_MAX    (64u * 1024u * 1024u)
#define UPGRADE_IO_MS       10000 /* each read or write of the handover */

/* ------------------------------------------------------------- state */

static const char *const upgrade_admin_names[] = {"ready", "drain", "maint"};
static const char *const upgrade_health_names[] = {"up", "down", "checking"};

json_t *sg_upgrade_state(const struct sg_pools *ps)
{
    json_t *pools = json_array();
    for (size_t i = 0; i < ps->n; i++) {
        const struct sg_pool *p = &ps->pools[i];
        json_t *bs = json_array();
        for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
            const struct sg_backend *b = &p->backends[j];
            int adm = atomic_load(&b->admin);
            int hl = atomic_load(&b->health);
            if (!sg_backend_live(b) || atomic_load(&b->removing) || adm < 0 || adm > 2 || hl < 0 ||
                hl > 2)
                continue;
            uint32_t w = atomic_load(&b->weight);
            json_array_append_new(bs, json_pack("{s:s, s:b, s:i, s:b, s:i, s:s, s:s, s:s}",
                                                "address", b->name, "runtime", b->cfg == NULL,
                                                "weight", (json_int_t)w, "weight_set",
                                                b->cfg == NULL || w != b->cfg->weight, "maxconn",
                                                (json_int_t)atomic_load(&b->maxconn), "admin",
                                                upgrade_admin_names[adm], "health",
                                                upgrade_health_names[hl], "reason", b->reason));
        }
        json_array_append_new(pools, json_pack("{s:s, s:o}", "name", p->name, "backends", bs));
    }
    return json_pack("{s:o}", "pools", pools);
}

static int upgrade_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

size_t sg_upgrade_apply(struct sg_pools *ps, const json_t *state)
{
    size_t applied = 0;
    json_t *pools = json_object_get(state, "pools"), *pj;
    size_t i;
    json_array_foreach(pools, i, pj)
    {
        struct sg_pool *p = sg_pools_find(ps, json_string_value(json_object_get(pj, "name")));
        if (p == NULL)
            continue;
        json_t *bj;
        size_t k;
        json_array_foreach(json_object_get(pj, "backends"), k, bj)
        {
            const char *addr = json_string_value(json_object_get(bj, "address"));
            if (addr == NULL)
                continue;
            json_int_t w = json_integer_value(json_object_get(bj, "weight"));
            json_int_t mc = json_integer_value(json_object_get(bj, "maxconn"));
            if (w < 0 || w > 256 || mc < 0 || mc > 1000000)
                continue;
            struct sg_backend *b = sg_pool_find_backend(p, addr, strlen(addr));
            if (b == NULL && json_is_true(json_object_get(bj, "runtime"))) {
                char err[200];
                if (sg_pool_add_backend(p, addr, (uint32_t)w, (uint32_t)mc, false, &b, err,
                                        sizeof(err)) != SG_CTL_OK) {
                    sg_log_warn("upgrade: pool '%s': backend %s added at runtime is lost: %s",
                                p->name, addr, err);
                    continue;
                }
            }
            if (b == NULL)
                continue;
            int adm = upgrade_index(upgrade_admin_names, 3,
                                    json_string_value(json_object_get(bj, "admin")));
            if (adm == SG_ADMIN_DRAIN || adm == SG_ADMIN_MAINT)
                atomic_store(&b->admin, adm);
            int hl = upgrade_index(upgrade_health_names, 3,
                                   json_string_value(json_object_get(bj, "health")));
            if (hl >= 0 && p->cfg->health.enabled)
                atomic_store(&b->health, hl);
            if (json_is_true(json_object_get(bj, "weight_set")))
                atomic_store(&b->weight, (uint32_t)w);
            const char *why = json_string_value(json_object_get(bj, "reason"));
            if (why != NULL)
                snprintf(b->reason, sizeof(b->reason), "%s", why);
            applied++;
        }
        atomic_fetch_add(&p->members_gen, 1);
    }
    return applied;
}

/* ---------------------------------------------------------- transfer */

static void upgrade_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool upgrade_unhex(const char *s, unsigned char *out, size_t max, size_t *n)
{
    size_t len = s != NULL ? strlen(s) : 1;
    if (len % 2 != 0 || len / 2 > max)
        return false;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            v = v * 16 + (unsigned)(c >= '0' && c <= '9'   ? c - '0'
                                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                           : 99);
        }
        if (v > 255)
            return false;
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return true;
}

/* Waits for fd to be ready for `ev` (POLLIN / POLLOUT) up to UPGRADE_IO_MS. */
static bool upgrade_wait(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int r;
    do
        r = poll(&p, 1, UPGRADE_IO_MS);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

static bool upgrade_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        if (!upgrade_wait(fd, POLLOUT))
            return false;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool upgrade_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        if (!upgrade_wait(fd, POLLIN))
            return false;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool upgrade_send_fds(int sock, const int *fds, size_t n)
{
    for (size_t off = 0; off < n; off += UPGRADE_FDS_PER_MSG) {
        size_t k = n - off < UPGRADE_FDS_PER_MSG ? n - off : UPGRADE_FDS_PER_MSG;
        char byte = 'F';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int) * UPGRADE_FDS_PER_MSG)];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = u.buf,
                           .msg_controllen = CMSG_SPACE(sizeof(int) * k)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * k);
        memcpy(CMSG_DATA(c), fds + off, sizeof(int) * k);
        if (!upgrade_wait(sock, POLLOUT) || sendmsg(sock, &m, MSG_NOSIGNAL) != 1)
            return false;
    }
    return true;
}

int sg_upgrade_spawn(const char *exe, char *const argv[], const struct sg_lfds *lfds, json_t *state,
                     struct sg_upgrade *up, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return SG_ERR;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return SG_ERR;
    }
    if (pid == 0) {
        /* The child: only sv[1] crosses the exec (everything is CLOEXEC). */
        char num[16];
        int fd = fcntl(sv[1], F_DUPFD, 3); /* without CLOEXEC */
        snprintf(num, sizeof(num), "%d", fd);
        setenv("SURGEGATE_UPGRADE_FD", num, 1);
        execv(exe, argv);
        fprintf(stderr, "surgegate: upgrade: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    json_t *listeners = json_array();
    int *fds = sg_xcalloc(lfds->n ? lfds->n : 1, sizeof(int));
    for (size_t i = 0; i < lfds->n; i++) {
        char hex[2 * sizeof(struct sockaddr_storage) + 1];
        upgrade_hex((const unsigned char *)&lfds->v[i].ss, lfds->v[i].sslen, hex);
        json_array_append_new(
            listeners, json_pack("{s:i, s:s}", "worker", (json_int_t)lfds->v[i].worker, "ss", hex));
        fds[i] = lfds->v[i].fd;
    }
    json_t *msg =
        json_pack("{s:i, s:o, s:O}", "version", 1, "listeners", listeners, "state", state);
    char *txt = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    uint32_t len = txt != NULL ? (uint32_t)strlen(txt) : 0;
    unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    bool ok = txt != NULL && upgrade_write_all(sv[0], hdr, 4) &&
              upgrade_write_all(sv[0], txt, len) && upgrade_send_fds(sv[0], fds, lfds->n);
    free(txt);
    free(fds);
    if (!ok) {
        snprintf(err, errlen, "the new process (pid %d) did not take the handover: %s", (int)pid,
                 strerror(errno));
        close(sv[0]);
        kill(pid, SIGTERM);
        (void)waitpid(pid, NULL, 0);
        return SG_ERR;
    }
    up->sock = sv[0];
    up->pid = pid;
    return SG_OK;
}

int sg_upgrade_receive(int fd, struct sg_lfds *lfds, json_t **state, char *err, size_t errlen)
{
    *state = NULL;
    unsigned char hdr[4];
    if (!upgrade_read_all(fd, hdr, 4)) {
        snprintf(err, errlen, "no handover from the running process");
        return SG_ERR;
    }
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len == 0 || len > UPGRADE_JSON_MAX) {
        snprintf(err, errlen, "handover of %u bytes", len);
        return SG_ERR;
    }
    char *txt = sg_xmalloc(len + 1);
    if (!upgrade_read_all(fd, txt, len)) {
        free(txt);
        snprintf(err, errlen, "the handover was cut short");
        return SG_ERR;
    }
    txt[len] = '\0';
    json_error_t je;
    json_t *msg = json_loads(txt, 0, &je);
    free(txt);
    json_t *ls = json_object_get(msg, "listeners");
    if (msg == NULL || json_integer_value(json_object_get(msg, "version")) != 1 ||
        !json_is_array(ls)) {
        snprintf(err, errlen, "a handover this version does not read");
        json_decref(msg);
        return SG_ERR;
    }
    size_t n = json_array_size(ls), got = 0;
    int *fds = sg_xcalloc(n ? n : 1, sizeof(int));
    while (got < n) {
        char byte;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int) * UPGRADE_FDS_PER_MSG)];
            struct cmsghdr align;
        } u;
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u)};
        if (!upgrade_wait(fd, POLLIN) || recvmsg(fd, &m, MSG_CMSG_CLOEXEC) != 1)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (got < n)
                    fds[got++] = f;
                else
                    close(f);
            }
        }
    }
    if (got < n) {
        for (size_t i = 0; i < got; i++)
            close(fds[i]);
        free(fds);
        json_decref(msg);
        snprintf(err, errlen, "%zu of %zu listening sockets received", got, n);
        return SG_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(ls, i);
        struct sockaddr_storage ss;
        size_t sslen = 0;
        memset(&ss, 0, sizeof(ss));
        json_int_t w = json_integer_value(json_object_get(l, "worker"));
        if (w < 0 || w > 100000 ||
            !upgrade_unhex(json_string_value(json_object_get(l, "ss")), (unsigned char *)&ss,
                           sizeof(ss), &sslen)) {
            close(fds[i]);
            continue;
        }
        sg_lfds_add(lfds, (uint32_t)w, &ss, (socklen_t)sslen, fds[i]);
    }
    free(fds);
    *state = json_incref(json_object_get(msg, "state"));
    json_decref(msg);
    return SG_OK;
}
