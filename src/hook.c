/* hook.c: the hook runner and the hook output parser.
 *
 * A run is one child started with posix_spawn (an argv array, never a shell)
 * plus three pipes: stdin (written from a private copy of the caller's data,
 * non-blocking, then closed), stdout and stderr (read non-blocking into
 * bounded buffers; the rest is read and thrown away so the child never blocks
 * on a full pipe). A run ends when the child has been reaped (SIGCHLD
 * evsignal + waitpid(pid, WNOHANG) on our own pids only) and both output
 * pipes reached EOF, or SG_HOOK_EOF_GRACE_MS after the exit when something
 * the child left behind still holds them. Every fd we make is close-on-exec;
 * the child gets fds 0..2 through dup2 file actions and closes everything
 * else, its own process group, default signal dispositions and an empty
 * signal mask (the proxy ignores SIGPIPE and blocks signals in workers). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/hook.h"

#define HOOKRUNNER_MAGIC 0x484f4f4bu /* "HOOK" */
/* Per callback, read at most this much from one pipe, so a child writing
 * without pause cannot monopolise the loop (the event stays active). */
#define HOOK_READ_BUDGET (256 * 1024)

struct hook_pipe {
    int fd; /* our end; -1 when closed */
    struct event *ev;
    char *buf; /* cap + 1 bytes, NUL-terminated */
    size_t len, cap;
    bool truncated;
};

struct hook_run {
    struct sg_hookrunner *hr;
    struct hook_run *prev, *next;
    pid_t pid; /* also the process group id; -1 when not spawned */
    bool spawned, exited, timed_out;
    int spawn_errno;
    int status;       /* from waitpid */
    bool status_lost; /* ECHILD: someone else's waitpid(-1) took it */
    uint64_t start_ms, exit_ms;

    int in_fd; /* our end of the child's stdin; -1 when closed */
    struct event *in_ev;
    char *in_data;
    size_t in_len, in_off;

    struct hook_pipe out, err;

    /* one timer for the stages: timeout -> SIGKILL delay; after exit: grace
     * (and 0 s for a spawn failure) */
    struct event *timer;
    enum { STAGE_RUNNING, STAGE_TERM_SENT, STAGE_KILL_SENT, STAGE_GRACE } stage;

    sg_hook_done_cb done;
    void *arg;
};

struct sg_hookrunner {
    unsigned magic;
    struct event_base *base;
    struct event *sigchld;
    struct hook_run *runs; /* runs not delivered yet */
    size_t nruns;
};

static char *const hook_empty_env[] = {NULL};

/* ------------------------------------------------------------- helpers */

static void hook_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void hook_event_free(struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
}

static void hook_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* pipe2(O_CLOEXEC), with both ends moved above 2 if needed: a process whose
 * fd 0, 1 or 2 was closed would otherwise get a pipe end there, and the
 * dup2 file actions onto 0..2 would then clash. */
static int hook_pipe2(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return SG_ERR;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int nfd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            if (nfd < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                errno = e;
                return SG_ERR;
            }
            close(p[i]);
            p[i] = nfd;
        }
    }
    return SG_OK;
}

static void hook_unlink(struct hook_run *r)
{
    struct sg_hookrunner *hr = r->hr;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        hr->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    hr->nruns--;
}

static void hook_run_free(struct hook_run *r)
{
    hook_event_free(&r->in_ev);
    hook_event_free(&r->out.ev);
    hook_event_free(&r->err.ev);
    hook_event_free(&r->timer);
    hook_close(&r->in_fd);
    hook_close(&r->out.fd);
    hook_close(&r->err.fd);
    free(r->in_data);
    free(r->out.buf);
    free(r->err.buf);
    free(r);
}

/* Unlinks r, calls done once, frees r. From loop callbacks only. */
static void hook_deliver(struct hook_run *r)
{
    struct sg_hook_result res;
    memset(&res, 0, sizeof(res));
    res.spawned = r->spawned;
    res.spawn_errno = r->spawn_errno;
    res.timed_out = r->timed_out;
    res.exit_code = -1;
    if (r->spawned && r->exited) {
        if (r->status_lost) {
            /* reaped by someone else: exit_code -1, signal 0 */
        } else if (WIFEXITED(r->status)) {
            res.exit_code = WEXITSTATUS(r->status);
        } else if (WIFSIGNALED(r->status)) {
            res.signal = WTERMSIG(r->status);
        }
        res.duration_ms = r->exit_ms - r->start_ms;
    }
    res.out = r->out.buf;
    res.outlen = r->out.len;
    res.out_truncated = r->out.truncated;
    res.err = r->err.buf;
    res.errlen = r->err.len;
    res.err_truncated = r->err.truncated;

    hook_unlink(r);
    /* Stop everything before the callback: it may start new runs. */
    hook_event_free(&r->in_ev);
    hook_event_free(&r->out.ev);
    hook_event_free(&r->err.ev);
    hook_event_free(&r->timer);
    hook_close(&r->in_fd);
    hook_close(&r->out.fd);
    hook_close(&r->err.fd);
    r->done(&res, r->arg);
    hook_run_free(r);
}

