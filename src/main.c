/* main.c: command line, configuration check, startup, signals, graceful
 * stop and the demo mode. The main thread runs signals (and the demo
 * backends); workers run the traffic. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "surgegate/accesslog.h"
#include "surgegate/admin.h"
#include "surgegate/alert.h"
#include "surgegate/autoscale.h"
#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/control.h"
#include "surgegate/demo.h"
#include "surgegate/discover.h"
#include "surgegate/gate.h"
#include "surgegate/health.h"
#include "surgegate/journal.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/memory.h"
#include "surgegate/pool.h"
#include "surgegate/reload.h"
#include "surgegate/sdnotify.h"
#include "surgegate/signals.h"
#include "surgegate/upgrade.h"
#include "surgegate/worker.h"

#include "demo_conf.h"

#define SG_DEFAULT_CONFIG "/etc/surgegate/surgegate.conf"

struct main_state {
    struct event_base *base;
    struct sg_gen *gen;      /* the generation serving */
    struct sg_gen *retiring; /* earlier ones still draining (after reloads) */
    const char *cfg_path;    /* NULL: the demo's embedded configuration */
    bool log_level_forced;   /* -l given: a reload keeps it */
    char **argv;             /* ours: a binary upgrade runs the executable with them */
    char exe[512];           /* the executable's path at start (an upgrade runs it again) */
    struct sg_upgrade up;    /* an upgrade in progress (up.pid > 0) */
    struct event *up_ev;     /* up.sock readable, or the upgrade's time is up */
    int stops;               /* signals received */
    struct event *poll_ev;
    struct event *reap_ev;
    struct sg_health *health;
    struct sg_admin *admin;
    struct sg_control *ctl;
    struct sg_discover *disc;
    struct sg_journal *journal;
    struct sg_alog *alog;
    struct sg_sd_watchdog *watchdog;
};

/* SIGUSR1: reopen the access log and the journal file (logrotate). */
static void main_on_usr1(evutil_socket_t sig, short what, void *arg)
{
    struct main_state *ms = arg;
    if (ms->alog != NULL)
        sg_alog_reopen(ms->alog);
    if (ms->journal != NULL && sg_journal_reopen(ms->journal) != SG_OK)
        sg_log_warn("journal: cannot reopen its file");
    sg_log_info("SIGUSR1: log files reopened");
}

/* A backend changed state (health check, ejection, admin call): a backend
 * that became usable starts its slow-start ramp, and every worker drops idle
 * connections to unusable backends and lets queued requests try again. */
static void main_backend_changed(struct sg_backend *b, void *arg)
{
    struct main_state *ms = arg;
    sg_control_backend_changed(ms->ctl, b);
}

/* What a demo run sets up before its configuration: ports, backends. */
struct main_demo {
    int port, admin_port;       /* proxy, admin API */
    char listen[32], admin[32]; /* "127.0.0.1:P" */
    char state[64];             /* local-spawn's state directory for this run */
    char exe[512];              /* our own binary */
    struct sg_demo_procs procs; /* the demo backends */
    bool started;               /* procs started: stop them at the end */
};

/* The demo configuration with its marks filled: @HOOKS@ by the directory of
 * the example hooks ($SURGEGATE_HOOKS_DIR, else the source tree's hooks/ (a
 * build run in place), else the installed copy), and for a run (md not
 * NULL) the ports, the backends and the state directory. Owned by the
 * caller. */
static char *main_demo_conf(const struct main_demo *md)
{
    const char *dir = getenv("SURGEGATE_HOOKS_DIR");
    if (dir == NULL || dir[0] != '/') {
        dir = SG_HOOKS_DIR;
        if (access(SG_HOOKS_DIR "/local-spawn", X_OK) != 0)
            dir = SG_HOOKS_INSTALL_DIR;
    }
    char *text = sg_xstrdup(sg_demo_conf);
    if (md != NULL) {
        const char *const marks[][2] = {{"@LISTEN@", md->listen},
                                        {"@ADMIN@", md->admin},
                                        {"@BACKEND1@", md->procs.addr[0]},
                                        {"@BACKEND2@", md->procs.addr[1]},
                                        {"@STATE@", md->state}};
        for (size_t i = 0; i < SG_ARRAY_SIZE(marks); i++) {
            char *next = sg_demo_subst(text, marks[i][0], marks[i][1]);
            free(text);
            text = next;
        }
    }
    char *out = sg_demo_conf_fill(text, dir);
    free(text);
    return out;
}

/* Before a demo run: its two ports must be free (else a clear message and
 * the way out), then its backends start. Returns 0, or the exit status. */
