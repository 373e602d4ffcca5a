/* control.c: the control plane (main thread). See control.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "surgegate/alert.h"
#include "surgegate/autoscale.h"
#include "surgegate/cfg.h"
#include "surgegate/cluster.h"
#include "surgegate/common.h"
#include "surgegate/control.h"
#include "surgegate/group.h"
#include "surgegate/health.h"
#include "surgegate/hook.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"
#include "surgegate/memory.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"
#include "surgegate/stats.h"
#include "surgegate/worker.h"

#define CONTROL_TICK_MS           1000u
#define CONTROL_RETRY_MIN_MS      5000u   /* first retry of a failed scale hook */
#define CONTROL_RETRY_MAX_MS      300000u /* backoff ceiling */
#define CONTROL_ALERTS_MAX        8u      /* alert hooks in flight at once */
#define CONTROL_OVERFLOW_ALERT_MS 60000u  /* queue_overflow alerts per pool at most this often */
#define CONTROL_DEGRADED_FRACTION 0.5     /* pool_degraded: under half its backends usable */
#define CONTROL_INSTANCES_MAX     64u     /* cluster members whose metrics are summed */

/* Hook run outcomes, the `result` label of surgegate_hook_runs_total. */
enum control_result { CR_OK = 0, CR_FAILED, CR_TIMEOUT, CR_SPAWN_FAILED, CR_BAD_OUTPUT, CR_N };
static const char *const control_result_names[CR_N] = {"ok", "failed", "timeout", "spawn_failed",
                                                       "bad_output"};
/* Hook actions, the `action` label. */
enum control_action { CA_UP = 0, CA_DOWN, CA_ALERT, CA_N };
static const char *const control_action_names[CA_N] = {"scale_up", "scale_down", "alert"};

struct control_pool {
    uint64_t overflows_seen;    /* queue overflows already journaled */
    uint64_t episodes_seen;     /* queue standing episodes already journaled */
    bool shedding;              /* a shedding_start was journaled, its end not yet */
    uint64_t shed_start;        /* shed requests (all kinds) at the episode's start */
    uint64_t shed_start_ms;     /* monotonic ms of the episode's start (seen) */
    struct sg_as *as;           /* NULL: no autoscale */
    bool running[2];            /* a scale hook in flight, per direction */
    uint32_t nfail[2];          /* consecutive failed runs, per direction */
    uint64_t retry_at[2];       /* monotonic ms: no new run before */
    struct sg_as_decision last; /* the last decision acted on */
    uint64_t last_ms;           /* wall ms of it (0: none) */
    bool empty, degraded;       /* alert states */
    uint64_t overflow_alert_ms; /* last queue_overflow alert, monotonic */
    uint64_t runs[CA_N][CR_N];  /* surgegate_hook_runs_total */
    double m[SG_AS_NMETRICS];   /* the last tick's metric values */
    bool *rule_on;              /* per autoscale rule: its condition held last tick */
    /* The last scale that ran (hook ok) until the group has the count it
     * asked for, or settle_timeout: no new decision meanwhile. */
    bool settling;
    struct sg_as_decision settle; /* what it asked for */
    uint64_t settle_from_ms;      /* monotonic ms of the decision */

    /* With a cluster (cluster.h), m is the aggregate of every instance's. */
    double local_m[SG_AS_NMETRICS]; /* this instance's own view */
    struct sg_cluster_raw raw;      /* its raw inputs, published to the cluster */
    size_t ninstances;              /* instances whose metrics m sums (1: alone) */
    uint64_t acted_id;              /* wall ms of the last action taken here (published) */
    struct sg_as_decision acted;    /* that action */
    uint64_t mirrored_id;           /* the leader's last action whose cooldown runs here */
    struct sg_as_decision skipped;  /* the last decision not acted on (not the leader) */
    uint64_t skipped_ms;            /* monotonic ms it was journaled */
    int skipped_role;               /* enum sg_cluster_role then */
};

/* One hook run in flight: what to do with its result. */
struct control_run {
    struct sg_control *ctl;
    char *pool; /* its name (a reload may move or drop it), NULL: an alert about no pool */
    enum control_action action;
    struct sg_as_decision d;
    char *event; /* alerts */
    char **env;
    char *stdin_data;
};

struct sg_control {
    struct event_base *base;
    const struct sg_cfg *cfg;
    struct sg_pools *pools;
    struct sg_worker **workers;
    uint32_t nworkers;
    struct sg_health *health;
    struct sg_stats *stats;
    struct event *tick;
    struct control_pool *cp;
    struct sg_hookrunner *hooks;
    uint32_t alerts_running;
    uint64_t alert_runs[CR_N]; /* alerts not tied to a pool */
    char exe[512];             /* our own binary: SURGEGATE_BIN for hooks */

    struct sg_cluster *cluster; /* NULL: no cluster group, this instance decides alone */
};

static void control_event(struct sg_control *ctl, const char *type, json_t *fields);

static void control_kick(struct sg_control *ctl)
{
    for (uint32_t i = 0; i < ctl->nworkers; i++)
        sg_worker_kick(ctl->workers[i]);
}

static json_t *control_backend_fields(const struct sg_backend *b)
{
    return json_pack("{s:s, s:s}", "pool", b->pool->name, "backend", b->name);
}

void sg_control_backend_changed(struct sg_control *ctl, struct sg_backend *b)
{
    uint64_t now = sg_now_ms();
    if (b->pool->slowstart_ms > 0 && sg_backend_usable(b, now))
        atomic_store(&b->ramp_from, now);
    int st = (int)sg_backend_state(b, now);
    if (sg_backend_live(b) && st != b->last_state) {
        json_t *f = control_backend_fields(b);
        json_object_set_new(f, "from", json_string(sg_backend_state_name(b->last_state)));
        json_object_set_new(f, "to", json_string(sg_backend_state_name(st)));
        json_object_set_new(f, "reason", json_string(b->reason));
        const char *type = st == SG_BACKEND_DOWN ? sg_alert_event_name(SG_ALERT_BACKEND_DOWN)
                           : st == SG_BACKEND_UP ? sg_alert_event_name(SG_ALERT_BACKEND_UP)
                                                 : "backend_state";
        control_event(ctl, type, f);
        b->last_state = st;
    }
    control_kick(ctl);
}

