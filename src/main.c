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
#include "surgegate/worker.h"

#include "demo_conf.h"

#define SG_DEFAULT_CONFIG "/etc/surgegate/surgegate.conf"

struct main_state {
    struct event_base *base;
    struct sg_worker **workers;
    uint32_t nworkers;
    int stops; /* signals received */
    struct event *poll_ev;
    struct sg_health *health;
    struct sg_admin *admin;
    struct sg_control *ctl;
    struct sg_journal *journal;
    struct sg_alog *alog;
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
    sg_log_info("signal %d: stopping gracefully (send again to exit at once)", (int)sig);
    sg_control_stopping(ms->ctl);
    sg_health_stop(ms->health);
    ms->health = NULL;
    sg_control_set_health(ms->ctl, NULL);
    sg_admin_stop(ms->admin);
    ms->admin = NULL;
    for (uint32_t i = 0; i < ms->nworkers; i++)
        sg_worker_stop(ms->workers[i]);
    struct timeval tv = {0, 50 * 1000};
    evtimer_add(ms->poll_ev, &tv);
}

/* Startup failed after n workers started: stop them and wait for them. */
static void main_stop_workers(struct main_state *ms, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        sg_worker_stop(ms->workers[i]);
    for (uint32_t i = 0; i < n; i++)
        sg_worker_join(ms->workers[i]);
}

/* Polls (only while stopping) for the workers to finish. */
static void main_poll_stop(evutil_socket_t fd, short what, void *arg)
{
    struct main_state *ms = arg;
    uint32_t done = 0;
    for (uint32_t i = 0; i < ms->nworkers; i++)
        done += atomic_load(&ms->workers[i]->done) ? 1 : 0;
    if (done == ms->nworkers) {
        event_base_loopexit(ms->base, NULL);
        return;
    }
    struct timeval tv = {0, 50 * 1000};
    evtimer_add(ms->poll_ev, &tv);
}

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
    int rc = 1;
    struct sg_pools pools = {0};
    struct sg_demo *dm = NULL;
    struct sg_journal *journal = NULL;
    struct event *sigterm = NULL, *sigint = NULL, *sigusr1 = NULL;
    struct sg_gate *gates = NULL;
    if (ms.base == NULL || sg_pools_build(&pools, cfg) != SG_OK)
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
        enum sg_alog_format fmt =
            cfg->access_log.format != NULL && strcmp(cfg->access_log.format, "combined") == 0
                ? SG_ALOG_COMBINED
                : SG_ALOG_JSON;
        ms.alog = sg_alog_open(cfg->access_log.path, fmt, jerr, sizeof(jerr));
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
    ms.nworkers = cfg->workers;
    ms.workers = sg_xcalloc(ms.nworkers, sizeof(*ms.workers));
    /* Each frontend's maxconn is one limit for all the workers. */
    gates = sg_xcalloc(cfg->nfrontends > 0 ? cfg->nfrontends : 1, sizeof(*gates));
    for (size_t i = 0; i < cfg->nfrontends; i++)
        sg_gate_init(&gates[i], cfg->frontends[i].maxconn, ms.nworkers);
    /* Bind every listener before any thread starts: a bad port fails now. */
    for (uint32_t i = 0; i < ms.nworkers; i++) {
        ms.workers[i] = sg_worker_new(i, ms.nworkers, cfg, &pools, gates);
        if (ms.workers[i] == NULL)
            goto out;
        sg_worker_set_alog(ms.workers[i], ms.alog);
    }
    sigterm = evsignal_new(ms.base, SIGTERM, main_on_signal, &ms);
    sigint = evsignal_new(ms.base, SIGINT, main_on_signal, &ms);
    sigusr1 = evsignal_new(ms.base, SIGUSR1, main_on_usr1, &ms);
    evsignal_add(sigusr1, NULL);
    ms.poll_ev = evtimer_new(ms.base, main_poll_stop, &ms);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    uint32_t started = 0;
    for (; started < ms.nworkers; started++)
        if (sg_worker_start(ms.workers[started]) != SG_OK)
            break;
    if (started < ms.nworkers) {
        main_stop_workers(&ms, started);
        goto out;
    }
    ms.ctl = sg_control_new(ms.base, cfg, &pools, ms.workers, ms.nworkers);
    if (ms.ctl == NULL) {
        main_stop_workers(&ms, ms.nworkers);
        goto out;
    }
    ms.health = sg_health_start(ms.base, &pools, main_backend_changed, &ms);
    if (ms.health == NULL) {
        main_stop_workers(&ms, ms.nworkers);
        goto out;
    }
    sg_control_set_health(ms.ctl, ms.health);
    ms.admin = sg_admin_start(ms.base, cfg, &pools, ms.ctl);
    if (ms.admin == NULL && cfg->admin.line != 0) {
        sg_log_error("admin: the configured admin listener could not start");
        main_stop_workers(&ms, ms.nworkers);
        goto out;
    }
    for (size_t i = 0; i < cfg->nfrontends; i++)
        sg_log_info("frontend '%s' listening on %s", cfg->frontends[i].name,
                    cfg->frontends[i].listen.text);
    sg_log_info("surgegate %s started with %u worker%s", SG_VERSION, ms.nworkers,
                ms.nworkers == 1 ? "" : "s");
    sg_journal_emit("config_loaded",
                    json_pack("{s:s, s:i, s:i, s:i}", "file", demo ? "<demo>" : cfg_path, "workers",
                              (int)ms.nworkers, "pools", (int)cfg->npools, "frontends",
                              (int)cfg->nfrontends));
    if (demo)
        print_demo_banner(cfg);
    event_base_dispatch(ms.base);
    for (uint32_t i = 0; i < ms.nworkers; i++)
        sg_worker_join(ms.workers[i]);
    sg_log_info("stopped");
    rc = 0;
out:
    sg_health_stop(ms.health);
    sg_admin_stop(ms.admin);
    sg_control_free(ms.ctl);
    if (ms.workers != NULL) {
        for (uint32_t i = 0; i < ms.nworkers; i++)
            sg_worker_free(ms.workers[i]);
        free(ms.workers);
    }
    if (gates != NULL) {
        for (size_t i = 0; i < cfg->nfrontends; i++)
            sg_gate_destroy(&gates[i]);
        free(gates);
    }
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (sigusr1)
        event_free(sigusr1);
    if (ms.poll_ev)
        event_free(ms.poll_ev);
    sg_demo_free(dm);
    sg_pools_free(&pools);
    if (ms.base)
        event_base_free(ms.base);
    sg_alog_close(ms.alog); /* after the workers handed their buffers over */
    sg_journal_set_default(NULL);
    sg_journal_free(journal);
    sg_cfg_free(cfg);
    libevent_global_shutdown();
    return rc;
}