static int main_demo_prepare(struct main_demo *md)
{
    char err[256];
    int ports[2] = {md->port, md->admin_port};
    for (int i = 0; i < 2; i++)
        if (sg_demo_port_check("127.0.0.1", ports[i], err, sizeof(err)) != SG_OK) {
            fprintf(stderr,
                    "surgegate: --demo: %s (the demo's %s; another surgegate --demo?). Stop "
                    "what holds it (`ss -ltnp 'sport = :%d'` shows it), or run the demo on "
                    "other ports: surgegate --demo --demo-port %d (the proxy on that port, the "
                    "admin API on the next)\n",
                    err, i == 0 ? "proxy" : "admin API", ports[i],
                    md->port < 65000 ? md->port + 100 : 8180);
            return 1;
        }
    snprintf(md->listen, sizeof(md->listen), "127.0.0.1:%d", md->port);
    snprintf(md->admin, sizeof(md->admin), "127.0.0.1:%d", md->admin_port);
    snprintf(md->state, sizeof(md->state), "/tmp/surgegate-demo-%d", (int)getpid());
    ssize_t el = readlink("/proc/self/exe", md->exe, sizeof(md->exe) - 1);
    if (el <= 0) {
        fprintf(stderr, "surgegate: --demo: cannot find our own binary: %s\n", strerror(errno));
        return 1;
    }
    md->exe[el] = '\0';
    /* Our backends, and those local-spawn starts (the hooks pass it on),
     * end when we do, even when we are killed. */
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("SURGEGATE_DEMO_OWNER", pid, 1);
    if (sg_demo_spawn(&md->procs, md->exe, 2, err, sizeof(err)) != SG_OK) {
        fprintf(stderr, "surgegate: --demo: %s\n", err);
        return 1;
    }
    md->started = true;
    return 0;
}

/* At the demo's end, after the proxy stopped: the backends local-spawn
 * started (the scale_down hook to 0, as it documents), then our own, then
 * the state directory. */
static void main_demo_finish(struct main_demo *md, const struct sg_cfg *cfg,
                             const struct sg_pools *pools)
{
    if (!md->started)
        return;
    uint32_t n = 0;
    if (cfg != NULL && pools != NULL && pools->n > 0) {
        const struct sg_pool *p = &pools->pools[0];
        for (size_t i = 0, used = sg_pool_nused(p); i < used; i++) {
            const struct sg_backend *b = &p->backends[i];
            if (sg_backend_live(b) && !atomic_load(&b->removing) && b->origin == SG_ORIGIN_HOOK)
                n++;
        }
        char *const *hook = cfg->pools[0].autoscale.scale_down_hook;
        if (n > 0 && hook != NULL && sg_demo_stop_spawned(hook, p->name, n) != SG_OK)
            sg_log_warn("demo: the scale_down hook did not stop every backend it started");
    }
    sg_demo_reap(&md->procs);
    char f[96];
    snprintf(f, sizeof(f), "%s/seq", md->state);
    (void)unlink(f);
    (void)rmdir(md->state);
    md->started = false;
    sg_log_info("demo: stopped its backends (%zu of its own, %" PRIu32 " the surge added)",
                md->procs.n, n);
}

/* Once a second in the demo: reaps a demo backend the user killed. */
static void main_demo_poll(evutil_socket_t fd, short what, void *arg)
{
    sg_demo_poll(arg);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: surgegate [-c FILE] [-t] [--demo [--demo-port P]] [--log-level LEVEL] "
                 "[--version]\n"
                 "  -c, --config FILE   configuration file (default " SG_DEFAULT_CONFIG ")\n"
                 "  -t, --test          check the configuration and exit (0 valid, 1 invalid)\n"
                 "      --demo          run an embedded demo: proxy on 127.0.0.1:8080, admin API\n"
                 "                      on 127.0.0.1:9900, two demo backends (processes of their\n"
                 "                      own), autoscaled by hooks/local-spawn\n"
                 "      --demo-port P   the demo's proxy on port P, its admin API on P+1\n"
                 "      --demo-backend ADDR\n"
                 "                      serve one demo backend on ADDR (port 0: any free port)\n"
                 "  -l, --log-level L   error, warn, info (default) or debug\n"
                 "  -v, --version       print the version and exit\n"
                 "  -h, --help          this text\n");
}

/* --list-names (not in the usage: for tests and scripts): every name of
 * the lists the config checks values against, one "KIND NAME" a line, from
 * the tables themselves: balancers ("balance"), autoscale metrics
 * ("metric") and alert events ("event"). tests/integration/harness.py reads
 * it, so no test keeps its own copy of a list. */
static void main_list_names(FILE *out)
{
    static const struct {
        const char *kind;
        const char *(*at)(size_t i);
    } lists[] = {
        {"balance", sg_lb_name}, {"metric", sg_as_metric_at}, {"event", sg_alert_event_name}};
    for (size_t l = 0; l < SG_ARRAY_SIZE(lists); l++)
        for (size_t i = 0; lists[l].at(i) != NULL; i++)
            fprintf(out, "%s %s\n", lists[l].kind, lists[l].at(i));
}

