/* Unit tests for the balancer registry (src/lb.c): lookup, the default and
 * the list of names the config loader and `--list-names` read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"

/* Every registered balancer is found by its name; names are unique and
 * complete (an ops with every function a pick needs); the list ends with
 * NULL in both accessors. */
static void test_registry_list(void **state)
{
    (void)state;
    size_t n = 0;
    for (; sg_lb_at(n) != NULL; n++) {
        const struct sg_lb_ops *ops = sg_lb_at(n);
        assert_non_null(ops->name);
        assert_ptr_equal(sg_lb_name(n), ops->name);
        assert_ptr_equal(sg_lb_find(ops->name), ops);
        assert_non_null(ops->state_new);
        assert_non_null(ops->state_free);
        assert_non_null(ops->pick);
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(sg_lb_name(j), ops->name);
    }
    assert_int_equal(n, 5);
    assert_null(sg_lb_name(n));
    assert_null(sg_lb_at(n + 1));
}

/* The default is the first row and what a pool without "balance" gets. */
static void test_registry_default(void **state)
{
    (void)state;
    assert_ptr_equal(sg_lb_default(), sg_lb_at(0));
    assert_ptr_equal(sg_lb_find(NULL), sg_lb_default());
    assert_string_equal(sg_lb_default()->name, "roundrobin");
}

/* Unknown names, and names that only differ in case or by a prefix. */
static void test_registry_unknown(void **state)
{
    (void)state;
    assert_null(sg_lb_find(""));
    assert_null(sg_lb_find("RoundRobin"));
    assert_null(sg_lb_find("round"));
    assert_null(sg_lb_find("leastreq "));
}

/* Only the balancers that pick by a key say so: the request path computes
 * the key from the flag, never from the name. */
static void test_registry_flags(void **state)
{
    (void)state;
    size_t nkey = 0;
    for (size_t i = 0; sg_lb_at(i) != NULL; i++)
        nkey += (sg_lb_at(i)->flags & SG_LB_F_KEY) != 0;
    assert_int_equal(nkey, 1);
    assert_true(sg_lb_find("hash")->flags & SG_LB_F_KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_list),
        cmocka_unit_test(test_registry_default),
        cmocka_unit_test(test_registry_unknown),
        cmocka_unit_test(test_registry_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
