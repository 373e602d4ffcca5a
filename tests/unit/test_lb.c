/* Unit tests for the balancers and routing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/lb_hash.h"
#include "surgegate/pool.h"
#include "surgegate/route.h"

/* Backend addresses: the hash ring places a backend by its address, so the
 * same address gets the same points whatever its index in the pool. */
static char names[16][48];

static void make_pool(struct sg_pool *p, struct sg_backend *b, const uint32_t *weights, size_t n)
{
    memset(p, 0, sizeof(*p));
    p->magic = SG_POOL_MAGIC;
    p->name = "p";
    p->backends = b;
    p->nbackends = n;
    p->ncfg = n;
    atomic_init(&p->nused, (uint32_t)n);
    atomic_init(&p->nlive, (uint32_t)n);
    p->lb = &sg_lb_roundrobin;
    for (size_t i = 0; i < n; i++) {
        memset(&b[i], 0, sizeof(b[i]));
        b[i].magic = SG_BACKEND_MAGIC;
        b[i].id = (uint32_t)i;
        b[i].pool = p;
        b[i].weight = weights[i];
        snprintf(names[i], sizeof(names[i]), "10.0.0.%zu:8080", i + 1);
        b[i].name = names[i];
        atomic_init(&b[i].admin, SG_ADMIN_READY);
        atomic_init(&b[i].health, SG_HEALTH_UP);
        atomic_init(&b[i].eject_until, 0);
        atomic_init(&b[i].ramp_from, 0);
        atomic_init(&b[i].inflight, 0);
    }
}

static void test_rr_weights_exact(void **st)
{
    struct sg_pool p;
    struct sg_backend b[3];
    const uint32_t w[] = {1, 1, 2};
    make_pool(&p, b, w, 3);
    void *s = p.lb->state_new(&p);
    unsigned counts[3] = {0};
    for (int i = 0; i < 4000; i++)
        counts[p.lb->pick(s, &p, NULL)->id]++;
    assert_int_equal(counts[0], 1000);
    assert_int_equal(counts[1], 1000);
    assert_int_equal(counts[2], 2000);
    p.lb->state_free(s);
}

static void test_rr_smooth_interleaving(void **st)
{
    /* weights 5,1,1: smooth order is a a b a c a a (repeat), so at most 4 in a
     * row across cycles, where plain weighted round-robin gives 5 */
    struct sg_pool p;
    struct sg_backend b[3];
    const uint32_t w[] = {5, 1, 1};
    make_pool(&p, b, w, 3);
    void *s = p.lb->state_new(&p);
    int run = 0, maxrun = 0;
    for (int i = 0; i < 700; i++) {
        if (p.lb->pick(s, &p, NULL)->id == 0) {
            run++;
            if (run > maxrun)
                maxrun = run;
        } else {
            run = 0;
        }
    }
    assert_true(maxrun <= 4);
    p.lb->state_free(s);
}

static void test_rr_skips_unusable_and_excluded(void **st)
{
    struct sg_pool p;
    struct sg_backend b[3];
    const uint32_t w[] = {1, 0, 1};
    make_pool(&p, b, w, 3);
    void *s = p.lb->state_new(&p);
    atomic_store(&b[2].health, SG_HEALTH_DOWN);
    for (int i = 0; i < 10; i++)
        assert_int_equal(p.lb->pick(s, &p, NULL)->id, 0);
    uint32_t ex[] = {0};
    struct sg_lb_req req = {.exclude = ex, .nexclude = 1};
    assert_null(p.lb->pick(s, &p, &req));
    p.lb->state_free(s);
}

static void test_rr_backup_only_when_needed(void **st)
{
    struct sg_pool p;
    struct sg_backend b[2];
    const uint32_t w[] = {1, 1};
    make_pool(&p, b, w, 2);
    b[1].backup = true;
    void *s = p.lb->state_new(&p);
    for (int i = 0; i < 10; i++)
        assert_int_equal(p.lb->pick(s, &p, NULL)->id, 0);
    atomic_store(&b[0].health, SG_HEALTH_DOWN);
    assert_int_equal(p.lb->pick(s, &p, NULL)->id, 1);
    p.lb->state_free(s);
}

