/* Unit tests for the latency histograms and their sliding windows (hist.c). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/hist.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* Uniform in [0, 1). */
static double rng01(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

/* |got - want| <= want / 100 */
static void assert_within_1pct(uint64_t got, uint64_t want)
{
    double err = fabs((double)got - (double)want);
    if (err > (double)want / 100.0) {
        fail_msg("%llu is not within 1%% of %llu", (unsigned long long)got,
                 (unsigned long long)want);
    }
}

static struct sg_hist_dense *dense_new(void)
{
    struct sg_hist_dense *d = sg_xmalloc(sizeof(*d));
    sg_hist_dense_clear(d);
    return d;
}

static void test_layout(void **state)
{
    (void)state;
    assert_int_equal(SG_HIST_NBUCKETS, 64 + 32 * 64);
    assert_int_equal(sg_hist_bucket_lo(0), 0);
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        uint64_t lo = sg_hist_bucket_lo(i), hi = sg_hist_bucket_hi(i);
        uint64_t mid = sg_hist_bucket_mid(i);
        assert_true(lo <= mid && mid <= hi);
        assert_int_equal(sg_hist_bucket(lo), i);
        assert_int_equal(sg_hist_bucket(hi), i);
        if (lo > 0) {
            assert_int_equal(sg_hist_bucket(lo - 1), i - 1);
        }
        if (i < 64) {
            assert_int_equal(lo, i);
            assert_int_equal(hi, i);
            assert_int_equal(mid, i);
        }
        if (i + 1 < SG_HIST_NBUCKETS) {
            /* contiguous and increasing */
            assert_int_equal(hi + 1, sg_hist_bucket_lo(i + 1));
            assert_true(sg_hist_bucket_mid(i + 1) > mid);
            /* the bucket's width is at most 1/64 of its lowest value */
            assert_true(hi - lo + 1 == 1 || (hi - lo + 1) * 64 <= lo);
            /* mid at most 1/128 away from any value of the bucket */
            if (lo > 0) {
                assert_true((mid - lo) * 128 <= lo);
                assert_true((hi - mid) * 128 <= hi);
            }
        }
    }
    /* octave edges */
    assert_int_equal(sg_hist_bucket(63), 63);
    assert_int_equal(sg_hist_bucket(64), 64);
    assert_int_equal(sg_hist_bucket(127), 127);
    assert_int_equal(sg_hist_bucket(128), 128);
    assert_int_equal(sg_hist_bucket(129), 128);
    assert_int_equal(sg_hist_bucket_lo(SG_HIST_NBUCKETS - 1), (1ull << 38) - (1ull << 31));
    /* clamping */
    assert_int_equal(sg_hist_bucket((1ull << 38) - 1), SG_HIST_NBUCKETS - 1);
    assert_int_equal(sg_hist_bucket(1ull << 38), SG_HIST_NBUCKETS - 1);
    assert_int_equal(sg_hist_bucket(UINT64_MAX), SG_HIST_NBUCKETS - 1);
    assert_true(sg_hist_bucket_hi(SG_HIST_NBUCKETS - 1) == UINT64_MAX);
    /* monotonic over sampled values of the whole range */
    unsigned last = 0;
    for (uint64_t v = 0; v < (1ull << 40); v = v < 1000 ? v + 1 : v + v / 997) {
        unsigned b = sg_hist_bucket(v);
        assert_true(b >= last);
        last = b;
    }
}

static void test_relative_error(void **state)
{
    (void)state;
    double worst = 0;
    for (int n = 0; n < 2000000; n++) {
        uint64_t v = (uint64_t)exp(rng01() * log(1e10));
        if (v == 0) {
            v = 1;
        }
        uint64_t m = sg_hist_bucket_mid(sg_hist_bucket(v));
        double err = fabs((double)m - (double)v) / (double)v;
        if (err > worst) {
            worst = err;
        }
        if (err > 0.01) {
            fail_msg("value %llu: mid %llu, error %f", (unsigned long long)v, (unsigned long long)m,
                     err);
        }
    }
    assert_true(worst <= 1.0 / 128 + 1e-12);
    printf("worst relative error over 2M log-uniform values: %.5f\n", worst);
}

