/* autoscale.c: the autoscaler's decision engine (see autoscale.h for the
 * semantics). Pure logic: the caller owns the clock, the metrics and the
 * hooks. One engine per pool, used by one thread.
 *
 * State: per rule, whether its condition held at the last evaluation and
 * since when; the time of the last scale-up (cooldown); and the combined
 * recommendation of every evaluation in the last scale_down_window, kept in
 * a ring of time buckets (1 s, or coarser for windows over an hour, so at
 * most ~3600 samples) holding the highest recommendation of the bucket. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "surgegate/autoscale.h"
#include "surgegate/common.h"

#define AS_MAGIC       0x41534331u /* "ASC1" */
#define AS_DEAD_BAND   0.10        /* target rules: no action within +-10% */
#define AS_EPS         1e-9        /* float noise in ratios: ceil(2 x 0.9/0.6) is 3 */
#define AS_MAX_SAMPLES 3600u       /* window buckets at most (one per second up to 1 h) */
#define AS_WHY_LEN     160

/* The one list of metric names (config rules, `-t` messages, hook
 * environment, docs test through `surgegate --list-names`). */
static const char *const as_metric_names[SG_AS_NMETRICS] = {
    "queue_depth",     "queue_depth_per_backend", "inflight_per_backend", "utilization",
    "latency_p50_ms",  "latency_p95_ms",          "latency_p99_ms",       "error_rate",
    "rps_per_backend", "healthy_backends"};

struct as_rule {
    const struct sg_cfg_rule *cfg;
    int metric;
    bool holding;      /* the condition held at the last evaluation */
    int side;          /* target rules: +1 above the dead band, -1 below */
    uint64_t since_ms; /* first evaluation of the current run of `holding` */
};

/* One bucket of the scale-down window: the highest combined recommendation
 * of the evaluations that fell in it, and the time of the latest of them
 * (the bucket leaves the window when that time does). */
struct as_sample {
    uint64_t bucket;
    uint64_t t_ms;
    uint32_t desired;
};

struct sg_as {
    uint32_t magic;
    const struct sg_cfg_autoscale *cfg;
    uint32_t min, max, step;
    struct as_rule *rules;
    size_t nrules;
    struct as_sample *ring; /* oldest at ring[head] */
    size_t cap, head, n;
    uint64_t window_ms, bucket_ms;
    uint64_t last_now_ms;
    bool evaluated; /* sg_as_eval() ran at least once */
    bool up_done;
    uint64_t last_up_ms;
};

static void as_win_add(struct sg_as *as, uint64_t now_ms, uint32_t desired);

/* One rule's vote at one evaluation. */
struct as_vote {
    bool votes; /* false: abstains */
    uint32_t rec;
    char why[AS_WHY_LEN];
};

int sg_as_metric_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < SG_AS_NMETRICS; i++)
        if (strcmp(as_metric_names[i], name) == 0)
            return i;
    return -1;
}

const char *sg_as_metric_name(int m)
{
    if (m < 0 || m >= SG_AS_NMETRICS)
        return "unknown";
    return as_metric_names[m];
}

const char *sg_as_metric_at(size_t i)
{
    return i < SG_AS_NMETRICS ? as_metric_names[i] : NULL;
}

struct sg_as *sg_as_new(const struct sg_cfg_autoscale *cfg)
{
    struct sg_as *as;

