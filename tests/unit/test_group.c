/* test_group.c: the scaled group (issue 17): origins, which backends count
 * (pool.c: sg_pool_in_group, sg_pool_ncurrent, sg_pool_njoined), the
 * maxconn new members get (sg_pool_default_maxconn), the members a
 * scale-down takes first and the hook environment (group.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "surgegate/group.h"
#include "unit_pool.h"

static void test_origin_names(void **state)
{
    (void)state;
    assert_string_equal(sg_backend_origin_name(SG_ORIGIN_CONFIG), "config");
    assert_string_equal(sg_backend_origin_name(SG_ORIGIN_ADMIN), "admin");
    assert_string_equal(sg_backend_origin_name(SG_ORIGIN_HOOK), "hook");
    assert_string_equal(sg_backend_origin_name(SG_ORIGIN_DISCOVERY), "discovery");
    assert_string_equal(sg_backend_origin_name(-1), "unknown");
    assert_string_equal(sg_backend_origin_name(SG_ORIGIN__COUNT), "unknown");
    assert_int_equal(sg_backend_origin_of("hook"), SG_ORIGIN_HOOK);
    assert_int_equal(sg_backend_origin_of("discovery"), SG_ORIGIN_DISCOVERY);
    assert_int_equal(sg_backend_origin_of("admin"), SG_ORIGIN_ADMIN);
    assert_int_equal(sg_backend_origin_of("anything else"), SG_ORIGIN_ADMIN);
    assert_int_equal(sg_backend_origin_of(NULL), SG_ORIGIN_ADMIN);
}

/* 4 backends: config, admin, hook (checking), discovery (down). */
static void test_group_counts(void **state)
{
    (void)state;
    static const uint16_t ports[] = {9001, 9002, 9003, 9004};
    struct unit_pool up;
    unit_pool_init(&up, 4, 8, ports);
    up.b[0].origin = SG_ORIGIN_CONFIG;
    up.b[1].origin = SG_ORIGIN_ADMIN;
    up.b[2].origin = SG_ORIGIN_HOOK;
    atomic_store(&up.b[2].health, SG_HEALTH_CHECKING);
    up.b[3].origin = SG_ORIGIN_DISCOVERY;
    atomic_store(&up.b[3].health, SG_HEALTH_DOWN);
    struct sg_pool *p = &up.pool;

    assert_true(sg_pool_in_group(&up.b[0]));
    assert_false(sg_pool_in_group(&up.b[1])); /* by hand: outside */
    assert_true(sg_pool_in_group(&up.b[2]));
    assert_true(sg_pool_in_group(&up.b[3]));
    assert_int_equal(sg_pool_ncurrent(p), 3);
    assert_int_equal(sg_pool_njoined(p), 2); /* the checking one has not joined */

    /* down first, then checking; never the admin one */
    json_t *rf = sg_group_remove_first(p);
    assert_int_equal(json_array_size(rf), 2);
    assert_string_equal(json_string_value(json_array_get(rf, 0)), "127.0.0.1:9004");
    assert_string_equal(json_string_value(json_array_get(rf, 1)), "127.0.0.1:9003");
    json_decref(rf);

    /* a backup, one being removed and an empty slot are outside too */
    up.b[0].backup = true;
    atomic_store(&up.b[2].removing, true);
    atomic_store(&up.b[3].admin, SG_ADMIN_EMPTY);
    assert_int_equal(sg_pool_ncurrent(p), 0);
    rf = sg_group_remove_first(p);
    assert_int_equal(json_array_size(rf), 0);
    json_decref(rf);
    unit_pool_destroy(&up);
}

static void test_default_maxconn(void **state)
{
    (void)state;
    struct sg_cfg_backend bs[3] = {{.maxconn = 8}, {.maxconn = 8}, {.maxconn = 2, .backup = true}};
    struct unit_pool up;
    unit_pool_init(&up, 1, 8, NULL);
    up.cfg.backends = bs;
    up.cfg.nbackends = 3;
    assert_int_equal(sg_pool_default_maxconn(&up.pool), 8); /* the backup does not count */
    bs[1].maxconn = 5;
    assert_int_equal(sg_pool_default_maxconn(&up.pool), 5); /* they differ: the smallest */
    bs[0].maxconn = 0;
    assert_int_equal(sg_pool_default_maxconn(&up.pool), 5); /* unlimited is the largest */
    bs[1].maxconn = 0;
    assert_int_equal(sg_pool_default_maxconn(&up.pool), 0); /* all unlimited */
    up.cfg.nbackends = 0;
    assert_int_equal(sg_pool_default_maxconn(&up.pool), 0); /* none configured */
    unit_pool_destroy(&up);
}