/* Refuses an address in one of admin.deny_backends (link-local, cloud
 * metadata by default): a backend there would let whoever can add backends
 * (an admin token, a hook's output) make the proxy fetch from the host's
 * metadata service. SG_CTL_OK, SG_CTL_FORBIDDEN or SG_CTL_BAD_REQUEST. */
static enum sg_ctl_err control_check_denied(struct sg_control *ctl, const char *addr, char *err,
                                            size_t errlen)
{
    struct sg_cfg_addr a;
    char why[160];
    if (sg_cfg_parse_addr(addr, &a, why, sizeof(why)) != SG_OK) {
        snprintf(err, errlen, "bad address '%.200s': %s", addr, why);
        return SG_CTL_BAD_REQUEST;
    }
    const struct sg_cfg_cidr *c =
        a.is_unix ? NULL
                  : sg_cfg_cidr_find(ctl->cfg->admin.deny, ctl->cfg->admin.ndeny,
                                     (const struct sockaddr *)&a.ss);
    sg_cfg_addr_free(&a);
    if (c == NULL)
        return SG_CTL_OK;
    snprintf(err, errlen,
             "backend address %.200s is in %s, a range admin.deny_backends refuses for backends "
             "added at runtime",
             addr, c->text);
    return SG_CTL_FORBIDDEN;
}

enum sg_ctl_err sg_control_add_backend(struct sg_control *ctl, struct sg_pool *p, const char *addr,
                                       uint32_t weight, uint32_t maxconn, const char *source,
                                       struct sg_backend **out, bool *revived, char *err,
                                       size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (revived != NULL)
        *revived = false;
    enum sg_ctl_err rc = control_check_denied(ctl, addr, err, errlen);
    if (rc != SG_CTL_OK)
        return rc;
    struct sg_backend *b = sg_pool_find_backend(p, addr, strlen(addr));
    if (b != NULL && atomic_load(&b->removing)) {
        /* Removed a moment ago and still draining: serve again. */
        sg_pool_cancel_removal(p, b, weight, maxconn);
        b->origin = (uint8_t)sg_backend_origin_of(source);
        if (ctl->health != NULL && p->cfg != NULL && p->cfg->health.enabled)
            sg_health_backend_added(ctl->health, b); /* checks stopped with the removal */
        b->last_state = (int)sg_backend_state(b, sg_now_ms());
        json_t *f = control_backend_fields(b);
        json_object_set_new(f, "source", json_string(source));
        json_object_set_new(f, "weight", json_integer(weight));
        json_object_set_new(f, "maxconn", json_integer(maxconn));
        json_object_set_new(f, "removal_cancelled", json_true());
        sg_journal_emit("backend_added", f);
        sg_log_info("backend %s of pool '%s' added again by %s: its removal is cancelled", b->name,
                    p->name, source);
        if (out != NULL)
            *out = b;
        if (revived != NULL)
            *revived = true;
        control_kick(ctl);
        return SG_CTL_OK;
    }
    bool checked = p->cfg != NULL && p->cfg->health.enabled && ctl->health != NULL;
    rc = sg_pool_add_backend(p, addr, weight, maxconn, checked, sg_backend_origin_of(source), &b,
                             err, errlen);
    if (out != NULL)
        *out = b;
    if (rc != SG_CTL_OK)
        return rc;
    sg_stats_slot_reset(ctl->stats, b);
    if (checked)
        sg_health_backend_added(ctl->health, b);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "weight", json_integer(weight));
    json_object_set_new(f, "maxconn", json_integer(maxconn));
    json_object_set_new(f, "origin", json_string(sg_backend_origin_name(b->origin)));
    sg_journal_emit("backend_added", f);
    sg_log_info("backend %s added to pool '%s' by %s%s", b->name, p->name, source,
                checked ? " (checking: joins at its first passing health check)" : "");
    control_kick(ctl);
    return SG_CTL_OK;
}

enum sg_ctl_err sg_control_remove_backend(struct sg_control *ctl, struct sg_backend *b,
                                          const char *source, bool force, char *err, size_t errlen)
{
    if (!sg_backend_live(b) || atomic_load(&b->removing))
        return SG_CTL_OK;
    bool last = sg_pool_nserving(b->pool) <= 1;
    if (last && !force) {
        snprintf(err, errlen,
                 "backend %s is the last backend of pool '%s': without it the pool has nothing to "
                 "send requests to; remove it with ?force=1 to do that anyway",
                 b->name, b->pool->name);
        return SG_CTL_CONFLICT;
    }
    sg_pool_remove_backend(b->pool, b);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "inflight", json_integer(atomic_load(&b->inflight)));
    if (last)
        json_object_set_new(f, "last", json_true());
    sg_journal_emit("backend_removing", f);
    if (last)
        sg_log_warn("backend %s of pool '%s': removal asked by %s, draining; it is the pool's "
                    "last backend%s",
                    b->name, b->pool->name, source, force ? " (forced)" : "");
    else
        sg_log_info("backend %s of pool '%s': removal asked by %s, draining", b->name,
                    b->pool->name, source);
    b->last_state = SG_BACKEND_DRAIN;
    control_kick(ctl);
    return SG_CTL_OK;
}

void sg_control_set_weight(struct sg_control *ctl, struct sg_backend *b, uint32_t weight,
                           const char *source)
{
    uint32_t old = atomic_exchange(&b->weight, weight);
    if (old == weight)
        return;
    atomic_fetch_add(&b->pool->members_gen, 1);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "from", json_integer(old));
    json_object_set_new(f, "to", json_integer(weight));
    sg_journal_emit("backend_weight", f);
    sg_log_info("backend %s of pool '%s': weight %" PRIu32 " -> %" PRIu32 " by %s", b->name,
                b->pool->name, old, weight, source);
    control_kick(ctl);
}

static void control_emptied(struct sg_backend *b, void *arg)
{
    sg_journal_emit("backend_removed", control_backend_fields(b));
    sg_log_info("backend %s of pool '%s' removed (drained)", b->name, b->pool->name);
}

