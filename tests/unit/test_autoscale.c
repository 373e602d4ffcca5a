/* Unit tests for the autoscaler's decision engine (autoscale.c), with a
 * simulated clock of 1 s ticks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "surgegate/autoscale.h"
#include "surgegate/cfg.h"
#include "surgegate/common.h"

#define T0     1000000ULL /* simulated monotonic start, ms */
#define S(sec) (T0 + (uint64_t)(sec)*1000ULL)

/* ---- helpers ---- */

static struct sg_cfg_autoscale mkcfg(struct sg_cfg_rule *rules, size_t n, uint32_t min,
                                     uint32_t max, uint32_t step, uint32_t window_ms)
{
    struct sg_cfg_autoscale c;

    memset(&c, 0, sizeof(c));
    c.enabled = true;
    c.min = min;
    c.max = max;
    c.step = step;
    c.scale_up_cooldown_ms = 60000;
    c.scale_down_window_ms = window_ms;
    c.rules = rules;
    c.nrules = n;
    c.dry_run = true;
    return c;
}

static struct sg_cfg_rule rule(const char *metric, enum sg_cfg_rule_kind kind, double value,
                               uint32_t for_ms)
{
    struct sg_cfg_rule r = {(char *)metric, kind, value, for_ms, 1};
    return r;
}

static void nan_all(double m[SG_AS_NMETRICS])
{
    for (int i = 0; i < SG_AS_NMETRICS; i++)
        m[i] = NAN;
}

/* One evaluation on a fresh engine. */
static struct sg_as_decision once(const struct sg_cfg_autoscale *c, uint32_t current,
                                  const double m[SG_AS_NMETRICS])
{
    struct sg_as_decision d;
    struct sg_as *as = sg_as_new(c);

    assert_non_null(as);
    sg_as_eval(as, S(0), m, current, &d);
    sg_as_free(as);
    return d;
}

/* Evaluates at second t and, when it decides something, acts on it (the
 * pool follows at once). Returns the action. */
static enum sg_as_action step_act(struct sg_as *as, uint64_t t, const double m[SG_AS_NMETRICS],
                                  uint32_t *current, struct sg_as_decision *out)
{
    struct sg_as_decision d;

    sg_as_eval(as, S(t), m, *current, &d);
    assert_int_equal(d.current, *current);
    if (d.action == SG_AS_NONE) {
        assert_int_equal(d.desired, *current);
    } else {
        if (d.action == SG_AS_UP)
            assert_true(d.desired > *current);
        else
            assert_true(d.desired < *current);
        sg_as_acted(as, S(t), &d);
        *current = d.desired;
    }
    assert_true(strlen(d.reason) > 0);
    if (out != NULL)
        *out = d;
    return d.action;
}

/* ---- metric names ---- */

static void test_metric_names(void **state)
{
    (void)state;
    for (int i = 0; i < SG_AS_NMETRICS; i++)
        assert_int_equal(sg_as_metric_parse(sg_as_metric_name(i)), i);
    assert_int_equal(sg_as_metric_parse("queue_depth"), SG_AS_QUEUE_DEPTH);
    assert_int_equal(sg_as_metric_parse("latency_p95_ms"), SG_AS_LATENCY_P95_MS);
    assert_int_equal(sg_as_metric_parse("healthy_backends"), SG_AS_HEALTHY_BACKENDS);
    assert_int_equal(sg_as_metric_parse("cpu"), -1);
    assert_int_equal(sg_as_metric_parse(""), -1);
    assert_int_equal(sg_as_metric_parse(NULL), -1);
    assert_string_equal(sg_as_metric_name(-1), "unknown");
    assert_string_equal(sg_as_metric_name(SG_AS_NMETRICS), "unknown");
}

/* The config loader accepts exactly the names the engine knows, and its
 * defaults give the cooldown and window. */