static const char *env_get(char **env, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; env[i] != NULL; i++)
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            return env[i] + kl + 1;
    return NULL;
}

static void env_free(char **env)
{
    for (size_t i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

static void test_hook_env(void **state)
{
    (void)state;
    static const uint16_t ports[] = {9001, 9002, 9003};
    struct sg_cfg_backend bs[1] = {{.maxconn = 8}};
    struct unit_pool up;
    unit_pool_init(&up, 3, 8, ports);
    up.cfg.backends = bs;
    up.cfg.nbackends = 1;
    up.b[1].origin = SG_ORIGIN_HOOK;
    atomic_store(&up.b[1].health, SG_HEALTH_DOWN);
    up.b[2].origin = SG_ORIGIN_HOOK;
    atomic_store(&up.b[2].health, SG_HEALTH_DOWN);
    double m[SG_AS_NMETRICS];
    for (int i = 0; i < SG_AS_NMETRICS; i++)
        m[i] = i == 0 ? 12.5 : NAN;
    struct sg_as_decision d = {.action = SG_AS_DOWN, .current = 3, .desired = 1};
    snprintf(d.reason, sizeof(d.reason), "test");

    unsetenv("SURGEGATE_DEMO_OWNER");
    char **env = sg_group_hook_env(&up.pool, "/x/surgegate", m, "scale_down", NULL, &d);
    assert_string_equal(env_get(env, "SURGEGATE_ACTION"), "scale_down");
    assert_string_equal(env_get(env, "SURGEGATE_POOL"), "p");
    assert_string_equal(env_get(env, "SURGEGATE_BIN"), "/x/surgegate");
    assert_string_equal(env_get(env, "SURGEGATE_CURRENT"), "3");
    assert_string_equal(env_get(env, "SURGEGATE_DESIRED"), "1");
    assert_string_equal(env_get(env, "SURGEGATE_BACKEND_MAXCONN"), "8");
    assert_string_equal(env_get(env, "SURGEGATE_REMOVE_FIRST"), "127.0.0.1:9002 127.0.0.1:9003");
    assert_string_equal(env_get(env, "SURGEGATE_METRIC_QUEUE_DEPTH"), "12.500");
    assert_string_equal(env_get(env, "SURGEGATE_METRIC_LATENCY_P99_MS"), "nan");
    assert_null(env_get(env, "SURGEGATE_EVENT"));
    assert_null(env_get(env, "SURGEGATE_DEMO_OWNER"));
    env_free(env);

    /* an UP: no remove list; an alert: no decision, no maxconn, no metrics */
    d.action = SG_AS_UP;
    setenv("SURGEGATE_DEMO_OWNER", "4242", 1);
    env = sg_group_hook_env(&up.pool, "/x/surgegate", m, "scale_up", NULL, &d);
    assert_null(env_get(env, "SURGEGATE_REMOVE_FIRST"));
    assert_string_equal(env_get(env, "SURGEGATE_DEMO_OWNER"), "4242");
    env_free(env);
    unsetenv("SURGEGATE_DEMO_OWNER");
    env = sg_group_hook_env(&up.pool, NULL, NULL, "alert", "backend_down", NULL);
    assert_string_equal(env_get(env, "SURGEGATE_EVENT"), "backend_down");
    assert_null(env_get(env, "SURGEGATE_BACKEND_MAXCONN"));
    assert_null(env_get(env, "SURGEGATE_CURRENT"));
    assert_null(env_get(env, "SURGEGATE_BIN"));
    assert_null(env_get(env, "SURGEGATE_METRIC_QUEUE_DEPTH"));
    env_free(env);
    unit_pool_destroy(&up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_names),
        cmocka_unit_test(test_group_counts),
        cmocka_unit_test(test_default_maxconn),
        cmocka_unit_test(test_hook_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