static void test_lb_registry(void **st)
{
    assert_ptr_equal(sg_lb_find("roundrobin"), &sg_lb_roundrobin);
    assert_ptr_equal(sg_lb_find(NULL), &sg_lb_roundrobin);
    assert_null(sg_lb_find("nonsense"));
}

/* ------------------------------------------------ rules every balancer shares
 * These run once per algorithm (the cmocka prestate is its ops). */

#define NOW_MS 1000000u

/* Picks with an optional key (hash needs distinct keys to reach every
 * backend; the others ignore it). */
static struct sg_backend *pick_key(const struct sg_lb_ops *ops, void *s, struct sg_pool *p,
                                   struct sg_lb_req *req, int key)
{
    char kb[32];
    struct sg_lb_req r = req != NULL ? *req : (struct sg_lb_req){0};
    if (r.now_ms == 0)
        r.now_ms = NOW_MS;
    if (key >= 0) {
        int n = snprintf(kb, sizeof(kb), "key-%d", key);
        r.key = kb;
        r.keylen = (size_t)n;
    }
    return ops->pick(s, p, &r);
}

static void test_all_skip_unusable(void **state)
{
    const struct sg_lb_ops *ops = *state;
    struct sg_pool p;
    struct sg_backend b[5];
    const uint32_t w[] = {1, 1, 1, 1, 0};
    make_pool(&p, b, w, 5);
    p.lb = ops;
    atomic_store(&b[0].health, SG_HEALTH_DOWN);
    b[2].maxconn = 2;
    atomic_store(&b[2].inflight, 2); /* full */
    uint32_t ex[] = {1};
    struct sg_lb_req req = {.exclude = ex, .nexclude = 1};
    void *s = ops->state_new(&p);
    assert_non_null(s);
    /* down, excluded, full and weight-0 backends are skipped: b3 is the one */
    for (int i = 0; i < 2000; i++)
        assert_int_equal(pick_key(ops, s, &p, &req, i)->id, 3);
    /* drained, maintained and ejected ones too */
    atomic_store(&b[0].health, SG_HEALTH_UP);
    atomic_store(&b[0].admin, SG_ADMIN_DRAIN);
    atomic_store(&b[1].admin, SG_ADMIN_MAINT);
    atomic_store(&b[2].eject_until, NOW_MS + 1000);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(pick_key(ops, s, &p, NULL, i)->id, 3);
    atomic_store(&b[0].admin, SG_ADMIN_READY);
    atomic_store(&b[1].admin, SG_ADMIN_READY);
    atomic_store(&b[2].eject_until, 0);
    atomic_store(&b[0].health, SG_HEALTH_DOWN);
    /* only the full one left: NULL, unless room is ignored (queue accounting) */
    uint32_t ex2[] = {1, 3};
    req = (struct sg_lb_req){.exclude = ex2, .nexclude = 2};
    for (int i = 0; i < 100; i++)
        assert_null(pick_key(ops, s, &p, &req, i));
    req.ignore_room = true;
    for (int i = 0; i < 100; i++)
        assert_int_equal(pick_key(ops, s, &p, &req, i)->id, 2);
    /* nothing eligible at all */
    uint32_t ex3[] = {1, 2, 3};
    req = (struct sg_lb_req){.exclude = ex3, .nexclude = 3, .ignore_room = true};
    assert_null(pick_key(ops, s, &p, &req, 1));
    assert_null(pick_key(ops, s, &p, &req, -1));
    ops->state_free(s);
}