static void test_cfg_metrics_and_defaults(void **state)
{
    static const char text[] =
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } );\n"
        "  autoscale = { max = 4; dry_run = true;\n"
        "    rules = ( { metric = \"queue_depth\"; above = 1; },\n"
        "              { metric = \"queue_depth_per_backend\"; above = 1; },\n"
        "              { metric = \"inflight_per_backend\"; above = 1; },\n"
        "              { metric = \"utilization\"; target = 0.5; },\n"
        "              { metric = \"latency_p50_ms\"; above = 1; },\n"
        "              { metric = \"latency_p95_ms\"; above = 1; for = \"30s\"; },\n"
        "              { metric = \"latency_p99_ms\"; below = 1; },\n"
        "              { metric = \"error_rate\"; above = 0.5; },\n"
        "              { metric = \"rps_per_backend\"; above = 1; },\n"
        "              { metric = \"healthy_backends\"; below = 1; } ); }; } );\n";
    struct sg_cfg_diags diags;
    struct sg_cfg *cfg;
    const struct sg_cfg_autoscale *c;
    struct sg_as *as;
    bool seen[SG_AS_NMETRICS] = {false};

    (void)state;
    sg_cfg_diags_init(&diags, "t.conf");
    cfg = sg_cfg_load_string(text, "t.conf", &diags);
    if (cfg == NULL)
        sg_cfg_diags_print(&diags, stderr);
    assert_non_null(cfg);
    c = &cfg->pools[0].autoscale;
    assert_int_equal(c->nrules, SG_AS_NMETRICS);
    for (size_t i = 0; i < c->nrules; i++) {
        int mi = sg_as_metric_parse(c->rules[i].metric);
        assert_true(mi >= 0);
        seen[mi] = true;
    }
    for (int i = 0; i < SG_AS_NMETRICS; i++)
        assert_true(seen[i]);
    assert_int_equal(c->scale_up_cooldown_ms, 60000);
    assert_int_equal(c->scale_down_window_ms, 300000);
    assert_int_equal(c->min, 1);
    assert_int_equal(c->step, 1);
    as = sg_as_new(c);
    assert_non_null(as);
    sg_as_free(as);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&diags);
}