/* The engine learns that d was acted on: here (published for the others),
 * or, here false, by the leader as it published. */
static void control_acted(struct control_pool *cp, const struct sg_as_decision *d, bool here)
{
    sg_as_acted(cp->as, sg_now_ms(), d);
    if (here) {
        cp->acted = *d;
        cp->acted_id = sg_wall_ms();
    }
}

/* ------------------------------------------------------------ hooks */

static void control_run_free(struct control_run *r)
{
    if (r->env != NULL)
        for (size_t i = 0; r->env[i] != NULL; i++)
            free(r->env[i]);
    free(r->env);
    free(r->stdin_data);
    free(r->event);
    free(r->pool);
    free(r);
}

/* The pool (and its control state) a run is about, looked up when needed:
 * NULL when it has none, or when a reload removed it. */
static struct sg_pool *control_run_pool(const struct control_run *run, struct control_pool **cp)
{
    struct sg_pool *p = run->pool != NULL ? sg_pools_find(run->ctl->pools, run->pool) : NULL;
    *cp = p != NULL ? &run->ctl->cp[p->id] : NULL;
    return p;
}

static enum control_result control_result_of(const struct sg_hook_result *r)
{
    if (!r->spawned)
        return CR_SPAWN_FAILED;
    if (r->timed_out)
        return CR_TIMEOUT;
    return r->exit_code == 0 ? CR_OK : CR_FAILED;
}

/* The end of a hook's output, for the journal. */
static json_t *control_tail(const char *p, size_t n)
{
    size_t keep = n > 400 ? 400 : n;
    json_t *s = json_stringn(p + (n - keep), keep);
    return s != NULL ? s : json_string("(output is not UTF-8)");
}

static void control_hook_done(const struct sg_hook_result *r, void *arg)
{
    struct control_run *run = arg;
    struct sg_control *ctl = run->ctl;
    enum control_result res = control_result_of(r);
    struct control_pool *cp;
    struct sg_pool *p = control_run_pool(run, &cp);

    /* A scale hook's output: parsed whole before anything is applied. */
    struct sg_hook_changes ch = {0};
    char perr[256] = "";
    bool bad_output = false;
    if (res == CR_OK && run->action != CA_ALERT && p != NULL &&
        sg_hook_parse_output(r->out, r->outlen, &ch, perr, sizeof(perr)) != SG_OK) {
        bad_output = true;
        res = CR_BAD_OUTPUT;
    }
    json_t *f =
        json_pack("{s:s, s:s, s:i, s:i, s:I, s:b}", "action", control_action_names[run->action],
                  "result", control_result_names[res], "exit_code", r->exit_code, "signal",
                  r->signal, "duration_ms", (json_int_t)r->duration_ms, "timed_out", r->timed_out);
    if (p != NULL)
        json_object_set_new(f, "pool", json_string(p->name));
    if (run->event != NULL)
        json_object_set_new(f, "event", json_string(run->event));
    if (run->action != CA_ALERT) {
        json_object_set_new(f, "current", json_integer(run->d.current));
        json_object_set_new(f, "desired", json_integer(run->d.desired));
    }
    if (!r->spawned)
        json_object_set_new(f, "error", json_string(strerror(r->spawn_errno)));
    if (bad_output)
        json_object_set_new(f, "output_error", json_string(perr));
    json_object_set_new(f, "stdout_tail", control_tail(r->out, r->outlen));
    json_object_set_new(f, "stderr_tail", control_tail(r->err, r->errlen));
    sg_journal_emit("hook_run", json_incref(f));
    if (cp != NULL)
        cp->runs[run->action][res]++;
    else
        ctl->alert_runs[res]++;

    if (res == CR_OK) {
        sg_log_info("hook %s%s%s: ok in %" PRIu64 " ms", control_action_names[run->action],
                    p ? " of pool " : "", p ? p->name : "", r->duration_ms);
        for (size_t i = 0; i < ch.nadd; i++) {
            char err[200];
            /* without a maxconn: the originals' (never unlimited by omission) */
            uint32_t mc = ch.add[i].maxconn_set ? ch.add[i].maxconn : sg_pool_default_maxconn(p);
            enum sg_ctl_err rc = sg_control_add_backend(ctl, p, ch.add[i].address, ch.add[i].weight,
                                                        mc, "hook", NULL, NULL, err, sizeof(err));
            if (rc != SG_CTL_OK && rc != SG_CTL_EXISTS) /* already there: what the hook wants */
                sg_log_warn("hook output: pool '%s': %s", p->name, err);
        }
        for (size_t i = 0; i < ch.nremove; i++) {
            struct sg_backend *b = sg_pool_find_backend(p, ch.remove[i], strlen(ch.remove[i]));
            char err[200];
            /* a scale-down hook may take a pool to zero (scale from zero), but
             * only members of the scaled group: never what an operator added */
            if (b != NULL && !atomic_load(&b->removing) && !sg_pool_in_group(b))
                sg_log_warn("hook output: pool '%s': backend %s is not in the scaled group "
                            "(origin %s): not removed",
                            p->name, b->name, sg_backend_origin_name(b->origin));
            else if (b != NULL)
                (void)sg_control_remove_backend(ctl, b, "hook", true, err, sizeof(err));
            else
                sg_log_warn("hook output: pool '%s' has no backend %s to remove", p->name,
                            ch.remove[i]);
        }
        /* Only a scale that happened starts the cooldown: a failed one
         * is retried after its backoff instead. */
        if (cp != NULL && run->action != CA_ALERT) {
            cp->nfail[run->action] = 0;
            if (cp->as != NULL)
                control_acted(cp, &run->d, true);
            cp->settling = true;
            cp->settle = run->d;
        }
    } else {
        sg_log_warn("hook %s%s%s failed: %s%s%s (exit %d, %" PRIu64 " ms)",
                    control_action_names[run->action], p ? " of pool " : "", p ? p->name : "",
                    control_result_names[res], bad_output ? ": " : "", perr, r->exit_code,
                    r->duration_ms);
        if (cp != NULL && run->action != CA_ALERT) {
            uint32_t k = cp->nfail[run->action]++;
            uint64_t wait = (uint64_t)CONTROL_RETRY_MIN_MS << (k < 6 ? k : 6);
            if (wait > CONTROL_RETRY_MAX_MS)
                wait = CONTROL_RETRY_MAX_MS;
            cp->retry_at[run->action] = sg_now_ms() + wait;
        }
        if (run->action != CA_ALERT) /* never an alert about a failed alert: no loops */
            control_event(ctl, sg_alert_event_name(SG_ALERT_HOOK_FAILED), json_incref(f));
    }
    json_decref(f);
    sg_hook_changes_free(&ch);
    if (cp != NULL && run->action != CA_ALERT)
        cp->running[run->action] = false;
    if (run->action == CA_ALERT && ctl->alerts_running > 0)
        ctl->alerts_running--;
    control_run_free(run);
}