static void test_quantiles_uniform(void **state)
{
    (void)state;
    struct sg_hist *h = sg_hist_new();
    struct sg_hist_dense *d = dense_new();
    uint64_t sum = 0;

    /* empty: all zero */
    sg_hist_dense_add(d, h);
    assert_int_equal(sg_hist_quantile(d, 0.5), 0);
    assert_int_equal(sg_hist_quantile(d, 1.0), 0);
    struct sg_hist_summary s;
    sg_hist_summarize(d, &s);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.p99, 0);
    assert_int_equal(s.max, 0);

    for (uint64_t v = 1; v <= 10000; v++) {
        sg_hist_record(h, v);
        sum += v;
    }
    sg_hist_dense_clear(d);
    sg_hist_dense_add(d, h);
    assert_int_equal(d->count, 10000);
    assert_int_equal(d->sum_us, sum);
    assert_int_equal(atomic_load(&h->count), 10000);
    assert_int_equal(atomic_load(&h->sum_us), sum);

    assert_within_1pct(sg_hist_quantile(d, 0.5), 5000);
    assert_within_1pct(sg_hist_quantile(d, 0.9), 9000);
    assert_within_1pct(sg_hist_quantile(d, 0.99), 9900);
    assert_within_1pct(sg_hist_quantile(d, 1.0), 10000);
    assert_int_equal(sg_hist_quantile(d, 0.0), 1); /* rank 1: the smallest */
    assert_int_equal(sg_hist_quantile(d, 0.0001), 1);
    assert_int_equal(sg_hist_quantile(d, 0.0002), 2);
    assert_int_equal(sg_hist_quantile(d, 0.00015), 2); /* rank ceil(1.5) = 2 */
    assert_int_equal(sg_hist_quantile(d, 0.005), 50);
    /* out of range q is clamped */
    assert_int_equal(sg_hist_quantile(d, -3), 1);
    assert_int_equal(sg_hist_quantile(d, 7), sg_hist_quantile(d, 1.0));
    assert_int_equal(sg_hist_quantile(d, NAN), 1);

    sg_hist_summarize(d, &s);
    assert_int_equal(s.count, 10000);
    assert_int_equal(s.sum_us, sum);
    assert_int_equal(s.p50, sg_hist_quantile(d, 0.5));
    assert_int_equal(s.p90, sg_hist_quantile(d, 0.9));
    assert_int_equal(s.p95, sg_hist_quantile(d, 0.95));
    assert_int_equal(s.p99, sg_hist_quantile(d, 0.99));
    assert_int_equal(s.max, sg_hist_quantile(d, 1.0));
    assert_within_1pct(s.p95, 9500);

    free(d);
    sg_hist_free(h);
}

static void test_quantiles_constant_and_outlier(void **state)
{
    (void)state;
    struct sg_hist *h = sg_hist_new();
    struct sg_hist_dense *d = dense_new();
    for (int n = 0; n < 1000; n++) {
        sg_hist_record(h, 50000);
    }
    sg_hist_dense_add(d, h);
    assert_within_1pct(sg_hist_quantile(d, 0.5), 50000);
    assert_within_1pct(sg_hist_quantile(d, 0.99), 50000);
    assert_int_equal(d->sum_us, 50000000);

    /* one slow request out of 1001: p99 stays, max moves */
    sg_hist_record(h, 3000000);
    sg_hist_dense_clear(d);
    sg_hist_dense_add(d, h);
    assert_within_1pct(sg_hist_quantile(d, 0.99), 50000);
    assert_within_1pct(sg_hist_quantile(d, 1.0), 3000000);

    /* two-point distribution: ranks decide exactly */
    struct sg_hist *h2 = sg_hist_new();
    for (int n = 0; n < 90; n++) {
        sg_hist_record(h2, 10);
    }
    for (int n = 0; n < 10; n++) {
        sg_hist_record(h2, 20000);
    }
    sg_hist_dense_clear(d);
    sg_hist_dense_add(d, h2);
    assert_int_equal(sg_hist_quantile(d, 0.9), 10);
    assert_within_1pct(sg_hist_quantile(d, 0.905), 20000); /* rank ceil(90.5) = 91 */
    assert_within_1pct(sg_hist_quantile(d, 0.91), 20000);

    /* huge values clamp into the last bucket instead of overflowing */
    sg_hist_record(h2, UINT64_MAX / 4);
    sg_hist_dense_clear(d);
    sg_hist_dense_add(d, h2);
    assert_int_equal(d->c[SG_HIST_NBUCKETS - 1], 1);
    assert_int_equal(sg_hist_quantile(d, 1.0), sg_hist_bucket_mid(SG_HIST_NBUCKETS - 1));

    free(d);
    sg_hist_free(h);
    sg_hist_free(h2);
}

