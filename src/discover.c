/* discover.c: run-time membership (see discover.h).
 *
 * One struct disc_source per thing to watch: a host-name backend of the
 * config (DK_NAME), or a pool's discover group (DK_SRV, DK_FILE,
 * DK_COMMAND). Each has its own timer and at most one lookup in flight. A
 * lookup ends in disc_apply() with the new member set (all or nothing) or in
 * disc_failed() with the reason (the last good set stays). disc_apply()
 * turns the difference into sg_control_add_backend() / remove / set_weight
 * calls, so members are journaled, health-checked, counted and shown like
 * any backend.
 *
 * Ownership of members: a source removes only what it added (OWNED). An
 * address the pool already had (config, admin, another source) is FOREIGN
 * and left alone; one that could not be added (no free slot) is PENDING and
 * tried again at the next answer.
 *
 * c-ares runs on the main event_base: its sockets are watched through the
 * sock_state callback (one event per socket) and its retransmission
 * timeouts through one timer re-armed after every call into c-ares. Its
 * callbacks may run synchronously inside ares_getaddrinfo() (/etc/hosts,
 * numeric names), which disc_srv_answer() allows for. */
#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/control.h"
#include "surgegate/discover.h"
#include "surgegate/hook.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"
#include "surgegate/members.h"
#include "surgegate/pool.h"

#define DISC_NAME_MAX    16u             /* A/AAAA records taken per host-name backend */
#define DISC_TTL_MAX_MS  3600000u        /* re-resolve at least hourly whatever the TTL */
#define DISC_FILE_MAX    (1024u * 1024u) /* bytes read of a member file */
#define DISC_DNS_TIMEOUT 1000            /* ms per try; c-ares tries each server */
#define DISC_DNS_TRIES   2

enum disc_kind { DK_NAME = 0, DK_SRV, DK_FILE, DK_COMMAND };
static const char *const disc_kind_names[] = {"dns", "dns_srv", "file", "command"};

struct sg_discover;

struct disc_source {
    struct sg_discover *d;
    struct sg_pool *pool;
    enum disc_kind kind;
    const char *what;     /* the name, SRV name, path or program (config owns it) */
    const char *host;     /* DK_NAME */
    uint16_t port;        /* DK_NAME */
    char *const *argv;    /* DK_COMMAND */
    uint32_t weight;      /* members' weight when the answer gives none */
    uint32_t maxconn;     /* members' maxconn when the answer gives none */
    uint32_t interval_ms; /* DK_NAME: the floor under the TTL */
    uint32_t timeout_ms;  /* DK_COMMAND */
    size_t max;           /* members taken from one answer */
    struct event *timer;
    bool busy;             /* a lookup in flight */
    struct sg_members cur; /* the last good set */
    bool answered;         /* cur came from an answer */
    bool failing;
    char last_err[200];
    uint64_t lookups_ok, lookups_failed;
    uint64_t last_ok_ms; /* wall clock of the last good answer; 0: none */
    /* DK_FILE: the file as last read */
    bool seen;
    struct stat seen_st;
    /* DK_SRV: the targets being resolved */
    struct sg_members acc;
    size_t waiting;
    bool acc_failed;
    char acc_err[200];
};

/* One SRV target being resolved. */
struct disc_target {
    struct disc_source *s;
    uint32_t weight;
    char target[256];
};

struct disc_fd {
    ares_socket_t fd;
    struct event *ev;
};

struct sg_discover {
    struct event_base *base;
    const struct sg_cfg *cfg;
    struct sg_control *ctl;
    ares_channel ch;
    bool have_ch;
    struct event *ares_timer;
    struct disc_fd *fds;
    size_t nfds, capfds;
    struct sg_hookrunner *hooks;
    struct disc_source *src;
    size_t nsrc;
};

static void disc_lookup(struct disc_source *s);

/* ------------------------------------------------------------ c-ares glue */