/* Starts argv with run's environment and stdin. When it cannot start, counts
 * that and frees run. Returns whether it runs. */
static bool control_start(struct sg_control *ctl, struct control_run *run, char *const *argv,
                          uint32_t timeout_ms)
{
    if (ctl->hooks == NULL ||
        sg_hook_run(ctl->hooks, argv, run->env, run->stdin_data, strlen(run->stdin_data),
                    timeout_ms, control_hook_done, run) != SG_OK) {
        sg_log_warn("hook %s: cannot start %s", control_action_names[run->action], argv[0]);
        struct control_pool *cp;
        if (control_run_pool(run, &cp) != NULL)
            cp->runs[run->action][CR_SPAWN_FAILED]++;
        else
            ctl->alert_runs[CR_SPAWN_FAILED]++;
        control_run_free(run);
        return false;
    }
    return true;
}

static bool control_event_alerted(const struct sg_cfg *cfg, const char *type)
{
    if (cfg->alerts.hook == NULL || cfg->alerts.events == NULL)
        return false;
    for (size_t i = 0; cfg->alerts.events[i] != NULL; i++)
        if (strcmp(cfg->alerts.events[i], type) == 0)
            return true;
    return false;
}

/* Journals an event and, when the alerts group names it, runs the alert
 * hook with it (at most CONTROL_ALERTS_MAX at once; beyond that the alert is
 * journaled as alert_dropped). Steals fields. */
static void control_event(struct sg_control *ctl, const char *type, json_t *fields)
{
    if (!control_event_alerted(ctl->cfg, type) || ctl->hooks == NULL) {
        sg_journal_emit(type, fields);
        return;
    }
    sg_journal_emit(type, json_incref(fields));
    if (ctl->alerts_running >= CONTROL_ALERTS_MAX) {
        sg_journal_emit("alert_dropped", json_pack("{s:s, s:s}", "event", type, "why",
                                                   "too many alert hooks running"));
        json_decref(fields);
        return;
    }
    const char *pname = json_string_value(json_object_get(fields, "pool"));
    size_t pi = SIZE_MAX;
    for (size_t i = 0; pname != NULL && i < ctl->pools->n; i++)
        if (strcmp(ctl->pools->pools[i].name, pname) == 0)
            pi = i;
    struct control_run *run = sg_xcalloc(1, sizeof(*run));
    run->ctl = ctl;
    run->pool = pi != SIZE_MAX ? sg_xstrdup(pname) : NULL;
    run->action = CA_ALERT;
    run->event = sg_xstrdup(type);
    const struct sg_pool *p = pi != SIZE_MAX ? &ctl->pools->pools[pi] : NULL;
    const struct control_pool *cp = pi != SIZE_MAX ? &ctl->cp[pi] : NULL;
    run->env = sg_group_hook_env(p, ctl->exe, cp != NULL && cp->as != NULL ? cp->m : NULL, "alert",
                                 type, NULL);
    char now[40];
    sg_control_iso_time(sg_wall_ms(), now, sizeof(now));
    json_t *in = json_pack("{s:s, s:s, s:s, s:O}", "action", "alert", "event", type, "time", now,
                           "details", fields);
    if (p != NULL)
        json_object_set_new(
            in, "pool",
            sg_group_snapshot(ctl->stats, p, cp != NULL && cp->as != NULL ? cp->m : NULL));
    run->stdin_data = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    json_decref(fields);
    if (run->stdin_data == NULL)
        run->stdin_data = sg_xstrdup("{}");
    if (control_start(ctl, run, ctl->cfg->alerts.hook, 30000))
        ctl->alerts_running++;
}

/* Alerts on a pool's health: empty (nothing usable) and recovered, degraded
 * (under half its backends usable). A backend still checking (added, not yet
 * passed a check) is not counted: it is joining, not failing. */
static void control_pool_health(struct sg_control *ctl, struct sg_pool *p, struct control_pool *cp)
{
    uint64_t now = sg_now_ms();
    uint32_t live = 0, usable = 0;
    for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
        const struct sg_backend *b = &p->backends[j];
        if (!sg_backend_live(b) || atomic_load(&b->removing) || b->backup ||
            atomic_load(&b->health) == SG_HEALTH_CHECKING)
            continue;
        live++;
        if (sg_backend_usable(b, now))
            usable++;
    }
    bool empty = usable == 0;
    bool degraded = !empty && (double)usable < CONTROL_DEGRADED_FRACTION * (double)live;
    if (empty != cp->empty) {
        cp->empty = empty;
        control_event(ctl,
                      sg_alert_event_name(empty ? SG_ALERT_POOL_EMPTY : SG_ALERT_POOL_RECOVERED),
                      json_pack("{s:s, s:i, s:i}", "pool", p->name, "usable", (int)usable,
                                "backends", (int)live));
    }
    if (degraded != cp->degraded) {
        cp->degraded = degraded;
        if (degraded)
            control_event(ctl, sg_alert_event_name(SG_ALERT_POOL_DEGRADED),
                          json_pack("{s:s, s:i, s:i}", "pool", p->name, "usable", (int)usable,
                                    "backends", (int)live));
    }
}

/* Acts on decision d: journals it and runs the scale hook of its direction
 * (not in dry_run). */
