/* main.c: command line, configuration check, startup, signals, graceful
 * stop and the demo mode. The main thread runs signals (and the demo
 * backends); workers run the traffic. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include "surgegate/worker.h"

#include "demo_conf.h"

#define SG_DEFAULT_CONFIG "/etc/surgegate/surgegate.conf"

struct main_state {
    struct event_base *base;
    struct sg_gen *gen;      /* the generation serving */
    struct sg_gen *retiring; /* earlier ones still draining (after reloads) */
    const char *cfg_path;    /* NULL: the demo's embedded configuration */
    bool log_level_forced;   /* -l given: a reload keeps it */
    int stops;               /* signals received */
    struct event *poll_ev;
    struct event *reap_ev;
    struct sg_health *health;
    struct sg_admin *admin;
    struct sg_control *ctl;
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

/* The demo configuration with @HOOKS@ replaced by the directory of the
 * example hooks: $SURGEGATE_HOOKS_DIR, else the source tree's hooks/ (a
 * build run in place), else the installed copy. Owned by the caller. */
static char *main_demo_conf(void)
{
    const char *dir = getenv("SURGEGATE_HOOKS_DIR");
    if (dir == NULL || dir[0] != '/') {
        dir = SG_HOOKS_DIR;
        if (access(SG_HOOKS_DIR "/local-spawn", X_OK) != 0)
            dir = SG_HOOKS_INSTALL_DIR;
    }
    return sg_demo_conf_fill(sg_demo_conf, dir);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: surgegate [-c FILE] [-t] [--demo] [--log-level LEVEL] [--version]\n"
                 "  -c, --config FILE   configuration file (default " SG_DEFAULT_CONFIG ")\n"
                 "  -t, --test          check the configuration and exit (0 valid, 1 invalid)\n"
                 "      --demo          run an embedded demo: proxy on 127.0.0.1:8080, two local\n"
                 "                      backends, autoscaled by hooks/local-spawn\n"
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

static void main_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_state *ms = arg;
    ms->stops++;
    if (ms->stops > 1) {
        sg_log_warn("second signal: exiting now");
        _exit(1);
    }
    sg_log_info("%s: stopping gracefully (send again to exit at once)", sg_signals_name((int)sig));
    sg_sd_stopping();
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
        g = sg_gen_new(cfg, ms->gen, ms->alog, carry); /* takes cfg */
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
};

static void print_demo_banner(const struct sg_cfg *cfg)
{
    const struct sg_cfg_frontend *fe = &cfg->frontends[0];
    printf("surgegate %s demo: proxy on http://%s, pool '%s' with %zu local backends:", SG_VERSION,
           fe->listen.text, cfg->pools[0].name, cfg->pools[0].nbackends);
    for (size_t i = 0; i < cfg->pools[0].nbackends; i++)
        printf(" %s", cfg->pools[0].backends[i].address.text);
    printf("\n\nTry:\n");
    printf("  curl -s http://%s/\n", fe->listen.text);
    printf("  for i in 1 2 3 4; do curl -s http://%s/; done   # spread over the backends\n",
           fe->listen.text);
    if (!cfg->admin.listen.is_unix) {
        printf("  build/surgectl --admin %s status --watch   # in another terminal\n",
               cfg->admin.listen.text);
        printf("  wrk -t2 -c200 -d60s http://%s/   # a surge: the queue grows, hooks/local-spawn\n"
               "                                  # adds backends; after it, they drain and go\n",
               fe->listen.text);
        printf("  build/surgectl --admin %s events   # the timeline\n", cfg->admin.listen.text);
        printf("  curl -s http://%s/metrics   # Prometheus\n", cfg->admin.listen.text);
    }
    printf("\nPress Ctrl-C to stop.\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    bool test_only = false, demo = false;
    const char *demo_backend = NULL;
    const char *log_level = NULL;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"demo", no_argument, NULL, 'D'},
        {"demo-backend", required_argument, NULL, 'B'},
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
        sg_cfg_diags_init(&diags, "<demo>");
        char *text = main_demo_conf();
        cfg = sg_cfg_load_string(text, "<demo>", &diags);
        free(text);
    } else {
        if (cfg_path == NULL)
            cfg_path = SG_DEFAULT_CONFIG;
        sg_cfg_diags_init(&diags, cfg_path);
        cfg = sg_cfg_load_file(cfg_path, &diags);
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
        return 1;
    }
    enum sg_log_level lvl;
    if (log_level != NULL) {
        if (sg_log_parse_level(log_level, &lvl) != SG_OK) {
            fprintf(stderr, "surgegate: bad log level '%s'\n", log_level);
            sg_cfg_free(cfg);
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
    ms.log_level_forced = log_level != NULL;
    int rc = 1;
    struct sg_demo *dm = NULL;
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
        dm = sg_demo_start(ms.base, cfg);
        if (dm == NULL)
            goto out;
    }
    sg_memory_init(cfg->limits.buffer_memory);
    /* Binds every listener before any thread starts: a bad port fails now. */
    ms.gen = sg_gen_new(cfg, NULL, ms.alog, NULL);
    cfg = NULL; /* the generation's now */
    if (ms.gen == NULL)
        goto out;
    struct sg_gen *g = ms.gen;
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
    ms.admin = sg_admin_start(ms.base, g->cfg, &g->pools, ms.ctl);
    if (ms.admin == NULL && g->cfg->admin.line != 0) {
        sg_log_error("admin: the configured admin listener could not start");
        sg_gen_stop(g);
        goto out;
    }
    if (!demo)
        sg_admin_set_reload(ms.admin, main_reload_admin, &ms);
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
        print_demo_banner(g->cfg);
    event_base_dispatch(ms.base);
    sg_log_info("stopped");
    rc = 0;
out:
    sg_health_stop(ms.health);
    sg_admin_stop(ms.admin);
    sg_control_free(ms.ctl);
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
    if (ms.poll_ev)
        event_free(ms.poll_ev);
    if (ms.reap_ev)
        event_free(ms.reap_ev);
    sg_demo_free(dm);
    if (ms.base)
        event_base_free(ms.base);
    sg_alog_close(ms.alog); /* after the workers handed their buffers over */
    sg_journal_set_default(NULL);
    sg_journal_free(journal);
    sg_cfg_free(cfg);
    libevent_global_shutdown();
    return rc;
}