static void test_count_le(void **state)
{
    (void)state;
    struct sg_hist *h = sg_hist_new();
    struct sg_hist_dense *d = dense_new();
    for (uint64_t v = 1; v <= 10000; v++) {
        sg_hist_record(h, v);
    }
    sg_hist_dense_add(d, h);
    assert_int_equal(sg_hist_count_le(d, 0), 0);
    assert_int_equal(sg_hist_count_le(d, 1), 1);
    assert_int_equal(sg_hist_count_le(d, 63), 63);
    /* 1000 opens a bucket of width 8: [1000, 1007] */
    unsigned b = sg_hist_bucket(1000);
    assert_int_equal(sg_hist_bucket_lo(b), 1000);
    assert_int_equal(sg_hist_bucket_hi(b), 1007);
    assert_int_equal(sg_hist_count_le(d, 999), 999);
    assert_int_equal(sg_hist_count_le(d, 1006), 999); /* bucket straddles 1006 */
    assert_int_equal(sg_hist_count_le(d, 1007), 1007);
    assert_int_equal(sg_hist_count_le(d, 1000000), 10000);
    assert_int_equal(sg_hist_count_le(d, UINT64_MAX), 10000);
    /* cumulative: never decreases */
    uint64_t last = 0;
    for (uint64_t le = 0; le < 20000; le += 37) {
        uint64_t n = sg_hist_count_le(d, le);
        assert_true(n >= last);
        assert_true(n <= le);
        last = n;
    }
    free(d);
    sg_hist_free(h);
}

static void test_dense_add_merge(void **state)
{
    (void)state;
    struct sg_hist *h[4];
    struct sg_hist_dense *acc = dense_new(), *one = dense_new(), *m = dense_new();
    uint64_t sum = 0, count = 0;
    for (int k = 0; k < 4; k++) {
        h[k] = sg_hist_new();
        for (int n = 0; n < 1000 * (k + 1); n++) {
            uint64_t v = (uint64_t)(k + 1) * 1000 + (uint64_t)n % 100;
            sg_hist_record(h[k], v);
            sum += v;
            count++;
        }
    }
    for (int k = 0; k < 4; k++) {
        sg_hist_dense_add(acc, h[k]);
    }
    assert_int_equal(acc->count, count);
    assert_int_equal(acc->sum_us, sum);
    uint64_t total = 0;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        total += acc->c[i];
    }
    assert_int_equal(total, count);
    /* 1000+2000+3000+4000 values around 1, 2, 3 and 4 ms: p50 (rank 5000) is ~3 ms */
    assert_within_1pct(sg_hist_quantile(acc, 0.5), 3050);
    assert_within_1pct(sg_hist_quantile(acc, 0.05), 1050);

    /* merge of per-hist dense copies equals the direct sum */
    for (int k = 0; k < 4; k++) {
        sg_hist_dense_clear(one);
        sg_hist_dense_add(one, h[k]);
        sg_hist_dense_merge(m, one);
    }
    assert_memory_equal(m, acc, sizeof(*m));

    for (int k = 0; k < 4; k++) {
        sg_hist_free(h[k]);
    }
    free(acc);
    free(one);
    free(m);
}

struct writer_arg {
    struct sg_hist *h;
    atomic_bool done;
};

static void *writer_main(void *p)
{
    struct writer_arg *a = p;
    for (uint64_t n = 0; n < 2000000; n++) {
        sg_hist_record(a->h, n % 5000);
    }
    atomic_store(&a->done, true);
    return NULL;
}

/* The control thread reads a histogram its worker is recording into: every
 * read is self-consistent and counts never go back; the end result is exact. */
static void test_concurrent_reader(void **state)
{
    (void)state;
    struct writer_arg a = {.h = sg_hist_new()};
    atomic_init(&a.done, false);
    struct sg_hist_dense *d = dense_new();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &a), 0);
    uint64_t last = 0, reads = 0;
    while (!atomic_load(&a.done)) { /* bounded: the writer stops after 2M values */
        sg_hist_dense_clear(d);
        sg_hist_dense_add(d, a.h);
        uint64_t total = 0;
        for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
            total += d->c[i];
        }
        assert_int_equal(total, d->count);
        assert_true(d->count >= last);
        last = d->count;
        reads++;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    sg_hist_dense_clear(d);
    sg_hist_dense_add(d, a.h);
    assert_int_equal(d->count, 2000000);
    assert_int_equal(d->sum_us, 400 * (4999ull * 5000 / 2));
    printf("%llu reads during the writes\n", (unsigned long long)reads);
    free(d);
    sg_hist_free(a.h);
}