static void test_all_backup_only_when_needed(void **state)
{
    const struct sg_lb_ops *ops = *state;
    struct sg_pool p;
    struct sg_backend b[4];
    const uint32_t w[] = {1, 1, 1, 1};
    make_pool(&p, b, w, 4);
    p.lb = ops;
    b[2].backup = true;
    b[3].backup = true;
    void *s = ops->state_new(&p);
    assert_non_null(s);
    for (int i = 0; i < 2000; i++)
        assert_true(pick_key(ops, s, &p, NULL, i)->id < 2);
    /* a full primary queues: it does not spill to the backups */
    atomic_store(&b[0].health, SG_HEALTH_DOWN);
    b[1].maxconn = 1;
    atomic_store(&b[1].inflight, 1);
    for (int i = 0; i < 100; i++)
        assert_null(pick_key(ops, s, &p, NULL, i));
    /* no usable primary: the backups serve, both of them */
    atomic_store(&b[1].health, SG_HEALTH_DOWN);
    unsigned seen[4] = {0};
    for (int i = 0; i < 2000; i++)
        seen[pick_key(ops, s, &p, NULL, i)->id]++;
    assert_int_equal(seen[0] + seen[1], 0);
    assert_true(seen[2] > 0 && seen[3] > 0);
    /* a retry that tried every primary reaches a backup */
    atomic_store(&b[1].health, SG_HEALTH_UP);
    atomic_store(&b[1].inflight, 0);
    uint32_t ex[] = {1};
    struct sg_lb_req req = {.exclude = ex, .nexclude = 1};
    for (int i = 0; i < 100; i++)
        assert_true(pick_key(ops, s, &p, &req, i)->backup);
    ops->state_free(s);
}

static void test_registry_all(void **state)
{
    const struct sg_lb_ops *all[] = {&sg_lb_roundrobin, &sg_lb_leastreq, &sg_lb_ewma, &sg_lb_hash,
                                     &sg_lb_random};
    for (size_t i = 0; i < SG_ARRAY_SIZE(all); i++)
        assert_ptr_equal(sg_lb_find(all[i]->name), all[i]);
}

/* Weights 1,2,3,4 over 100,000 picks with inflight kept 0: every share
 * within 5% (relative) of weight / 10. */
static void test_weighted_shares(void **state)
{
    const struct sg_lb_ops *ops = *state;
    struct sg_pool p;
    struct sg_backend b[4];
    const uint32_t w[] = {1, 2, 3, 4};
    make_pool(&p, b, w, 4);
    p.lb = ops;
    void *s = ops->state_new(&p);
    unsigned counts[4] = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++)
        counts[pick_key(ops, s, &p, NULL, -1)->id]++;
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        double want = n * w[i] / 10.0, dev = fabs(counts[i] - want) / want;
        if (dev > worst)
            worst = dev;
        assert_true(dev <= 0.05);
    }
    print_message("%s weights 1,2,3,4: %u %u %u %u of %d, worst deviation %.2f%%\n", ops->name,
                  counts[0], counts[1], counts[2], counts[3], n, worst * 100);
    ops->state_free(s);
}

/* Slow start halves a backend's weight halfway through its ramp. */
static void test_random_slowstart(void **state)
{
    struct sg_pool p;
    struct sg_backend b[2];
    const uint32_t w[] = {2, 2};
    make_pool(&p, b, w, 2);
    p.lb = &sg_lb_random;
    p.slowstart_ms = 10000;
    atomic_store(&b[1].ramp_from, NOW_MS - 5000); /* weight now 1 */
    void *s = p.lb->state_new(&p);
    unsigned counts[2] = {0};
    for (int i = 0; i < 30000; i++)
        counts[pick_key(p.lb, s, &p, NULL, -1)->id]++;
    assert_in_range(counts[1], 9000, 11000);
    p.lb->state_free(s);
}

/* --------------------------------------------------------------- leastreq */

static void test_leastreq_prefers_fewer_inflight(void **state)
{
    struct sg_pool p;
    struct sg_backend b[3];
    const uint32_t w[] = {1, 1, 1};
    make_pool(&p, b, w, 3);
    p.lb = &sg_lb_leastreq;
    void *s = p.lb->state_new(&p);
    atomic_store(&b[0].inflight, 10);
    atomic_store(&b[1].inflight, 3);
    unsigned counts[3] = {0};
    for (int i = 0; i < 10000; i++)
        counts[pick_key(p.lb, s, &p, NULL, -1)->id]++;
    /* b0 loses every pair; b2 wins both pairs it is in */
    assert_int_equal(counts[0], 0);
    assert_in_range(counts[2], 6000, 7300);
    /* the load is per unit of weight: (3+1)/4 beats (1+1)/1 */
    make_pool(&p, b, (const uint32_t[]){4, 1}, 2);
    p.lb = &sg_lb_leastreq;
    atomic_store(&b[0].inflight, 3);
    atomic_store(&b[1].inflight, 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pick_key(p.lb, s, &p, NULL, -1)->id, 0);
    p.lb->state_free(s);
}