static void disc_ares_rearm(struct sg_discover *d)
{
    struct timeval tv;
    if (ares_timeout(d->ch, NULL, &tv) != NULL)
        evtimer_add(d->ares_timer, &tv);
    else
        evtimer_del(d->ares_timer);
}

static void disc_ares_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sg_discover *d = arg;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    disc_ares_rearm(d);
}

static void disc_ares_io(evutil_socket_t fd, short what, void *arg)
{
    struct sg_discover *d = arg;
    ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    disc_ares_rearm(d);
}

/* c-ares opens, closes or changes what it waits for on a socket. */
static void disc_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct sg_discover *d = data;
    size_t i = 0;
    while (i < d->nfds && d->fds[i].fd != fd)
        i++;
    if (i < d->nfds && d->fds[i].ev != NULL) {
        event_free(d->fds[i].ev);
        d->fds[i].ev = NULL;
    }
    if (!readable && !writable) {
        if (i < d->nfds)
            d->fds[i] = d->fds[--d->nfds];
        return;
    }
    if (i == d->nfds) {
        if (d->nfds == d->capfds) {
            d->capfds = d->capfds ? d->capfds * 2 : 8;
            d->fds = realloc(d->fds, d->capfds * sizeof(*d->fds));
            if (d->fds == NULL)
                abort(); /* as sg_xmalloc */
        }
        d->fds[d->nfds].fd = fd;
        d->fds[d->nfds].ev = NULL;
        d->nfds++;
    }
    short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    d->fds[i].ev = event_new(d->base, fd, what, disc_ares_io, d);
    if (d->fds[i].ev == NULL || event_add(d->fds[i].ev, NULL) != 0)
        sg_log_error("discovery: cannot watch a DNS socket");
}

/* ------------------------------------------------------------- applying */

static void disc_schedule(struct disc_source *s, uint32_t ms)
{
    struct timeval tv;
    sg_timeval_from_ms(&tv, ms);
    evtimer_add(s->timer, &tv);
}

static json_t *disc_fields(const struct disc_source *s)
{
    return json_pack("{s:s, s:s, s:s}", "pool", s->pool->name, "source", disc_kind_names[s->kind],
                     "name", s->what);
}

/* Another source of the same pool whose last set has sa, or NULL. */
static struct disc_member_ref {
    struct disc_source *s;
    long i;
} disc_other(struct sg_discover *d, const struct disc_source *s, const struct sockaddr *sa)
{
    struct disc_member_ref r = {NULL, -1};
    for (size_t k = 0; k < d->nsrc; k++) {
        struct disc_source *o = &d->src[k];
        if (o == s || o->pool != s->pool)
            continue;
        long i = sg_members_find(&o->cur, sa);
        if (i >= 0) {
            r.s = o;
            r.i = i;
            return r;
        }
    }
    return r;
}