/* Stops gracefully: no new connections, in-flight requests finish within
 * timeouts.grace, then the loop ends. */
static void main_stop(struct main_state *ms)
{
    sg_sd_stopping();
    sg_control_stopping(ms->ctl); /* a cluster leader hands the role over at once */
    sg_admin_set_discover(ms->admin, NULL);
    sg_discover_free(ms->disc); /* no membership changes while stopping */
    ms->disc = NULL;
    sg_health_stop(ms->health);
    ms->health = NULL;
    sg_control_set_health(ms->ctl, NULL);
    sg_admin_stop(ms->admin);
    ms->admin = NULL;
    sg_gen_stop(ms->gen);
    for (struct sg_gen *g = ms->retiring; g != NULL; g = g->next)
        sg_gen_stop(g);
    struct timeval tv = {0, 50 * 1000};
    evtimer_add(ms->poll_ev, &tv);
}

static void main_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_state *ms = arg;
    ms->stops++;
    if (ms->stops > 1) {
        sg_log_warn("second signal: exiting now");
        _exit(1);
    }
    sg_log_info("%s: stopping gracefully (send again to exit at once)", sg_signals_name((int)sig));
    main_stop(ms);
}

/* Polls (only while stopping) for the workers to finish. */
static void main_poll_stop(evutil_socket_t fd, short what, void *arg)
{
    struct main_state *ms = arg;
    bool done = sg_gen_done(ms->gen);
    for (struct sg_gen *g = ms->retiring; g != NULL && done; g = g->next)
        done = sg_gen_done(g);
    if (done) {
        event_base_loopexit(ms->base, NULL);
        return;
    }
    struct timeval tv = {0, 50 * 1000};
    evtimer_add(ms->poll_ev, &tv);
}

static enum sg_alog_format main_alog_format(const struct sg_cfg *cfg)
{
    return cfg->access_log.format != NULL && strcmp(cfg->access_log.format, "combined") == 0
               ? SG_ALOG_COMBINED
               : SG_ALOG_JSON;
}

/* Frees the generations a reload retired once their workers have ended;
 * polls every 100 ms while any is left. */
static void main_reap(evutil_socket_t fd, short what, void *arg)
{
    struct main_state *ms = arg;
    for (struct sg_gen **pg = &ms->retiring; *pg != NULL;) {
        struct sg_gen *g = *pg;
        if (!sg_gen_done(g)) {
            pg = &g->next;
            continue;
        }
        *pg = g->next;
        sg_control_fold(ms->ctl, g->stats);
        g->stats = NULL;
        sg_log_info("reload: the previous configuration's workers have finished (%.1f s)",
                    (double)(sg_now_ms() - g->retired_ms) / 1000.0);
        sg_gen_free(g);
    }
    if (ms->retiring != NULL && ms->stops == 0) {
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(ms->reap_ev, &tv);
    }
}

/* Reloads the configuration file in place (SIGHUP, admin POST reload): the
 * file is read and checked first; with an error the running configuration
 * stays. Else a new generation starts beside the running one (runtime state
 * and listening sockets carried over), the control plane moves to it, and
 * the old one drains. Returns the report ({"reloaded": bool, ...}); logs
 * and journals it. */