/* Requests arrive, and requests in flight finish at random: the load stays
 * even. */
/* Max - min inflight over 8 equal backends, on average and at worst, while
 * requests arrive (picked by ops) and requests in flight finish at random,
 * 400 of them in flight. */
static double load_spread(const struct sg_lb_ops *ops, uint32_t *worst)
{
    struct sg_pool p;
    struct sg_backend b[8];
    const uint32_t w[] = {1, 1, 1, 1, 1, 1, 1, 1};
    make_pool(&p, b, w, 8);
    p.lb = ops;
    void *s = p.lb->state_new(&p);
    uint32_t lcg = 12345, total = 0;
    uint64_t sum = 0;
    *worst = 0;
    for (int i = 0; i < 20000; i++) {
        struct sg_backend *x = pick_key(p.lb, s, &p, NULL, -1);
        atomic_fetch_add(&x->inflight, 1);
        total++;
        if (i >= 400) { /* one of the requests in flight finishes */
            lcg = lcg * 1103515245u + 12345u;
            uint32_t r = (lcg >> 8) % total;
            int j = 0;
            while (r >= atomic_load(&b[j].inflight))
                r -= atomic_load(&b[j++].inflight);
            atomic_fetch_sub(&b[j].inflight, 1);
            total--;
        }
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int j = 0; j < 8; j++) {
            uint32_t v = atomic_load(&b[j].inflight);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (i >= 1000) {
            sum += hi - lo;
            *worst = hi - lo > *worst ? hi - lo : *worst;
        }
    }
    p.lb->state_free(s);
    return (double)sum / 19000;
}

static void test_leastreq_keeps_load_even(void **state)
{
    uint32_t lr_worst, rnd_worst;
    double lr = load_spread(&sg_lb_leastreq, &lr_worst);
    double rnd = load_spread(&sg_lb_random, &rnd_worst);
    print_message("inflight max - min over 8 backends, 400 in flight: leastreq %.1f (worst %u), "
                  "random %.1f (worst %u)\n",
                  lr, lr_worst, rnd, rnd_worst);
    assert_true(lr * 3 < rnd);
}

/* ------------------------------------------------------------------- ewma */

static unsigned ewma_share0(struct sg_pool *p, void *s, uint64_t now, int n)
{
    unsigned c = 0;
    struct sg_lb_req req = {.now_ms = now};
    for (int i = 0; i < n; i++)
        c += p->lb->pick(s, p, &req)->id == 0;
    return c;
}

static void test_ewma_prefers_fast_and_recovers(void **state)
{
    struct sg_pool p;
    struct sg_backend b[2];
    const uint32_t w[] = {1, 1};
    make_pool(&p, b, w, 2);
    p.lb = &sg_lb_ewma;
    void *s = p.lb->state_new(&p);
    uint64_t t = NOW_MS;
    for (int i = 0; i < 100; i++, t += 10) {
        p.lb->observe(s, &b[0], t, 1000);
        p.lb->observe(s, &b[1], t, 10000);
    }
    unsigned to0 = ewma_share0(&p, s, t, 10000);
    print_message("ewma 1 ms vs 10 ms: %u of 10000 picks to the fast one\n", to0);
    assert_true(to0 >= 8000);
    /* even with one request in flight on the fast one (2 ms vs 10 ms) */
    atomic_store(&b[0].inflight, 1);
    assert_true(ewma_share0(&p, s, t, 1000) >= 800);
    /* 60 s of 1 ms answers from the slow one too: its estimate comes down
     * (to 1 + 9e^-6 ms), so now the idle one wins over one in flight */
    for (int i = 0; i < 600; i++, t += 100) {
        p.lb->observe(s, &b[0], t, 1000);
        p.lb->observe(s, &b[1], t, 1000);
    }
    unsigned after = ewma_share0(&p, s, t, 10000);
    print_message("ewma after 60 s of fast samples: %u of 10000 picks to backend 0 (1 in "
                  "flight there)\n",
                  after);
    assert_true(after <= 2000);
    /* a single slow answer is a peak: it counts at once */
    p.lb->observe(s, &b[1], t, 50000);
    assert_true(ewma_share0(&p, s, t, 1000) >= 800);
    p.lb->state_free(s);
}