/* Makes the pool hold what nw says (nw is taken: s->cur becomes it). */
static void disc_apply(struct disc_source *s, struct sg_members *nw)
{
    struct sg_discover *d = s->d;
    struct sg_pool *p = s->pool;
    json_t *added = json_array(), *removed = json_array();
    char err[256];

    for (size_t i = 0; i < nw->n; i++) {
        if (!nw->v[i].has_weight)
            nw->v[i].weight = s->weight;
        if (!nw->v[i].has_maxconn)
            nw->v[i].maxconn = s->maxconn;
    }
    /* Gone from the answer: drain what this source added. */
    for (size_t i = 0; i < s->cur.n; i++) {
        struct sg_member *m = &s->cur.v[i];
        const struct sockaddr *sa = (const struct sockaddr *)&m->ss;
        if (sg_members_find(nw, sa) >= 0 || m->own != SG_MEMBER_OWNED)
            continue;
        struct disc_member_ref heir = disc_other(d, s, sa);
        if (heir.s != NULL) { /* still wanted by another source: it is that one's now */
            heir.s->cur.v[heir.i].own = SG_MEMBER_OWNED;
            continue;
        }
        struct sg_backend *b = sg_pool_find_addr(p, sa);
        if (b != NULL && b->cfg == NULL &&
            sg_control_remove_backend(d->ctl, b, "discovery", true, err, sizeof(err)) == SG_CTL_OK)
            json_array_append_new(removed, json_string(m->addr));
    }
    /* New in the answer (or not added yet): add; known: follow its weight. */
    for (size_t i = 0; i < nw->n; i++) {
        struct sg_member *m = &nw->v[i];
        const struct sockaddr *sa = (const struct sockaddr *)&m->ss;
        long old = sg_members_find(&s->cur, sa);
        if (old >= 0 && s->cur.v[old].own != SG_MEMBER_PENDING) {
            const struct sg_member *o = &s->cur.v[old];
            m->own = o->own;
            struct sg_backend *b = sg_pool_find_addr(p, sa);
            if (m->own == SG_MEMBER_OWNED && b != NULL && atomic_load(&b->removing)) {
                /* an admin removed it meanwhile: leave it be */
                m->own = SG_MEMBER_FOREIGN;
            } else if (m->own == SG_MEMBER_OWNED && b != NULL && o->weight != m->weight) {
                sg_control_set_weight(d->ctl, b, m->weight, "discovery");
            }
            continue;
        }
        struct disc_member_ref other = disc_other(d, s, sa);
        if (other.s != NULL && other.s->cur.v[other.i].own == SG_MEMBER_OWNED) {
            m->own = SG_MEMBER_FOREIGN;
            continue;
        }
        bool revived = false;
        enum sg_ctl_err rc = sg_control_add_backend(d->ctl, p, m->addr, m->weight, m->maxconn,
                                                    "discovery", NULL, &revived, err, sizeof(err));
        if (rc == SG_CTL_OK) {
            m->own = SG_MEMBER_OWNED;
            json_array_append_new(added, json_string(m->addr));
        } else if (rc == SG_CTL_EXISTS) {
            m->own = SG_MEMBER_FOREIGN;
        } else {
            m->own = SG_MEMBER_PENDING;
            if (old < 0)
                sg_log_warn("discovery: pool '%s': %s %s: member %s not added: %s", p->name,
                            disc_kind_names[s->kind], s->what, m->addr, err);
        }
    }
    bool changed = json_array_size(added) > 0 || json_array_size(removed) > 0;
    bool first = !s->answered;
    bool recovered = s->failing;
    sg_members_free(&s->cur);
    s->cur = *nw;
    memset(nw, 0, sizeof(*nw));
    s->answered = true;
    s->lookups_ok++;
    s->last_ok_ms = sg_wall_ms();
    s->failing = false;
    s->last_err[0] = '\0';
    if (changed || first || recovered) {
        json_t *f = disc_fields(s);
        json_object_set_new(f, "members", json_integer((json_int_t)s->cur.n));
        json_object_set_new(f, "added", added);
        json_object_set_new(f, "removed", removed);
        if (recovered)
            json_object_set_new(f, "recovered", json_true());
        sg_journal_emit("discovery_update", f);
        sg_log_info("discovery: pool '%s': %s %s: %zu member%s (%zu added, %zu removed)%s", p->name,
                    disc_kind_names[s->kind], s->what, s->cur.n, s->cur.n == 1 ? "" : "s",
                    json_array_size(added), json_array_size(removed),
                    recovered ? ", answering again" : "");
        if (s->cur.n == 0)
            sg_log_warn("discovery: pool '%s': %s %s answered with no members", p->name,
                        disc_kind_names[s->kind], s->what);
    } else {
        json_decref(added);
        json_decref(removed);
    }
}

/* A lookup failed: the last good set stays. Journaled and logged once per
 * run of failures with the same reason. */