/* cum of the window tests: a live hist read into a dense copy, as the
 * control thread does. */
static void read_cum(struct sg_hist_dense *cum, const struct sg_hist *h)
{
    sg_hist_dense_clear(cum);
    sg_hist_dense_add(cum, h);
}

static void test_window(void **state)
{
    (void)state;
    struct sg_hwin *w = sg_hwin_new();
    struct sg_hist *h = sg_hist_new();
    struct sg_hist_dense *cum = dense_new(), *out = dense_new();

    /* idle from the start: nothing stored, no dense copy */
    size_t idle0 = sg_hwin_mem_bytes(w);
    for (int t = 0; t < 500; t++) {
        read_cum(cum, h);
        sg_hwin_tick(w, cum);
    }
    assert_int_equal(sg_hwin_mem_bytes(w), idle0);
    assert_true(idle0 < 128);
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 0);
    sg_hwin_free(w);

    /* history before the window is not counted */
    for (int n = 0; n < 100; n++) {
        sg_hist_record(h, 7);
    }
    w = sg_hwin_new();
    read_cum(cum, h);
    sg_hwin_tick(w, cum); /* tick 1: baseline */
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 0);
    assert_int_equal(out->sum_us, 0);

    /* ticks 2..11: second t-1 records t-1 values of 1000 us and one of 10 us */
    for (uint64_t t = 1; t <= 10; t++) {
        for (uint64_t n = 0; n < t; n++) {
            sg_hist_record(h, 1000);
        }
        sg_hist_record(h, 10);
        read_cum(cum, h);
        sg_hwin_tick(w, cum);
    }
    sg_hwin_sum(w, 1, out);
    assert_int_equal(out->count, 11);
    assert_int_equal(out->sum_us, 10 * 1000 + 10);
    assert_int_equal(out->c[10], 1);
    assert_int_equal(out->c[sg_hist_bucket(1000)], 10);
    assert_int_equal(out->c[7], 0);
    sg_hwin_sum(w, 0, out); /* clamped to 1 */
    assert_int_equal(out->count, 11);
    sg_hwin_sum(w, 2, out);
    assert_int_equal(out->count, 11 + 10);
    sg_hwin_sum(w, 10, out);
    assert_int_equal(out->count, 55 + 10);
    assert_int_equal(out->sum_us, 55 * 1000 + 100);
    assert_int_equal(out->c[10], 10);
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 55 + 10);
    sg_hwin_sum(w, 100000, out); /* clamped to 300 */
    assert_int_equal(out->count, 55 + 10);
    assert_within_1pct(sg_hist_quantile(out, 0.5), 1000);
    assert_int_equal(sg_hist_quantile(out, 0.1), 10);

    /* idle ticks: the seconds age out one by one after 300 ticks */
    size_t busy = sg_hwin_mem_bytes(w);
    read_cum(cum, h);
    for (int t = 12; t <= 301; t++) { /* ticks 12..301: window holds ticks 2..301 */
        sg_hwin_tick(w, cum);
    }
    assert_int_equal(sg_hwin_mem_bytes(w), busy);
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 65);
    sg_hwin_sum(w, 10, out);
    assert_int_equal(out->count, 0);
    sg_hwin_tick(w, cum); /* tick 302: second of tick 2 (1 + 1 values) leaves */
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 63);
    assert_int_equal(out->sum_us, 54 * 1000 + 90);
    for (int t = 303; t <= 311; t++) {
        sg_hwin_tick(w, cum);
    }
    sg_hwin_sum(w, 300, out);
    assert_int_equal(out->count, 0);
    assert_int_equal(out->sum_us, 0);
    assert_true(sg_hwin_mem_bytes(w) < busy);

    /* traffic again after the idle stretch */
    for (int n = 0; n < 5; n++) {
        sg_hist_record(h, 2000);
    }
    read_cum(cum, h);
    sg_hwin_tick(w, cum);
    sg_hwin_sum(w, 1, out);
    assert_int_equal(out->count, 5);
    assert_int_equal(out->sum_us, 10000);

    sg_hwin_free(w);
    sg_hwin_free(NULL);
    sg_hist_free(h);
    free(cum);
    free(out);
}