static void control_scale(struct sg_control *ctl, struct sg_pool *p, struct control_pool *cp,
                          const struct sg_as_decision *d)
{
    const struct sg_cfg_autoscale *acfg = &p->cfg->autoscale;
    enum control_action a = d->action == SG_AS_UP ? CA_UP : CA_DOWN;
    char *const *argv = a == CA_UP ? acfg->scale_up_hook : acfg->scale_down_hook;
    uint64_t now = sg_now_ms();
    sg_journal_emit("scale_decision",
                    json_pack("{s:s, s:s, s:i, s:i, s:s, s:b, s:b}", "pool", p->name, "action",
                              control_action_names[a], "current", (int)d->current, "desired",
                              (int)d->desired, "reason", d->reason, "dry_run", acfg->dry_run,
                              "hook", argv != NULL));
    sg_log_info("pool '%s': %s %" PRIu32 " -> %" PRIu32 " (%s)%s", p->name, control_action_names[a],
                d->current, d->desired, d->reason,
                acfg->dry_run  ? " [dry run: no hook]"
                : argv == NULL ? " [no hook configured]"
                               : "");
    cp->last = *d;
    cp->last_ms = sg_wall_ms();
    cp->settle_from_ms = now;
    if (acfg->dry_run || argv == NULL) {
        control_acted(cp, d, true);
        return;
    }
    struct control_run *run = sg_xcalloc(1, sizeof(*run));
    run->ctl = ctl;
    run->pool = sg_xstrdup(p->name);
    run->action = a;
    run->d = *d;
    run->env = sg_group_hook_env(p, ctl->exe, cp->as != NULL ? cp->m : NULL,
                                 control_action_names[a], NULL, d);
    char t[40];
    sg_control_iso_time(sg_wall_ms(), t, sizeof(t));
    json_t *in =
        json_pack("{s:s, s:s, s:i, s:i, s:s, s:b, s:s, s:o}", "action", control_action_names[a],
                  "pool", p->name, "current", (int)d->current, "desired", (int)d->desired, "reason",
                  d->reason, "dry_run", 0, "time", t, "snapshot",
                  sg_group_snapshot(ctl->stats, p, cp != NULL && cp->as != NULL ? cp->m : NULL));
    if (a == CA_DOWN)
        json_object_set_new(in, "remove_first", sg_group_remove_first(p));
    run->stdin_data = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    if (run->stdin_data == NULL)
        run->stdin_data = sg_xstrdup("{}");
    if (control_start(ctl, run, argv, acfg->hook_timeout_ms))
        cp->running[a] = true;
    else
        cp->retry_at[a] = now + CONTROL_RETRY_MIN_MS;
}

/* Journals each autoscale rule whose condition started or stopped holding
 * at this tick's evaluation ("threshold": crossed / cleared, with the value). */
static void control_thresholds(const struct sg_pool *p, struct control_pool *cp)
{
    static const char *const kinds[] = {"above", "below", "target"};
    const struct sg_cfg_autoscale *acfg = &p->cfg->autoscale;
    for (size_t i = 0; i < acfg->nrules; i++) {
        bool on = sg_as_rule_state(cp->as, i, NULL);
        if (on == cp->rule_on[i])
            continue;
        cp->rule_on[i] = on;
        const struct sg_cfg_rule *r = &acfg->rules[i];
        int m = sg_as_metric_parse(r->metric);
        double v = m >= 0 ? cp->m[m] : NAN;
        json_t *f =
            json_pack("{s:s, s:s, s:i, s:s, s:s, s:f, s:I}", "pool", p->name, "state",
                      on ? "crossed" : "cleared", "rule", (int)i, "metric", r->metric, "kind",
                      kinds[r->kind], "threshold", r->value, "for_ms", (json_int_t)r->for_ms);
        json_object_set_new(f, "value", isnan(v) ? json_null() : json_real(v));
        sg_journal_emit("threshold", f);
    }
}

/* Whether the last scale that ran is still settling: then no new decision
 * is acted on, since the counts are stale until its members come (or go).
 * It has settled when the group has what it asked for (an UP: that many
 * members joined, past their first check; a DOWN: at most that many), or
 * at settle_timeout; the journal says which (scale_settled with the wait,
 * or scale_unsettled and a warning). */
static bool control_settling(struct sg_pool *p, struct control_pool *cp, uint64_t now)
{
    if (!cp->settling)
        return false;
    const struct sg_as_decision *d = &cp->settle;
    bool up = d->action == SG_AS_UP;
    uint32_t have = up ? sg_pool_njoined(p) : sg_pool_ncurrent(p);
    bool done = up ? have >= d->desired : have <= d->desired;
    uint64_t waited = now - cp->settle_from_ms;
    if (!done && waited < p->cfg->autoscale.settle_timeout_ms)
        return true;
    cp->settling = false;
    const char *act = control_action_names[up ? CA_UP : CA_DOWN];
    json_t *f = json_pack("{s:s, s:s, s:i, s:i, s:i, s:I}", "pool", p->name, "action", act, "from",
                          (int)d->current, "desired", (int)d->desired, "have", (int)have,
                          "waited_ms", (json_int_t)waited);
    if (done) {
        sg_journal_emit("scale_settled", f);
        sg_log_info("pool '%s': %s to %" PRIu32 " settled in %" PRIu64 " ms", p->name, act,
                    d->desired, waited);
        return false;
    }
    sg_journal_emit("scale_unsettled", f);
    sg_log_warn("pool '%s': %s to %" PRIu32 " asked %" PRIu64 " s ago, the group has %" PRIu32
                "%s; deciding again on that count (do new members register? the hook's output "
                "or the pool's discover source adds them)",
                p->name, act, d->desired, waited / 1000, have, up ? " joined" : "");
    return false;
}

/* A decision a follower (or an instance that lost etcd) does not act on:
 * journaled as scale_skipped once per decision (and once a minute while it
 * stands), never run. */