/* A backend penalised by a slow spell and then left without traffic (hence
 * without samples) is retried once its estimate relaxes to the mean. */
static void test_ewma_stale_estimate_relaxes(void **state)
{
    struct sg_pool p;
    struct sg_backend b[2];
    const uint32_t w[] = {1, 1};
    make_pool(&p, b, w, 2);
    p.lb = &sg_lb_ewma;
    void *s = p.lb->state_new(&p);
    uint64_t t = NOW_MS;
    p.lb->observe(s, &b[0], t, 1000);
    p.lb->observe(s, &b[1], t, 100000); /* 100 ms */
    atomic_store(&b[0].inflight, 9);    /* 1 ms x 10 = 10 ms vs 100 ms */
    assert_int_equal(ewma_share0(&p, s, t, 1000), 1000);
    for (int i = 0; i < 600; i++, t += 100)
        p.lb->observe(s, &b[0], t, 1000);
    /* b1: about the mean (50.5 ms) now: still above 10 ms, b0 keeps it */
    assert_int_equal(ewma_share0(&p, s, t, 1000), 1000);
    atomic_store(&b[0].inflight, 60); /* 61 ms: b1 is worth a try again */
    assert_int_equal(ewma_share0(&p, s, t, 1000), 0);
    p.lb->state_free(s);
}

/* A backend without samples competes like a typical one: tried, not
 * flooded. */
static void test_ewma_newcomer(void **state)
{
    struct sg_pool p;
    struct sg_backend b[3];
    const uint32_t w[] = {1, 1, 1};
    make_pool(&p, b, w, 3);
    p.lb = &sg_lb_ewma;
    void *s = p.lb->state_new(&p);
    /* nothing sampled yet: all alike, all used */
    unsigned counts[3] = {0};
    struct sg_lb_req req = {.now_ms = NOW_MS};
    for (int i = 0; i < 3000; i++)
        counts[p.lb->pick(s, &p, &req)->id]++;
    for (int i = 0; i < 3; i++)
        assert_in_range(counts[i], 800, 1200);
    p.lb->observe(s, &b[0], NOW_MS, 1000);
    p.lb->observe(s, &b[1], NOW_MS, 10000);
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 10000; i++)
        counts[p.lb->pick(s, &p, &req)->id]++;
    print_message("ewma newcomer: %u %u %u (1 ms, 10 ms, no sample)\n", counts[0], counts[1],
                  counts[2]);
    assert_int_equal(counts[1], 0);
    assert_in_range(counts[2], 2000, 5000);
    /* and its requests in flight hold it back before its first answer */
    atomic_store(&b[2].inflight, 20);
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 1000; i++)
        counts[p.lb->pick(s, &p, &req)->id]++;
    assert_int_equal(counts[2], 0);
    p.lb->state_free(s);
}

/* ------------------------------------------------------------------- hash */

static const char *key_of(int i, char *buf, size_t len, size_t *n)
{
    *n = (size_t)snprintf(buf, len, "user-%d", i);
    return buf;
}

/* The address index (names[]) serving key i. */
static int hash_owner(struct sg_pool *p, void *s, int i)
{
    char kb[32];
    struct sg_lb_req req = {.now_ms = NOW_MS};
    req.key = key_of(i, kb, sizeof(kb), &req.keylen);
    struct sg_backend *b = p->lb->pick(s, p, &req);
    assert_non_null(b);
    return (int)((const char(*)[48])b->name - names);
}

#define NKEYS 10000

static void test_hash_same_key_same_backend(void **state)
{
    struct sg_pool p;
    struct sg_backend b[5];
    const uint32_t w[] = {1, 1, 1, 1, 1};
    make_pool(&p, b, w, 5);
    p.lb = &sg_lb_hash;
    void *s1 = p.lb->state_new(&p), *s2 = p.lb->state_new(&p);
    for (int i = 0; i < 2000; i++) {
        int o = hash_owner(&p, s1, i);
        assert_int_equal(hash_owner(&p, s1, i), o);
        assert_int_equal(hash_owner(&p, s2, i), o); /* every worker agrees */
    }
    p.lb->state_free(s1);
    p.lb->state_free(s2);
}

