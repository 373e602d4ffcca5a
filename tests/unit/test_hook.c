/* Unit tests for the hook runner (real children: /bin/sh scripts written to a
 * temporary directory, and a few system programs) and for the hook output
 * parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/hook.h"

static char tmpdir[64];

/* What a done callback saw, copied out of the callback. */
struct got {
    int calls;
    struct sg_hook_result r;
    char *out, *err;
};

static void got_reset(struct got *g)
{
    free(g->out);
    free(g->err);
    memset(g, 0, sizeof(*g));
}

static void on_done(const struct sg_hook_result *r, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->r = *r;
    /* out and err are NUL-terminated at their lengths */
    assert_int_equal(strlen(r->out), r->outlen);
    assert_int_equal(strlen(r->err), r->errlen);
    free(g->out);
    free(g->err);
    g->out = strdup(r->out);
    g->err = strdup(r->err);
    g->r.out = g->out;
    g->r.err = g->err;
}

/* Writes tmpdir/name with body (after a #!/bin/sh line) and mode. */
static char *script(const char *name, const char *body, mode_t mode)
{
    char *path = malloc(256);
    FILE *f;
    snprintf(path, 256, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

struct loop {
    struct event_base *base;
    struct sg_hookrunner *hr;
};

static int setup(void **state)
{
    struct loop *l = calloc(1, sizeof(*l));
    l->base = event_base_new();
    assert_non_null(l->base);
    l->hr = sg_hookrunner_new(l->base);
    assert_non_null(l->hr);
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct loop *l = *state;
    sg_hookrunner_free(l->hr);
    event_base_free(l->base);
    free(l);
    return 0;
}

/* Runs the loop until *calls reaches want or limit_ms passes (bounded). */
static void loop_until(struct loop *l, const int *calls, int want, uint64_t limit_ms)
{
    uint64_t end = sg_now_ms() + limit_ms;
    while (*calls < want && sg_now_ms() < end) {
        struct timeval tv = {0, 50 * 1000};
        event_base_loopexit(l->base, &tv);
        event_base_dispatch(l->base);
    }
}

static char *const env0[] = {"PATH=/usr/bin:/bin", NULL};

/* Runs argv to completion; returns the result in *g (fails the test if done
 * is not called within limit_ms, or called re-entrantly). */
static void run_sync(struct loop *l, char *const argv[], char *const envp[], const char *in,
                     size_t inlen, uint32_t timeout_ms, struct got *g, uint64_t limit_ms)
{
    got_reset(g);
    assert_int_equal(sg_hook_run(l->hr, argv, envp, in, inlen, timeout_ms, on_done, g), SG_OK);
    assert_int_equal(g->calls, 0); /* never from inside sg_hook_run */
    assert_true(sg_hookrunner_running(l->hr) >= 1);
    loop_until(l, &g->calls, 1, limit_ms);
    assert_int_equal(g->calls, 1);
}

static void test_exit_codes(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *ok = script("ok", "exit 0", 0755);
    char *three = script("three", "exit 3", 0755);
    char *usr1 = script("usr1", "kill -USR1 $$; sleep 5", 0755);
    char *a1[] = {ok, NULL}, *a2[] = {three, NULL}, *a3[] = {usr1, NULL};

    run_sync(l, a1, env0, NULL, 0, 5000, &g, 10000);
    assert_true(g.r.spawned);
    assert_false(g.r.timed_out);
    assert_int_equal(g.r.exit_code, 0);
    assert_int_equal(g.r.signal, 0);
    assert_int_equal(g.r.outlen, 0);

    run_sync(l, a2, env0, NULL, 0, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 3);
    assert_int_equal(g.r.signal, 0);

    run_sync(l, a3, env0, NULL, 0, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, -1);
    assert_int_equal(g.r.signal, SIGUSR1);
    assert_false(g.r.timed_out);
    assert_int_equal(sg_hookrunner_running(l->hr), 0);
    got_reset(&g);
    free(ok);
    free(three);
    free(usr1);
}

static void test_capture(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *p = script("cap", "printf 'hello\\nworld'; printf 'oops' >&2; exit 1", 0755);
    char *a[] = {p, NULL};

    run_sync(l, a, env0, NULL, 0, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 1);
    assert_string_equal(g.out, "hello\nworld");
    assert_int_equal(g.r.outlen, 11);
    assert_false(g.r.out_truncated);
    assert_string_equal(g.err, "oops");
    assert_false(g.r.err_truncated);
    got_reset(&g);
    free(p);
}

static void test_stdin(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *cat = script("cat", "exec cat", 0755);
    char *wc = script("wc", "exec wc -c", 0755);
    char *a1[] = {cat, NULL}, *a2[] = {wc, NULL};
    const char *json = "{\"pool\":\"app\",\"desired\":3}";
    size_t big = 300 * 1000; /* well over a pipe's buffer */
    char *in = malloc(big);

    run_sync(l, a1, env0, json, strlen(json), 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 0);
    assert_string_equal(g.out, json);

    memset(in, 'x', big);
    run_sync(l, a2, env0, in, big, 10000, &g, 15000);
    assert_int_equal(g.r.exit_code, 0);
    assert_int_equal(strtoul(g.out, NULL, 10), big);

    /* no stdin at all: the child sees EOF at once */
    run_sync(l, a2, env0, NULL, 0, 5000, &g, 10000);
    assert_int_equal(strtoul(g.out, NULL, 10), 0);
    got_reset(&g);
    free(in);
    free(cat);
    free(wc);
}

/* A child that closes its stdin (or exits) before reading: EPIPE on our side,
 * never a dead proxy, and the result still comes. */
static void test_stdin_closed_early(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *c = script("closer", "exec 0<&-; sleep 0.2; echo done", 0755);
    char *q = script("quick", "exit 4", 0755);
    char *a1[] = {c, NULL}, *a2[] = {q, NULL};
    size_t big = 1024 * 1024;
    char *in = malloc(big);
    memset(in, 'y', big);

    run_sync(l, a1, env0, in, big, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 0);
    assert_string_equal(g.out, "done\n");
    run_sync(l, a2, env0, in, big, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 4);
    got_reset(&g);
    free(in);
    free(c);
    free(q);
}

static void test_env_exact(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *a[] = {"/usr/bin/env", NULL};
    char *envp[] = {"SURGEGATE_POOL=app", "SURGEGATE_ACTION=scale_up", "B=two words", NULL};

    setenv("SG_TEST_LEAK", "1", 1); /* ours, must not reach the child */
    run_sync(l, a, envp, NULL, 0, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 0);
    assert_string_equal(g.out, "SURGEGATE_POOL=app\nSURGEGATE_ACTION=scale_up\nB=two words\n");

    run_sync(l, a, NULL, NULL, 0, 5000, &g, 10000); /* NULL: empty environment */
    assert_int_equal(g.r.exit_code, 0);
    assert_string_equal(g.out, "");
    unsetenv("SG_TEST_LEAK");
    got_reset(&g);
}

/* Numbers of the fds open in this process. */
static int list_fds(int *fds, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < max) {
        int fd;
        if (e->d_name[0] == '.')
            continue;
        fd = atoi(e->d_name);
        if (fd != dirfd(d))
            fds[n++] = fd;
    }
    closedir(d);
    return n;
}

static bool in_list(const int *fds, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

static void test_fds(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *a[] = {"/bin/ls", "/proc/self/fd", NULL};
    char *p = script("fdsleep", "sleep 0.3", 0755);
    char *a2[] = {p, NULL};
    int before[256], during[256], nb, nd;
    /* an fd some other code left without O_CLOEXEC: the child must not see it */
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 3);

    run_sync(l, a, env0, NULL, 0, 5000, &g, 10000);
    assert_int_equal(g.r.exit_code, 0);
    /* 0 1 2 and the directory ls itself opened (the lowest free fd) */
    assert_string_equal(g.out, "0\n1\n2\n3\n");
    close(leak);

    /* every fd the runner holds while a child runs is close-on-exec */
    nb = list_fds(before, 256);
    got_reset(&g);
    assert_int_equal(sg_hook_run(l->hr, a2, env0, "x", 1, 5000, on_done, &g), SG_OK);
    nd = list_fds(during, 256);
    assert_true(nd >= nb + 2); /* at least stdout and stderr pipes */
    for (int i = 0; i < nd; i++) {
        if (in_list(before, nb, during[i]))
            continue;
        assert_true(fcntl(during[i], F_GETFD) & FD_CLOEXEC);
    }
    loop_until(l, &g.calls, 1, 10000);
    assert_int_equal(g.calls, 1);
    /* and none is left behind */
    nd = list_fds(during, 256);
    assert_int_equal(nd, nb);
    got_reset(&g);
    free(p);
}

static void test_pgroup_and_signals(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *p = script("pg",
                     "cut -d' ' -f1,5 /proc/$$/stat\n"
                     /* read by the hook process itself (exec): the shell
                      * blocks signals around its own forks, so reading its
                      * status from a child races with them */
                     "exec grep -E '^Sig(Blk|Ign):' /proc/self/status",
                     0755);
    char *a[] = {p, NULL};
    long pid = 0, pgid = 0;
    char *ign, *blk;
    sigset_t set, old;

    /* the proxy ignores SIGPIPE and its workers block signals: the child must
     * start with neither */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    run_sync(l, a, env0, NULL, 0, 5000, &g, 10000);
    sigprocmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(g.r.exit_code, 0);
    assert_int_equal(sscanf(g.out, "%ld %ld", &pid, &pgid), 2);
    assert_true(pid > 0);
    assert_int_equal(pid, pgid);
    assert_int_not_equal(pgid, (long)getpgrp());
    blk = strstr(g.out, "SigBlk:");
    ign = strstr(g.out, "SigIgn:");
    assert_non_null(blk);
    assert_non_null(ign);
    assert_int_equal(strtoull(blk + 7, NULL, 16), 0);
    /* signals 1..31; glibc's posix_spawn leaves its two internal signals
     * (32, 33: thread cancellation, setxid) ignored, which is harmless */
    assert_int_equal(strtoull(ign + 7, NULL, 16) & 0x7fffffffu, 0);
    got_reset(&g);
    free(p);
}

static void test_timeout_term(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *a[] = {"/bin/sleep", "100", NULL};
    uint64_t t0 = sg_now_ms();

    run_sync(l, a, env0, NULL, 0, 300, &g, 10000);
    assert_true(g.r.spawned);
    assert_true(g.r.timed_out);
    assert_int_equal(g.r.exit_code, -1);
    assert_int_equal(g.r.signal, SIGTERM);
    assert_true(g.r.duration_ms >= 250);
    assert_true(sg_now_ms() - t0 < 2000);
    got_reset(&g);
}

static void test_timeout_kill(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    /* ignores TERM (and so do the sleeps it starts): only KILL ends it */
    char *p = script("stubborn", "trap '' TERM\nwhile :; do sleep 1; done", 0755);
    char *a[] = {p, NULL};
    uint64_t t0 = sg_now_ms();

    run_sync(l, a, env0, NULL, 0, 300, &g, 10000);
    assert_true(g.r.timed_out);
    assert_int_equal(g.r.signal, SIGKILL);
    assert_true(g.r.duration_ms >= 300 + SG_HOOK_KILL_DELAY_MS - 100);
    assert_true(sg_now_ms() - t0 < 300 + SG_HOOK_KILL_DELAY_MS + 2000);
    got_reset(&g);
    free(p);
}

static void test_big_output(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *p = script("big",
                     "head -c 1048576 /dev/zero | tr '\\000' a\n"
                     "head -c 1048576 /dev/zero | tr '\\000' b >&2\n"
                     "echo end >&2",
                     0755);
    char *a[] = {p, NULL};

    run_sync(l, a, env0, NULL, 0, 10000, &g, 15000);
    assert_false(g.r.timed_out);
    assert_int_equal(g.r.exit_code, 0);
    assert_int_equal(g.r.outlen, SG_HOOK_OUT_MAX);
    assert_true(g.r.out_truncated);
    assert_int_equal(g.r.errlen, SG_HOOK_ERR_MAX);
    assert_true(g.r.err_truncated);
    assert_int_equal(strspn(g.out, "a"), SG_HOOK_OUT_MAX);
    assert_int_equal(strspn(g.err, "b"), SG_HOOK_ERR_MAX);
    got_reset(&g);
    free(p);
}

static void test_spawn_failures(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char missing[128];
    char *noexec = script("noexec", "exit 0", 0644);
    char *a2[] = {noexec, NULL};
    snprintf(missing, sizeof(missing), "%s/does-not-exist", tmpdir);
    char *a1[] = {missing, NULL};

    run_sync(l, a1, env0, "in", 2, 5000, &g, 5000);
    assert_false(g.r.spawned);
    assert_int_equal(g.r.spawn_errno, ENOENT);
    assert_int_equal(g.r.exit_code, -1);
    assert_int_equal(g.r.outlen, 0);

    run_sync(l, a2, env0, NULL, 0, 5000, &g, 5000);
    assert_false(g.r.spawned);
    assert_int_equal(g.r.spawn_errno, EACCES);
    assert_int_equal(sg_hookrunner_running(l->hr), 0);
    got_reset(&g);
    free(noexec);
}

static void test_bad_args(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *rel[] = {"bin/sh", NULL};
    char *empty[] = {NULL};
    char *ok[] = {"/bin/true", NULL};

    assert_int_equal(sg_hook_run(l->hr, rel, env0, NULL, 0, 0, on_done, &g), SG_ERR);
    assert_int_equal(sg_hook_run(l->hr, empty, env0, NULL, 0, 0, on_done, &g), SG_ERR);
    assert_int_equal(sg_hook_run(l->hr, NULL, env0, NULL, 0, 0, on_done, &g), SG_ERR);
    assert_int_equal(sg_hook_run(l->hr, ok, env0, NULL, 0, 0, NULL, &g), SG_ERR);
    assert_int_equal(sg_hook_run(l->hr, ok, env0, NULL, 5, 0, on_done, &g), SG_ERR);
    assert_int_equal(sg_hookrunner_running(l->hr), 0);
    assert_int_equal(g.calls, 0);
}

static void test_concurrent(void **state)
{
    struct loop *l = *state;
    struct got g[20];
    char *p = script("conc", "sleep 0.$(($1 % 5)); cat; echo \" $1\"", 0755);
    char args[20][8], ins[20][16];
    int total = 0;
    uint64_t end;

    memset(g, 0, sizeof(g));
    for (int i = 0; i < 20; i++) {
        char *a[] = {p, args[i], NULL};
        snprintf(args[i], sizeof(args[i]), "%d", i);
        snprintf(ins[i], sizeof(ins[i]), "in%d", i);
        assert_int_equal(sg_hook_run(l->hr, a, env0, ins[i], strlen(ins[i]), 10000, on_done, &g[i]),
                         SG_OK);
    }
    assert_int_equal(sg_hookrunner_running(l->hr), 20);
    end = sg_now_ms() + 20000;
    while (sg_now_ms() < end) {
        total = 0;
        for (int i = 0; i < 20; i++)
            total += g[i].calls;
        if (total == 20)
            break;
        loop_until(l, &g[0].calls, 2, 50); /* one slice of the loop */
    }
    assert_int_equal(total, 20);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof(want), "in%d %d\n", i, i);
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].r.exit_code, 0);
        assert_string_equal(g[i].out, want);
        got_reset(&g[i]);
    }
    assert_int_equal(sg_hookrunner_running(l->hr), 0);
    free(p);
}

