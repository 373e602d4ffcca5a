/* Unit tests for the balancers and routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/pool.h"
#include "surgegate/route.h"

static void make_pool(struct sg_pool *p, struct sg_backend *b, const uint32_t *weights, size_t n)
{
    memset(p, 0, sizeof(*p));
    p->magic = SG_POOL_MAGIC;
    p->name = "p";
    p->backends = b;
    p->nbackends = n;
    p->lb = &sg_lb_roundrobin;
    for (size_t i = 0; i < n; i++) {
        memset(&b[i], 0, sizeof(b[i]));
        b[i].magic = SG_BACKEND_MAGIC;
        b[i].id = (uint32_t)i;
        b[i].pool = p;
        b[i].weight = weights[i];
        atomic_init(&b[i].state, SG_BACKEND_UP);
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
    atomic_store(&b[2].state, SG_BACKEND_DOWN);
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
    atomic_store(&b[0].state, SG_BACKEND_DOWN);
    assert_int_equal(p.lb->pick(s, &p, NULL)->id, 1);
    p.lb->state_free(s);
}

static void test_lb_registry(void **st)
{
    assert_ptr_equal(sg_lb_find("roundrobin"), &sg_lb_roundrobin);
    assert_ptr_equal(sg_lb_find(NULL), &sg_lb_roundrobin);
    assert_null(sg_lb_find("nonsense"));
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
        cmocka_unit_test(test_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