static json_t *main_reload_file(struct main_state *ms, const char *source)
{
    uint64_t t0 = sg_now_us();
    json_t *r =
        json_pack("{s:s, s:s}", "file", ms->cfg_path ? ms->cfg_path : "<demo>", "source", source);
    json_t *errs = json_array();
    struct sg_cfg *cfg = NULL;
    if (ms->cfg_path == NULL) {
        json_array_append_new(errs, json_string("the demo's configuration is embedded: nothing "
                                                "to reload"));
    } else if (ms->stops > 0) {
        json_array_append_new(errs, json_string("stopping"));
    } else {
        struct sg_cfg_diags diags;
        sg_cfg_diags_init(&diags, ms->cfg_path);
        cfg = sg_cfg_load_file(ms->cfg_path, &diags);
        if (cfg != NULL && sg_cfg_check_programs(cfg, &diags) != SG_OK) {
            sg_cfg_free(cfg); /* a hook that is not there: refused like -t */
            cfg = NULL;
        }
        for (size_t i = 0; i < diags.n; i++) {
            const struct sg_cfg_diag *d = &diags.items[i];
            if (d->severity == SG_CFG_ERROR)
                json_array_append_new(errs, json_sprintf("%s:%d: %s", diags.file, d->line, d->msg));
        }
        sg_cfg_diags_free(&diags);
        if (cfg != NULL && sg_reload_refused(ms->gen->cfg, cfg, errs) > 0) {
            sg_cfg_free(cfg);
            cfg = NULL;
        }
        if (cfg == NULL && json_array_size(errs) == 0)
            json_array_append_new(errs, json_string("the file could not be read"));
    }
    struct sg_gen *g = NULL;
    if (cfg != NULL) {
        json_t *carry = json_object();
        g = sg_gen_new(cfg, ms->gen, NULL, ms->alog, carry); /* takes cfg */
        if (g != NULL && sg_gen_start(g) != SG_OK) {
            sg_gen_free(g);
            g = NULL;
        }
        if (g == NULL)
            json_array_append_new(errs, json_string("the new configuration could not start "
                                                    "(see the log: a port in use?)"));
        json_object_update(r, carry);
        json_decref(carry);
    }
    if (g == NULL) {
        json_object_set_new(r, "reloaded", json_false());
        /* "error": one line for clients that print one (surgectl). */
        json_t *line = json_string("the running configuration stays:");
        for (size_t i = 0; i < json_array_size(errs); i++) {
            json_t *next = json_sprintf("%s%s %s", json_string_value(line), i ? ";" : "",
                                        json_string_value(json_array_get(errs, i)));
            json_decref(line);
            line = next;
        }
        json_object_set_new(r, "error", line);
        json_object_set_new(r, "errors", errs);
        for (size_t i = 0; i < json_array_size(errs); i++)
            sg_log_error("reload (%s): %s", source, json_string_value(json_array_get(errs, i)));
        sg_log_error("reload (%s): the running configuration stays", source);
        sg_journal_emit("reload_failed", json_deep_copy(r));
        return r;
    }
    json_decref(errs);
    /* The control plane moves to the new generation. */
    sg_health_stop(ms->health);
    ms->health = sg_health_start(ms->base, &g->pools, main_backend_changed, ms);
    struct sg_stats *old_stats =
        sg_control_reload(ms->ctl, g->cfg, &g->pools, g->workers, g->nworkers);
    sg_control_set_health(ms->ctl, ms->health);
    sg_admin_retarget(ms->admin, g->cfg, &g->pools);
    /* Discovery restarts on the new pools, each source keeping its last
     * set and which members it added. */
    struct sg_discover *disc = sg_discover_new(ms->base, g->cfg, &g->pools, ms->ctl);
    sg_discover_carry(disc, ms->disc);
    sg_discover_free(ms->disc);
    ms->disc = disc;
    sg_admin_set_discover(ms->admin, disc);
    sg_memory_init(g->cfg->limits.buffer_memory);
    enum sg_log_level lvl;
    if (!ms->log_level_forced && g->cfg->log_level != NULL &&
        sg_log_parse_level(g->cfg->log_level, &lvl) == SG_OK)
        sg_log_set_level(lvl);
    struct sg_gen *old = ms->gen;
    old->stats = old_stats;
    ms->gen = g;
    sg_gen_stop(old);
    old->next = ms->retiring;
    ms->retiring = old;
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(ms->reap_ev, &tv);
    double ms_taken = (double)(sg_now_us() - t0) / 1000.0;
    json_object_set_new(r, "reloaded", json_true());
    json_object_set_new(r, "duration_ms", json_real(ms_taken));
    json_object_set_new(r, "pools", json_integer((json_int_t)g->cfg->npools));
    json_object_set_new(r, "frontends", json_integer((json_int_t)g->cfg->nfrontends));
    sg_log_info("reload (%s): %s loaded in %.1f ms: %zu pool%s, %zu frontend%s, %lld backend%s "
                "carried over, %zu added at runtime kept",
                source, ms->cfg_path, ms_taken, g->cfg->npools, g->cfg->npools == 1 ? "" : "s",
                g->cfg->nfrontends, g->cfg->nfrontends == 1 ? "" : "s",
                (long long)json_integer_value(json_object_get(r, "carried")),
                json_integer_value(json_object_get(r, "carried")) == 1 ? "" : "s",
                json_array_size(json_object_get(r, "runtime_backends")));
    sg_journal_emit("config_reloaded", json_deep_copy(r));
    return r;
}

/* main_reload_file between RELOADING=1 and READY=1 for systemd (not while
 * stopping: STOPPING=1 was the last word then). */
static json_t *main_reload(struct main_state *ms, const char *source)
{
    bool tell = ms->stops == 0;
    if (tell)
        sg_sd_reloading();
    json_t *r = main_reload_file(ms, source);
    if (tell)
        sg_sd_ready();
    return r;
}

static void main_on_hup(evutil_socket_t sig, short what, void *arg)
{
    json_decref(main_reload(arg, "SIGHUP"));
}

static json_t *main_reload_admin(void *arg)
{
    return main_reload(arg, "admin");
}

/* --------------------------------------------------------- binary upgrade */

#define MAIN_UPGRADE_WAIT_S 30 /* for the new process to say it serves */

static void main_admin_start(struct main_state *ms);