static void hook_timer_in(struct hook_run *r, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

/* Delivers when the child is reaped and both pipes are at EOF; after the
 * exit alone, arms the EOF grace timer once. */
static void hook_check_done(struct hook_run *r)
{
    if (!r->exited)
        return;
    if (r->out.fd < 0 && r->err.fd < 0) {
        hook_deliver(r);
        return;
    }
    if (r->stage != STAGE_GRACE) {
        r->stage = STAGE_GRACE;
        evtimer_del(r->timer);
        hook_timer_in(r, SG_HOOK_EOF_GRACE_MS);
    }
}

/* waitpid(pid, WNOHANG) for this one child. Returns true when it is (now)
 * known to have exited. */
static bool hook_reap(struct hook_run *r)
{
    if (!r->spawned || r->exited)
        return r->exited;
    for (;;) {
        int st = 0;
        pid_t w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) {
            r->status = st;
            break;
        }
        if (w == 0)
            return false;
        if (errno == EINTR)
            continue;
        /* ECHILD: someone else reaped it (a waitpid(-1) elsewhere); all we
         * know is that it is gone. */
        r->status_lost = true;
        break;
    }
    r->exited = true;
    r->exit_ms = sg_now_ms();
    return true;
}

/* -------------------------------------------------------- event handlers */

static void hook_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct sg_hookrunner *hr = arg;
    struct hook_run *r = hr->runs, *next;
    SG_CHECK_MAGIC(hr, HOOKRUNNER_MAGIC);
    /* hook_check_done() may deliver (and free) r: keep next first. A done
     * callback may add runs at the head of the list; they are checked at the
     * next SIGCHLD. */
    while (r != NULL) {
        next = r->next;
        if (r->spawned && !r->exited && hook_reap(r))
            hook_check_done(r);
        r = next;
    }
}

static void hook_on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct hook_run *r = arg;
    while (r->in_off < r->in_len) {
        ssize_t n = write(r->in_fd, r->in_data + r->in_off, r->in_len - r->in_off);
        if (n > 0) {
            r->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* wait for room */
        break;      /* EPIPE (the child closed its stdin) or another error */
    }
    hook_event_free(&r->in_ev);
    hook_close(&r->in_fd);
    free(r->in_data);
    r->in_data = NULL;
}

static void hook_on_output(evutil_socket_t fd, short what, void *arg)
{
    struct hook_run *r = arg;
    struct hook_pipe *p = fd == r->out.fd ? &r->out : &r->err;
    char scratch[8192];
    size_t budget = HOOK_READ_BUDGET;

    while (budget > 0) {
        char *dst;
        size_t room;
        ssize_t n;
        if (p->len < p->cap) {
            dst = p->buf + p->len;
            room = p->cap - p->len;
        } else {
            dst = scratch;
            room = sizeof(scratch);
        }
        n = read(p->fd, dst, room);
        if (n > 0) {
            if (dst == scratch) {
                p->truncated = true;
            } else {
                p->len += (size_t)n;
                p->buf[p->len] = '\0';
            }
            budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF (or a read error: treat it as the end) */
        hook_event_free(&p->ev);
        hook_close(&p->fd);
        /* Both pipes closed usually means the child is exiting: look now
         * rather than only at SIGCHLD. */
        if (r->out.fd < 0 && r->err.fd < 0)
            (void)hook_reap(r);
        hook_check_done(r);
        return;
    }
}

static void hook_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hook_run *r = arg;

    if (!r->spawned) {
        hook_deliver(r);
        return;
    }
    switch (r->stage) {
    case STAGE_RUNNING:
        if (hook_reap(r)) {
            hook_check_done(r);
            return;
        }
        r->timed_out = true;
        r->stage = STAGE_TERM_SENT;
        (void)kill(-r->pid, SIGTERM);
        hook_timer_in(r, SG_HOOK_KILL_DELAY_MS);
        return;
    case STAGE_TERM_SENT:
        if (hook_reap(r)) {
            hook_check_done(r);
            return;
        }
        r->stage = STAGE_KILL_SENT;
        (void)kill(-r->pid, SIGKILL);
        /* The SIGCHLD that follows ends it; poll once a second in case that
         * signal was taken by someone else's waitpid. */
        hook_timer_in(r, 1000);
        return;
    case STAGE_KILL_SENT:
        if (hook_reap(r))
            hook_check_done(r);
        else
            hook_timer_in(r, 1000);
        return;
    case STAGE_GRACE:
        /* Exited, but a pipe is still held (a grandchild): deliver with what
         * was read. What a timed-out run left in its group gets the SIGKILL
         * it was promised (the group id stays reserved while the group has
         * members, so this cannot hit a stranger's group). */
        if (r->timed_out)
            (void)kill(-r->pid, SIGKILL);
        hook_deliver(r);
        return;
    }
}