static void disc_failed(struct disc_source *s, const char *why)
{
    s->lookups_failed++;
    if (s->failing && strcmp(s->last_err, why) == 0) {
        sg_log_debug("discovery: pool '%s': %s %s still failing: %s", s->pool->name,
                     disc_kind_names[s->kind], s->what, why);
        return;
    }
    s->failing = true;
    snprintf(s->last_err, sizeof(s->last_err), "%s", why);
    json_t *f = disc_fields(s);
    json_object_set_new(f, "error", json_string(why));
    json_object_set_new(f, "members_kept", json_integer((json_int_t)s->cur.n));
    sg_journal_emit("discovery_failed", f);
    sg_log_warn("discovery: pool '%s': %s %s failed: %s (keeping its %zu member%s)", s->pool->name,
                disc_kind_names[s->kind], s->what, why, s->cur.n, s->cur.n == 1 ? "" : "s");
}

/* ------------------------------------------------------------ DNS names */

/* A DNS status that means "the name has no such records": an answer (an
 * empty set), unlike a failure to get one. */
static bool disc_no_records(int status)
{
    return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

static void disc_name_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct disc_source *s = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        if (res != NULL)
            ares_freeaddrinfo(res);
        return;
    }
    s->busy = false;
    uint32_t next = s->interval_ms;
    if (status == ARES_SUCCESS || disc_no_records(status)) {
        struct sg_members nw = {0};
        uint64_t ttl_ms = UINT64_MAX;
        for (struct ares_addrinfo_node *n = res != NULL ? res->nodes : NULL; n != NULL;
             n = n->ai_next) {
            if (sg_members_add(&nw, n->ai_addr, s->weight, s->max) == SG_OK &&
                (uint64_t)n->ai_ttl * 1000u < ttl_ms)
                ttl_ms = (uint64_t)(n->ai_ttl < 0 ? 0 : n->ai_ttl) * 1000u;
        }
        disc_apply(s, &nw);
        sg_members_free(&nw);
        /* at the TTL, but not more often than resolve_interval */
        if (ttl_ms != UINT64_MAX && ttl_ms > next)
            next = ttl_ms > DISC_TTL_MAX_MS ? DISC_TTL_MAX_MS : (uint32_t)ttl_ms;
    } else {
        char why[200];
        snprintf(why, sizeof(why), "DNS lookup of %s: %s", s->host, ares_strerror(status));
        disc_failed(s, why);
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
    disc_schedule(s, next);
}

static void disc_resolve(struct sg_discover *d, const char *host, uint16_t port,
                         ares_addrinfo_callback cb, void *arg)
{
    struct ares_addrinfo_hints hints = {0};
    char service[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV | ARES_AI_NOSORT;
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    ares_getaddrinfo(d->ch, host, service, &hints, cb, arg);
}

/* ------------------------------------------------------------ DNS SRV */

static void disc_srv_finish(struct disc_source *s)
{
    if (s->acc_failed)
        disc_failed(s, s->acc_err);
    else
        disc_apply(s, &s->acc);
    sg_members_free(&s->acc);
    s->busy = false;
    disc_schedule(s, s->interval_ms);
}

static void disc_target_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct disc_target *t = arg;
    struct disc_source *s = t->s;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        if (res != NULL)
            ares_freeaddrinfo(res);
        free(t);
        return;
    }
    if (status == ARES_SUCCESS) {
        size_t before = s->acc.n;
        for (struct ares_addrinfo_node *n = res != NULL ? res->nodes : NULL; n != NULL;
             n = n->ai_next)
            (void)sg_members_add(&s->acc, n->ai_addr, t->weight, s->max);
        for (size_t i = before; i < s->acc.n; i++)
            s->acc.v[i].has_weight = true; /* the SRV record's */
    } else if (disc_no_records(status)) {
        sg_log_debug("discovery: SRV target %s of %s has no address", t->target, s->what);
    } else if (!s->acc_failed) {
        s->acc_failed = true;
        snprintf(s->acc_err, sizeof(s->acc_err), "DNS lookup of SRV target %.100s: %s", t->target,
                 ares_strerror(status));
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
    free(t);
    if (--s->waiting == 0)
        disc_srv_finish(s);
}