/* The upgrade did not happen: we go on serving. */
static void main_upgrade_failed(struct main_state *ms, const char *why)
{
    sg_log_error("upgrade: %s; this process goes on serving", why);
    sg_journal_emit("upgrade_failed",
                    json_pack("{s:s, s:i}", "error", why, "new_pid", (int)ms->up.pid));
    if (ms->up.pid > 0) {
        kill(ms->up.pid, SIGTERM);
        (void)waitpid(ms->up.pid, NULL, 0);
    }
    if (ms->up.sock >= 0)
        close(ms->up.sock);
    ms->up.sock = -1;
    ms->up.pid = 0;
    if (ms->admin == NULL)
        main_admin_start(ms);
}

/* The new process answered (or not, within MAIN_UPGRADE_WAIT_S). */
static void main_upgrade_answer(evutil_socket_t fd, short what, void *arg)
{
    struct main_state *ms = arg;
    char c = 0;
    ssize_t r = (what & EV_READ) ? recv(fd, &c, 1, 0) : -1;
    if (r != 1 || c != 'R') {
        main_upgrade_failed(ms, (what & EV_TIMEOUT) ? "the new process did not start serving "
                                                      "in time"
                                                    : "the new process ended before serving");
        return;
    }
    sg_log_info("upgrade: process %d serves on the same sockets; this one (%d) stops gracefully",
                (int)ms->up.pid, (int)getpid());
    sg_journal_emit("upgraded",
                    json_pack("{s:i, s:i}", "old_pid", (int)getpid(), "new_pid", (int)ms->up.pid));
    close(ms->up.sock);
    ms->up.sock = -1;
    sg_sd_mainpid((long)ms->up.pid); /* before STOPPING=1: the service goes on */
    if (ms->stops == 0) {
        ms->stops++;
        main_stop(ms);
    }
}

/* Starts a binary upgrade (SIGUSR2, admin POST upgrade): runs the
 * executable again and hands it the listening sockets and the runtime
 * state; we stop once it serves (main_upgrade_answer). */
static void main_upgrade_go(evutil_socket_t fd, short what, void *arg)
{
    struct main_state *ms = arg;
    if (ms->up.pid > 0 || ms->stops > 0)
        return;
    struct sg_lfds lfds = {0};
    for (uint32_t i = 0; i < ms->gen->nworkers; i++)
        sg_worker_listeners(ms->gen->workers[i], &lfds);
    json_t *state = sg_upgrade_state(&ms->gen->pools);
    /* The new process opens the admin listener itself (the same address). */
    sg_admin_set_discover(ms->admin, NULL);
    sg_admin_stop(ms->admin);
    ms->admin = NULL;
    char err[300];
    ms->up.sock = -1;
    int rc = sg_upgrade_spawn(ms->exe, ms->argv, &lfds, state, &ms->up, err, sizeof(err));
    json_decref(state);
    size_t nl = lfds.n;
    sg_lfds_free(&lfds);
    if (rc != SG_OK) {
        ms->up.pid = 0;
        main_upgrade_failed(ms, err);
        return;
    }
    sg_log_info("upgrade: started %s as process %d with %zu listening sockets", ms->exe,
                (int)ms->up.pid, nl);
    if (ms->up_ev != NULL)
        event_free(ms->up_ev);
    ms->up_ev = event_new(ms->base, ms->up.sock, EV_READ, main_upgrade_answer, ms);
    struct timeval tv = {MAIN_UPGRADE_WAIT_S, 0};
    event_add(ms->up_ev, &tv);
}

static void main_on_usr2(evutil_socket_t sig, short what, void *arg)
{
    sg_log_info("SIGUSR2: binary upgrade");
    main_upgrade_go(-1, 0, arg);
}

static json_t *main_upgrade_admin(void *arg)
{
    struct main_state *ms = arg;
    if (ms->up.pid > 0 || ms->stops > 0)
        return json_pack("{s:b, s:s}", "started", 0, "error",
                         ms->stops > 0 ? "stopping" : "an upgrade is in progress");
    /* After the reply has gone out: the handover closes the admin API. */
    struct timeval tv = {0, 100 * 1000};
    event_base_once(ms->base, -1, EV_TIMEOUT, main_upgrade_go, ms, &tv);
    return json_pack("{s:b, s:s, s:i}", "started", 1, "exe", ms->exe, "pid", (int)getpid());
}

static void main_admin_start(struct main_state *ms)
{
    ms->admin = sg_admin_start(ms->base, ms->gen->cfg, &ms->gen->pools, ms->ctl);
    sg_admin_set_discover(ms->admin, ms->disc);
    if (ms->cfg_path != NULL)
        sg_admin_set_reload(ms->admin, main_reload_admin, main_upgrade_admin, ms);
}

/* The signals surgegate acts on, one row each (SIGPIPE is ignored, the
 * fatal ones and those that mean nothing to us are signals.c's). */