static void test_hash_distribution(void **state)
{
    struct sg_pool p;
    struct sg_backend b[8];
    const uint32_t w[] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (size_t n = 2; n <= 8; n += 3) {
        make_pool(&p, b, w, n);
        p.lb = &sg_lb_hash;
        void *s = p.lb->state_new(&p);
        unsigned counts[8] = {0};
        for (int i = 0; i < NKEYS; i++)
            counts[hash_owner(&p, s, i)]++;
        double fair = (double)NKEYS / n, worst = 0;
        for (size_t i = 0; i < n; i++) {
            double dev = fabs(counts[i] - fair) / fair;
            worst = dev > worst ? dev : worst;
        }
        print_message("hash %zu backends, %d keys: worst deviation from fair %.1f%%\n", n, NKEYS,
                      worst * 100);
        assert_true(worst <= 0.20);
        p.lb->state_free(s);
    }
    /* weights: 1 and 3 */
    make_pool(&p, b, (const uint32_t[]){1, 3}, 2);
    p.lb = &sg_lb_hash;
    void *s = p.lb->state_new(&p);
    unsigned heavy = 0;
    for (int i = 0; i < NKEYS; i++)
        heavy += hash_owner(&p, s, i) == 1;
    print_message("hash weights 1,3: %.1f%% of keys on the heavy one\n", heavy * 100.0 / NKEYS);
    assert_in_range(heavy, NKEYS * 70 / 100, NKEYS * 80 / 100);
    /* no key: a random choice */
    unsigned counts[2] = {0};
    for (int i = 0; i < NKEYS; i++)
        counts[pick_key(p.lb, s, &p, NULL, -1)->id]++;
    assert_in_range(counts[1], NKEYS * 70 / 100, NKEYS * 80 / 100);
    struct sg_lb_req empty = {.key = "", .keylen = 0, .now_ms = NOW_MS};
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 1000; i++)
        counts[p.lb->pick(s, &p, &empty)->id]++;
    assert_true(counts[0] > 0 && counts[1] > 0);
    p.lb->state_free(s);
}

/* Maps NKEYS keys through two (pool, state) pairs; returns the fraction
 * that moved, and in *stray the fraction of keys that moved although their
 * first backend still serves in the second. */
static double hash_moved(struct sg_pool *p1, void *s1, struct sg_pool *p2, void *s2,
                         const bool *serves2, double *stray)
{
    int moved = 0, bad = 0;
    for (int i = 0; i < NKEYS; i++) {
        int o1 = hash_owner(p1, s1, i), o2 = hash_owner(p2, s2, i);
        if (o1 != o2) {
            moved++;
            if (serves2[o1])
                bad++;
        }
    }
    *stray = (double)bad / NKEYS;
    return (double)moved / NKEYS;
}