static void disc_srv_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct disc_source *s = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
        return;
    struct sg_srv *v = NULL;
    size_t n = 0;
    char why[200];
    sg_members_free(&s->acc);
    s->acc_failed = false;
    if (status == ARES_SUCCESS) {
        if (sg_srv_parse(abuf, alen, &v, &n, why, sizeof(why)) != SG_OK) {
            s->acc_failed = true;
            snprintf(s->acc_err, sizeof(s->acc_err), "SRV %.60s: %.120s", s->what, why);
        }
    } else if (!disc_no_records(status)) {
        s->acc_failed = true;
        snprintf(s->acc_err, sizeof(s->acc_err), "DNS SRV lookup of %.100s: %s", s->what,
                 ares_strerror(status));
    }
    /* One count for this loop, so that a target answered at once (from
     * /etc/hosts, inside ares_getaddrinfo) cannot finish the lookup early. */
    s->waiting = 1;
    for (size_t i = 0; i < n && i < s->max && !s->acc_failed; i++) {
        struct disc_target *t = sg_xcalloc(1, sizeof(*t));
        t->s = s;
        t->weight = sg_srv_weight(v[i].weight);
        snprintf(t->target, sizeof(t->target), "%s", v[i].target);
        s->waiting++;
        disc_resolve(s->d, v[i].target, v[i].port, disc_target_done, t);
    }
    sg_srv_free(v, n);
    if (--s->waiting == 0)
        disc_srv_finish(s);
}

/* ------------------------------------------------------------ file */

static void disc_file_check(struct disc_source *s)
{
    struct stat st;
    char why[300];
    if (stat(s->what, &st) != 0) {
        snprintf(why, sizeof(why), "%s: %s", s->what, strerror(errno));
        s->seen = false;
        disc_failed(s, why);
        return;
    }
    if (s->seen && st.st_ino == s->seen_st.st_ino && st.st_dev == s->seen_st.st_dev &&
        st.st_size == s->seen_st.st_size && st.st_mtim.tv_sec == s->seen_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == s->seen_st.st_mtim.tv_nsec)
        return; /* unchanged */
    int fd = open(s->what, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, sizeof(why), "%s: %s", s->what, strerror(errno));
        disc_failed(s, why);
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(why, sizeof(why), "%s: not a regular file", s->what);
        disc_failed(s, why);
        return;
    }
    char *buf = sg_xmalloc(DISC_FILE_MAX + 1);
    size_t len = 0;
    ssize_t r;
    while (len <= DISC_FILE_MAX && (r = read(fd, buf + len, DISC_FILE_MAX + 1 - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    /* Remembered even when it does not parse: the next change reads it again. */
    s->seen = true;
    s->seen_st = st;
    struct sg_members nw = {0};
    char perr[200];
    if (len > DISC_FILE_MAX) {
        snprintf(why, sizeof(why), "%s: larger than %u bytes", s->what, DISC_FILE_MAX);
        disc_failed(s, why);
    } else if (sg_members_parse_file(buf, len, s->max, &nw, perr, sizeof(perr)) != SG_OK) {
        snprintf(why, sizeof(why), "%.100s: %.190s", s->what, perr);
        disc_failed(s, why);
    } else {
        disc_apply(s, &nw);
    }
    sg_members_free(&nw);
    free(buf);
}

/* ------------------------------------------------------------ command */

static void disc_command_done(const struct sg_hook_result *r, void *arg)
{
    struct disc_source *s = arg;
    char why[300];
    s->busy = false;
    if (!r->spawned) {
        snprintf(why, sizeof(why), "cannot run %s: %s", s->what, strerror(r->spawn_errno));
        disc_failed(s, why);
    } else if (r->timed_out) {
        snprintf(why, sizeof(why), "%s timed out after %" PRIu32 " ms", s->what, s->timeout_ms);
        disc_failed(s, why);
    } else if (r->exit_code != 0) {
        /* the last line of its stderr says why, usually */
        size_t e = r->errlen;
        while (e > 0 && (r->err[e - 1] == '\n' || r->err[e - 1] == '\r'))
            e--;
        size_t b = e;
        while (b > 0 && r->err[b - 1] != '\n')
            b--;
        if (r->signal != 0)
            snprintf(why, sizeof(why), "%s killed by signal %d", s->what, r->signal);
        else
            snprintf(why, sizeof(why), "%s exited with %d%s%.*s", s->what, r->exit_code,
                     e > b ? ": " : "", (int)(e - b > 150 ? 150 : e - b), r->err + b);
        disc_failed(s, why);
    } else if (r->out_truncated) {
        snprintf(why, sizeof(why), "%s printed more than %d bytes", s->what, SG_HOOK_OUT_MAX);
        disc_failed(s, why);
    } else {
        struct sg_members nw = {0};
        char perr[200];
        if (sg_members_parse_json(r->out, r->outlen, s->max, &nw, perr, sizeof(perr)) != SG_OK) {
            snprintf(why, sizeof(why), "output of %.90s: %.190s", s->what, perr);
            disc_failed(s, why);
        } else {
            disc_apply(s, &nw);
        }
        sg_members_free(&nw);
    }
    disc_schedule(s, s->interval_ms);
}

static void disc_command_run(struct disc_source *s)
{
    char pool[200];
    const char *home = getenv("HOME");
    char homev[300];
    snprintf(pool, sizeof(pool), "SURGEGATE_POOL=%s", s->pool->name);
    snprintf(homev, sizeof(homev), "HOME=%s", home != NULL ? home : "/");
    char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   homev,
                   "LANG=C.UTF-8",
                   "SURGEGATE_ACTION=discover",
                   pool,
                   NULL};
    s->busy = true;
    if (s->d->hooks == NULL || sg_hook_run(s->d->hooks, s->argv, env, NULL, 0, s->timeout_ms,
                                           disc_command_done, s) != SG_OK) {
        s->busy = false;
        char why[300];
        snprintf(why, sizeof(why), "cannot start %s", s->what);
        disc_failed(s, why);
        disc_schedule(s, s->interval_ms);
    }
}

/* ------------------------------------------------------------ sources */

static void disc_lookup(struct disc_source *s)
{
    if (s->busy)
        return;
    switch (s->kind) {
    case DK_NAME:
        s->busy = true;
        disc_resolve(s->d, s->host, s->port, disc_name_done, s);
        break;
    case DK_SRV:
        s->busy = true;
        ares_query(s->d->ch, s->what, 1 /* C_IN */, 33 /* T_SRV */, disc_srv_answer, s);
        break;
    case DK_FILE:
        disc_file_check(s);
        disc_schedule(s, s->interval_ms);
        break;
    case DK_COMMAND:
        disc_command_run(s);
        break;
    }
}

static void disc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct disc_source *s = arg;
    disc_lookup(s);
    if (s->d->have_ch)
        disc_ares_rearm(s->d);
}