static void test_new_bad(void **state)
{
    struct sg_cfg_rule r[] = {rule("cpu", SG_RULE_ABOVE, 1, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 4, 1, 300000);

    (void)state;
    assert_null(sg_as_new(NULL));
    assert_null(sg_as_new(&c));
    sg_as_free(NULL);
}

/* ---- threshold rules ---- */

static void test_above_for_duration(void **state)
{
    struct sg_cfg_rule r[] = {rule("latency_p95_ms", SG_RULE_ABOVE, 300, 30000)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 10, 1, 300000);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint64_t since;
    uint32_t cur = 2;

    (void)state;
    nan_all(m);
    m[SG_AS_LATENCY_P95_MS] = 412.0;
    assert_false(sg_as_rule_state(as, 0, &since));
    assert_int_equal(since, 0);
    /* held at t = 0..29: not yet; t = 30 is 30 s of holding: fires */
    for (int t = 0; t < 30; t++) {
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, &d), SG_AS_NONE);
        assert_true(sg_as_rule_state(as, 0, &since));
        assert_int_equal(since, S(0));
    }
    assert_int_equal(step_act(as, 30, m, &cur, &d), SG_AS_UP);
    assert_int_equal(d.current, 2);
    assert_int_equal(d.desired, 3);
    assert_int_equal(d.rule, 0);
    assert_string_equal(d.reason, "latency_p95_ms 412.0 > 300 for 30s");
    sg_as_free(as);

    /* broken for one tick (300 is not above 300): the 30 s start again */
    as = sg_as_new(&c);
    cur = 2;
    for (int t = 0; t < 29; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    m[SG_AS_LATENCY_P95_MS] = 300.0;
    assert_int_equal(step_act(as, 29, m, &cur, NULL), SG_AS_NONE);
    assert_false(sg_as_rule_state(as, 0, &since));
    assert_int_equal(since, 0);
    m[SG_AS_LATENCY_P95_MS] = 301.0;
    for (int t = 30; t < 60; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    assert_true(sg_as_rule_state(as, 0, &since));
    assert_int_equal(since, S(30));
    assert_int_equal(step_act(as, 60, m, &cur, &d), SG_AS_UP);
    assert_int_equal(cur, 3);
    /* a missing sample (NaN) breaks it too */
    m[SG_AS_LATENCY_P95_MS] = NAN;
    assert_int_equal(step_act(as, 61, m, &cur, NULL), SG_AS_NONE);
    assert_false(sg_as_rule_state(as, 0, NULL));
    assert_false(sg_as_rule_state(as, 1, &since)); /* out of range */
    assert_int_equal(since, 0);
    sg_as_free(as);

    /* for = 0: at once */
    r[0].for_ms = 0;
    m[SG_AS_LATENCY_P95_MS] = 301.0;
    d = once(&c, 2, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 3);
    assert_string_equal(d.reason, "latency_p95_ms 301.0 > 300");
}

static void test_below_for_duration(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_BELOW, 0.2, 10000)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 10, 2, 0); /* no window: the rule alone */
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint32_t cur = 6;

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 0.1;
    for (int t = 0; t < 10; t++) {
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, &d), SG_AS_NONE);
        assert_non_null(strstr(d.reason, "utilization 0.10 < 0.2 for"));
    }
    assert_int_equal(step_act(as, 10, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.rule, 0);
    assert_string_equal(d.reason, "utilization 0.10 < 0.2 for 10s");
    /* still below and no window: one step per evaluation down to min */
    assert_int_equal(step_act(as, 11, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(cur, 2);
    assert_int_equal(step_act(as, 12, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(cur, 1);
    assert_int_equal(step_act(as, 13, m, &cur, &d), SG_AS_NONE);
    assert_non_null(strstr(d.reason, "(at the min 1)"));
    sg_as_free(as);
}

/* ---- target tracking ---- */

static void test_target_formula(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 0, 100, 100, 0);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 0.9;
    d = once(&c, 2, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 3);
    assert_int_equal(d.rule, 0);
    assert_string_equal(d.reason, "utilization 0.90 vs target 0.60: ceil(2 x 1.50) = 3");

    /* float noise: 10 x (0.14 / 0.1) is 14.000000000000002 in doubles, still 14 */
    r[0] = rule("queue_depth_per_backend", SG_RULE_TARGET, 0.1, 0);
    m[SG_AS_QUEUE_DEPTH_PER_BACKEND] = 0.14;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 14);
    m[SG_AS_QUEUE_DEPTH_PER_BACKEND] = -3; /* nonsense: down to min (0 here) */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 0);
    r[0] = rule("utilization", SG_RULE_TARGET, 0.6, 0);

    m[SG_AS_UTILIZATION] = 0.61;
    d = once(&c, 10, m); /* ceil(10.17) = 11 but within 10%: nothing */
    assert_int_equal(d.action, SG_AS_NONE);
    assert_int_equal(d.desired, 10);
    assert_non_null(strstr(d.reason, "within 10%"));
    m[SG_AS_UTILIZATION] = 0.66; /* exactly +10% */
    assert_int_equal(once(&c, 10, m).action, SG_AS_NONE);
    m[SG_AS_UTILIZATION] = 0.54; /* exactly -10% */
    assert_int_equal(once(&c, 10, m).action, SG_AS_NONE);
    m[SG_AS_UTILIZATION] = 0.661;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 12); /* ceil(11.02) */
    m[SG_AS_UTILIZATION] = 0.539;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 9); /* ceil(8.98) */
    m[SG_AS_UTILIZATION] = 0.3;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 5);
    m[SG_AS_UTILIZATION] = 0.0; /* idle: down to min (0 here) */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 0);
    m[SG_AS_UTILIZATION] = 1e300; /* absurd: clamped to max */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 100);

    /* no backend: a ratio cannot scale from zero: abstains */
    m[SG_AS_UTILIZATION] = 0.9;
    d = once(&c, 0, m);
    assert_int_equal(d.action, SG_AS_NONE);
    assert_int_equal(d.rule, -1);
    assert_non_null(strstr(d.reason, "no rule votes"));
    /* no data: abstains */
    m[SG_AS_UTILIZATION] = NAN;
    d = once(&c, 3, m);
    assert_int_equal(d.action, SG_AS_NONE);
    assert_non_null(strstr(d.reason, "no data"));
}