static void control_not_leader(struct sg_control *ctl, const struct sg_pool *p,
                               struct control_pool *cp, const struct sg_as_decision *d,
                               enum sg_cluster_role role)
{
    uint64_t now = sg_now_ms();
    if (cp->skipped.action == d->action && cp->skipped.desired == d->desired &&
        cp->skipped_role == (int)role && now < cp->skipped_ms + 60000)
        return;
    cp->skipped = *d;
    cp->skipped_role = (int)role;
    cp->skipped_ms = now;
    const char *leader = sg_cluster_leader(ctl->cluster);
    char why[200];
    if (role == SG_CLUSTER_LOST)
        snprintf(why, sizeof(why), "cluster lost: etcd unreachable, nobody scales");
    else
        snprintf(why, sizeof(why), "not the leader (the leader is '%s')",
                 leader[0] ? leader : "not elected yet");
    sg_journal_emit("scale_skipped",
                    json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s}", "pool", p->name, "action",
                              d->action == SG_AS_UP ? "scale_up" : "scale_down", "current",
                              (int)d->current, "desired", (int)d->desired, "reason", d->reason,
                              "role", sg_cluster_role_name(role), "why", why));
    sg_log_info("pool '%s': %s %" PRIu32 " -> %" PRIu32 " (%s) [%s: no hook]", p->name,
                d->action == SG_AS_UP ? "scale_up" : "scale_down", d->current, d->desired,
                d->reason, why);
}

static void control_autoscale(struct sg_control *ctl, struct sg_pool *p, struct control_pool *cp)
{
    const struct sg_cfg_autoscale *acfg = &p->cfg->autoscale;
    uint64_t now = sg_now_ms();
    uint32_t current = sg_pool_ncurrent(p);
    atomic_store_explicit(&p->ngroup, current, memory_order_relaxed); /* for the queue */
    struct sg_cluster_raw raw[CONTROL_INSTANCES_MAX];
    sg_stats_pool_raw(ctl->stats, p, current, &raw[0]);
    cp->raw = raw[0];
    cp->ninstances =
        1 + sg_cluster_pool_raws(ctl->cluster, p->name, raw + 1, CONTROL_INSTANCES_MAX - 1);
    /* Alone, the pool's own view (group.c); in a cluster, every instance's
     * raw inputs combined the same way on each (cluster.c). */
    if (ctl->cluster == NULL) {
        sg_group_metrics(ctl->stats, p, cp->local_m);
        memcpy(cp->m, cp->local_m, sizeof(cp->m));
    } else {
        sg_cluster_derive(raw, 1, current, cp->local_m);
        sg_cluster_derive(raw, cp->ninstances, current, cp->m);
    }
    struct sg_as_decision d;
    uint64_t id = 0;
    /* The leader's last action starts the same cooldown here, so that a
     * follower that takes over does not repeat it. */
    if (sg_cluster_leader_acted(ctl->cluster, p->name, &d, &id) && id != cp->mirrored_id) {
        if (cp->mirrored_id != 0 || sg_wall_ms() - id < 600000)
            control_acted(cp, &d, false);
        cp->mirrored_id = id;
    }
    sg_as_eval(cp->as, now, cp->m, current, &d);
    control_thresholds(p, cp);
    if (control_settling(p, cp, now))
        return;
    /* Scale from zero: requests are held and nothing can serve them. */
    uint32_t held = atomic_load(&p->queue.depth);
    if (d.action == SG_AS_NONE && current == 0 && held > 0 && !sg_as_up_cooling(cp->as, now)) {
        d.action = SG_AS_UP;
        d.current = 0;
        d.desired = acfg->min > 0 ? acfg->min : 1;
        d.rule = -1;
        snprintf(d.reason, sizeof(d.reason), "scale from zero: %" PRIu32 " request%s held", held,
                 held == 1 ? "" : "s");
    }
    if (d.action == SG_AS_NONE) {
        cp->skipped.action = SG_AS_NONE;
        return;
    }
    enum control_action a = d.action == SG_AS_UP ? CA_UP : CA_DOWN;
    /* One run per pool and direction at a time, none in one direction while
     * the other runs, and after a failure not before its backoff ends. */
    if (cp->running[CA_UP] || cp->running[CA_DOWN] || now < cp->retry_at[a])
        return;
    enum sg_cluster_role role = sg_cluster_role(ctl->cluster);
    if (role == SG_CLUSTER_FOLLOWER || role == SG_CLUSTER_LOST) {
        control_not_leader(ctl, p, cp, &d, role);
        return;
    }
    control_scale(ctl, p, cp, &d);
}

json_t *sg_control_autoscale_json(const struct sg_control *ctl, const struct sg_pool *p)
{
    const struct control_pool *cp = &ctl->cp[p->id];
    const struct sg_cfg_autoscale *acfg = &p->cfg->autoscale;
    if (cp->as == NULL)
        return json_null();
    json_t *metrics = json_object();
    for (int m = 0; m < SG_AS_NMETRICS; m++)
        json_object_set_new(metrics, sg_as_metric_name(m),
                            isnan(cp->m[m]) ? json_null() : json_real(cp->m[m]));
    json_t *o = json_pack("{s:i, s:i, s:i, s:b, s:b, s:b, s:o}", "min", (int)acfg->min, "max",
                          (int)acfg->max, "current", (int)sg_pool_ncurrent(p), "dry_run",
                          acfg->dry_run, "scale_up_running", cp->running[CA_UP],
                          "scale_down_running", cp->running[CA_DOWN], "metrics", metrics);
    if (ctl->cluster != NULL) {
        json_t *local = json_object();
        for (int m = 0; m < SG_AS_NMETRICS; m++)
            json_object_set_new(local, sg_as_metric_name(m),
                                isnan(cp->local_m[m]) ? json_null() : json_real(cp->local_m[m]));
        json_object_set_new(o, "local_metrics", local);
    }
    json_object_set_new(o, "instances", json_integer((json_int_t)cp->ninstances));
    json_object_set_new(o, "role",
                        json_string(sg_cluster_role_name(sg_cluster_role(ctl->cluster))));
    if (cp->last_ms != 0) {
        char t[40];
        sg_control_iso_time(cp->last_ms, t, sizeof(t));
        json_object_set_new(o, "last_decision",
                            json_pack("{s:s, s:i, s:i, s:s, s:s}", "action",
                                      cp->last.action == SG_AS_UP ? "scale_up" : "scale_down",
                                      "current", (int)cp->last.current, "desired",
                                      (int)cp->last.desired, "reason", cp->last.reason, "time", t));
    }
    if (cp->settling)
        json_object_set_new(o, "settling",
                            json_pack("{s:s, s:i, s:I}", "action",
                                      cp->settle.action == SG_AS_UP ? "scale_up" : "scale_down",
                                      "desired", (int)cp->settle.desired, "waited_ms",
                                      (json_int_t)(sg_now_ms() - cp->settle_from_ms)));
    return o;
}