static struct disc_source *disc_add_source(struct sg_discover *d, struct sg_pool *p,
                                           enum disc_kind kind, const char *what)
{
    struct disc_source *s = &d->src[d->nsrc++];
    s->d = d;
    s->pool = p;
    s->kind = kind;
    s->what = what;
    s->max = p->cfg->discover.max_members;
    s->interval_ms = p->cfg->discover.interval_ms;
    s->timeout_ms = p->cfg->discover.timeout_ms;
    s->weight = p->cfg->discover.weight;
    s->maxconn = p->cfg->discover.maxconn;
    s->timer = evtimer_new(d->base, disc_timer_cb, s);
    return s;
}

struct sg_discover *sg_discover_new(struct event_base *base, const struct sg_cfg *cfg,
                                    struct sg_pools *pools, struct sg_control *ctl)
{
    size_t n = 0;
    bool dns = false, cmd = false;
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_cfg_pool *cp = pools->pools[i].cfg;
        for (size_t j = 0; j < cp->nbackends; j++)
            if (cp->backends[j].host != NULL) {
                n++;
                dns = true;
            }
        if (cp->discover.enabled) {
            n++;
            dns = dns || cp->discover.dns_srv != NULL;
            cmd = cmd || cp->discover.command != NULL;
        }
    }
    if (n == 0)
        return NULL;
    struct sg_discover *d = sg_xcalloc(1, sizeof(*d));
    d->base = base;
    d->cfg = cfg;
    d->ctl = ctl;
    d->src = sg_xcalloc(n, sizeof(*d->src));
    if (dns) {
        struct ares_options o;
        memset(&o, 0, sizeof(o));
        o.sock_state_cb = disc_sock_state;
        o.sock_state_cb_data = d;
        o.timeout = DISC_DNS_TIMEOUT;
        o.tries = DISC_DNS_TRIES;
        int st = ares_library_init(ARES_LIB_INIT_ALL);
        if (st == ARES_SUCCESS)
            st = ares_init_options(&d->ch, &o,
                                   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
        if (st != ARES_SUCCESS) {
            sg_log_error("discovery: cannot start the DNS resolver: %s", ares_strerror(st));
            free(d->src);
            free(d);
            return NULL;
        }
        d->have_ch = true;
        if (cfg->resolvers != NULL) {
            char csv[1024] = "";
            size_t o2 = 0;
            for (size_t i = 0; cfg->resolvers[i] != NULL && o2 < sizeof(csv); i++)
                o2 += (size_t)snprintf(csv + o2, sizeof(csv) - o2, "%s%s", i ? "," : "",
                                       cfg->resolvers[i]);
            st = ares_set_servers_ports_csv(d->ch, csv);
            if (st != ARES_SUCCESS)
                sg_log_error("discovery: resolvers '%s': %s", csv, ares_strerror(st));
        }
        d->ares_timer = evtimer_new(base, disc_ares_timeout, d);
    }
    if (cmd)
        d->hooks = sg_hookrunner_new(base);
    for (size_t i = 0; i < pools->n; i++) {
        struct sg_pool *p = &pools->pools[i];
        const struct sg_cfg_pool *cp = p->cfg;
        for (size_t j = 0; j < cp->nbackends; j++) {
            const struct sg_cfg_backend *cb = &cp->backends[j];
            if (cb->host == NULL)
                continue;
            struct disc_source *s = disc_add_source(d, p, DK_NAME, cb->address.text);
            s->host = cb->host;
            s->port = cb->port;
            s->weight = cb->weight;
            s->maxconn = cb->maxconn;
            s->interval_ms = cfg->resolve_interval_ms;
            s->max = DISC_NAME_MAX;
        }
        const struct sg_cfg_discover *dc = &cp->discover;
        if (!dc->enabled)
            continue;
        if (dc->dns_srv != NULL)
            disc_add_source(d, p, DK_SRV, dc->dns_srv);
        else if (dc->file != NULL)
            disc_add_source(d, p, DK_FILE, dc->file);
        else if (dc->command != NULL)
            disc_add_source(d, p, DK_COMMAND, dc->command[0])->argv = dc->command;
    }
    for (size_t i = 0; i < d->nsrc; i++) {
        struct disc_source *s = &d->src[i];
        if (s->timer == NULL) {
            sg_log_error("discovery: cannot make a timer");
            continue;
        }
        sg_log_info("discovery: pool '%s': watching %s %s", s->pool->name, disc_kind_names[s->kind],
                    s->what);
        disc_schedule(s, 0);
    }
    return d;
}