/* A "for" on a target rule: the metric must stay on one side of the band. */
static void test_target_for(void **state)
{
    struct sg_cfg_rule r[] = {rule("latency_p99_ms", SG_RULE_TARGET, 200, 5000)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 100, 100, 0);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint64_t since;
    uint32_t cur = 4;

    (void)state;
    nan_all(m);
    m[SG_AS_LATENCY_P99_MS] = 400;
    for (int t = 0; t < 5; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    m[SG_AS_LATENCY_P99_MS] = 100; /* other side: starts again */
    assert_int_equal(step_act(as, 5, m, &cur, NULL), SG_AS_NONE);
    assert_true(sg_as_rule_state(as, 0, &since));
    assert_int_equal(since, S(5));
    m[SG_AS_LATENCY_P99_MS] = 400;
    for (int t = 6; t < 11; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    assert_int_equal(step_act(as, 11, m, &cur, &d), SG_AS_UP);
    assert_int_equal(d.desired, 8);
    sg_as_free(as);
}

/* ---- several rules ---- */

static void test_several_rules(void **state)
{
    struct sg_cfg_rule r[] = {
        rule("queue_depth", SG_RULE_ABOVE, 10, 0), rule("utilization", SG_RULE_TARGET, 0.6, 0),
        rule("queue_depth", SG_RULE_BELOW, 5, 0), rule("latency_p95_ms", SG_RULE_ABOVE, 300, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 4, 1, 20, 10, 0);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];

    (void)state;
    nan_all(m);
    /* the largest recommendation wins a scale-up */
    m[SG_AS_QUEUE_DEPTH] = 11;  /* above: 4 + 10 = 14 */
    m[SG_AS_UTILIZATION] = 1.2; /* target: 8 */
    d = once(&c, 4, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 14);
    assert_int_equal(d.rule, 0);
    assert_string_equal(d.reason, "queue_depth 11.0 > 10");
    m[SG_AS_UTILIZATION] = 2.4; /* target: 16 (wins) -> step 10 */
    d = once(&c, 4, m);
    assert_int_equal(d.desired, 14);
    assert_int_equal(d.rule, 1);
    assert_string_equal(d.reason, "utilization 2.40 vs target 0.60: ceil(4 x 4.00) = 16 (step 10)");
    /* two rules with the same recommendation: rule -1, both reasons */
    m[SG_AS_UTILIZATION] = NAN;
    m[SG_AS_LATENCY_P95_MS] = 500;
    d = once(&c, 4, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 14);
    assert_int_equal(d.rule, -1);
    assert_non_null(strstr(d.reason, "queue_depth 11.0 > 10; latency_p95_ms 500.0 > 300"));

    /* down only when every voting rule agrees: the below rule keeps */
    m[SG_AS_LATENCY_P95_MS] = 100; /* above rules abstain, they never block */
    m[SG_AS_QUEUE_DEPTH] = 8;
    m[SG_AS_UTILIZATION] = 0.3; /* target: 5 */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_NONE);
    assert_int_equal(d.desired, 10);
    /* ... both agree: the largest of their recommendations */
    m[SG_AS_QUEUE_DEPTH] = 2; /* below: 10 - 10 = 0 -> 0; target 5 */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 5);
    assert_int_equal(d.rule, 1);
    /* a target in its dead band keeps the count: no down */
    m[SG_AS_UTILIZATION] = 0.6;
    assert_int_equal(once(&c, 10, m).action, SG_AS_NONE);
    /* an abstaining target (no data) does not block the below rule */
    m[SG_AS_UTILIZATION] = NAN;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 1); /* 0 clamped to min */
    assert_int_equal(d.rule, 2);
    /* up beats down */
    m[SG_AS_LATENCY_P95_MS] = 400;
    m[SG_AS_UTILIZATION] = 0.3;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 20);
    assert_int_equal(d.rule, 3);
}

/* NaN: the condition is false; a below rule then keeps (blocking a down). */
static void test_nan(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0),
                              rule("queue_depth", SG_RULE_BELOW, 5, 0),
                              rule("queue_depth", SG_RULE_ABOVE, 50, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 3, 1, 20, 10, 0);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 0.3;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_NONE);
    assert_int_equal(d.desired, 10);
    c.nrules = 1; /* the target alone */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    r[1] = r[2]; /* target + an above rule without data: abstains */
    c.nrules = 2;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 5);
    nan_all(m); /* nothing at all: nothing to do */
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_NONE);
    assert_int_equal(d.rule, -1);
    m[SG_AS_UTILIZATION] = INFINITY;
    d = once(&c, 10, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 20);
}

/* ---- clamps ---- */

