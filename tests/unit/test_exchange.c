/* Unit tests for exchange.c: the retry decision, the retry budget, backend
 * outcome accounting and the per-request record. The .c is included to
 * reach its statics (h2o style); no socket is opened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Before cmocka.h, whose fail() macro would rewrite ops->fail. */
#include "../../src/exchange.c"

#include <cmocka.h>

/* ------------------------------------------------------------ retry decision */

static enum sg_xretry decide(enum sg_xfail kind, bool started, bool replayable, bool reused,
                             bool idem, uint32_t stale, uint32_t left)
{
    struct sg_xretry_in in = {.kind = kind,
                              .resp_started = started,
                              .replayable = replayable,
                              .was_reused = reused,
                              .idempotent = idem,
                              .stale_retries = stale,
                              .retries_left = left};
    return sg_exchange_retry_decide(&in);
}

static void test_retry_started_response_aborts(void **st)
{
    /* Once a response byte arrived nothing may be resent, whatever else holds. */
    for (int k = SG_XF_CONNECT; k <= SG_XF_TIMEOUT; k++)
        assert_int_equal(decide((enum sg_xfail)k, true, true, true, true, 0, 5), SG_XR_ABORT);
}

static void test_retry_stale_pooled_connection(void **st)
{
    /* A reset on a reused keep-alive connection: same backend, free, twice. */
    assert_int_equal(decide(SG_XF_RESET, false, true, true, false, 0, 0), SG_XR_STALE);
    assert_int_equal(decide(SG_XF_RESET, false, true, true, false, 1, 0), SG_XR_STALE);
    /* the third time it counts as a real failure (not idempotent: 502) */
    assert_int_equal(decide(SG_XF_RESET, false, true, true, false, 2, 0), SG_XR_FAIL_502);
    /* not on a fresh connection, nor when the body was not kept */
    assert_int_equal(decide(SG_XF_RESET, false, true, false, false, 0, 0), SG_XR_FAIL_502);
    assert_int_equal(decide(SG_XF_RESET, false, false, true, true, 0, 3), SG_XR_FAIL_502);
    /* a timeout on a reused connection is no sign of staleness */
    assert_int_equal(decide(SG_XF_TIMEOUT, false, true, true, true, 0, 0), SG_XR_FAIL_504);
}

static void test_retry_never_sent_goes_elsewhere(void **st)
{
    /* A connect failure never reached the backend: even a POST may go again.
     * Refused: the backend is gone, the retry is free of the budget; a
     * connect timeout may be a busy backend's full backlog: budgeted. */
    assert_int_equal(decide(SG_XF_CONNECT, false, true, false, false, 0, 1), SG_XR_RESEND);
    assert_int_equal(decide(SG_XF_CONNECT_TIMEOUT, false, true, false, false, 0, 1), SG_XR_RETRY);
}

static void test_retry_sent_only_when_idempotent(void **st)
{
    /* closed or reset before any response byte: a dead backend's batch in
     * flight, resent without the budget; a timeout: the budget decides */
    assert_int_equal(decide(SG_XF_RESET, false, true, false, true, 0, 1), SG_XR_RESEND);
    assert_int_equal(decide(SG_XF_TIMEOUT, false, true, false, true, 0, 1), SG_XR_RETRY);
    assert_int_equal(decide(SG_XF_RESET, false, true, false, false, 0, 1), SG_XR_FAIL_502);
    assert_int_equal(decide(SG_XF_TIMEOUT, false, true, false, false, 0, 1), SG_XR_FAIL_504);
}

static void test_retry_spent_or_not_replayable(void **st)
{
    assert_int_equal(decide(SG_XF_CONNECT, false, true, false, true, 0, 0), SG_XR_FAIL_502);
    assert_int_equal(decide(SG_XF_CONNECT_TIMEOUT, false, true, false, true, 0, 0), SG_XR_FAIL_504);
    assert_int_equal(decide(SG_XF_CONNECT, false, false, false, true, 0, 2), SG_XR_FAIL_502);
}