void sg_discover_carry(struct sg_discover *to, struct sg_discover *from)
{
    if (to == NULL || from == NULL)
        return;
    for (size_t i = 0; i < to->nsrc; i++) {
        struct disc_source *s = &to->src[i];
        for (size_t k = 0; k < from->nsrc; k++) {
            struct disc_source *o = &from->src[k];
            if (o->kind != s->kind || strcmp(o->pool->name, s->pool->name) != 0 ||
                strcmp(o->what, s->what) != 0 || (s->kind == DK_NAME && o->port != s->port))
                continue;
            /* The last good set moves, with which members this source added. */
            struct sg_members tmp = s->cur;
            s->cur = o->cur;
            o->cur = tmp;
            s->answered = o->answered;
            s->failing = o->failing;
            memcpy(s->last_err, o->last_err, sizeof(s->last_err));
            s->lookups_ok = o->lookups_ok;
            s->lookups_failed = o->lookups_failed;
            s->last_ok_ms = o->last_ok_ms;
            s->seen = false; /* a member file is read again at once */
            break;
        }
    }
}

void sg_discover_free(struct sg_discover *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nsrc; i++)
        if (d->src[i].timer != NULL)
            event_free(d->src[i].timer);
    if (d->have_ch)
        ares_destroy(d->ch); /* callbacks run with ARES_EDESTRUCTION and touch nothing */
    for (size_t i = 0; i < d->nfds; i++)
        if (d->fds[i].ev != NULL)
            event_free(d->fds[i].ev);
    free(d->fds);
    if (d->ares_timer != NULL)
        event_free(d->ares_timer);
    sg_hookrunner_free(d->hooks);
    for (size_t i = 0; i < d->nsrc; i++) {
        sg_members_free(&d->src[i].cur);
        sg_members_free(&d->src[i].acc);
    }
    free(d->src);
    if (d->have_ch)
        ares_library_cleanup();
    free(d);
}