    if (cfg == NULL || (cfg->nrules > 0 && cfg->rules == NULL))
        return NULL;
    for (size_t i = 0; i < cfg->nrules; i++)
        if (sg_as_metric_parse(cfg->rules[i].metric) < 0)
            return NULL;
    as = sg_xcalloc(1, sizeof(*as));
    as->magic = AS_MAGIC;
    as->cfg = cfg;
    as->min = cfg->min;
    /* cfg_keys.c rejects min > max; stay sane if handed one anyway */
    as->max = cfg->max < cfg->min ? cfg->min : cfg->max;
    as->step = cfg->step == 0 ? 1 : cfg->step;
    as->nrules = cfg->nrules;
    as->rules = sg_xcalloc(as->nrules == 0 ? 1 : as->nrules, sizeof(*as->rules));
    for (size_t i = 0; i < as->nrules; i++) {
        as->rules[i].cfg = &cfg->rules[i];
        as->rules[i].metric = sg_as_metric_parse(cfg->rules[i].metric);
    }
    as->window_ms = cfg->scale_down_window_ms;
    as->bucket_ms = (as->window_ms + AS_MAX_SAMPLES - 1) / AS_MAX_SAMPLES;
    if (as->bucket_ms < 1000)
        as->bucket_ms = 1000;
    /* samples younger than the window span at most window/bucket + 2 buckets */
    as->cap = (size_t)(as->window_ms / as->bucket_ms) + 3;
    as->ring = sg_xcalloc(as->cap, sizeof(*as->ring));
    return as;
}

void sg_as_carry(struct sg_as *to, const struct sg_as *from)
{
    SG_CHECK_MAGIC(to, AS_MAGIC);
    SG_CHECK_MAGIC(from, AS_MAGIC);
    to->last_now_ms = from->last_now_ms;
    to->evaluated = from->evaluated;
    to->up_done = from->up_done;
    to->last_up_ms = from->last_up_ms;
    /* A rule keeps its run when the rule at its place asks the same. */
    for (size_t i = 0; i < to->nrules && i < from->nrules; i++) {
        const struct sg_cfg_rule *a = to->rules[i].cfg, *b = from->rules[i].cfg;
        if (to->rules[i].metric != from->rules[i].metric || a->kind != b->kind ||
            a->value != b->value)
            continue;
        to->rules[i].holding = from->rules[i].holding;
        to->rules[i].side = from->rules[i].side;
        to->rules[i].since_ms = from->rules[i].since_ms;
    }
    /* The window's recommendations, oldest first, as far as the new ring
     * and window hold them. */
    for (size_t k = 0; k < from->n; k++) {
        const struct as_sample *s = &from->ring[(from->head + k) % from->cap];
        as_win_add(to, s->t_ms, s->desired);
    }
}

void sg_as_free(struct sg_as *as)
{
    if (as == NULL)
        return;
    SG_CHECK_MAGIC(as, AS_MAGIC);
    as->magic = 0;
    free(as->rules);
    free(as->ring);
    free(as);
}

/* ------------------------------------------------------------ text */