void sg_control_iso_time(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || n + 6 > len) {
        if (len > 0)
            buf[0] = '\0';
        return;
    }
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* Requests the pool's queue refused so far, every priority and reason. */
static uint64_t control_shed_total(const struct sg_pool *p)
{
    uint64_t n = 0;
    for (int i = 0; i < SG_PRIO_N; i++)
        for (int r = 0; r < SG_SHED_N; r++)
            n += atomic_load(&p->queue.shed[i][r]);
    return n;
}

/* Shedding episodes in the journal: "shedding_start" when the pool's queue
 * began to stand (CoDel-style, queue.c), "shedding_end" with the requests
 * refused meanwhile once it stopped. An episode shorter than a tick is
 * journaled at the next tick, start and end together. */
static void control_queue(struct sg_pool *p, struct control_pool *cp)
{
    sg_queue_tick(p);
    uint64_t ep = atomic_load(&p->queue.episodes);
    bool standing = atomic_load(&p->queue.standing);
    uint64_t now = sg_now_ms();
    if (ep != cp->episodes_seen && !cp->shedding) {
        cp->shedding = true;
        cp->shed_start = control_shed_total(p);
        cp->shed_start_ms = now;
        sg_journal_emit("shedding_start",
                        json_pack("{s:s, s:I, s:I, s:I}", "pool", p->name, "target_ms",
                                  (json_int_t)p->cfg->queue.target_ms, "queue_depth",
                                  (json_int_t)atomic_load(&p->queue.depth), "drain_rps",
                                  (json_int_t)atomic_load(&p->queue.drain_rps)));
    }
    cp->episodes_seen = ep;
    if (cp->shedding && !standing) {
        cp->shedding = false;
        sg_journal_emit("shedding_end",
                        json_pack("{s:s, s:I, s:I}", "pool", p->name, "shed",
                                  (json_int_t)(control_shed_total(p) - cp->shed_start),
                                  "duration_ms", (json_int_t)(now - cp->shed_start_ms)));
    }
}

/* This instance's record for the cluster: the raw inputs of every
 * autoscaled pool and the last action taken here. */
static void control_publish(struct sg_control *ctl)
{
    json_t *pools = json_object();
    for (size_t i = 0; i < ctl->pools->n; i++) {
        const struct control_pool *cp = &ctl->cp[i];
        if (cp->as == NULL)
            continue;
        json_t *o = sg_cluster_raw_json(&cp->raw);
        if (cp->acted_id != 0)
            json_object_set_new(o, "acted",
                                json_pack("{s:s, s:i, s:i, s:I}", "action",
                                          cp->acted.action == SG_AS_UP ? "scale_up" : "scale_down",
                                          "current", (int)cp->acted.current, "desired",
                                          (int)cp->acted.desired, "id", (json_int_t)cp->acted_id));
        json_object_set_new(pools, ctl->pools->pools[i].name, o);
    }
    sg_cluster_publish(ctl->cluster, json_pack("{s:o}", "pools", pools));
}

void sg_control_tick(struct sg_control *ctl)
{
    sg_stats_tick(ctl->stats);
    sg_memory_tick(sg_now_ms());
    for (size_t i = 0; i < ctl->pools->n; i++) {
        struct sg_pool *p = &ctl->pools->pools[i];
        struct control_pool *cp = &ctl->cp[i];
        if (sg_pool_reap(p, control_emptied, ctl) > 0)
            control_kick(ctl);
        uint64_t ov = atomic_load(&p->queue.overflows);
        if (ov > cp->overflows_seen) {
            /* One event per tick, not one per refused request. */
            json_t *f = json_pack("{s:s, s:I, s:I}", "pool", p->name, "refused",
                                  (json_int_t)(ov - cp->overflows_seen), "maxqueue",
                                  (json_int_t)p->cfg->maxqueue);
            uint64_t now = sg_now_ms();
            if (cp->overflow_alert_ms == 0 ||
                now >= cp->overflow_alert_ms + CONTROL_OVERFLOW_ALERT_MS) {
                cp->overflow_alert_ms = now;
                control_event(ctl, sg_alert_event_name(SG_ALERT_QUEUE_OVERFLOW), f);
            } else {
                /* journaled; alerted once a minute */
                sg_journal_emit(sg_alert_event_name(SG_ALERT_QUEUE_OVERFLOW), f);
            }
            cp->overflows_seen = ov;
        }
        control_queue(p, cp);
        control_pool_health(ctl, p, cp);
        if (cp->as != NULL)
            control_autoscale(ctl, p, cp);
    }
    if (ctl->cluster != NULL)
        control_publish(ctl);
}

static void control_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    sg_control_tick(arg);
}

/* A pool's control state at its start; true when it has autoscale. */
static bool control_pool_init(struct control_pool *cp, const struct sg_pool *p)
{
    for (int m = 0; m < SG_AS_NMETRICS; m++)
        cp->m[m] = cp->local_m[m] = NAN;
    cp->ninstances = 1;
    if (!p->cfg->autoscale.enabled)
        return false;
    cp->as = sg_as_new(&p->cfg->autoscale);
    cp->rule_on = sg_xcalloc(p->cfg->autoscale.nrules + 1, sizeof(bool));
    if (cp->as == NULL)
        sg_log_error("pool '%s': cannot set up its autoscale rules", p->name);
    return true;
}

static void control_pool_fini(struct control_pool *cp)
{
    sg_as_free(cp->as);
    free(cp->rule_on);
}

/* A reload: the new pool's control state takes over the old one's (hooks in
 * flight, backoffs, alert states, journal marks, the autoscaler's cooldown
 * and windows). */