static void test_hash_remove_and_add(void **state)
{
    const size_t n = 5;
    struct sg_pool p1, p2;
    struct sg_backend b1[6], b2[6];
    const uint32_t w[] = {1, 1, 1, 1, 1, 1};
    bool serves[16];
    double stray;

    /* one of n goes down */
    make_pool(&p1, b1, w, n);
    p1.lb = &sg_lb_hash;
    void *s1 = p1.lb->state_new(&p1);
    int before[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        before[i] = hash_owner(&p1, s1, i);
    atomic_store(&b1[2].health, SG_HEALTH_DOWN);
    int moved = 0, stray_n = 0;
    for (int i = 0; i < NKEYS; i++) {
        int o = hash_owner(&p1, s1, i);
        moved += o != before[i];
        stray_n += o != before[i] && before[i] != 2;
    }
    print_message("hash down 1 of %zu: moved %.2f%% (fair 1/n = %.2f%%), others' keys moved "
                  "%.2f%%\n",
                  n, moved * 100.0 / NKEYS, 100.0 / n, stray_n * 100.0 / NKEYS);
    assert_true(moved <= NKEYS * 1.5 / n);
    assert_true(stray_n <= NKEYS / 50);
    atomic_store(&b1[2].health, SG_HEALTH_UP);

    /* a pool of n-1: the same addresses without names[2] */
    for (int i = 0; i < 16; i++)
        serves[i] = i != 2;
    struct sg_backend tmp[6];
    const uint32_t w4[] = {1, 1, 1, 1};
    make_pool(&p2, tmp, w4, n - 1);
    for (size_t i = 0, j = 0; i < n; i++)
        if (i != 2)
            tmp[j++].name = names[i];
    p2.lb = &sg_lb_hash;
    void *s2 = p2.lb->state_new(&p2);
    double f = hash_moved(&p1, s1, &p2, s2, serves, &stray);
    print_message("hash pool of %zu -> %zu: moved %.2f%%, others' keys moved %.2f%%\n", n, n - 1,
                  f * 100, stray * 100);
    assert_true(f <= 1.5 / n);
    assert_true(stray <= 0.02);
    p2.lb->state_free(s2);

    /* one added: n -> n+1 */
    make_pool(&p2, b2, w, n + 1); /* names[0..n] again, the same addresses */
    p2.lb = &sg_lb_hash;
    s2 = p2.lb->state_new(&p2);
    for (int i = 0; i < 16; i++)
        serves[i] = true;
    f = hash_moved(&p1, s1, &p2, s2, serves, &stray);
    /* every key that moved went to the newcomer */
    int elsewhere = 0;
    for (int i = 0; i < NKEYS; i++) {
        int o1 = hash_owner(&p1, s1, i), o2 = hash_owner(&p2, s2, i);
        elsewhere += o1 != o2 && o2 != (int)n;
    }
    print_message("hash pool of %zu -> %zu: moved %.2f%% (fair 1/(n+1) = %.2f%%), moved "
                  "elsewhere than to the new one %.2f%%\n",
                  n, n + 1, f * 100, 100.0 / (n + 1), elsewhere * 100.0 / NKEYS);
    assert_true(f <= 1.5 / (n + 1));
    assert_int_equal(elsewhere, 0);
    p2.lb->state_free(s2);
    p1.lb->state_free(s1);
}

/* One hot key hammered while the load grows: the bound c = 1.25 spreads
 * it, no backend ever exceeds ceil(1.25 x mean) + 1. */
static void test_hash_bounded_load(void **state)
{
    struct sg_pool p;
    struct sg_backend b[6];
    const uint32_t w[] = {1, 1, 1, 1, 1, 1};
    struct sg_cfg_pool cfg = {.hash_balance_factor = 1.25};
    make_pool(&p, b, w, 6);
    p.lb = &sg_lb_hash;
    p.cfg = &cfg;
    void *s = p.lb->state_new(&p);
    int hot = hash_owner(&p, s, 42);
    uint32_t total = 0, worst = 0;
    for (int i = 0; i < 3000; i++) {
        char kb[32];
        struct sg_lb_req req = {.now_ms = NOW_MS};
        req.key = key_of(42, kb, sizeof(kb), &req.keylen);
        struct sg_backend *x = p.lb->pick(s, &p, &req);
        atomic_fetch_add(&x->inflight, 1);
        total++;
        uint32_t bound = (uint32_t)ceil(1.25 * total / 6.0) + 1;
        for (int j = 0; j < 6; j++) {
            uint32_t v = atomic_load(&b[j].inflight);
            assert_true(v <= bound);
            worst = v > worst ? v : worst;
        }
    }
    print_message("hash bounded load: hot key, %u requests in flight on 6 backends, max %u "
                  "(bound ceil(1.25 x mean) + 1 = %u)\n",
                  total, worst, (uint32_t)ceil(1.25 * total / 6.0) + 1);
    /* the key's own backend is the one at the top */
    assert_int_equal(atomic_load(&b[hot].inflight), worst);
    /* light load: the key stays home */
    for (int j = 0; j < 6; j++)
        atomic_store(&b[j].inflight, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(hash_owner(&p, s, 42), hot);
    p.lb->state_free(s);

    /* c = 0: no bound, the hot key stays on its backend */
    cfg.hash_balance_factor = 0;
    s = p.lb->state_new(&p);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(hash_owner(&p, s, 42), hot);
        atomic_fetch_add(&b[hot].inflight, 1);
    }
    p.lb->state_free(s);
}

static void test_hash64(void **state)
{
    const char *a = "hello world, this is a key";
    assert_true(sg_lb_hash64(a, strlen(a)) == sg_lb_hash64(a, strlen(a)));
    assert_true(sg_lb_hash64("", 0) == sg_lb_hash64(NULL, 0));
    assert_true(sg_lb_hash64("ab", 2) != sg_lb_hash64("ab\0", 3));
    assert_true(sg_lb_hash64("ab", 2) != sg_lb_hash64("ba", 2));
    /* avalanche: flipping one input bit flips about half the output bits */
    unsigned char buf[24];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 1; len <= sizeof(buf); len += 7) {
        uint64_t h0 = sg_lb_hash64(buf, len);
        double sum = 0;
        int lo = 64, hi = 0;
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            int d = __builtin_popcountll(h0 ^ sg_lb_hash64(buf, len));
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            sum += d;
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        double mean = sum / (double)(len * 8);
        assert_true(mean > 29 && mean < 35);
        assert_true(lo >= 12 && hi <= 52);
    }
}