/* ---------------------------------------------------------------- API */

struct sg_hookrunner *sg_hookrunner_new(struct event_base *base)
{
    struct sg_hookrunner *hr = sg_xcalloc(1, sizeof(*hr));
    hr->magic = HOOKRUNNER_MAGIC;
    hr->base = base;
    hr->sigchld = evsignal_new(base, SIGCHLD, hook_on_sigchld, hr);
    if (hr->sigchld == NULL || evsignal_add(hr->sigchld, NULL) != 0) {
        if (hr->sigchld != NULL)
            event_free(hr->sigchld);
        free(hr);
        return NULL;
    }
    return hr;
}

size_t sg_hookrunner_running(const struct sg_hookrunner *hr)
{
    SG_CHECK_MAGIC(hr, HOOKRUNNER_MAGIC);
    return hr->nruns;
}

static void hook_pipe_init(struct hook_pipe *p, size_t cap)
{
    p->fd = -1;
    p->cap = cap;
    p->buf = sg_xmalloc(cap + 1);
    p->buf[0] = '\0';
}

/* posix_spawn with the child's ends on 0..2. Returns 0 or an errno. */
static int hook_spawn(pid_t *pid, char *const argv[], char *const envp[], int in_rd, int out_wr,
                      int err_wr)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    /* dup2 clears FD_CLOEXEC on 0..2; every other fd of ours is
     * close-on-exec, and closefrom(3) also covers fds that other code (or a
     * library) opened without O_CLOEXEC. */
    if ((rc = posix_spawn_file_actions_adddup2(&fa, in_rd, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_wr, 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err_wr, 2)) != 0)
        goto out;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0)
        goto out;
#endif
    if ((rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETSIGMASK)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&at, &all)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&at, &none)) != 0)
        goto out;
    rc = posix_spawn(pid, argv[0], &fa, &at, argv, envp);