/* Busy every second for longer than the window: exactly the last 300. */
static void test_window_full_ring(void **state)
{
    (void)state;
    struct sg_hwin *w = sg_hwin_new();
    struct sg_hist *h = sg_hist_new();
    struct sg_hist_dense *cum = dense_new(), *out = dense_new();
    read_cum(cum, h);
    sg_hwin_tick(w, cum);
    for (uint64_t t = 2; t <= 1000; t++) {
        sg_hist_record(h, t); /* one value per second: t */
        read_cum(cum, h);
        sg_hwin_tick(w, cum);
        if (t % 97 == 0 || t >= 998) {
            uint64_t first = t >= 301 ? t - 299 : 2;
            sg_hwin_sum(w, 300, out);
            assert_int_equal(out->count, t - first + 1);
            assert_int_equal(out->sum_us, (first + t) * (t - first + 1) / 2);
            sg_hwin_sum(w, 60, out);
            assert_int_equal(out->count, t >= 61 ? 60 : t - 1);
        }
    }
    /* 300 seconds of 1 bucket each: well under a dense copy per second */
    assert_true(sg_hwin_mem_bytes(w) < sizeof(struct sg_hist_dense) + 300 * 64);
    sg_hwin_free(w);
    sg_hist_free(h);
    free(cum);
    free(out);
}

/* Deltas above UINT32_MAX in one second, and cum going backwards (a caller
 * bug) counted as nothing rather than wrapping. */
static void test_window_large_and_backwards(void **state)
{
    (void)state;
    struct sg_hwin *w = sg_hwin_new();
    struct sg_hist_dense *cum = dense_new(), *out = dense_new();
    sg_hwin_tick(w, cum);
    cum->c[100] = 10000000000ull; /* 10^10 */
    cum->c[5] = 3;
    cum->count = 10000000003ull;
    cum->sum_us = 123456789012ull;
    sg_hwin_tick(w, cum);
    sg_hwin_sum(w, 1, out);
    assert_int_equal(out->c[100], 10000000000ull);
    assert_int_equal(out->c[5], 3);
    assert_int_equal(out->count, 10000000003ull);
    assert_int_equal(out->sum_us, 123456789012ull);

    cum->c[100] -= 5;
    cum->c[5] += 2;
    cum->count -= 3;
    cum->sum_us -= 1;
    sg_hwin_tick(w, cum);
    sg_hwin_sum(w, 1, out);
    assert_int_equal(out->c[100], 0);
    assert_int_equal(out->c[5], 2);
    assert_int_equal(out->count, 2);
    assert_int_equal(out->sum_us, 0);
    sg_hwin_free(w);
    free(cum);
    free(out);
}

/* Not a timing assertion: prints the cost of the record path. */
static void test_perf(void **state)
{
    (void)state;
    enum { N = 10000000 };
    static uint32_t vals[4096];
    for (size_t i = 0; i < SG_ARRAY_SIZE(vals); i++) {
        vals[i] = (uint32_t)exp(rng01() * log(1e7));
    }
    struct sg_hist *h = sg_hist_new();
    uint64_t t0 = sg_now_us();
    for (uint32_t n = 0; n < N; n++) {
        sg_hist_record(h, vals[n & (SG_ARRAY_SIZE(vals) - 1)]);
    }
    uint64_t t1 = sg_now_us();
    struct sg_hist_dense *d = dense_new();
    sg_hist_dense_add(d, h);
    uint64_t t2 = sg_now_us();
    assert_int_equal(d->count, N);
    printf("sg_hist_record: %d values in %.1f ms (%.2f ns each); dense_add %llu us\n", N,
           (double)(t1 - t0) / 1000.0, (double)(t1 - t0) * 1000.0 / N,
           (unsigned long long)(t2 - t1));
    free(d);
    sg_hist_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_quantiles_uniform),
        cmocka_unit_test(test_quantiles_constant_and_outlier),
        cmocka_unit_test(test_count_le),
        cmocka_unit_test(test_dense_add_merge),
        cmocka_unit_test(test_concurrent_reader),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_full_ring),
        cmocka_unit_test(test_window_large_and_backwards),
        cmocka_unit_test(test_perf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