static const struct {
    int sig;
    event_callback_fn cb;
} main_signals[] = {
    {SIGTERM, main_on_signal}, /* graceful stop */
    {SIGINT, main_on_signal},  /* graceful stop (Ctrl-C) */
    {SIGQUIT, main_on_signal}, /* graceful stop (as nginx; Docker's STOPSIGNAL for it) */
    {SIGUSR1, main_on_usr1},   /* reopen the log files */
    {SIGHUP, main_on_hup},     /* reload in place */
    {SIGUSR2, main_on_usr2},   /* binary upgrade */
};

static void print_demo_banner(const struct sg_cfg *cfg, const struct main_demo *md)
{
    const struct sg_cfg_frontend *fe = &cfg->frontends[0];
    const struct sg_cfg_pool *p = &cfg->pools[0];
    /* surgectl beside us (build/ or /usr/bin), else from PATH */
    char ctl[600] = "surgectl";
    const char *slash = strrchr(md->exe, '/');
    if (slash != NULL) {
        snprintf(ctl, sizeof(ctl), "%.*s/surgectl", (int)(slash - md->exe), md->exe);
        if (access(ctl, X_OK) != 0)
            snprintf(ctl, sizeof(ctl), "surgectl");
    }
    printf("surgegate %s demo: proxy on http://%s, admin API on %s\n", SG_VERSION, fe->listen.text,
           md->admin);
    printf("pool '%s': %zu demo backends, each a process of its own (maxconn %u, %u ms a "
           "request):\n",
           p->name, md->procs.n, p->nbackends > 0 ? p->backends[0].maxconn : 0, SG_DEMO_DELAY_MS);
    for (size_t i = 0; i < md->procs.n; i++)
        printf("  backend %s  pid %d\n", md->procs.addr[i], (int)md->procs.pid[i]);
    printf("\nTry, in other terminals:\n");
    printf("  curl -s http://%s/                  # one backend answers\n", fe->listen.text);
    printf("  %s --admin %s status --watch\n", ctl, md->admin);
    printf("                                     # the pool, live\n");
    printf("  kill %d                          # stop backend %s: it turns down, its\n",
           (int)md->procs.pid[0], md->procs.addr[0]);
    printf("                                     # requests fail over to the other\n");
    printf("  wrk -t2 -c200 -d60s http://%s/   # a surge: the queue grows, hooks/local-spawn\n"
           "                                     # adds backends (maxconn %u like these); after\n"
           "                                     # it, they drain and stop\n",
           fe->listen.text, p->nbackends > 0 ? p->backends[0].maxconn : 0);
    printf("  %s --admin %s events   # the timeline\n", ctl, md->admin);
    printf("  curl -s http://%s/metrics   # Prometheus\n", md->admin);
    printf("\nPress Ctrl-C to stop: the demo backends and those the surge added stop too.\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    bool test_only = false, demo = false;
    struct main_demo md = {.port = 8080, .admin_port = 9900};
    bool demo_port = false;
    const char *demo_backend = NULL;
    const char *log_level = NULL;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"demo", no_argument, NULL, 'D'},
        {"demo-backend", required_argument, NULL, 'B'},
        {"demo-port", required_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"list-names", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:tl:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'D':
            demo = true;
            break;
        case 'B':
            demo_backend = optarg;
            break;
        case 'P': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65534) {
                fprintf(stderr, "surgegate: --demo-port: '%s' is not a port 1..65534\n", optarg);
                return 2;
            }
            md.port = (int)v;
            md.admin_port = (int)v + 1;
            demo_port = true;
            break;
        }
        case 'l':
            log_level = optarg;
            break;
        case 'v':
            printf("surgegate %s\n", SG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'N':
            main_list_names(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "surgegate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    sg_signals_fatal_install();
    if (demo_backend != NULL)
        return sg_demo_backend_run(demo_backend, SG_DEMO_DELAY_MS);
    if (demo_port && !demo) {
        fprintf(stderr, "surgegate: --demo-port is for --demo\n");
        return 2;
    }
    if (demo && cfg_path != NULL) {
        fprintf(stderr, "surgegate: --demo uses its embedded configuration; drop -c\n");
        return 2;
    }
    /* Take the hard open-file limit as ours (as nginx's worker_rlimit_nofile
     * would): before loading, so `-t` warns against what will be in force. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sg_cfg_diags diags;
    struct sg_cfg *cfg;
    if (demo) {
        if (!test_only) {
            int drc = main_demo_prepare(&md);
            if (drc != 0)
                return drc;
        }
        sg_cfg_diags_init(&diags, "<demo>");
        char *text = main_demo_conf(test_only ? NULL : &md);
        cfg = sg_cfg_load_string(text, "<demo>", &diags);
        free(text);
    } else {
        if (cfg_path == NULL)
            cfg_path = SG_DEFAULT_CONFIG;
        sg_cfg_diags_init(&diags, cfg_path);
        cfg = sg_cfg_load_file(cfg_path, &diags);
    }
    /* The hooks must be there now, not at the first surge. */
    if (cfg != NULL && sg_cfg_check_programs(cfg, &diags) != SG_OK) {
        sg_cfg_free(cfg);
        cfg = NULL;
    }
    sg_cfg_diags_print(&diags, stderr);
    if (test_only) {
        if (cfg != NULL)
            fprintf(stderr, "configuration file %s is valid (%zu warning%s)\n",
                    demo ? "<demo>" : cfg_path, diags.nwarnings, diags.nwarnings == 1 ? "" : "s");
        else
            fprintf(stderr, "configuration file %s has %zu error%s\n", demo ? "<demo>" : cfg_path,
                    diags.nerrors, diags.nerrors == 1 ? "" : "s");
        sg_cfg_diags_free(&diags);
        sg_cfg_free(cfg);
        return cfg != NULL ? 0 : 1;
    }
    sg_cfg_diags_free(&diags);
    if (cfg == NULL) {
        fprintf(stderr, "surgegate: invalid configuration, not starting\n");
        main_demo_finish(&md, NULL, NULL);
        return 1;
    }
    enum sg_log_level lvl;
    if (log_level != NULL) {
        if (sg_log_parse_level(log_level, &lvl) != SG_OK) {
            fprintf(stderr, "surgegate: bad log level '%s'\n", log_level);
            sg_cfg_free(cfg);
            main_demo_finish(&md, NULL, NULL);
            return 2;
        }
        sg_log_set_level(lvl);
    } else if (cfg->log_level != NULL && sg_log_parse_level(cfg->log_level, &lvl) == SG_OK) {
        sg_log_set_level(lvl);
    }

    /* No evthread locking: each event_base is used by one thread only. */
    signal(SIGPIPE, SIG_IGN);
    struct main_state ms = {0};
    ms.base = event_base_new();
    ms.cfg_path = demo ? NULL : cfg_path;
    ms.argv = argv;
    ms.up.sock = -1;
    ssize_t el = readlink("/proc/self/exe", ms.exe, sizeof(ms.exe) - 1);
    ms.exe[el > 0 ? (size_t)el : 0] = '\0';
    /* Started by a binary upgrade: the running process hands over its
     * listening sockets and runtime state. */
    int up_fd = -1;
    struct sg_lfds inherited = {0};
    json_t *up_state = NULL;
    const char *up_env = getenv("SURGEGATE_UPGRADE_FD");
    if (up_env != NULL) {
        up_fd = atoi(up_env);
        unsetenv("SURGEGATE_UPGRADE_FD");
        (void)fcntl(up_fd, F_SETFD, FD_CLOEXEC);
        char uerr[256];
        if (sg_upgrade_receive(up_fd, &inherited, &up_state, uerr, sizeof(uerr)) != SG_OK) {
            sg_log_error("upgrade: %s; not starting (the running process goes on serving)", uerr);
            close(up_fd);
            sg_cfg_free(cfg);
            return 1;
        }
        sg_log_info("upgrade: took over %zu listening sockets from the running process",
                    inherited.n);
    }
    ms.log_level_forced = log_level != NULL;
    int rc = 1;
    struct event *demo_ev = NULL;
    struct sg_journal *journal = NULL;
    struct event *sigevs[SG_ARRAY_SIZE(main_signals)] = {0};
    struct sg_signals_quiet *quiet = NULL;
    if (ms.base == NULL)
        goto out;
    char jerr[256];
    journal = sg_journal_new(cfg->journal.path, cfg->journal.size ? cfg->journal.size : 10000, jerr,
                             sizeof(jerr));
    if (journal == NULL) {
        sg_log_error("journal: %s", jerr);
        goto out;
    }
    ms.journal = journal;
    sg_journal_set_default(journal);
    if (cfg->access_log.path != NULL) {
        ms.alog = sg_alog_open(cfg->access_log.path, main_alog_format(cfg), jerr, sizeof(jerr));
        if (ms.alog == NULL) {
            sg_log_error("access log: %s", jerr);
            goto out;
        }
    }
    if (demo) {
        struct timeval sec = {1, 0};
        demo_ev = event_new(ms.base, -1, EV_PERSIST, main_demo_poll, &md.procs);
        if (demo_ev == NULL || event_add(demo_ev, &sec) != 0)
            goto out;
    }
    sg_memory_init(cfg->limits.buffer_memory);
    /* Binds every listener before any thread starts: a bad port fails now. */
    ms.gen = sg_gen_new(cfg, NULL, &inherited, ms.alog, NULL);
    cfg = NULL; /* the generation's now */
    if (ms.gen == NULL)
        goto out;
    struct sg_gen *g = ms.gen;
    if (up_state != NULL)
        sg_log_info("upgrade: runtime state applied to %zu backends",
                    sg_upgrade_apply(&g->pools, up_state));
    for (size_t i = 0; i < SG_ARRAY_SIZE(main_signals); i++) {
        sigevs[i] = evsignal_new(ms.base, main_signals[i].sig, main_signals[i].cb, &ms);
        if (sigevs[i] == NULL || evsignal_add(sigevs[i], NULL) != 0) {
            sg_log_error("cannot handle %s", sg_signals_name(main_signals[i].sig));
            goto out;
        }
    }
    quiet = sg_signals_quiet_start(ms.base);
    if (quiet == NULL)
        goto out;
    ms.poll_ev = evtimer_new(ms.base, main_poll_stop, &ms);
    ms.reap_ev = evtimer_new(ms.base, main_reap, &ms);
    if (sg_gen_start(g) != SG_OK)
        goto out;
    ms.ctl = sg_control_new(ms.base, g->cfg, &g->pools, g->workers, g->nworkers);
    if (ms.ctl == NULL) {
        sg_gen_stop(g);
        goto out;
    }
    ms.health = sg_health_start(ms.base, &g->pools, main_backend_changed, &ms);
    if (ms.health == NULL) {
        sg_gen_stop(g);
        goto out;
    }
    sg_control_set_health(ms.ctl, ms.health);
    ms.disc = sg_discover_new(ms.base, g->cfg, &g->pools, ms.ctl);
    main_admin_start(&ms);
    if (ms.admin == NULL && g->cfg->admin.line != 0) {
        sg_log_error("admin: the configured admin listener could not start");
        sg_gen_stop(g);
        goto out;
    }
    for (size_t i = 0; i < g->cfg->nfrontends; i++)
        sg_log_info("frontend '%s' listening on %s", g->cfg->frontends[i].name,
                    g->cfg->frontends[i].listen.text);
    sg_log_info("surgegate %s started with %u worker%s", SG_VERSION, g->nworkers,
                g->nworkers == 1 ? "" : "s");
    sg_journal_emit("config_loaded",
                    json_pack("{s:s, s:i, s:i, s:i}", "file", demo ? "<demo>" : cfg_path, "workers",
                              (int)g->nworkers, "pools", (int)g->cfg->npools, "frontends",
                              (int)g->cfg->nfrontends));
    /* Every listener is bound and every worker runs: ready. */
    sg_sd_ready();
    ms.watchdog = sg_sd_watchdog_start(ms.base);
    if (demo)
        print_demo_banner(g->cfg, &md);
    if (up_fd >= 0) {
        /* Serving: the process we replace may stop. */
        if (send(up_fd, "R", 1, MSG_NOSIGNAL) != 1)
            sg_log_warn("upgrade: could not tell the previous process: %s", strerror(errno));
        close(up_fd);
        up_fd = -1;
        for (size_t i = 0; i < inherited.n; i++) {
            close(inherited.v[i].fd); /* the workers hold duplicates */
            inherited.v[i].fd = -1;
        }
        sg_journal_emit("upgrade_started", json_pack("{s:i}", "pid", (int)getpid()));
    }
    event_base_dispatch(ms.base);
    sg_log_info("stopped");
    rc = 0;
out:
    sg_admin_set_discover(ms.admin, NULL);
    sg_discover_free(ms.disc);
    sg_health_stop(ms.health);
    sg_admin_stop(ms.admin);
    sg_control_free(ms.ctl);
    /* the backends the demo started, before the pools that name them go */
    main_demo_finish(&md, ms.gen != NULL ? ms.gen->cfg : NULL,
                     ms.gen != NULL ? &ms.gen->pools : NULL);
    sg_gen_free(ms.gen); /* joins its workers (stopped by now) */
    while (ms.retiring != NULL) {
        struct sg_gen *r = ms.retiring;
        ms.retiring = r->next;
        sg_gen_free(r);
    }
    sg_sd_watchdog_free(ms.watchdog);
    for (size_t i = 0; i < SG_ARRAY_SIZE(sigevs); i++)
        if (sigevs[i] != NULL)
            event_free(sigevs[i]);
    sg_signals_quiet_free(quiet);
    if (ms.up_ev)
        event_free(ms.up_ev);
    if (ms.up.sock >= 0)
        close(ms.up.sock);
    for (size_t i = 0; i < inherited.n; i++)
        if (inherited.v[i].fd >= 0)
            close(inherited.v[i].fd);
    sg_lfds_free(&inherited);
    json_decref(up_state);
    if (up_fd >= 0)
        close(up_fd);
    if (ms.poll_ev)
        event_free(ms.poll_ev);
    if (ms.reap_ev)
        event_free(ms.reap_ev);
    if (demo_ev)
        event_free(demo_ev);
    if (ms.base)
        event_base_free(ms.base);
    sg_alog_close(ms.alog); /* after the workers handed their buffers over */
    sg_journal_set_default(NULL);
    sg_journal_free(journal);
    sg_cfg_free(cfg);
    libevent_global_shutdown();
    return rc;
}