out:
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int sg_hook_run(struct sg_hookrunner *hr, char *const argv[], char *const envp[],
                const char *stdin_data, size_t stdin_len, uint32_t timeout_ms, sg_hook_done_cb done,
                void *arg)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    struct hook_run *r;
    int rc;

    SG_CHECK_MAGIC(hr, HOOKRUNNER_MAGIC);
    if (argv == NULL || argv[0] == NULL || argv[0][0] != '/' || done == NULL ||
        (stdin_data == NULL && stdin_len > 0))
        return SG_ERR;
    if (envp == NULL)
        envp = hook_empty_env;

    r = sg_xcalloc(1, sizeof(*r));
    r->hr = hr;
    r->pid = -1;
    r->in_fd = -1;
    r->done = done;
    r->arg = arg;
    hook_pipe_init(&r->out, SG_HOOK_OUT_MAX);
    hook_pipe_init(&r->err, SG_HOOK_ERR_MAX);
    r->timer = evtimer_new(hr->base, hook_on_timer, r);
    if (r->timer == NULL)
        goto fail;

    if (hook_pipe2(pin) != SG_OK || hook_pipe2(pout) != SG_OK || hook_pipe2(perr) != SG_OK)
        goto fail;

    r->start_ms = sg_now_ms();
    rc = hook_spawn(&r->pid, argv, envp, pin[0], pout[1], perr[1]);
    hook_close(&pin[0]);
    hook_close(&pout[1]);
    hook_close(&perr[1]);
    if (rc != 0) {
        /* Reported from the loop, never re-entrantly. */
        hook_close(&pin[1]);
        hook_close(&pout[0]);
        hook_close(&perr[0]);
        r->spawned = false;
        r->spawn_errno = rc;
        r->pid = -1;
        hook_timer_in(r, 0);
        goto linked;
    }
    r->spawned = true;

    r->in_fd = pin[1];
    r->out.fd = pout[0];
    r->err.fd = perr[0];
    pin[1] = pout[0] = perr[0] = -1;
    hook_set_nonblock(r->in_fd);
    hook_set_nonblock(r->out.fd);
    hook_set_nonblock(r->err.fd);

    r->out.ev = event_new(hr->base, r->out.fd, EV_READ | EV_PERSIST, hook_on_output, r);
    r->err.ev = event_new(hr->base, r->err.fd, EV_READ | EV_PERSIST, hook_on_output, r);
    if (stdin_len > 0) {
        r->in_data = sg_xmalloc(stdin_len);
        memcpy(r->in_data, stdin_data, stdin_len);
        r->in_len = stdin_len;
        r->in_ev = event_new(hr->base, r->in_fd, EV_WRITE | EV_PERSIST, hook_on_stdin, r);
    } else {
        hook_close(&r->in_fd); /* EOF on the child's stdin right away */
    }
    if (r->out.ev == NULL || r->err.ev == NULL || (stdin_len > 0 && r->in_ev == NULL) ||
        event_add(r->out.ev, NULL) != 0 || event_add(r->err.ev, NULL) != 0 ||
        (r->in_ev != NULL && event_add(r->in_ev, NULL) != 0)) {
        /* Started, but we cannot watch it: take it down now. */
        (void)kill(-r->pid, SIGKILL);
        while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    if (timeout_ms > 0)
        hook_timer_in(r, timeout_ms);
    r->stage = STAGE_RUNNING;

linked:
    r->next = hr->runs;
    if (hr->runs != NULL)
        hr->runs->prev = r;
    hr->runs = r;
    hr->nruns++;
    /* A child that exited before we were watching: its SIGCHLD is pending on
     * the loop already (the evsignal was installed by sg_hookrunner_new). */
    return SG_OK;

fail:
    hook_close(&pin[0]);
    hook_close(&pin[1]);
    hook_close(&pout[0]);
    hook_close(&pout[1]);
    hook_close(&perr[0]);
    hook_close(&perr[1]);
    hook_run_free(r);
    return SG_ERR;
}

void sg_hookrunner_free(struct sg_hookrunner *hr)
{
    struct hook_run *r, *next;
    if (hr == NULL)
        return;
    SG_CHECK_MAGIC(hr, HOOKRUNNER_MAGIC);
    for (r = hr->runs; r != NULL; r = next) {
        next = r->next;
        if (r->spawned) {
            /* The whole group, even when the leader is gone: what it left
             * behind in its group would otherwise hold our pipes. */
            (void)kill(-r->pid, SIGKILL);
            if (!r->exited)
                while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
                    ;
        }
        hook_run_free(r);
    }
    event_free(hr->sigchld);
    hr->magic = 0;
    free(hr);
}

/* ------------------------------------------------------- output parser */

static int hook_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int hook_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* one line */
        for (char *p = err; *p != '\0'; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return SG_ERR;
}

/* Checks one "host:port" the way config addresses are checked. */
static int hook_check_address(const char *s, char *why, size_t whylen)
{
    struct sg_cfg_addr a;
    if (sg_cfg_parse_addr(s, &a, why, whylen) != SG_OK)
        return SG_ERR;
    if (a.is_unix) {
        sg_cfg_addr_free(&a);
        snprintf(why, whylen, "unix sockets are not allowed here (expected host:port)");
        return SG_ERR;
    }
    sg_cfg_addr_free(&a);
    return SG_OK;
}

static int hook_int_in(json_t *v, json_int_t lo, json_int_t hi, uint32_t *out)
{
    json_int_t x;
    if (!json_is_integer(v))
        return SG_ERR;
    x = json_integer_value(v);
    if (x < lo || x > hi)
        return SG_ERR;
    *out = (uint32_t)x;
    return SG_OK;
}