static void test_retry_backend_down(void **st)
{
    /* Stuck on a backend its health checks took down: an idempotent request
     * that got nothing yet goes elsewhere (also on a reused connection); */
    assert_int_equal(decide(SG_XF_DOWN, false, true, false, true, 0, 1), SG_XR_RETRY);
    assert_int_equal(decide(SG_XF_DOWN, false, true, true, true, 0, 2), SG_XR_RETRY);
    /* anything else keeps waiting: it was sent and may yet be answered */
    assert_int_equal(decide(SG_XF_DOWN, false, true, false, false, 0, 1), SG_XR_KEEP);
    assert_int_equal(decide(SG_XF_DOWN, false, false, false, true, 0, 1), SG_XR_KEEP);
    assert_int_equal(decide(SG_XF_DOWN, false, true, false, true, 0, 0), SG_XR_KEEP);
    assert_int_equal(decide(SG_XF_DOWN, true, true, false, true, 0, 1), SG_XR_KEEP);
    assert_int_equal(decide(SG_XF_DOWN, false, true, true, false, 0, 0), SG_XR_KEEP);
}

static void test_retry_gone_vs_busy(void **st)
{
    /* A pooled connection reset a third time: the backend is gone, resent
     * elsewhere without the budget (idempotent) or 502 (not). */
    assert_int_equal(decide(SG_XF_RESET, false, true, true, true, 2, 1), SG_XR_RESEND);
    assert_int_equal(decide(SG_XF_RESET, false, true, true, false, 2, 1), SG_XR_FAIL_502);
    /* free of the budget, never of `retries` nor of the replay rules */
    assert_int_equal(decide(SG_XF_CONNECT, false, true, false, true, 0, 0), SG_XR_FAIL_502);
    assert_int_equal(decide(SG_XF_RESET, false, true, false, true, 0, 0), SG_XR_FAIL_502);
    assert_int_equal(decide(SG_XF_RESET, false, false, false, true, 0, 2), SG_XR_FAIL_502);
    /* what a busy pool shows stays budgeted: timeouts and take-downs */
    assert_int_equal(decide(SG_XF_TIMEOUT, false, true, true, true, 0, 2), SG_XR_RETRY);
    assert_int_equal(decide(SG_XF_CONNECT_TIMEOUT, false, true, false, true, 0, 2), SG_XR_RETRY);
    assert_int_equal(decide(SG_XF_DOWN, false, true, false, true, 0, 2), SG_XR_RETRY);
}

static void test_retry_budget(void **st)
{
    struct sg_cfg_retry_budget rb = {.percent = 20.0, .min_retries = 3};
    /* min_retries always allowed */
    assert_true(sg_retry_budget_allows(&rb, 0, 0));
    assert_true(sg_retry_budget_allows(&rb, 1, 2));
    assert_false(sg_retry_budget_allows(&rb, 1, 3));
    /* 20% of 100 active = 20 in flight */
    assert_true(sg_retry_budget_allows(&rb, 100, 19));
    assert_false(sg_retry_budget_allows(&rb, 100, 20));
    rb.min_retries = 0;
    rb.percent = 0;
    assert_false(sg_retry_budget_allows(&rb, 1000, 0));
}

/* ------------------------------------------------------ outcome accounting */

struct fixture {
    struct sg_worker w;
    struct sg_pool pool;
    struct sg_cfg_pool pcfg;
    struct sg_backend b[2];
    struct sg_wbackend wb[2];
    struct sg_wpool wp;
    struct sg_lb_ops lb;
    struct sg_exchange x;
};

static int observed;
static uint64_t observed_latency;

static void fake_observe(void *state, const struct sg_backend *b, uint64_t now_ms,
                         uint64_t latency_us)
{
    observed++;
    observed_latency = latency_us;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->lb.name = "fake";
    f->lb.observe = fake_observe;
    f->pool.magic = SG_POOL_MAGIC;
    f->pool.name = "p";
    f->pool.cfg = &f->pcfg;
    f->pool.lb = &f->lb;
    f->pool.backends = f->b;
    f->pool.nbackends = 2;
    for (uint32_t i = 0; i < 2; i++) {
        f->b[i].magic = SG_BACKEND_MAGIC;
        f->b[i].id = i;
        f->b[i].name = i == 0 ? "b0" : "b1";
        /* b->pool stays NULL: outlier detection only counts the run */
    }
    f->wp.pool = &f->pool;
    f->wp.wb = f->wb;
    f->x.magic = SG_EXCHANGE_MAGIC;
    f->x.w = &f->w;
    f->x.wp = &f->wp;
    f->x.connect_us = f->x.ttfb_us = -1;
    observed = 0;
    return f;
}