static void control_pool_carry(struct control_pool *to, const struct sg_pool *p,
                               struct control_pool *from, const struct sg_pool *op)
{
    struct sg_as *as = to->as;
    bool *rule_on = to->rule_on;
    *to = *from;
    to->as = as;
    to->rule_on = rule_on;
    if (as != NULL && from->as != NULL)
        sg_as_carry(as, from->as);
    if (rule_on != NULL && from->rule_on != NULL) {
        size_t n = p->cfg->autoscale.nrules < op->cfg->autoscale.nrules ? p->cfg->autoscale.nrules
                                                                        : op->cfg->autoscale.nrules;
        memcpy(rule_on, from->rule_on, n * sizeof(bool));
    }
}

struct sg_stats *sg_control_reload(struct sg_control *ctl, const struct sg_cfg *cfg,
                                   struct sg_pools *pools, struct sg_worker **workers,
                                   uint32_t nworkers)
{
    struct sg_stats *st = sg_stats_new(pools, workers, nworkers);
    struct sg_stats *old = ctl->stats;
    sg_stats_carry(st, old);
    ctl->stats = st;
    struct control_pool *cp = sg_xcalloc(pools->n ? pools->n : 1, sizeof(struct control_pool));
    bool need_hooks = cfg->alerts.hook != NULL;
    for (size_t i = 0; i < pools->n; i++) {
        const struct sg_pool *p = &pools->pools[i];
        need_hooks |= control_pool_init(&cp[i], p);
        const struct sg_pool *op = sg_pools_find(ctl->pools, p->name);
        if (op != NULL)
            control_pool_carry(&cp[i], p, &ctl->cp[op->id], op);
    }
    for (size_t i = 0; i < ctl->pools->n; i++)
        control_pool_fini(&ctl->cp[i]);
    free(ctl->cp);
    ctl->cp = cp;
    ctl->cfg = cfg;
    ctl->pools = pools;
    ctl->workers = workers;
    ctl->nworkers = nworkers;
    if (need_hooks && ctl->hooks == NULL)
        ctl->hooks = sg_hookrunner_new(ctl->base);
    return old;
}

void sg_control_fold(struct sg_control *ctl, struct sg_stats *old)
{
    if (old == NULL)
        return;
    sg_stats_fold(ctl->stats, old);
    sg_stats_free(old);
}

struct sg_control *sg_control_new(struct event_base *base, const struct sg_cfg *cfg,
                                  struct sg_pools *pools, struct sg_worker **workers,
                                  uint32_t nworkers)
{
    struct sg_control *ctl = sg_xcalloc(1, sizeof(*ctl));
    ctl->base = base;
    ctl->cfg = cfg;
    ctl->pools = pools;
    ctl->workers = workers;
    ctl->nworkers = nworkers;
    ctl->stats = sg_stats_new(pools, workers, nworkers);
    ctl->cp = sg_xcalloc(pools->n ? pools->n : 1, sizeof(struct control_pool));
    ssize_t el = readlink("/proc/self/exe", ctl->exe, sizeof(ctl->exe) - 1);
    ctl->exe[el > 0 ? (size_t)el : 0] = '\0';
    bool need_hooks = cfg->alerts.hook != NULL;
    for (size_t i = 0; i < pools->n; i++)
        need_hooks |= control_pool_init(&ctl->cp[i], &pools->pools[i]);
    if (need_hooks)
        ctl->hooks = sg_hookrunner_new(base);
    ctl->cluster = sg_cluster_new(base, &cfg->cluster);
    for (size_t i = 0; i < pools->n; i++)
        for (size_t j = 0; j < pools->pools[i].ncfg; j++)
            pools->pools[i].backends[j].last_state = SG_BACKEND_UP;
    ctl->tick = event_new(base, -1, EV_PERSIST, control_tick_cb, ctl);
    struct timeval tv = {CONTROL_TICK_MS / 1000, (CONTROL_TICK_MS % 1000) * 1000};
    if (ctl->tick == NULL || event_add(ctl->tick, &tv) != 0) {
        sg_log_error("control: cannot start the tick timer");
        sg_control_free(ctl);
        return NULL;
    }
    return ctl;
}

void sg_control_set_health(struct sg_control *ctl, struct sg_health *h)
{
    ctl->health = h;
}

struct sg_stats *sg_control_stats(const struct sg_control *ctl)
{
    return ctl->stats;
}

struct sg_cluster *sg_control_cluster(const struct sg_control *ctl)
{
    return ctl->cluster;
}

void sg_control_stopping(struct sg_control *ctl)
{
    if (ctl != NULL)
        sg_cluster_step_down(ctl->cluster);
}

void sg_control_metrics(const struct sg_control *ctl, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP surgegate_hook_runs_total Hook runs by action and result.\n"
                             "# TYPE surgegate_hook_runs_total counter\n");
    for (size_t i = 0; i < ctl->pools->n; i++) {
        const struct control_pool *cp = &ctl->cp[i];
        for (int a = 0; a < CA_N; a++)
            for (int r = 0; r < CR_N; r++)
                if (cp->runs[a][r] != 0 || (cp->as != NULL && a != CA_ALERT && r <= CR_FAILED))
                    evbuffer_add_printf(out,
                                        "surgegate_hook_runs_total{pool=\"%s\",action=\"%s\","
                                        "result=\"%s\"} %" PRIu64 "\n",
                                        ctl->pools->pools[i].name, control_action_names[a],
                                        control_result_names[r], cp->runs[a][r]);
    }
    for (int r = 0; r < CR_N; r++)
        if (ctl->alert_runs[r] != 0)
            evbuffer_add_printf(out,
                                "surgegate_hook_runs_total{pool=\"\",action=\"alert\","
                                "result=\"%s\"} %" PRIu64 "\n",
                                control_result_names[r], ctl->alert_runs[r]);
    sg_cluster_metrics(ctl->cluster, out);
}

void sg_control_free(struct sg_control *ctl)
{
    if (ctl == NULL)
        return;
    if (ctl->tick != NULL)
        event_free(ctl->tick);
    sg_hookrunner_free(ctl->hooks); /* kills running hooks; their callbacks never run */
    sg_cluster_free(ctl->cluster);
    for (size_t i = 0; i < ctl->pools->n; i++) {
        control_pool_fini(&ctl->cp[i]);
    }
    sg_stats_free(ctl->stats);
    free(ctl->cp);
    free(ctl);
}