/* A background grandchild keeps the output pipes open after the hook
 * exited: the result comes after the EOF grace, not never. */
static void test_grandchild_holds_pipes(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *p = script("bg", "sleep 100 &\necho $!\nexit 5", 0755);
    char *a[] = {p, NULL};
    uint64_t t0 = sg_now_ms();
    long bg;

    run_sync(l, a, env0, NULL, 0, 0, &g, 10000);
    assert_int_equal(g.r.exit_code, 5);
    assert_false(g.r.timed_out);
    assert_true(sg_now_ms() - t0 < SG_HOOK_EOF_GRACE_MS + 2000);
    bg = strtol(g.out, NULL, 10);
    assert_true(bg > 1);
    kill((pid_t)bg, SIGKILL); /* ours to clean up; init reaps it */
    got_reset(&g);
    free(p);
}

/* Other code's waitpid(-1) took our child's status: the run still ends,
 * with exit_code -1 and no signal (not a made-up one). */
static void test_reaped_elsewhere(void **state)
{
    struct loop *l = *state;
    struct got g = {0};
    char *p = script("reaped", "sleep 0.2; exit 7", 0755);
    char *a[] = {p, NULL};
    int st = 0;

    assert_int_equal(sg_hook_run(l->hr, a, env0, NULL, 0, 5000, on_done, &g), SG_OK);
    assert_true(waitpid(-1, &st, 0) > 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    loop_until(l, &g.calls, 1, 5000);
    assert_int_equal(g.calls, 1);
    assert_true(g.r.spawned);
    assert_int_equal(g.r.exit_code, -1);
    assert_int_equal(g.r.signal, 0);
    assert_false(g.r.timed_out);
    got_reset(&g);
    free(p);
}

/* Freeing the runner kills and reaps what still runs, calling nothing. */
static void test_free_kills(void **state)
{
    struct event_base *base = event_base_new();
    struct sg_hookrunner *hr = sg_hookrunner_new(base);
    struct got g = {0};
    char body[512], pidfile[128];
    char *p;
    long pid = 0;
    FILE *f;
    uint64_t end = sg_now_ms() + 5000;
    snprintf(pidfile, sizeof(pidfile), "%s/free.pid", tmpdir);
    snprintf(body, sizeof(body), "echo $$ > %s.tmp && mv %s.tmp %s\nexec sleep 100", pidfile,
             pidfile, pidfile);
    p = script("freeme", body, 0755);
    char *a[] = {p, NULL};
    (void)state;

    unlink(pidfile);
    assert_int_equal(sg_hook_run(hr, a, env0, NULL, 0, 0, on_done, &g), SG_OK);
    while (access(pidfile, F_OK) != 0 && sg_now_ms() < end) {
        struct timeval tv = {0, 20 * 1000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    f = fopen(pidfile, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_int_equal(kill((pid_t)pid, 0), 0);
    assert_int_equal(sg_hookrunner_running(hr), 1);
    sg_hookrunner_free(hr);
    assert_int_equal(g.calls, 0);
    /* killed and reaped: the pid is gone (not a zombie) */
    assert_int_equal(kill((pid_t)pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    event_base_free(base);
    free(p);
}

/* ------------------------------------------------------------- parser */

static void test_parse_good(void **state)
{
    struct sg_hook_changes ch;
    char err[256];
    const char *s;
    (void)state;

    assert_int_equal(sg_hook_parse_output("", 0, &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nadd + ch.nremove, 0);
    assert_int_equal(sg_hook_parse_output(" \n\t\r\n", 5, &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nadd + ch.nremove, 0);
    assert_int_equal(sg_hook_parse_output("{}", 2, &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nadd + ch.nremove, 0);

    s = "{\"add\":[{\"address\":\"10.0.0.5:8080\",\"weight\":3,\"maxconn\":100},"
        "{\"address\":\"[::1]:9000\"}],\"remove\":[\"10.0.0.1:80\",\"[2001:db8::1]:443\"]}\n";
    assert_int_equal(sg_hook_parse_output(s, strlen(s), &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nadd, 2);
    assert_string_equal(ch.add[0].address, "10.0.0.5:8080");
    assert_int_equal(ch.add[0].weight, 3);
    assert_int_equal(ch.add[0].maxconn, 100);
    assert_true(ch.add[0].maxconn_set);
    assert_string_equal(ch.add[1].address, "[::1]:9000");
    assert_int_equal(ch.add[1].weight, 1); /* defaults */
    assert_int_equal(ch.add[1].maxconn, 0);
    assert_false(ch.add[1].maxconn_set); /* the pool's then (control.c) */
    assert_int_equal(ch.nremove, 2);
    assert_string_equal(ch.remove[0], "10.0.0.1:80");
    assert_string_equal(ch.remove[1], "[2001:db8::1]:443");
    sg_hook_changes_free(&ch);
    assert_null(ch.add);
    assert_int_equal(ch.nadd, 0);

    /* bounds are inclusive; len limits what is read (no NUL needed) */
    s = "{\"add\":[{\"address\":\"127.0.0.1:65535\",\"weight\":256,\"maxconn\":1000000},"
        "{\"address\":\"127.0.0.1:1\",\"weight\":0}]}garbage";
    assert_int_equal(sg_hook_parse_output(s, strlen(s) - 7, &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nadd, 2);
    assert_int_equal(ch.add[0].weight, 256);
    assert_int_equal(ch.add[0].maxconn, 1000000);
    assert_int_equal(ch.add[1].weight, 0);
    sg_hook_changes_free(&ch);

    s = "{\"remove\":[]}";
    assert_int_equal(sg_hook_parse_output(s, strlen(s), &ch, err, sizeof(err)), SG_OK);
    assert_int_equal(ch.nremove, 0);
    sg_hook_changes_free(&ch);
    sg_hook_changes_free(NULL);
}

static void expect_bad(const char *s, const char *reason_part)
{
    struct sg_hook_changes ch;
    char err[256];
    memset(&ch, 0x5a, sizeof(ch));
    err[0] = '\0';
    if (sg_hook_parse_output(s, strlen(s), &ch, err, sizeof(err)) != SG_ERR)
        fail_msg("accepted: %s", s);
    assert_null(ch.add);
    assert_null(ch.remove);
    assert_int_equal(ch.nadd, 0);
    assert_int_equal(ch.nremove, 0);
    assert_null(strchr(err, '\n'));
    if (strstr(err, reason_part) == NULL)
        fail_msg("for %s: reason '%s' lacks '%s'", s, err, reason_part);
}

static void test_parse_bad(void **state)
{
    char *big;
    size_t off = 0, cap = 64 * 1024;
    (void)state;

    expect_bad("scaled up to 3", "not JSON");
    expect_bad("{\"add\":[}", "not JSON");
    expect_bad("{} {}", "not JSON");
    expect_bad("[1,2]", "not a JSON object");
    expect_bad("\"x\"", "not a JSON object");
    expect_bad("{\"add\":[],\"replace\":[]}", "unknown key \"replace\"");
    expect_bad("{\"add\":[],\"add\":[]}", "not JSON"); /* duplicate key */
    expect_bad("{\"add\":{}}", "\"add\" is not an array");
    expect_bad("{\"add\":[\"1.2.3.4:80\"]}", "add[0] is not an object");
    expect_bad("{\"add\":[{\"weight\":1}]}", "missing \"address\"");
    expect_bad("{\"add\":[{\"address\":80}]}", "\"address\" is not a string");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"port\":1}]}", "unknown key \"port\"");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"example.com:80\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:0\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:65536\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"::1:80\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"[::1]\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"unix:/tmp/x.sock\"}]}", "bad address");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"weight\":257}]}", "weight");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"weight\":-1}]}", "weight");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"weight\":1.5}]}", "weight");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"weight\":\"2\"}]}", "weight");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"maxconn\":1000001}]}", "maxconn");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\",\"maxconn\":true}]}", "maxconn");
    expect_bad("{\"remove\":\"1.2.3.4:80\"}", "\"remove\" is not an array");
    expect_bad("{\"remove\":[1]}", "remove[0] is not a string");
    expect_bad("{\"remove\":[\"nohost\"]}", "bad address");
    /* all or nothing: a good add and a bad remove yield nothing */
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\"}],\"remove\":[\"x\"]}", "remove[0]");
    expect_bad("{\"add\":[{\"address\":\"1.2.3.4:80\"},{\"address\":\"x\"}]}", "add[1]");

    /* more than 1000 entries */
    big = malloc(cap);
    off += (size_t)snprintf(big + off, cap - off, "{\"remove\":[");
    for (int i = 0; i <= SG_HOOK_MAX_CHANGES; i++)
        off += (size_t)snprintf(big + off, cap - off, "%s\"10.0.%d.%d:80\"", i ? "," : "", i / 250,
                                i % 250);
    snprintf(big + off, cap - off, "]}");
    expect_bad(big, "at most 1000");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_closed_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pgroup_and_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grandchild_holds_pipes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reaped_elsewhere, setup, teardown),
        cmocka_unit_test(test_free_kills),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
    };
    char cmd[128];
    int rc;

    /* as in main(): a child closing its stdin must give EPIPE, not kill us */
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-hook.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