/* Appends to buf (of size len, always NUL-terminated), truncating. */
static void as_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void as_append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strnlen(buf, len);
    va_list ap;

    if (used + 1 >= len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* 30000 -> "30s", 300000 -> "5m", 3600000 -> "1h", 1500 -> "1500ms". */
static void as_fmt_dur(uint64_t ms, char *buf, size_t len)
{
    if (ms >= 3600000 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* A metric value: 412.0, 0.90. */
static void as_fmt_val(double v, char *buf, size_t len)
{
    snprintf(buf, len, fabs(v) >= 10.0 ? "%.1f" : "%.2f", v);
}

/* ------------------------------------------------------------ window */

static void as_win_prune(struct sg_as *as, uint64_t now_ms)
{
    while (as->n > 0 && now_ms - as->ring[as->head].t_ms >= as->window_ms) {
        as->head = (as->head + 1) % as->cap;
        as->n--;
    }
}

/* Keeps `desired` as a recommendation made at now_ms. */
static void as_win_add(struct sg_as *as, uint64_t now_ms, uint32_t desired)
{
    uint64_t bucket = now_ms / as->bucket_ms;
    struct as_sample *last;

    as_win_prune(as, now_ms);
    if (as->n > 0) {
        last = &as->ring[(as->head + as->n - 1) % as->cap];
        if (last->bucket == bucket) {
            if (desired > last->desired)
                last->desired = desired;
            last->t_ms = now_ms;
            return;
        }
    }
    if (as->n == as->cap) { /* cannot happen after the prune; stay bounded anyway */
        as->head = (as->head + 1) % as->cap;
        as->n--;
    }
    last = &as->ring[(as->head + as->n) % as->cap];
    last->bucket = bucket;
    last->t_ms = now_ms;
    last->desired = desired;
    as->n++;
}

/* The highest recommendation in the window (0 when empty). */
static uint32_t as_win_max(const struct sg_as *as)
{
    uint32_t hi = 0;

    for (size_t i = 0; i < as->n; i++) {
        uint32_t d = as->ring[(as->head + i) % as->cap].desired;
        if (d > hi)
            hi = d;
    }
    return hi;
}

/* ------------------------------------------------------------ rules */

static uint32_t as_add_sat(uint32_t a, uint32_t b)
{
    uint64_t s = (uint64_t)a + b;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Updates r's condition for this evaluation (cond, side) and says whether
 * it has held long enough. */
static bool as_rule_hold(struct as_rule *r, uint64_t now_ms, bool cond, int side)
{
    if (!cond) {
        r->holding = false;
        r->side = 0;
        r->since_ms = 0;
        return false;
    }
    if (!r->holding || r->side != side) {
        r->holding = true;
        r->side = side;
        r->since_ms = now_ms;
    }
    return now_ms - r->since_ms >= r->cfg->for_ms;
}

static void as_threshold(struct as_rule *r, uint64_t now_ms, double v, uint32_t step,
                         uint32_t current, struct as_vote *vo)
{
    bool above = r->cfg->kind == SG_RULE_ABOVE;
    bool cond = !isnan(v) && (above ? v > r->cfg->value : v < r->cfg->value);
    bool fired = as_rule_hold(r, now_ms, cond, 1);
    const char *name = sg_as_metric_name(r->metric);
    char val[32], dur[32], held[32];

    as_fmt_val(v, val, sizeof(val));
    as_fmt_dur(r->cfg->for_ms, dur, sizeof(dur));
    if (fired) {
        vo->votes = true;
        vo->rec = above ? as_add_sat(current, step) : (current > step ? current - step : 0);
        snprintf(vo->why, sizeof(vo->why), "%s %s %s %g%s%s", name, val, above ? ">" : "<",
                 r->cfg->value, r->cfg->for_ms > 0 ? " for " : "", r->cfg->for_ms > 0 ? dur : "");
        return;
    }
    /* not (yet) true: an above rule abstains, a below rule keeps the count */
    vo->votes = !above;
    vo->rec = current;
    if (cond) {
        as_fmt_dur(now_ms - r->since_ms, held, sizeof(held));
        snprintf(vo->why, sizeof(vo->why), "%s %s %s %g for %s of %s", name, val, above ? ">" : "<",
                 r->cfg->value, held, dur);
    } else if (isnan(v)) {
        snprintf(vo->why, sizeof(vo->why), "%s: no data", name);
    } else {
        snprintf(vo->why, sizeof(vo->why), "%s %s %s %g", name, val,
                 above ? "<=" : ">=", r->cfg->value);
    }
}

static void as_target(struct as_rule *r, uint64_t now_ms, double v, uint32_t current,
                      struct as_vote *vo)
{
    double t = r->cfg->value, ratio, x;
    const char *name = sg_as_metric_name(r->metric);
    char val[32], tv[32], rv[32], dur[32], held[32];
    int side;

    as_fmt_val(v, val, sizeof(val));
    as_fmt_val(t, tv, sizeof(tv));
    if (isnan(v) || !(t > 0.0) || current == 0) {
        as_rule_hold(r, now_ms, false, 0);
        vo->votes = false;
        snprintf(vo->why, sizeof(vo->why), "%s target %s: %s", name, tv,
                 isnan(v) ? "no data" : "no backend to scale by ratio");
        return;
    }
    ratio = v / t;
    if (fabs(ratio - 1.0) <= AS_DEAD_BAND + AS_EPS) {
        as_rule_hold(r, now_ms, false, 0);
        vo->votes = true;
        vo->rec = current;
        snprintf(vo->why, sizeof(vo->why), "%s %s vs target %s: within 10%%", name, val, tv);
        return;
    }
    side = ratio > 1.0 ? 1 : -1;
    as_fmt_val(ratio, rv, sizeof(rv));
    vo->votes = true;
    if (!as_rule_hold(r, now_ms, true, side)) {
        vo->rec = current;
        as_fmt_dur(now_ms - r->since_ms, held, sizeof(held));
        as_fmt_dur(r->cfg->for_ms, dur, sizeof(dur));
        snprintf(vo->why, sizeof(vo->why), "%s %s vs target %s for %s of %s", name, val, tv, held,
                 dur);
        return;
    }
    x = ceil((double)current * ratio - AS_EPS);
    if (!(x > 0.0)) /* also a negative metric */
        vo->rec = 0;
    else if (x >= (double)UINT32_MAX)
        vo->rec = UINT32_MAX;
    else
        vo->rec = (uint32_t)x;
    snprintf(vo->why, sizeof(vo->why), "%s %s vs target %s: ceil(%u x %s) = %u", name, val, tv,
             current, rv, vo->rec);
}

/* ------------------------------------------------------------ decision */

/* Appends the reasons of the rules whose vote is `rec` and returns the
 * index of the rule when exactly one voted it, else -1. */
static int as_deciders(const struct as_vote *votes, size_t n, uint32_t rec, char *buf, size_t len)
{
    int rule = -1, count = 0;

    for (size_t i = 0; i < n; i++) {
        if (!votes[i].votes || votes[i].rec != rec)
            continue;
        as_append(buf, len, "%s%s", count > 0 ? "; " : "", votes[i].why);
        rule = (int)i;
        count++;
    }
    return count == 1 ? rule : -1;
}

void sg_as_eval(struct sg_as *as, uint64_t now_ms, const double m[SG_AS_NMETRICS], uint32_t current,
                struct sg_as_decision *out)
{
    struct as_vote votes_small[8], *votes = votes_small;
    uint32_t up_max = 0, down_max = 0, combined, rec, hi;
    bool any_up = false, all_below = true;
    size_t nvotes = 0;
    char *r = out->reason;
    size_t rlen = sizeof(out->reason);
    char d1[32], d2[32];

    SG_CHECK_MAGIC(as, AS_MAGIC);
    SG_BUG_ON(m == NULL || out == NULL);
    if (now_ms < as->last_now_ms)
        now_ms = as->last_now_ms;
    as->last_now_ms = now_ms;
    memset(out, 0, sizeof(*out));
    out->action = SG_AS_NONE;
    out->current = current;
    out->desired = current;
    out->rule = -1;
    if (as->nrules > SG_ARRAY_SIZE(votes_small))
        votes = sg_xcalloc(as->nrules, sizeof(*votes));

    /* every rule's vote */
    for (size_t i = 0; i < as->nrules; i++) {
        struct as_rule *ru = &as->rules[i];
        struct as_vote *vo = &votes[i];
        double v = m[ru->metric];
        vo->votes = false;
        vo->rec = current;
        vo->why[0] = '\0';
        if (ru->cfg->kind == SG_RULE_TARGET)
            as_target(ru, now_ms, v, current, vo);
        else
            as_threshold(ru, now_ms, v, as->step, current, vo);
        if (!vo->votes)
            continue;
        nvotes++;
        if (vo->rec > current) {
            any_up = true;
            if (vo->rec > up_max)
                up_max = vo->rec;
        }
        if (vo->rec >= current)
            all_below = false;
        else if (vo->rec > down_max)
            down_max = vo->rec;
    }

    /* combined: up when any rule wants more, down only when all voters agree */
    if (any_up)
        combined = up_max;
    else if (nvotes > 0 && all_below)
        combined = down_max;
    else
        combined = current;
    if (combined != current)
        out->rule = as_deciders(votes, as->nrules, combined, r, rlen);
    rec = combined < as->min ? as->min : combined > as->max ? as->max : combined;
    if (!as->evaluated) {
        /* no history yet (just started: metrics are still empty): count the
         * pool as it is as a recommendation, so that no DOWN comes before a
         * whole window of lower ones */
        as->evaluated = true;
        as_win_add(as, now_ms, current < as->min ? as->min : current > as->max ? as->max : current);
    }
    as_win_add(as, now_ms, rec);

    if (current > as->max) {
        /* the pool is over its max (e.g. the config changed): down at once */
        out->rule = -1;
        r[0] = '\0';
        out->action = SG_AS_DOWN;
        out->desired = current - as->max > as->step ? current - as->step : as->max;
        as_append(r, rlen, "%u backend%s, above max %u", current, current == 1 ? "" : "s", as->max);
        if (out->desired != as->max)
            as_append(r, rlen, " (step %u)", as->step);
    } else if (rec > current) {
        if (combined < rec) { /* below min: not the rules' doing */
            out->rule = -1;
            r[0] = '\0';
            as_append(r, rlen, "%u backend%s, below min %u", current, current == 1 ? "" : "s",
                      as->min);
        } else if (combined > rec) {
            as_append(r, rlen, " (max %u)", as->max);
        }
        out->desired = rec - current > as->step ? current + as->step : rec;
        if (out->desired != rec)
            as_append(r, rlen, " (step %u)", as->step);
        if (sg_as_up_cooling(as, now_ms)) {
            as_fmt_dur(as->cfg->scale_up_cooldown_ms - (now_ms - as->last_up_ms), d1, sizeof(d1));
            as_fmt_dur(as->cfg->scale_up_cooldown_ms, d2, sizeof(d2));
            as_append(r, rlen, ": scale-up cooldown, %s of %s left (wants %u)", d1, d2,
                      out->desired);
            out->desired = current;
        } else {
            out->action = SG_AS_UP;
        }
    } else if (rec < current) {
        if (combined < rec)
            as_append(r, rlen, " (min %u)", as->min);
        hi = as_win_max(as);
        as_fmt_dur(as->window_ms, d1, sizeof(d1));
        if (hi >= current) {
            as_append(r, rlen, ": stabilizing, %u recommended within the last %s", hi, d1);
        } else {
            out->action = SG_AS_DOWN;
            out->desired = current - hi > as->step ? current - as->step : hi;
            if (hi > rec)
                as_append(r, rlen, " (highest in the last %s: %u)", d1, hi);
            if (out->desired != hi)
                as_append(r, rlen, " (step %u)", as->step);
        }
    } else if (combined != current) {
        /* the rules want a change the clamp takes back */
        as_append(r, rlen, " (at the %s %u)", combined < current ? "min" : "max", current);
    } else if (nvotes == 0) {
        as_append(r, rlen, "no rule votes%s%s", as->nrules > 0 ? ": " : "",
                  as->nrules > 0 ? votes[0].why : "");
    } else {
        /* nothing to do: the first voting rule says why */
        for (size_t i = 0; i < as->nrules; i++) {
            if (votes[i].votes) {
                as_append(r, rlen, "%s", votes[i].why);
                break;
            }
        }
    }
    if (votes != votes_small)
        free(votes);
}

void sg_as_acted(struct sg_as *as, uint64_t now_ms, const struct sg_as_decision *d)
{
    SG_CHECK_MAGIC(as, AS_MAGIC);
    SG_BUG_ON(d == NULL);
    if (now_ms < as->last_now_ms)
        now_ms = as->last_now_ms;
    as->last_now_ms = now_ms;
    if (d->action == SG_AS_UP) {
        as->up_done = true;
        as->last_up_ms = now_ms;
        /* the new count is a recommendation too: no DOWN within the window */
        as_win_add(as, now_ms, d->desired > as->max ? as->max : d->desired);
    }
}

bool sg_as_up_cooling(const struct sg_as *as, uint64_t now_ms)
{
    SG_CHECK_MAGIC(as, AS_MAGIC);
    if (now_ms < as->last_now_ms)
        now_ms = as->last_now_ms;
    return as->up_done && now_ms - as->last_up_ms < as->cfg->scale_up_cooldown_ms;
}

bool sg_as_rule_state(const struct sg_as *as, size_t rule, uint64_t *since_ms)
{
    SG_CHECK_MAGIC(as, AS_MAGIC);
    if (rule >= as->nrules || !as->rules[rule].holding) {
        if (since_ms != NULL)
            *since_ms = 0;
        return false;
    }
    if (since_ms != NULL)
        *since_ms = as->rules[rule].since_ms;
    return true;
}