/* ------------------------------------------------------------ reporting */

/* The name of a source as a Prometheus label value: escapes \\ and ". */
static void disc_label(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (; *in != '\0' && o + 3 < len; in++) {
        if (*in == '\\' || *in == '"')
            out[o++] = '\\';
        out[o++] = *in == '\n' ? ' ' : *in;
    }
    out[o] = '\0';
}

void sg_discover_metrics(const struct sg_discover *d, struct evbuffer *out)
{
    if (d == NULL || d->nsrc == 0)
        return;
    char name[600];
    evbuffer_add_printf(out, "# HELP surgegate_discovery_members Members in the last good answer "
                             "of a discovery source.\n"
                             "# TYPE surgegate_discovery_members gauge\n");
    for (size_t i = 0; i < d->nsrc; i++) {
        const struct disc_source *s = &d->src[i];
        disc_label(s->what, name, sizeof(name));
        evbuffer_add_printf(out,
                            "surgegate_discovery_members{pool=\"%s\",source=\"%s\",name=\"%s\"} "
                            "%zu\n",
                            s->pool->name, disc_kind_names[s->kind], name, s->cur.n);
    }
    evbuffer_add_printf(out, "# HELP surgegate_discovery_lookups_total Lookups of discovery "
                             "sources by result.\n"
                             "# TYPE surgegate_discovery_lookups_total counter\n");
    for (size_t i = 0; i < d->nsrc; i++) {
        const struct disc_source *s = &d->src[i];
        disc_label(s->what, name, sizeof(name));
        for (int r = 0; r < 2; r++)
            evbuffer_add_printf(out,
                                "surgegate_discovery_lookups_total{pool=\"%s\",source=\"%s\","
                                "name=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                                s->pool->name, disc_kind_names[s->kind], name,
                                r == 0 ? "ok" : "failed",
                                r == 0 ? s->lookups_ok : s->lookups_failed);
    }
}

json_t *sg_discover_pool_json(const struct sg_discover *d, const struct sg_pool *p)
{
    json_t *a = json_array();
    for (size_t i = 0; d != NULL && i < d->nsrc; i++) {
        const struct disc_source *s = &d->src[i];
        if (s->pool != p)
            continue;
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "source", disc_kind_names[s->kind],
                              "name", s->what, "members", (json_int_t)s->cur.n, "lookups_ok",
                              (json_int_t)s->lookups_ok, "lookups_failed",
                              (json_int_t)s->lookups_failed, "failing", s->failing);
        if (o == NULL)
            continue;
        if (s->failing)
            json_object_set_new(o, "error", json_string(s->last_err));
        if (s->last_ok_ms != 0) {
            char t[40];
            sg_control_iso_time(s->last_ok_ms, t, sizeof(t));
            json_object_set_new(o, "last_ok", json_string(t));
        }
        json_array_append_new(a, o);
    }
    return a;
}