static void test_clamps(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.5, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 3, 10, 100, 0);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 1.0; /* x2 */
    d = once(&c, 8, m);         /* 16 -> max 10 */
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 10);
    assert_non_null(strstr(d.reason, "(max 10)"));
    d = once(&c, 10, m); /* at max */
    assert_int_equal(d.action, SG_AS_NONE);
    assert_non_null(strstr(d.reason, "(at the max 10)"));
    m[SG_AS_UTILIZATION] = 0.1; /* x0.2 */
    d = once(&c, 5, m);         /* 1 -> min 3 */
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 3);
    assert_non_null(strstr(d.reason, "(min 3)"));

    /* max step per action */
    c.step = 3;
    m[SG_AS_UTILIZATION] = 1.0;
    d = once(&c, 4, m); /* 8 -> 4 + 3 */
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 7);
    assert_non_null(strstr(d.reason, "(step 3)"));
    m[SG_AS_UTILIZATION] = 0.1;
    d = once(&c, 10, m); /* 2 -> min 3 -> 10 - 3 */
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 7);

    /* below min: up to min whatever the rules say, a step at a time */
    c.step = 1;
    m[SG_AS_UTILIZATION] = NAN;
    d = once(&c, 1, m);
    assert_int_equal(d.action, SG_AS_UP);
    assert_int_equal(d.desired, 2);
    assert_int_equal(d.rule, -1);
    assert_non_null(strstr(d.reason, "below min 3"));
    m[SG_AS_UTILIZATION] = 0.01; /* even when the rule wants fewer */
    assert_int_equal(once(&c, 0, m).desired, 1);
    c.step = 5;
    assert_int_equal(once(&c, 0, m).desired, 3);
    m[SG_AS_UTILIZATION] = 2.0; /* a rule above min wins: 2 x 4 = 8, step 5 */
    d = once(&c, 2, m);
    assert_int_equal(d.desired, 7);
    assert_int_equal(d.rule, 0);

    /* above max: down to max at once (no window), a step at a time */
    c.scale_down_window_ms = 300000;
    m[SG_AS_UTILIZATION] = 0.5; /* the rule is content */
    d = once(&c, 12, m);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_int_equal(d.desired, 10);
    assert_non_null(strstr(d.reason, "above max 10"));
    c.step = 1;
    assert_int_equal(once(&c, 12, m).desired, 11);
}

/* ---- cooldown and stabilization ---- */

static void test_cooldown(void **state)
{
    struct sg_cfg_rule r[] = {rule("queue_depth", SG_RULE_ABOVE, 10, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 100, 1, 300000);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint32_t cur = 2;

    (void)state;
    nan_all(m);
    m[SG_AS_QUEUE_DEPTH] = 50;
    assert_int_equal(step_act(as, 0, m, &cur, NULL), SG_AS_UP);
    assert_int_equal(cur, 3);
    for (int t = 1; t < 60; t++) {
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, &d), SG_AS_NONE);
        assert_non_null(strstr(d.reason, "cooldown"));
        assert_int_equal(d.rule, 0);
    }
    assert_int_equal(step_act(as, 60, m, &cur, NULL), SG_AS_UP);
    assert_int_equal(cur, 4);
    assert_int_equal(step_act(as, 61, m, &cur, NULL), SG_AS_NONE);
    /* eval alone does not start a cooldown: only acting does */
    sg_as_eval(as, S(120), m, cur, &d);
    assert_int_equal(d.action, SG_AS_UP);
    sg_as_eval(as, S(121), m, cur, &d);
    assert_int_equal(d.action, SG_AS_UP);
    sg_as_acted(as, S(121), &d);
    sg_as_eval(as, S(122), m, cur, &d);
    assert_int_equal(d.action, SG_AS_NONE);
    sg_as_free(as);

    /* cooldown 0: every evaluation may scale up */
    c.scale_up_cooldown_ms = 0;
    as = sg_as_new(&c);
    cur = 2;
    for (int t = 0; t < 5; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_UP);
    assert_int_equal(cur, 7);
    sg_as_free(as);
}

/* A surge then quiet: down only once the window holds no higher
 * recommendation; then at most step per action. */