static int route(const struct sg_cfg_frontend *fe, const char *host, const char *path)
{
    return sg_route_pick(fe, host, host != NULL ? strlen(host) : 0, path, strlen(path));
}

static void test_route(void **st)
{
    struct sg_cfg_route routes[] = {
        {.host = "api.example.com", .path_prefix = "/api/", .pool_index = 1},
        {.host = NULL, .path_prefix = "/static/", .pool_index = 2},
        {.host = "admin.example.com", .path_prefix = NULL, .pool_index = 3},
    };
    struct sg_cfg_frontend fe = {.routes = routes, .nroutes = 3, .default_pool_index = 0};
#define R(h, p) route(&fe, h, p)
    assert_int_equal(R("api.example.com", "/api/v1"), 1);
    assert_int_equal(R("API.Example.com:8080", "/api/v1"), 1);
    assert_int_equal(R("api.example.com", "/other"), 0);
    assert_int_equal(R("x", "/static/a.css"), 2);
    assert_int_equal(R("admin.example.com", "/"), 3);
    assert_int_equal(R("admin.example.com.evil", "/"), 0);
    assert_int_equal(R(NULL, "/"), 0);
    fe.default_pool_index = -1;
    assert_int_equal(R("x", "/"), -1);
#undef R
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_weights_exact),
        cmocka_unit_test(test_rr_smooth_interleaving),
        cmocka_unit_test(test_rr_skips_unusable_and_excluded),
        cmocka_unit_test(test_rr_backup_only_when_needed),
        cmocka_unit_test(test_lb_registry),
        cmocka_unit_test(test_registry_all),
#define ALL(t)                                                 \
    cmocka_unit_test_prestate(t, (void *)&sg_lb_random),       \
        cmocka_unit_test_prestate(t, (void *)&sg_lb_leastreq), \
        cmocka_unit_test_prestate(t, (void *)&sg_lb_ewma),     \
        cmocka_unit_test_prestate(t, (void *)&sg_lb_hash)
        ALL(test_all_skip_unusable),
        ALL(test_all_backup_only_when_needed),
#undef ALL
        cmocka_unit_test_prestate(test_weighted_shares, (void *)&sg_lb_random),
        cmocka_unit_test_prestate(test_weighted_shares, (void *)&sg_lb_leastreq),
        cmocka_unit_test(test_random_slowstart),
        cmocka_unit_test(test_leastreq_prefers_fewer_inflight),
        cmocka_unit_test(test_leastreq_keeps_load_even),
        cmocka_unit_test(test_ewma_prefers_fast_and_recovers),
        cmocka_unit_test(test_ewma_stale_estimate_relaxes),
        cmocka_unit_test(test_ewma_newcomer),
        cmocka_unit_test(test_hash_same_key_same_backend),
        cmocka_unit_test(test_hash_distribution),
        cmocka_unit_test(test_hash_remove_and_add),
        cmocka_unit_test(test_hash_bounded_load),
        cmocka_unit_test(test_hash64),
        cmocka_unit_test(test_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