static void test_outcome_response(void **st)
{
    struct fixture *f = fixture_new();
    struct sg_backend *b = &f->b[0];
    f->x.attempt_us = sg_now_us() - 1000;
    exchange_outcome(&f->x, b, OBS_RESPONSE, 200, 0);
    assert_int_equal(observed, 1);
    assert_true(observed_latency >= 1000);
    assert_int_equal(atomic_load(&b->failures), 0);
    assert_int_equal(atomic_load(&b->consec_errors), 0);
    /* a 5xx is a failure for the health counters and outlier detection */
    exchange_outcome(&f->x, b, OBS_RESPONSE, 503, 0);
    assert_int_equal(atomic_load(&b->failures), 1);
    assert_int_equal(atomic_load(&b->consec_errors), 1);
    assert_int_equal(observed, 2);
    /* a success ends the run of errors */
    exchange_outcome(&f->x, b, OBS_RESPONSE, 404, 0);
    assert_int_equal(atomic_load(&b->consec_errors), 0);
    /* responses are not errors by kind */
    for (int k = 0; k < SG_EK_N; k++)
        assert_int_equal(atomic_load(&f->wb[0].st.errors[k]), 0);
    free(f);
}

static void test_outcome_failed_and_error(void **st)
{
    struct fixture *f = fixture_new();
    struct sg_backend *b = &f->b[1];
    exchange_outcome(&f->x, b, OBS_FAILED, 0, SG_EK_CONNECT);
    assert_int_equal(atomic_load(&b->failures), 1);
    assert_int_equal(atomic_load(&b->consec_errors), 1);
    assert_int_equal(atomic_load(&f->wb[1].st.errors[SG_EK_CONNECT]), 1);
    assert_int_equal(atomic_load(&f->wp.st.errors[SG_EK_CONNECT]), 1);
    assert_int_equal(atomic_load(&f->wb[0].st.errors[SG_EK_CONNECT]), 0);
    /* an error seen mid-response counts by kind, not against health */
    exchange_outcome(&f->x, b, OBS_ERROR, 0, SG_EK_BAD_RESPONSE);
    assert_int_equal(atomic_load(&b->failures), 1);
    assert_int_equal(atomic_load(&f->wb[1].st.errors[SG_EK_BAD_RESPONSE]), 1);
    assert_int_equal(atomic_load(&f->wp.st.errors[SG_EK_BAD_RESPONSE]), 1);
    assert_int_equal(observed, 0);
    /* no backend (never picked) or no pool (never routed): nothing recorded */
    exchange_outcome(&f->x, NULL, OBS_FAILED, 0, SG_EK_CONNECT);
    f->x.wp = NULL;
    exchange_outcome(&f->x, b, OBS_FAILED, 0, SG_EK_CONNECT);
    assert_int_equal(atomic_load(&b->failures), 1);
    free(f);
}

static void test_record_once_per_request(void **st)
{
    struct fixture *f = fixture_new();
    f->x.backend = &f->b[0];
    f->x.queue_us = 5;
    f->x.connect_us = 100;
    f->x.ttfb_us = 300;
    struct sg_alog_rec r = {.status = 502, .bytes_in = 10, .bytes_out = 20};
    sg_exchange_record(&f->x, &r, sg_now_us() - 2000, SG_END_OK);
    assert_int_equal(atomic_load(&f->wp.st.requests), 1);
    assert_int_equal(atomic_load(&f->wp.st.responses[4]), 1);
    assert_int_equal(atomic_load(&f->wb[0].st.requests), 1);
    assert_int_equal(atomic_load(&f->wb[0].st.bytes_out), 20);
    assert_int_equal(atomic_load(&f->wb[1].st.requests), 0);
    /* a request that was never routed goes to no pool */
    f->x.wp = NULL;
    r.status = 400;
    sg_exchange_record(&f->x, &r, sg_now_us(), SG_END_OK);
    assert_int_equal(atomic_load(&f->wp.st.requests), 1);
    sg_wstats_free(&f->wp.st);
    sg_wstats_free(&f->wb[0].st);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_started_response_aborts),
        cmocka_unit_test(test_retry_stale_pooled_connection),
        cmocka_unit_test(test_retry_never_sent_goes_elsewhere),
        cmocka_unit_test(test_retry_sent_only_when_idempotent),
        cmocka_unit_test(test_retry_spent_or_not_replayable),
        cmocka_unit_test(test_retry_backend_down),
        cmocka_unit_test(test_retry_gone_vs_busy),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_outcome_response),
        cmocka_unit_test(test_outcome_failed_and_error),
        cmocka_unit_test(test_record_once_per_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
