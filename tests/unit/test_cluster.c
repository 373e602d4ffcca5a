/* Unit tests for the cluster's metric aggregation and its JSON
 * (cluster_agg.c): what the leader decides on from every instance's view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "surgegate/autoscale.h"
#include "surgegate/cluster.h"
#include "surgegate/common.h"

static struct sg_cluster_raw mkraw(double peak, double queued, double inflight, double maxconn,
                                   double usable, double rps, double er, double n, double p99)
{
    struct sg_cluster_raw r = {.queue_peak = peak,
                               .queued = queued,
                               .inflight = inflight,
                               .maxconn = maxconn,
                               .unlimited = false,
                               .usable = usable,
                               .current = 2,
                               .rps = rps,
                               .error_rate = er,
                               .lat_count = n,
                               .lat_p50_ms = n > 0 ? p99 / 4 : NAN,
                               .lat_p95_ms = n > 0 ? p99 / 2 : NAN,
                               .lat_p99_ms = n > 0 ? p99 : NAN};
    return r;
}

/* One instance: its own view, as control.c computed it before clusters. */
static void test_one_instance(void **state)
{
    (void)state;
    struct sg_cluster_raw r = mkraw(6, 4, 8, 20, 2, 50, 0.1, 100, 400);
    double m[SG_AS_NMETRICS];
    sg_cluster_derive(&r, 1, 2, m);
    assert_true(m[SG_AS_QUEUE_DEPTH] == 6);
    assert_true(m[SG_AS_QUEUE_DEPTH_PER_BACKEND] == 3);
    assert_true(m[SG_AS_INFLIGHT_PER_BACKEND] == 4);
    assert_true(fabs(m[SG_AS_UTILIZATION] - 12.0 / 20.0) < 1e-12);
    assert_true(m[SG_AS_LATENCY_P99_MS] == 400);
    assert_true(m[SG_AS_LATENCY_P95_MS] == 200);
    assert_true(m[SG_AS_LATENCY_P50_MS] == 100);
    assert_true(fabs(m[SG_AS_ERROR_RATE] - 0.1) < 1e-12);
    assert_true(m[SG_AS_RPS_PER_BACKEND] == 25);
    assert_true(m[SG_AS_HEALTHY_BACKENDS] == 2);
}

/* Three instances: sums for counts and rates, rps-weighted error rate,
 * highest latency of those with requests, lowest healthy count. */
static void test_three_instances(void **state)
{
    (void)state;
    struct sg_cluster_raw r[3] = {mkraw(2, 1, 3, 20, 2, 10, 0.0, 50, 100),
                                  mkraw(3, 2, 3, 20, 1, 30, 0.2, 50, 300),
                                  mkraw(1, 0, 3, 20, 2, 0, 0.0, 0, 0)};
    double m[SG_AS_NMETRICS];
    sg_cluster_derive(r, 3, 2, m);
    assert_true(m[SG_AS_QUEUE_DEPTH] == 6);
    assert_true(m[SG_AS_QUEUE_DEPTH_PER_BACKEND] == 3);
    assert_true(m[SG_AS_INFLIGHT_PER_BACKEND] == 4.5); /* 9 / 2: no instance alone is above 1.5 */
    assert_true(fabs(m[SG_AS_UTILIZATION] - 12.0 / 60.0) < 1e-12);
    assert_true(m[SG_AS_LATENCY_P99_MS] == 300);
    assert_true(m[SG_AS_LATENCY_P50_MS] == 75);
    assert_true(fabs(m[SG_AS_ERROR_RATE] - 6.0 / 40.0) < 1e-12);
    assert_true(m[SG_AS_RPS_PER_BACKEND] == 20);
    assert_true(m[SG_AS_HEALTHY_BACKENDS] == 1);
}

/* No data: latency NaN, utilization NaN with an unlimited backend or no
 * maxconn, per-backend NaN without backends, error rate 0 without requests. */
static void test_no_data(void **state)
{
    (void)state;
    struct sg_cluster_raw r[2] = {mkraw(0, 0, 0, 0, 0, 0, 0, 0, 0),
                                  mkraw(0, 0, 1, 10, 1, 0, 0, 0, 0)};
    r[1].unlimited = true;
    double m[SG_AS_NMETRICS];
    sg_cluster_derive(r, 2, 0, m);
    assert_true(isnan(m[SG_AS_LATENCY_P99_MS]));
    assert_true(isnan(m[SG_AS_UTILIZATION]));
    assert_true(isnan(m[SG_AS_INFLIGHT_PER_BACKEND]));
    assert_true(m[SG_AS_ERROR_RATE] == 0);
    assert_true(m[SG_AS_QUEUE_DEPTH] == 0);
    sg_cluster_derive(r, 1, 1, m);
    assert_true(isnan(m[SG_AS_UTILIZATION])); /* maxconn 0 */
}

/* JSON round trip, and what a bad record from another instance becomes. */
static void test_json(void **state)
{
    (void)state;
    struct sg_cluster_raw r = mkraw(6, 4, 8, 20, 2, 50, 0.1, 0, 0), back;
    json_t *o = sg_cluster_raw_json(&r);
    assert_true(json_is_null(json_object_get(o, "latency_p99_ms")));
    assert_int_equal(sg_cluster_raw_parse(o, &back), SG_OK);
    json_decref(o);
    assert_true(back.queue_peak == 6 && back.queued == 4 && back.inflight == 8);
    assert_true(back.maxconn == 20 && back.usable == 2 && back.rps == 50);
    assert_true(fabs(back.error_rate - 0.1) < 1e-12 && isnan(back.lat_p99_ms));

    o = json_pack("{s:s, s:f, s:f, s:b, s:f}", "inflight", "lots", "rps", -5.0, "error_rate", 7.0,
                  "unlimited", 1, "queue_peak", 3.0);
    assert_int_equal(sg_cluster_raw_parse(o, &back), SG_OK);
    json_decref(o);
    assert_true(back.inflight == 0 && back.rps == 0 && back.error_rate == 1);
    assert_true(back.unlimited && back.queue_peak == 3 && isnan(back.usable));

    o = json_string("x");
    assert_int_equal(sg_cluster_raw_parse(o, &back), SG_ERR);
    json_decref(o);
    assert_int_equal(sg_cluster_raw_parse(NULL, &back), SG_ERR);
    assert_true(back.inflight == 0 && !back.unlimited);
}

static void test_role_names(void **state)
{
    (void)state;
    assert_string_equal(sg_cluster_role_name(SG_CLUSTER_ALONE), "alone");
    assert_string_equal(sg_cluster_role_name(SG_CLUSTER_LEADER), "leader");
    assert_string_equal(sg_cluster_role_name(SG_CLUSTER_FOLLOWER), "follower");
    assert_string_equal(sg_cluster_role_name(SG_CLUSTER_LOST), "lost");
    assert_int_equal(sg_cluster_role(NULL), SG_CLUSTER_ALONE);
    assert_null(sg_cluster_new(NULL, NULL));
    assert_int_equal(sg_cluster_pool_raws(NULL, "app", NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_instance), cmocka_unit_test(test_three_instances),
        cmocka_unit_test(test_no_data),      cmocka_unit_test(test_json),
        cmocka_unit_test(test_role_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