static void test_stabilization(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 20, 10, 300000);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint32_t cur = 2;
    int t;

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 1.2;
    assert_int_equal(step_act(as, 0, m, &cur, &d), SG_AS_UP);
    assert_int_equal(cur, 4);
    m[SG_AS_UTILIZATION] = 0.15; /* quiet: wants ceil(4 x 0.25) = 1 */
    for (t = 1; t < 300; t++) {
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, &d), SG_AS_NONE);
        assert_non_null(strstr(d.reason, "stabilizing, 4 recommended within the last 5m"));
    }
    assert_int_equal(step_act(as, 300, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(cur, 1);
    sg_as_free(as);

    /* the surge lasts (up held back by the cooldown): its recommendations
     * keep the count up until 300 s after the last of them */
    as = sg_as_new(&c);
    cur = 2;
    m[SG_AS_UTILIZATION] = 1.2;
    assert_int_equal(step_act(as, 0, m, &cur, NULL), SG_AS_UP);
    for (t = 1; t <= 100; t++) /* wants 8 at 4, cooldown; UP at 60 */
        step_act(as, (uint64_t)t, m, &cur, NULL);
    assert_int_equal(cur, 8);
    m[SG_AS_UTILIZATION] = 0.3; /* wants 4 */
    for (t = 101; t < 400; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    assert_int_equal(step_act(as, 400, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(d.desired, 4);
    sg_as_free(as);

    /* a fresh engine counts the pool as it is: no down in its first window;
     * then the highest recommendation in the window caps how far down */
    c.step = 100;
    as = sg_as_new(&c);
    cur = 10;
    m[SG_AS_UTILIZATION] = 0.36; /* wants ceil(10 x 0.6) = 6 */
    for (t = 0; t < 300; t++) {
        if (t == 200)
            m[SG_AS_UTILIZATION] = 0.24; /* wants ceil(10 x 0.4) = 4 */
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, &d), SG_AS_NONE);
    }
    assert_non_null(strstr(d.reason, "stabilizing, 10 recommended"));
    assert_int_equal(step_act(as, 300, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(d.desired, 6);
    assert_non_null(strstr(d.reason, "(highest in the last 5m: 6)"));
    for (t = 301; t < 499; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    assert_int_equal(step_act(as, 499, m, &cur, &d), SG_AS_DOWN);
    assert_int_equal(d.desired, 4);
    sg_as_free(as);
}

/* Stays true: the sample of an UP keeps the window from going down. */
static void test_no_down_after_up(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 20, 5, 300000);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint32_t cur = 5;

    (void)state;
    nan_all(m);
    assert_int_equal(step_act(as, 0, m, &cur, NULL), SG_AS_NONE);
    /* an UP decided elsewhere acted on, its count in no evaluation */
    d.action = SG_AS_UP;
    d.current = 5;
    d.desired = 9;
    d.rule = -1;
    sg_as_acted(as, S(0), &d);
    cur = 9;
    m[SG_AS_UTILIZATION] = 0.1;
    for (int t = 1; t < 300; t++)
        assert_int_equal(step_act(as, (uint64_t)t, m, &cur, NULL), SG_AS_NONE);
    assert_int_equal(step_act(as, 300, m, &cur, NULL), SG_AS_DOWN);
    assert_int_equal(cur, 4);
    sg_as_free(as);
}

/* A metric alternating just above / below a threshold every tick. */
static void test_hover_threshold(void **state)
{
    struct sg_cfg_rule r[] = {rule("queue_depth", SG_RULE_ABOVE, 10, 0),
                              rule("queue_depth", SG_RULE_BELOW, 10, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 2, 1, 8, 1, 300000);
    struct sg_as *as = sg_as_new(&c);
    double m[SG_AS_NMETRICS];
    uint32_t cur = 2;
    int ups = 0;
    int64_t last_up = -1000;

    (void)state;
    nan_all(m);
    for (int t = 0; t < 1500; t++) {
        enum sg_as_action a;
        m[SG_AS_QUEUE_DEPTH] = t % 2 == 0 ? 10.5 : 9.5;
        a = step_act(as, (uint64_t)t, m, &cur, NULL);
        assert_int_not_equal(a, SG_AS_DOWN);
        if (a == SG_AS_UP) {
            assert_true(t - last_up >= 60);
            last_up = t;
            ups++;
        }
    }
    assert_int_equal(cur, 8); /* up to max, one step per cooldown */
    assert_int_equal(ups, 6);
    sg_as_free(as);
}

/* A simulated pool: a constant load whose utilization is load / backends,
 * noisy enough to leave the dead band every other tick. It converges, then
 * never changes again: no DOWN right after an UP, no oscillation. */
static void test_hover_target(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0),
                              rule("latency_p95_ms", SG_RULE_ABOVE, 300, 30000),
                              rule("utilization", SG_RULE_BELOW, 0.2, 60000)};
    struct sg_cfg_autoscale c = mkcfg(r, 3, 1, 20, 4, 300000);
    struct sg_as *as = sg_as_new(&c);
    double m[SG_AS_NMETRICS];
    uint32_t cur = 2;
    int64_t last_up = -100000, last_action = -1;
    enum sg_as_action prev = SG_AS_NONE;
    int reversals = 0;

    (void)state;
    nan_all(m);
    for (int t = 0; t < 2000; t++) {
        double load = 3.0 * (t % 2 == 0 ? 1.12 : 0.88);
        enum sg_as_action a;
        m[SG_AS_UTILIZATION] = load / cur;
        m[SG_AS_LATENCY_P95_MS] = m[SG_AS_UTILIZATION] > 0.9 ? 500 : 100;
        a = step_act(as, (uint64_t)t, m, &cur, NULL);
        if (a == SG_AS_NONE)
            continue;
        if (a == SG_AS_UP)
            last_up = t;
        else
            assert_true(t - last_up >= 300);
        if (prev != SG_AS_NONE && prev != a)
            reversals++;
        prev = a;
        last_action = t;
    }
    assert_true(reversals <= 1);
    assert_true(last_action < 700);
    assert_true(cur >= 5 && cur <= 7);
    sg_as_free(as);
}

/* ---- irregular calls and memory ---- */

static void test_irregular(void **state)
{
    struct sg_cfg_rule r[] = {rule("utilization", SG_RULE_TARGET, 0.6, 0)};
    struct sg_cfg_autoscale c = mkcfg(r, 1, 1, 20, 10, 300000);
    struct sg_as *as = sg_as_new(&c);
    struct sg_as_decision d;
    double m[SG_AS_NMETRICS];
    uint32_t cur = 2;
    uint64_t t;

    (void)state;
    nan_all(m);
    m[SG_AS_UTILIZATION] = 1.2;
    sg_as_eval(as, S(0), m, cur, &d);
    assert_int_equal(d.action, SG_AS_UP);
    sg_as_acted(as, S(0), &d);
    cur = d.desired;
    /* ten evaluations a second, a repeated time, a time going backwards */
    m[SG_AS_UTILIZATION] = 0.15;
    for (t = S(0) + 100; t < S(300); t += 100) {
        sg_as_eval(as, t, m, cur, &d);
        assert_int_equal(d.action, SG_AS_NONE);
        sg_as_eval(as, t, m, cur, &d);
        assert_int_equal(d.action, SG_AS_NONE);
        sg_as_eval(as, t - 5000, m, cur, &d);
        assert_int_equal(d.action, SG_AS_NONE);
    }
    /* the window keeps 1 s buckets: the UP's bucket leaves it 300 s after
     * the last evaluation in that bucket (here at 0.9 s) */
    for (; d.action == SG_AS_NONE && t <= S(302); t += 100)
        sg_as_eval(as, t, m, cur, &d);
    assert_int_equal(d.action, SG_AS_DOWN);
    assert_true(t - 100 >= S(300) && t - 100 <= S(301));
    /* a long gap: the window is empty but this tick's own recommendation counts */
    sg_as_eval(as, S(100000), m, cur, &d);
    assert_int_equal(d.action, SG_AS_DOWN);
    sg_as_free(as);

    /* a one-day window: bounded buckets; a week of evaluations */
    c.scale_down_window_ms = 24u * 3600 * 1000;
    as = sg_as_new(&c);
    cur = 4;
    m[SG_AS_UTILIZATION] = 1.2;
    sg_as_eval(as, S(0), m, cur, &d);
    sg_as_acted(as, S(0), &d);
    cur = d.desired;
    m[SG_AS_UTILIZATION] = 0.3;
    for (t = 1; t < 86400; t += 7) {
        sg_as_eval(as, S(t), m, cur, &d);
        assert_int_equal(d.action, SG_AS_NONE);
    }
    for (; t < 7 * 86400; t += 7) {
        sg_as_eval(as, S(t), m, cur, &d);
        if (d.action == SG_AS_DOWN) {
            assert_true(t >= 86400 && t < 86400 + 60);
            break;
        }
    }
    assert_int_equal(d.action, SG_AS_DOWN);
    sg_as_free(as);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_cfg_metrics_and_defaults),
        cmocka_unit_test(test_new_bad),
        cmocka_unit_test(test_above_for_duration),
        cmocka_unit_test(test_below_for_duration),
        cmocka_unit_test(test_target_formula),
        cmocka_unit_test(test_target_for),
        cmocka_unit_test(test_several_rules),
        cmocka_unit_test(test_nan),
        cmocka_unit_test(test_clamps),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_stabilization),
        cmocka_unit_test(test_no_down_after_up),
        cmocka_unit_test(test_hover_threshold),
        cmocka_unit_test(test_hover_target),
        cmocka_unit_test(test_irregular),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