static int hook_parse_add(json_t *add, struct sg_hook_changes *ch, char *err, size_t errlen)
{
    size_t i, n;
    char why[160];
    if (!json_is_array(add))
        return hook_fail(err, errlen, "\"add\" is not an array");
    n = json_array_size(add);
    if (n > SG_HOOK_MAX_CHANGES)
        return hook_fail(err, errlen, "\"add\" has %zu entries (at most %d)", n,
                         SG_HOOK_MAX_CHANGES);
    ch->add = sg_xcalloc(n ? n : 1, sizeof(*ch->add));
    for (i = 0; i < n; i++) {
        json_t *e = json_array_get(add, i), *v;
        const char *key;
        struct sg_hook_add *a = &ch->add[i];
        if (!json_is_object(e))
            return hook_fail(err, errlen, "add[%zu] is not an object", i);
        json_object_foreach(e, key, v)
        {
            if (strcmp(key, "address") != 0 && strcmp(key, "weight") != 0 &&
                strcmp(key, "maxconn") != 0)
                return hook_fail(err, errlen,
                                 "add[%zu]: unknown key \"%.40s\" (expected address, weight, "
                                 "maxconn)",
                                 i, key);
        }
        v = json_object_get(e, "address");
        if (v == NULL)
            return hook_fail(err, errlen, "add[%zu]: missing \"address\"", i);
        if (!json_is_string(v))
            return hook_fail(err, errlen, "add[%zu]: \"address\" is not a string", i);
        if (hook_check_address(json_string_value(v), why, sizeof(why)) != SG_OK)
            return hook_fail(err, errlen, "add[%zu]: bad address \"%.64s\": %s", i,
                             json_string_value(v), why);
        a->weight = 1;
        a->maxconn = 0;
        if ((v = json_object_get(e, "weight")) != NULL &&
            hook_int_in(v, 0, 256, &a->weight) != SG_OK)
            return hook_fail(err, errlen, "add[%zu]: \"weight\" must be an integer 0..256", i);
        if ((v = json_object_get(e, "maxconn")) != NULL &&
            hook_int_in(v, 0, 1000000, &a->maxconn) != SG_OK)
            return hook_fail(err, errlen, "add[%zu]: \"maxconn\" must be an integer 0..1000000", i);
        a->maxconn_set = v != NULL;
        a->address = sg_xstrdup(json_string_value(json_object_get(e, "address")));
        ch->nadd = i + 1;
    }
    return SG_OK;
}

static int hook_parse_remove(json_t *rm, struct sg_hook_changes *ch, char *err, size_t errlen)
{
    size_t i, n;
    char why[160];
    if (!json_is_array(rm))
        return hook_fail(err, errlen, "\"remove\" is not an array");
    n = json_array_size(rm);
    if (n > SG_HOOK_MAX_CHANGES)
        return hook_fail(err, errlen, "\"remove\" has %zu entries (at most %d)", n,
                         SG_HOOK_MAX_CHANGES);
    ch->remove = sg_xcalloc(n ? n : 1, sizeof(*ch->remove));
    for (i = 0; i < n; i++) {
        json_t *v = json_array_get(rm, i);
        if (!json_is_string(v))
            return hook_fail(err, errlen, "remove[%zu] is not a string", i);
        if (hook_check_address(json_string_value(v), why, sizeof(why)) != SG_OK)
            return hook_fail(err, errlen, "remove[%zu]: bad address \"%.64s\": %s", i,
                             json_string_value(v), why);
        ch->remove[i] = sg_xstrdup(json_string_value(v));
        ch->nremove = i + 1;
    }
    return SG_OK;
}

int sg_hook_parse_output(const char *out, size_t len, struct sg_hook_changes *ch, char *err,
                         size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *key;
    size_t i;
    int rc = SG_OK;

    memset(ch, 0, sizeof(*ch));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (i = 0; i < len; i++)
        if (out[i] != ' ' && out[i] != '\t' && out[i] != '\n' && out[i] != '\r')
            break;
    if (i == len)
        return SG_OK;

    root = json_loadb(out, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return hook_fail(err, errlen, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                         jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return hook_fail(err, errlen, "not a JSON object");
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "add") != 0 && strcmp(key, "remove") != 0) {
            rc = hook_fail(err, errlen, "unknown key \"%.40s\" (expected add, remove)", key);
            goto out;
        }
    }
    if ((v = json_object_get(root, "add")) != NULL &&
        (rc = hook_parse_add(v, ch, err, errlen)) != SG_OK)
        goto out;
    if ((v = json_object_get(root, "remove")) != NULL)
        rc = hook_parse_remove(v, ch, err, errlen);
out:
    json_decref(root);
    if (rc != SG_OK)
        sg_hook_changes_free(ch);
    return rc;
}

void sg_hook_changes_free(struct sg_hook_changes *ch)
{
    if (ch == NULL)
        return;
    for (size_t i = 0; i < ch->nadd; i++)
        free(ch->add[i].address);
    for (size_t i = 0; i < ch->nremove; i++)
        free(ch->remove[i]);
    free(ch->add);
    free(ch->remove);
    memset(ch, 0, sizeof(*ch));
}
