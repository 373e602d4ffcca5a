/* test_cfg.c: unit tests of the configuration loader and checker (src/cfg*.c):
 * value parsers, defaults, every error class on its line, all errors at once,
 * the capacity warnings and the diagnostics format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/demo.h"

#ifndef SG_SOURCE_DIR
#define SG_SOURCE_DIR "."
#endif

/* Every timeout set: configs built on it have no "timeout not set" warning. */
#define TIMEOUTS                                                                \
    "timeouts = { connect = \"4s\"; http_request = \"5s\"; client = \"30s\";\n" \
    "             server = \"30s\"; queue = \"10s\"; keepalive = \"60s\"; };\n"

/* A small valid config (lines 1-2 timeouts, 3 frontend, 4-5 pool); OK_BODY
 * is the same without the timeouts (3 lines). */
#define OK_CONFIG TIMEOUTS OK_BODY
#define OK_BODY                                                                    \
    "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 100; " \
    "default_pool = \"app\"; } );\n"                                               \
    "pools = ( { name = \"app\";\n"                                                \
    "            backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n"

/* ---- helpers ---- */

static struct sg_cfg *load(const char *text, struct sg_cfg_diags *d)
{
    sg_cfg_diags_init(d, "t.conf");
    return sg_cfg_load_string(text, "t.conf", d);
}

static bool has_diag(const struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line,
                     const char *substr)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->items[i].severity == sev && d->items[i].line == line &&
            strstr(d->items[i].msg, substr) != NULL)
            return true;
    }
    return false;
}

static void dump(const struct sg_cfg_diags *d)
{
    sg_cfg_diags_print(d, stderr);
}

/* Asserts that `text` fails to load with an error containing substr on line. */
static void expect_error(const char *text, int line, const char *substr)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg = load(text, &d);
    if (cfg != NULL || !has_diag(&d, SG_CFG_ERROR, line, substr)) {
        fprintf(stderr, "wanted error on line %d containing \"%s\"; got:\n", line, substr);
        dump(&d);
    }
    assert_null(cfg);
    assert_true(has_diag(&d, SG_CFG_ERROR, line, substr));
    sg_cfg_diags_free(&d);
}

/* Asserts that `text` loads with no diagnostic at all and returns it. */
static struct sg_cfg *expect_clean(const char *text)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg = load(text, &d);
    if (cfg == NULL || d.n != 0)
        dump(&d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 0);
    sg_cfg_diags_free(&d);
    return cfg;
}

/* The lint's RLIMIT_NOFILE check depends on the environment: tests that must
 * not see it run with a soft limit high enough for their small configs. */
static rlim_t saved_nofile;

static void set_nofile(rlim_t soft)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max)
        soft = rl.rlim_max;
    rl.rlim_cur = soft;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Default soft limit for the tests: enough for every config below except
 * the ones that test the warning. */
#define TEST_NOFILE 4096

/* Skips the test when the hard limit does not allow `n` descriptors. */
static void need_nofile(rlim_t n)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < n)
        skip();
}

static int group_setup(void **state)
{
    struct rlimit rl;
    (void)state;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    saved_nofile = rl.rlim_cur;
    set_nofile(TEST_NOFILE);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    set_nofile(saved_nofile);
    return 0;
}

/* ---- value parsers ---- */

static void test_duration(void **state)
{
    uint32_t ms = 0;
    (void)state;
    assert_int_equal(sg_cfg_parse_duration("250ms", &ms), SG_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(sg_cfg_parse_duration("5s", &ms), SG_OK);
    assert_int_equal(ms, 5000);
    assert_int_equal(sg_cfg_parse_duration("2m", &ms), SG_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(sg_cfg_parse_duration("1h", &ms), SG_OK);
    assert_int_equal(ms, 3600000);
    assert_int_equal(sg_cfg_parse_duration("1500ms", &ms), SG_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(sg_cfg_parse_duration("0s", &ms), SG_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(sg_cfg_parse_duration("1193h", &ms), SG_OK);
    assert_int_equal(ms, 1193u * 3600000u);

    ms = 42;
    const char *bad[] = {"5",
                         "",
                         "s",
                         "5x",
                         "1.5s",
                         "-1s",
                         " 5s",
                         "5 s",
                         "5S",
                         "5sec",
                         "4294967296ms",
                         "1194h",
                         "99999999999999999999s",
                         "5ss"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        if (sg_cfg_parse_duration(bad[i], &ms) != SG_ERR)
            fail_msg("duration '%s' accepted", bad[i]);
    }
    assert_int_equal(sg_cfg_parse_duration(NULL, &ms), SG_ERR);
    assert_int_equal(ms, 42);
}

static void test_size(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(sg_cfg_parse_size("123", &v), SG_OK);
    assert_int_equal(v, 123);
    assert_int_equal(sg_cfg_parse_size("32k", &v), SG_OK);
    assert_int_equal(v, 32768);
    assert_int_equal(sg_cfg_parse_size("10m", &v), SG_OK);
    assert_int_equal(v, 10 * 1024 * 1024);
    assert_int_equal(sg_cfg_parse_size("2G", &v), SG_OK);
    assert_true(v == 2ULL * 1024 * 1024 * 1024);
    const char *bad[] = {
        "", "k", "10q", "10mb", "-1", "1.5m", " 1k", "99999999999999999999", "17179869184g"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        if (sg_cfg_parse_size(bad[i], &v) != SG_ERR)
            fail_msg("size '%s' accepted", bad[i]);
    }
}

static void test_addr(void **state)
{
    struct sg_cfg_addr a;
    char err[160];
    (void)state;

    assert_int_equal(sg_cfg_parse_addr("127.0.0.1:8080", &a, err, sizeof(err)), SG_OK);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 8080);
    assert_int_equal(a.sslen, sizeof(struct sockaddr_in));
    assert_string_equal(a.text, "127.0.0.1:8080");
    assert_false(a.is_unix);
    sg_cfg_addr_free(&a);

    assert_int_equal(sg_cfg_parse_addr("localhost:80", &a, err, sizeof(err)), SG_OK);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_true(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    assert_string_equal(a.text, "localhost:80");
    sg_cfg_addr_free(&a);

    assert_int_equal(sg_cfg_parse_addr("[::1]:8080", &a, err, sizeof(err)), SG_OK);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.sslen, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port), 8080);
    assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a.ss)->sin6_addr));
    sg_cfg_addr_free(&a);

    assert_int_equal(sg_cfg_parse_addr("[::]:65535", &a, err, sizeof(err)), SG_OK);
    sg_cfg_addr_free(&a);
    assert_int_equal(sg_cfg_parse_addr("0.0.0.0:1", &a, err, sizeof(err)), SG_OK);
    sg_cfg_addr_free(&a);

    assert_int_equal(sg_cfg_parse_addr("unix:/run/x.sock", &a, err, sizeof(err)), SG_OK);
    assert_true(a.is_unix);
    assert_int_equal(a.ss.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&a.ss)->sun_path, "/run/x.sock");
    sg_cfg_addr_free(&a);
    assert_null(a.text);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"example.com:80", "numeric IP address"},
        {"::1:80", "brackets"},
        {"127.0.0.1", "missing port"},
        {"127.0.0.1:0", "bad port"},
        {"127.0.0.1:65536", "bad port"},
        {"127.0.0.1:http", "bad port"},
        {"127.0.0.1:", "bad port"},
        {":80", "missing host"},
        {"[::1]80", "missing port"},
        {"[::1", "missing ']'"},
        {"[1.2.3.4]:80", "bad IPv6"},
        {"[fe80::1%eth0]:80", "zone"},
        {"1.2.3:80", "numeric IP address"},
        {"256.1.1.1:80", "numeric IP address"},
        {"unix:run.sock", "absolute"},
        {"unix:", "absolute"},
        {"", "empty"},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        if (sg_cfg_parse_addr(bad[i].in, &a, err, sizeof(err)) != SG_ERR)
            fail_msg("address '%s' accepted", bad[i].in);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("address '%s': reason '%s' lacks '%s'", bad[i].in, err, bad[i].why);
        assert_null(a.text);
    }
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath, "unix:/", 6);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(sg_cfg_parse_addr(longpath, &a, err, sizeof(err)), SG_ERR);
    assert_non_null(strstr(err, "longer than"));
    /* no errbuf: still a clean failure */
    assert_int_equal(sg_cfg_parse_addr("nope", &a, NULL, 0), SG_ERR);
}

static void test_status_ranges(void **state)
{
    char err[128];
    (void)state;
    assert_int_equal(sg_cfg_check_status_ranges("200-399", err, sizeof(err)), SG_OK);
    assert_int_equal(sg_cfg_check_status_ranges("200-399,404", err, sizeof(err)), SG_OK);
    assert_int_equal(sg_cfg_check_status_ranges("200, 204 ,301-302", err, sizeof(err)), SG_OK);
    const char *bad[] = {"",   "200-", "-200",    "399-200", "200,",         "2000",
                         "99", "600",  "200;404", "abc",     "200-399,,404", "20x"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        if (sg_cfg_check_status_ranges(bad[i], err, sizeof(err)) != SG_ERR)
            fail_msg("status list '%s' accepted", bad[i]);
    }
    assert_true(sg_cfg_status_match("200-399,404", 200));
    assert_true(sg_cfg_status_match("200-399,404", 399));
    assert_true(sg_cfg_status_match("200-399,404", 404));
    assert_false(sg_cfg_status_match("200-399,404", 400));
    assert_false(sg_cfg_status_match("200-399,404", 199));
    assert_false(sg_cfg_status_match("bad", 200));
    assert_false(sg_cfg_status_match(NULL, 200));

    /* parsed into ranges, in the order written */
    static struct sg_cfg_status_range junk;
    struct sg_cfg_status_range *r = NULL;
    size_t n = 99;
    assert_int_equal(sg_cfg_parse_status_ranges("200", &r, &n, err, sizeof(err)), SG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].lo, 200);
    assert_int_equal(r[0].hi, 200);
    free(r);
    assert_int_equal(sg_cfg_parse_status_ranges("200-399", &r, &n, err, sizeof(err)), SG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].lo, 200);
    assert_int_equal(r[0].hi, 399);
    free(r);
    assert_int_equal(
        sg_cfg_parse_status_ranges("200,204, 300-399 ,100-599", &r, &n, err, sizeof(err)), SG_OK);
    assert_int_equal(n, 4);
    assert_int_equal(r[0].lo, 200);
    assert_int_equal(r[0].hi, 200);
    assert_int_equal(r[1].lo, 204);
    assert_int_equal(r[1].hi, 204);
    assert_int_equal(r[2].lo, 300);
    assert_int_equal(r[2].hi, 399);
    assert_int_equal(r[3].lo, 100);
    assert_int_equal(r[3].hi, 599);
    assert_true(sg_cfg_status_in(r, n, 204));
    assert_true(sg_cfg_status_in(r, 3, 350));
    assert_false(sg_cfg_status_in(r, 3, 201));
    assert_false(sg_cfg_status_in(r, 3, 400));
    assert_false(sg_cfg_status_in(NULL, 0, 200));
    free(r);
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        r = &junk; /* must be reset */
        n = 7;
        err[0] = '\0';
        if (sg_cfg_parse_status_ranges(bad[i], &r, &n, err, sizeof(err)) != SG_ERR)
            fail_msg("status list '%s' parsed", bad[i]);
        assert_null(r);
        assert_int_equal(n, 0);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(sg_cfg_parse_status_ranges("700", &r, &n, err, sizeof(err)), SG_ERR);
    assert_non_null(strstr(err, "100..599"));
}

/* ---- loading ---- */

static void test_defaults(void **state)
{
    const char *text = "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                       "default_pool = \"app\"; } );\n"
                       "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; "
                       "} ); } );\n";
    struct sg_cfg_diags d;
    struct sg_cfg *cfg = load(text, &d);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    (void)state;

    assert_non_null(cfg);
    assert_int_equal(d.nerrors, 0);
    assert_string_equal(cfg->file, "t.conf");
    assert_int_equal(cfg->workers, ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->timeouts.connect_ms, 4000);
    assert_int_equal(cfg->timeouts.http_request_ms, 5000);
    assert_int_equal(cfg->timeouts.client_ms, 30000);
    assert_int_equal(cfg->timeouts.server_ms, 30000);
    assert_int_equal(cfg->timeouts.queue_ms, 10000);
    assert_int_equal(cfg->timeouts.keepalive_ms, 60000);
    assert_int_equal(cfg->timeouts.upstream_idle_ms, 30000);
    assert_int_equal(cfg->timeouts.grace_ms, 10000);
    assert_false(cfg->timeouts.set_connect || cfg->timeouts.set_http_request ||
                 cfg->timeouts.set_client || cfg->timeouts.set_server || cfg->timeouts.set_queue ||
                 cfg->timeouts.set_keepalive);
    assert_int_equal(cfg->limits.max_request_line, 8192);
    assert_int_equal(cfg->limits.max_header_size, 32768);
    assert_int_equal(cfg->limits.max_headers, 100);
    assert_true(cfg->limits.max_body_size == 0);

    assert_int_equal(cfg->nfrontends, 1);
    const struct sg_cfg_frontend *fe = &cfg->frontends[0];
    assert_string_equal(fe->name, "web");
    assert_int_equal(fe->maxconn, 10000);
    assert_int_equal(fe->nroutes, 0);
    assert_string_equal(fe->default_pool, "app");
    assert_int_equal(fe->default_pool_index, 0);
    assert_int_equal(fe->line, 1);

    assert_int_equal(cfg->npools, 1);
    const struct sg_cfg_pool *p = &cfg->pools[0];
    assert_string_equal(p->balance, "roundrobin");
    assert_int_equal(p->retries, 2);
    assert_int_equal(p->maxqueue, 1000);
    assert_int_equal(p->max_idle, 32);
    assert_true(p->health.enabled); /* checks on without a "health" group */
    assert_string_equal(p->health.type, "http");
    assert_string_equal(p->health.method, "GET");
    assert_string_equal(p->health.path, "/");
    assert_null(p->health.host);
    assert_int_equal(p->health.interval_ms, 2000);
    assert_int_equal(p->health.timeout_ms, 1000);
    assert_int_equal(p->health.rise, 2);
    assert_int_equal(p->health.fall, 3);
    assert_string_equal(p->health.expect_status, "200-399");
    assert_int_equal(p->health.nexpect, 1);
    assert_int_equal(p->health.expect[0].lo, 200);
    assert_int_equal(p->health.expect[0].hi, 399);
    assert_int_equal(p->health.fast_interval_ms, 1000); /* interval / 2 */
    assert_int_equal(p->health.down_interval_ms, 4000); /* interval * 2 */
    assert_string_equal(p->hash_key, "source");
    assert_true(p->hash_balance_factor == 1.25);
    assert_int_equal(p->slowstart_ms, 0);
    assert_true(p->retry_budget.percent == 20.0);
    assert_int_equal(p->retry_budget.min_retries, 3);
    assert_int_equal(p->retry_budget.line, 0);
    assert_int_equal(p->outlier.consecutive_errors, 5);
    assert_int_equal(p->outlier.base_ejection_ms, 30000);
    assert_int_equal(p->outlier.max_ejection_ms, 300000);
    assert_int_equal(p->outlier.max_ejection_percent, 50);
    assert_int_equal(p->outlier.line, 0);
    assert_int_equal(p->nbackends, 1);
    assert_int_equal(p->backends[0].weight, 1);
    assert_int_equal(p->backends[0].maxconn, 0);
    assert_false(p->backends[0].backup);
    assert_int_equal(p->backends[0].line, 2);
    assert_false(p->autoscale.enabled);

    assert_null(cfg->alerts.events);
    assert_null(cfg->alerts.hook);
    assert_true(cfg->admin.listen.is_unix);
    assert_string_equal(cfg->admin.listen.text, "unix:/run/surgegate/admin.sock");
    assert_int_equal(cfg->admin.ntokens, 0);

    /* the five "timeout not set" warnings, not tied to a line (and the
     * RLIMIT_NOFILE one where the limit is below 10000 + 10000 + 64) */
    assert_int_equal(d.nwarnings, has_diag(&d, SG_CFG_WARNING, 1, "RLIMIT_NOFILE") ? 6 : 5);
    assert_true(has_diag(&d, SG_CFG_WARNING, 0, "timeout 'server' not set, using default 30s"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 0, "timeout 'connect' not set, using default 4s"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
}

static const char FULL_CONFIG[] =
    "workers = 3;\n"                                                            /* 1 */
    "log_level = \"debug\";\n"                                                  /* 2 */
    "timeouts = { connect = \"1s\"; http_request = \"2s\"; client = \"3s\";\n"  /* 3 */
    "  server = \"4s\"; queue = \"1500ms\"; keepalive = \"6s\";\n"              /* 4 */
    "  upstream_idle = \"7s\"; grace = \"1m\"; };\n"                            /* 5 */
    "limits = { max_request_line = 4096; max_header_size = \"16k\";\n"          /* 6 */
    "  max_headers = 50; max_body_size = 10737418240; };\n"                     /* 7 */
    "frontends = ( { name = \"web\"; listen = \"[::1]:8080\"; maxconn = 500;\n" /* 8 */
    "  routes = ( { host = \"api.example.com\"; path_prefix = \"/api/\"; pool = \"api\"; },\n"
    "             { path_prefix = \"/\"; pool = \"app\"; } );\n" /* 10 */
    "  default_pool = \"app\"; },\n"                             /* 11 */
    "  { name = \"admin-fe\"; listen = \"unix:/tmp/sg-fe.sock\"; maxconn = 10;\n"
    "    routes = ( { host = \"x\"; pool = \"api\"; } ); } );\n" /* 13 */
    "pools = ( { name = \"app\"; balance = \"ewma\"; retries = 0; maxqueue = 7; max_idle = 0;\n"
    "  health = { type = \"tcp\"; method = \"HEAD\"; path = \"/h\"; host = \"h.example\";\n"
    "             interval = \"5s\"; timeout = \"500ms\"; rise = 4; fall = 5;\n"
    "             expect_status = \"200-299,404\"; };\n" /* 17 */
    "  backends = ( { address = \"127.0.0.1:9001\"; weight = 0; maxconn = 10; },\n"
    "               { address = \"localhost:9002\"; weight = 256; backup = true; } );\n"
    "  autoscale = { min = 0; max = 9; step = 3; hook_timeout = \"45s\"; dry_run = true;\n"
    "    scale_up_cooldown = \"2m\"; scale_down_window = \"10m\"; hold_timeout = \"20s\";\n"
    "    rules = ( { metric = \"queue_depth\"; above = 10; for = \"30s\"; },\n" /* 22 */
    "              { metric = \"utilization\"; below = 0.25; },\n"
    "              { metric = \"latency_p99_ms\"; target = 250.5; } );\n"
    "    scale_up_hook = [ \"/bin/up\", \"a b\", \"c\" ];\n"
    "    scale_down_hook = ( \"/bin/down\" ); }; },\n" /* 26 */
    "  { name = \"api\"; backends = ( { address = \"unix:/tmp/api.sock\"; } ); } );\n"
    "alerts = { events = [ \"backend_down\", \"hook_failed\" ];\n"
    "           hook = [ \"/usr/bin/alert\", \"--to\", \"ops\" ]; };\n"
    "admin = { listen = \"127.0.0.1:9900\";\n" /* 30 */
    "  tokens = ( { name = \"ops\"; token = \"s3cret\"; role = \"admin\"; },\n"
    "             { name = \"graf\"; token = \"other\"; } ); };\n";

static void test_full(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    need_nofile(510 + 1010 + 64);
    cfg = expect_clean(FULL_CONFIG);

    assert_int_equal(cfg->workers, 3);
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->timeouts.connect_ms, 1000);
    assert_int_equal(cfg->timeouts.http_request_ms, 2000);
    assert_int_equal(cfg->timeouts.client_ms, 3000);
    assert_int_equal(cfg->timeouts.server_ms, 4000);
    assert_int_equal(cfg->timeouts.queue_ms, 1500);
    assert_int_equal(cfg->timeouts.queue_line, 4);
    assert_int_equal(cfg->timeouts.keepalive_ms, 6000);
    assert_int_equal(cfg->timeouts.upstream_idle_ms, 7000);
    assert_int_equal(cfg->timeouts.grace_ms, 60000);
    assert_true(cfg->timeouts.set_connect && cfg->timeouts.set_http_request &&
                cfg->timeouts.set_client && cfg->timeouts.set_server && cfg->timeouts.set_queue &&
                cfg->timeouts.set_keepalive);
    assert_int_equal(cfg->timeouts.line, 3);
    assert_int_equal(cfg->limits.max_request_line, 4096);
    assert_int_equal(cfg->limits.max_header_size, 16384);
    assert_int_equal(cfg->limits.max_headers, 50);
    assert_true(cfg->limits.max_body_size == 10737418240ULL); /* needs 64 bits */
    assert_int_equal(cfg->limits.line, 6);

    assert_int_equal(cfg->nfrontends, 2);
    const struct sg_cfg_frontend *fe = &cfg->frontends[0];
    assert_string_equal(fe->listen.text, "[::1]:8080");
    assert_int_equal(fe->listen.ss.ss_family, AF_INET6);
    assert_int_equal(fe->maxconn, 500);
    assert_int_equal(fe->maxconn_line, 8);
    assert_int_equal(fe->nroutes, 2);
    assert_string_equal(fe->routes[0].host, "api.example.com");
    assert_string_equal(fe->routes[0].path_prefix, "/api/");
    assert_string_equal(fe->routes[0].pool, "api");
    assert_int_equal(fe->routes[0].pool_index, 1);
    assert_int_equal(fe->routes[0].line, 9);
    assert_null(fe->routes[1].host);
    assert_int_equal(fe->routes[1].pool_index, 0);
    assert_int_equal(fe->routes[1].line, 10);
    assert_int_equal(fe->default_pool_index, 0);
    assert_true(cfg->frontends[1].listen.is_unix);
    assert_null(cfg->frontends[1].default_pool);
    assert_int_equal(cfg->frontends[1].default_pool_index, -1);

    const struct sg_cfg_pool *p = &cfg->pools[0];
    assert_string_equal(p->balance, "ewma");
    assert_int_equal(p->retries, 0);
    assert_int_equal(p->maxqueue, 7);
    assert_int_equal(p->max_idle, 0);
    assert_true(p->health.enabled);
    assert_int_equal(p->health.line, 15);
    assert_string_equal(p->health.type, "tcp");
    assert_string_equal(p->health.method, "HEAD");
    assert_string_equal(p->health.path, "/h");
    assert_string_equal(p->health.host, "h.example");
    assert_int_equal(p->health.interval_ms, 5000);
    assert_int_equal(p->health.timeout_ms, 500);
    assert_int_equal(p->health.rise, 4);
    assert_int_equal(p->health.fall, 5);
    assert_string_equal(p->health.expect_status, "200-299,404");
    assert_int_equal(p->health.nexpect, 2);
    assert_int_equal(p->health.expect[0].lo, 200);
    assert_int_equal(p->health.expect[0].hi, 299);
    assert_int_equal(p->health.expect[1].lo, 404);
    assert_int_equal(p->health.expect[1].hi, 404);
    assert_int_equal(p->health.fast_interval_ms, 2500);
    assert_int_equal(p->health.down_interval_ms, 10000);
    assert_int_equal(p->nbackends, 2);
    assert_int_equal(p->backends[0].weight, 0);
    assert_int_equal(p->backends[0].maxconn, 10);
    assert_int_equal(p->backends[1].weight, 256);
    assert_true(p->backends[1].backup);
    assert_string_equal(p->backends[1].address.text, "localhost:9002");

    const struct sg_cfg_autoscale *as = &p->autoscale;
    assert_true(as->enabled);
    assert_int_equal(as->min, 0);
    assert_int_equal(as->max, 9);
    assert_int_equal(as->step, 3);
    assert_int_equal(as->hook_timeout_ms, 45000);
    assert_true(as->dry_run);
    assert_int_equal(as->scale_up_cooldown_ms, 120000);
    assert_int_equal(as->scale_down_window_ms, 600000);
    assert_int_equal(as->hold_timeout_ms, 20000);
    assert_int_equal(as->nrules, 3);
    assert_string_equal(as->rules[0].metric, "queue_depth");
    assert_int_equal(as->rules[0].kind, SG_RULE_ABOVE);
    assert_true(as->rules[0].value == 10.0); /* an integer is accepted as a number */
    assert_int_equal(as->rules[0].for_ms, 30000);
    assert_int_equal(as->rules[0].line, 22);
    assert_int_equal(as->rules[1].kind, SG_RULE_BELOW);
    assert_true(as->rules[1].value == 0.25);
    assert_int_equal(as->rules[1].for_ms, 0);
    assert_int_equal(as->rules[2].kind, SG_RULE_TARGET);
    assert_true(as->rules[2].value == 250.5);
    assert_string_equal(as->scale_up_hook[0], "/bin/up");
    assert_string_equal(as->scale_up_hook[1], "a b");
    assert_string_equal(as->scale_up_hook[2], "c");
    assert_null(as->scale_up_hook[3]);
    assert_string_equal(as->scale_down_hook[0], "/bin/down");
    assert_null(as->scale_down_hook[1]);
    assert_true(cfg->pools[1].backends[0].address.is_unix);

    assert_string_equal(cfg->alerts.events[0], "backend_down");
    assert_string_equal(cfg->alerts.events[1], "hook_failed");
    assert_null(cfg->alerts.events[2]);
    assert_string_equal(cfg->alerts.hook[2], "ops");
    assert_null(cfg->alerts.hook[3]);
    assert_string_equal(cfg->admin.listen.text, "127.0.0.1:9900");
    assert_int_equal(cfg->admin.ntokens, 2);
    assert_string_equal(cfg->admin.tokens[0].role, "admin");
    assert_string_equal(cfg->admin.tokens[1].role, "read"); /* default */
    assert_string_equal(cfg->admin.tokens[1].token, "other");
    sg_cfg_free(cfg);
}

static void test_workers_auto(void **state)
{
    (void)state;
    struct sg_cfg *cfg = expect_clean("workers = 0;\n" OK_CONFIG);
    assert_true(cfg->workers >= 1 && cfg->workers <= 256);
    sg_cfg_free(cfg);
    expect_error("workers = 257;\n" OK_CONFIG, 1,
                 "'workers' in the top level is 257, out of range 0..256");
    expect_error("workers = -1;\n" OK_CONFIG, 1, "out of range");
}

/* ---- errors, each on its line ---- */

static void test_syntax_error(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;
    /* a syntax error is the only thing reported: nothing else can be checked */
    cfg = load("workers = 2;\nfoo = 1;\nbar = ;\nbaz = \"x\";\n", &d);
    assert_null(cfg);
    assert_int_equal(d.n, 1);
    assert_true(has_diag(&d, SG_CFG_ERROR, 3, "syntax error"));
    sg_cfg_diags_free(&d);

    expect_error(OK_CONFIG "workers = 1;\nworkers = 2;\n", 7, "duplicate setting name");
    expect_error(OK_CONFIG "x = [ 1, \"a\" ];\n", 6, "mismatched element type");
    expect_error(OK_CONFIG "pools = ( { name = \"unterminated; } );\n", 6, "");

    /* libconfig 1.5 would accept these and drop the rest of the text */
    cfg = load(OK_CONFIG "alerts = { hook = [ \"/bin/a\",\n \"b ]; };\n", &d);
    assert_null(cfg);
    assert_true(has_diag(&d, SG_CFG_ERROR, 7, "string is not closed"));
    sg_cfg_diags_free(&d);
    cfg = load(OK_CONFIG "/* workers = 2;\n log_level = \"debug\";\n", &d);
    assert_null(cfg);
    assert_int_equal(d.n, 1);
    assert_true(has_diag(&d, SG_CFG_ERROR, 6, "comment is not closed: missing '*/'"));
    sg_cfg_diags_free(&d);
    /* comments and strings may hold anything, including numbers and @include */
    cfg = expect_clean(
        "# 99999999999999999999999 @include\n"
        "/* 4294967297\n @include \"x\" */ // 1e99999\n" OK_CONFIG
        "alerts = { hook = [ \"/bin/a\", \"99999999999999999999999\", \"a\\\"b\" ]; };\n");
    assert_string_equal(cfg->alerts.hook[1], "99999999999999999999999");
    assert_string_equal(cfg->alerts.hook[2], "a\"b");
    assert_int_equal(cfg->frontends[0].line, 6);
    sg_cfg_free(cfg);
}

/* A route's priority and a pool's queue group: parsed, defaulted, checked. */
#define PRIO_FE(prio)                                                                        \
    "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\";\n" \
    "  routes = ( { path_prefix = \"/checkout\"; pool = \"app\"; priority = " prio "; },\n"  \
    "             { path_prefix = \"/x\"; pool = \"app\"; } ); } );\n"

static void test_queue_priority(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg = load(
        TIMEOUTS PRIO_FE(
            "\"critical\"") "pools = ( { name = \"app\";\n"
                            "  queue = { target = \"250ms\"; interval = \"2s\"; lifo = true; };\n"
                            "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        &d);
    if (cfg == NULL)
        dump(&d);
    assert_non_null(cfg);
    assert_int_equal(cfg->frontends[0].routes[0].prio, SG_PRIO_CRITICAL);
    assert_int_equal(cfg->frontends[0].routes[1].prio, SG_PRIO_NORMAL);
    assert_int_equal(cfg->pools[0].queue.target_ms, 250);
    assert_int_equal(cfg->pools[0].queue.interval_ms, 2000);
    assert_true(cfg->pools[0].queue.lifo);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
    cfg = load(TIMEOUTS PRIO_FE(
                   "\"sheddable\"") "pools = ( { name = \"app\";\n"
                                    "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
               &d);
    assert_non_null(cfg);
    assert_int_equal(cfg->frontends[0].routes[0].prio, SG_PRIO_SHEDDABLE);
    assert_int_equal(cfg->pools[0].queue.target_ms, 100); /* defaults */
    assert_int_equal(cfg->pools[0].queue.interval_ms, 500);
    assert_false(cfg->pools[0].queue.lifo);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
    expect_error(
        TIMEOUTS PRIO_FE("\"urgent\"") "pools = ( { name = \"app\";\n"
                                       "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "bad value 'urgent' for 'priority'");
    expect_error(TIMEOUTS PRIO_FE("1") "pools = ( { name = \"app\";\n"
                                       "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
                 4, "'priority'");
    expect_error(
        TIMEOUTS PRIO_FE("\"normal\"") "pools = ( { name = \"app\";\n"
                                       "  queue = { target = \"2m\"; };\n"
                                       "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        7, "target");
    expect_error(
        TIMEOUTS PRIO_FE("\"normal\"") "pools = ( { name = \"app\";\n"
                                       "  queue = { target = \"1s\"; interval = \"1ms\"; };\n"
                                       "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        7, "interval");
    expect_error(
        TIMEOUTS PRIO_FE("\"normal\"") "pools = ( { name = \"app\";\n"
                                       "  queue = { tagret = \"1s\"; };\n"
                                       "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        7, "unknown key 'tagret'");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error(OK_CONFIG "colour = \"blue\";\n", 6, "unknown key 'colour' in the top level");
    expect_error(OK_CONFIG "maxconn = 5;\n", 6, "'maxconn' belongs in a frontend or a backend");
    expect_error("timeouts = { connect = \"1s\"; clinet = \"5s\"; };\n" OK_BODY, 1,
                 "unknown key 'clinet' in timeouts (did you mean 'client'?)");
    expect_error("limits = { max_body = 5; };\n" OK_CONFIG, 1, "unknown key 'max_body' in limits");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  max_conn = 5; default_pool = \"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "unknown key 'max_conn' in frontend 'web' (did you mean 'maxconn'?)");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\";\n"
                          "  foo = 1;\n"
                          "  backends = ( { address = \"127.0.0.1:9001\"; wieght = 2; } ); } );\n",
                 5, "unknown key 'foo' in pool 'app'");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\";\n"
                          "  backends = ( { address = \"127.0.0.1:9001\"; wieght = 2; } ); } );\n",
                 5, "unknown key 'wieght' in backend #1 of pool 'app' (did you mean 'weight'?)");
    expect_error(OK_CONFIG "alerts = { hooks = [ \"/bin/x\" ]; };\n", 6,
                 "unknown key 'hooks' in alerts (did you mean 'hook'?)");
    expect_error(OK_CONFIG
                 "admin = { tokens = ( { name = \"a\"; token = \"b\"; level = \"read\"; } ); };\n",
                 6, "unknown key 'level' in token #1 of admin");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("workers = \"4\";\n" OK_CONFIG, 1,
                 "'workers' in the top level must be an integer, not a string");
    expect_error("timeouts = \"5s\";\n" OK_BODY, 1, "'timeouts' in the top level must be a group");
    expect_error("log_level = 3;\n" OK_CONFIG, 1, "'log_level' in the top level must be a string");
    expect_error(
        TIMEOUTS
        "frontends = { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; };\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "must be a list of groups ( { ... }, { ... } ), not a single group");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\"; backends = ( { address = "
                          "\"127.0.0.1:9001\"; backup = 1; } ); } );\n",
                 4, "'backup' in backend #1 of pool 'app' must be true or false, not an integer");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\"; health = { rise = \"2\"; };\n"
                          "  backends = ( \"127.0.0.1:9001\" ); } );\n",
                 4, "'rise' in health of pool 'app' must be an integer, not a string");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\";\n"
                          "  backends = ( \"127.0.0.1:9001\" ); } );\n",
                 5, "element 1 of 'backends' in pool 'app' must be a group { ... }, not a string");
    expect_error(OK_CONFIG "alerts = { hook = \"/bin/alert\"; };\n", 6,
                 "'hook' in alerts must be an array of strings");
    expect_error(OK_CONFIG "alerts = { hook = ( \"/bin/alert\", 5 ); };\n", 6,
                 "element 2 of 'hook' in alerts must be a string, not an integer");
    expect_error("limits = { max_headers = 1.5; };\n" OK_CONFIG, 1,
                 "must be an integer, not a number with a fraction");
    expect_error(OK_CONFIG "admin = { listen = 9900; };\n", 6,
                 "'listen' in admin must be a string");
}

static void test_bad_addresses(void **state)
{
    (void)state;
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\";\n"
        "  listen = \"www.example.com:80\"; default_pool = \"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "bad address 'www.example.com:80': host must be a numeric IP address");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\"; backends = (\n"
                          "  { address = \"127.0.0.1:9001\"; },\n"
                          "  { address = \"127.0.0.1:70000\"; } ); } );\n",
                 6, "bad address '127.0.0.1:70000': bad port '70000'");
    expect_error(OK_CONFIG "admin = { listen = \"::1:9900\"; };\n", 6,
                 "bad address '::1:9900': IPv6 addresses need brackets");
    expect_error(OK_CONFIG "admin = { listen = \"unix:relative.sock\"; };\n", 6,
                 "bad address 'unix:relative.sock': unix socket path must be absolute");
}

static void test_bad_durations(void **state)
{
    (void)state;
    expect_error("timeouts = { connect = 4; };\n" OK_BODY, 1,
                 "'connect' in timeouts: duration needs a unit");
    expect_error("timeouts = { server = \"30\"; };\n" OK_BODY, 1,
                 "bad duration '30' for 'server' in timeouts: duration needs a unit");
    expect_error("timeouts = {\n  queue = \"10 s\"; };\n" OK_BODY, 2,
                 "bad duration '10 s' for 'queue' in timeouts");
    expect_error("timeouts = { client = \"1.5s\"; };\n" OK_BODY, 1, "fractions are not allowed");
    expect_error("timeouts = { client = \"2d\"; };\n" OK_BODY, 1, "unknown unit");
    expect_error("timeouts = { connect = \"0ms\"; };\n" OK_BODY, 1,
                 "'connect' in timeouts is 0ms, out of range 1ms..24h");
    expect_error("timeouts = { grace = \"25h\"; };\n" OK_BODY, 1, "out of range 0ms..24h");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; health = { interval = \"50ms\"; timeout = \"10ms\"; };\n"
        "  backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "'interval' in health of pool 'app' is 50ms, out of range 100ms..24h");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 0; default_pool = "
        "\"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "'maxconn' in frontend 'web' is 0, out of range 1..1000000");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; retries = 11;\n"
        "  backends = ( { address = \"127.0.0.1:9001\"; weight = 257; maxconn = -1; } ); } );\n",
        4, "'retries' in pool 'app' is 11, out of range 0..10");
    expect_error(TIMEOUTS
                 "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = "
                 "\"app\"; } );\n"
                 "pools = ( { name = \"app\";\n"
                 "  backends = ( { address = \"127.0.0.1:9001\"; weight = 257; } ); } );\n",
                 5, "'weight' in backend #1 of pool 'app' is 257, out of range 0..256");
    /* 2^32 + 1: libconfig alone would truncate it to 1 */
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 4294967297;\n"
        "  default_pool = \"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "is 4294967297, out of range 1..1000000");
    expect_error("limits = { max_headers = 0x100000000; };\n" OK_CONFIG, 1,
                 "is 4294967296, out of range");
    expect_error("limits = {\n max_body_size = 99999999999999999999; };\n" OK_CONFIG, 2,
                 "integer '99999999999999999999' is too large");
    expect_error("limits = { max_body_size = \"10x\"; };\n" OK_CONFIG, 1,
                 "bad size '10x' for 'max_body_size' in limits");
    expect_error("limits = { max_body_size = -5; };\n" OK_CONFIG, 1, "out of range");
    expect_error("log_level = \"verbose\";\n" OK_CONFIG, 1,
                 "bad value 'verbose' for 'log_level' in the top level: expected error, warn, info "
                 "or debug");
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; },\n"
        "              { name = \"web\"; listen = \"127.0.0.1:8081\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "duplicate frontend name 'web' (first defined on line 3)");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; },\n"
        "              { name = \"web2\"; listen = \"localhost:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "duplicate listen address 'localhost:8080': frontend 'web' on line 3");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:9900\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n"
        "admin = { listen = \"127.0.0.1:9900\"; };\n",
        3, "duplicate listen address '127.0.0.1:9900': the admin listener on line 5");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); },\n"
        "          {\n"
        "            name = \"app\"; backends = ( { address = \"127.0.0.1:9002\"; } ); } );\n",
        6, "duplicate pool name 'app' (first defined on line 4)");
    expect_error(TIMEOUTS
                 "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = "
                 "\"app\"; } );\n"
                 "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; },\n"
                 "   { address = \"127.0.0.1:9001\"; weight = 2; } ); } );\n",
                 5,
                 "duplicate backend address '127.0.0.1:9001' in pool 'app' (same as "
                 "'127.0.0.1:9001' on line 4)");
    expect_error(OK_CONFIG "admin = { tokens = ( { name = \"a\"; token = \"x\"; },\n"
                           "                        { name = \"a\"; token = \"y\"; } ); };\n",
                 7, "duplicate token name 'a'");
    expect_error(OK_CONFIG "alerts = { events = [ \"pool_empty\", \"pool_empty\" ]; };\n", 6,
                 "event 'pool_empty' is listed twice");
}

static void test_unknown_pool(void **state)
{
    (void)state;
    /* the route's line, not the line of its "pool" key */
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  routes = ( { host = \"a.example\";\n"
        "               pool = \"apii\"; } );\n"
        "  default_pool = \"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); },\n"
        "          { name = \"api\"; backends = ( { address = \"127.0.0.1:9002\"; } ); } );\n",
        4, "unknown pool 'apii' in route #1 of frontend 'web' (did you mean 'api'?)");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  default_pool = \"nothing\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "unknown pool 'nothing' in frontend 'web'");
    /* pools written after frontends are still known */
    struct sg_cfg *cfg =
        expect_clean("frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                     "maxconn = 100; default_pool = \"app\"; } );\n"
                     "pools = ( { name = \"app\"; backends = ( { address = "
                     "\"127.0.0.1:9001\"; } ); } );\n" TIMEOUTS);
    assert_int_equal(cfg->frontends[0].default_pool_index, 0);
    sg_cfg_free(cfg);
}

static void test_structure(void **state)
{
    (void)state;
    expect_error(
        TIMEOUTS
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        0, "at least one frontend is required");
    expect_error(
        TIMEOUTS
        "frontends = ();\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "'frontends' is empty");
    expect_error(
        TIMEOUTS
        "frontends = ( { listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "frontend #1 is missing the required key 'name'");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        3, "frontend 'web' has no routes and no default_pool");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\"; } );\n",
                 4, "pool 'app' has no backends");
    expect_error(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                          "default_pool = \"app\"; } );\n"
                          "pools = ( { name = \"app\"; backends = (); } );\n",
                 4, "pool 'app' has no backends");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"my app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "bad name 'my app'");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  routes = ( { path_prefix = \"api\"; pool = \"app\"; } ); } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "'path_prefix' in route #1 of frontend 'web' must start with '/'");
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  routes = ( { path_prefix = \"/api\"; } ); } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
        4, "route #1 of frontend 'web' is missing the required key 'pool'");
    expect_error(OK_CONFIG "@include \"other.conf\"\n", 6, "@include is not supported");
}

#define POOL_WITH(health_or_autoscale)                                                            \
    TIMEOUTS                                                                                      \
    "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } );\n" \
    "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } "                 \
    ");\n" health_or_autoscale " } );\n"

static void test_health(void **state)
{
    (void)state;
    expect_error(POOL_WITH("health = { type = \"udp\"; };"), 5,
                 "bad value 'udp' for 'type' in health of pool 'app': expected http or tcp");
    expect_error(POOL_WITH("health = { expect_status = \"200-399;404\"; };"), 5,
                 "bad status list '200-399;404' for 'expect_status' in health of pool 'app'");
    expect_error(POOL_WITH("health = { expect_status = \"399-200\"; };"), 5, "low to high");
    expect_error(POOL_WITH("health = { path = \"healthz\"; };"), 5, "must start with '/'");
    expect_error(POOL_WITH("health = { path = \"/a b\"; };"), 5, "must not contain spaces");
    expect_error(POOL_WITH("health = { method = \"get\"; };"), 5, "bad HTTP method 'get'");
    expect_error(POOL_WITH("health = { host = \"a b\"; };"), 5, "bad host 'a b'");
    expect_error(POOL_WITH("health = { host = \"\"; };"), 5, "must not be empty");
    expect_error(POOL_WITH("health = {\n interval = \"1s\";\n timeout = \"2s\"; };"), 7,
                 "health timeout 2s of pool 'app' is longer than its interval 1s");
    expect_error(POOL_WITH("health = { rise = 0; };"), 5,
                 "'rise' in health of pool 'app' is 0, out of range 1..1000");
    expect_error(POOL_WITH("health = { enabled = \"no\"; };"), 5, "'enabled'");

    /* on by default, with or without a group; off only when asked */
#define SMALL_POOL_WITH(health)                                                    \
    TIMEOUTS                                                                       \
    "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 100; " \
    "default_pool = \"app\"; } );\n"                                               \
    "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } "  \
    ");\n" health " } );\n"
    struct sg_cfg *cfg = expect_clean(SMALL_POOL_WITH("health = { path = \"/h\"; };"));
    assert_true(cfg->pools[0].health.enabled);
    sg_cfg_free(cfg);
    cfg = expect_clean(SMALL_POOL_WITH("health = { enabled = true; };"));
    assert_true(cfg->pools[0].health.enabled);
    sg_cfg_free(cfg);
    cfg = expect_clean(SMALL_POOL_WITH("health = { enabled = false; };"));
    assert_false(cfg->pools[0].health.enabled);
    sg_cfg_free(cfg);
    /* off: its other settings are not checked against each other */
    cfg = expect_clean(SMALL_POOL_WITH("health = { enabled = false; interval = \"1s\"; "
                                       "timeout = \"2s\"; };"));
    assert_false(cfg->pools[0].health.enabled);
    sg_cfg_free(cfg);
#undef SMALL_POOL_WITH
}

static void test_autoscale(void **state)
{
    (void)state;
    /* an empty pool is fine when autoscale may start it from zero */
    struct sg_cfg *cfg = expect_clean(
        TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = "
                 "\"app\"; maxconn = 10; } );\n"
                 "pools = ( { name = \"app\"; autoscale = { min = 0; max = 4;\n"
                 "  rules = ( { metric = \"queue_depth\"; above = 5; } );\n"
                 "  scale_up_hook = [ \"/etc/surgegate/hooks/local-spawn\" ]; }; } );\n");
    assert_int_equal(cfg->pools[0].nbackends, 0);
    sg_cfg_free(cfg);
    expect_error(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; default_pool = \"app\"; } "
        ");\n"
        "pools = ( { name = \"app\"; autoscale = { min = 1; max = 4;\n"
        "  rules = ( { metric = \"queue_depth\"; above = 5; } ); dry_run = true; }; } );\n",
        4, "pool 'app' has no backends");

#define AS(body) POOL_WITH("autoscale = {\n" body " };")
    expect_error(AS("min = 5; max = 2; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = 5; } );"),
                 6, "autoscale min (5) is greater than max (2) in pool 'app'");
    expect_error(AS("min = 1; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = 5; } );"),
                 5, "autoscale of pool 'app' is missing the required key 'max'");
    expect_error(AS("max = 3; dry_run = true;"), 5, "has no rules");
    expect_error(AS("max = 3;\nrules = ( { metric = \"queue_depth\"; above = 5; } );"), 5,
                 "has no scale_up_hook or scale_down_hook");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"cpu\"; above = 5; } );"),
                 7, "bad value 'cpu' for 'metric' in rule #1 of autoscale of pool 'app'");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = 5; below = 1; } );"),
                 7,
                 "rule #1 of autoscale of pool 'app' needs exactly one of 'above', 'below' or "
                 "'target' (it has 2)");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; for = \"10s\"; } );"),
                 7, "needs exactly one of 'above', 'below' or 'target' (it has 0)");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = \"5\"; } );"),
                 7, "'above' in rule #1 of autoscale of pool 'app' must be a number, not a string");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = -1.0; } );"),
                 7, "must be a number >= 0");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"utilization\"; target = 60; } );"),
                 7, "utilization is a fraction from 0 to 1, got 60");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; target = 0; } );"),
                 7, "'target' must be greater than 0");
    expect_error(AS("max = 3; dry_run = true;\n"
                    "rules = ( { metric = \"queue_depth\"; above = 5; for = 30; } );"),
                 7, "duration needs a unit");
    expect_error(
        AS("max = 3; rules = ( { metric = \"queue_depth\"; above = 5; } );\n"
           "scale_up_hook = [ \"aws\", \"asg\" ];"),
        7,
        "'scale_up_hook' in autoscale of pool 'app' must start with the program's absolute path");
    expect_error(AS("max = 3; rules = ( { metric = \"queue_depth\"; above = 5; } );\n"
                    "scale_down_hook = [ ];"),
                 7, "'scale_down_hook' in autoscale of pool 'app' is empty");
#undef AS
}

static void test_alerts(void **state)
{
    struct sg_cfg *cfg;
    size_t n = 0;
    (void)state;
    /* no "events": every event */
    cfg = expect_clean(OK_CONFIG "alerts = { hook = [ \"/bin/alert\" ]; };\n");
    while (cfg->alerts.events[n] != NULL)
        n++;
    assert_int_equal(n, 7);
    assert_string_equal(cfg->alerts.events[0], "backend_down");
    assert_string_equal(cfg->alerts.events[6], "hook_failed");
    sg_cfg_free(cfg);
    expect_error(OK_CONFIG "alerts = { events = [ ]; };\n", 6, "'events' in alerts is empty");
    expect_error(OK_CONFIG "alerts = { events = [ \"backend_dwn\" ]; };\n", 6,
                 "unknown event 'backend_dwn' in alerts (did you mean 'backend_down'?)");
    expect_error(OK_CONFIG "alerts = { events = [ \"everything\" ]; };\n", 6,
                 "unknown event 'everything' in alerts: expected backend_down");
    expect_error(OK_CONFIG "alerts = { hook = [ \"notify-send\" ]; };\n", 6, "absolute path");
}

/* A valid config whose pool gets `body` from line 5 on (frontend maxconn low
 * enough for the RLIMIT_NOFILE check of the tests). */
#define POOL_OK(body)                                                                      \
    TIMEOUTS                                                                               \
    "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 10; "          \
    "default_pool = \"app\"; } );\n"                                                       \
    "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } );\n" body \
    " } );\n"

static void test_hash_key(void **state)
{
    static const char *const good[] = {
        "source",         "uri",          "header:X-User",           "header:x-forwarded-for",
        "cookie:session", "cookie:SID_2", "header:A!#$%&'*+-.^_`|~9"};
    (void)state;
    for (size_t i = 0; i < SG_ARRAY_SIZE(good); i++) {
        char text[1024];
        struct sg_cfg *cfg;
        snprintf(text, sizeof(text), POOL_OK("hash_key = \"%s\";"), good[i]);
        cfg = expect_clean(text);
        assert_string_equal(cfg->pools[0].hash_key, good[i]);
        sg_cfg_free(cfg);
    }
    expect_error(POOL_OK("hash_key = \"client\";"), 5,
                 "bad value 'client' for 'hash_key' in pool 'app': expected \"source\", \"uri\", "
                 "\"header:NAME\" or \"cookie:NAME\"");
    expect_error(POOL_OK("balance = \"hash\";\nhash_key = \"header:\";"), 6,
                 "bad value 'header:' for 'hash_key' in pool 'app': the header name is empty");
    expect_error(POOL_OK("hash_key = \"cookie:\";"), 5, "the cookie name is empty");
    expect_error(POOL_OK("hash_key = \"header:X User\";"), 5,
                 "'X User' is not a valid header name");
    expect_error(POOL_OK("hash_key = \"header:X:Y\";"), 5, "'X:Y' is not a valid header name");
    expect_error(POOL_OK("hash_key = \"cookie:a=b\";"), 5, "'a=b' is not a valid cookie name");
    expect_error(POOL_OK("hash_key = \"cookie:a;b\";"), 5, "not a valid cookie name");
    expect_error(POOL_OK("hash_key = \"Header:X\";"), 5, "bad value 'Header:X' for 'hash_key'");
    expect_error(POOL_OK("hash_key = \"URI\";"), 5, "bad value 'URI' for 'hash_key'");
    expect_error(POOL_OK("hash_key = \"\";"), 5, "'hash_key' in pool 'app' must not be empty");
    expect_error(POOL_OK("hash_key = 1;"), 5, "'hash_key' in pool 'app' must be a string");
}

static void test_hash_balance_factor(void **state)
{
    static const struct {
        const char *text;
        double want;
    } good[] = {{"0", 0.0},     {"0.0", 0.0},   {"1", 1.0},     {"1.0", 1.0},
                {"1.25", 1.25}, {"2", 2.0},     {"100", 100.0}, {"100.0", 100.0},
                {"1.5", 1.5},   {"99.9", 99.9}, {"1e1", 10.0}};
    static const char *const bad[] = {"0.5", "0.99", "-1", "-0.5", "100.5", "101", "1e9"};
    (void)state;
    for (size_t i = 0; i < SG_ARRAY_SIZE(good); i++) {
        char text[1024];
        struct sg_cfg *cfg;
        snprintf(text, sizeof(text), POOL_OK("hash_balance_factor = %s;"), good[i].text);
        cfg = expect_clean(text);
        if (cfg->pools[0].hash_balance_factor != good[i].want)
            fail_msg("hash_balance_factor = %s loaded as %g", good[i].text,
                     cfg->pools[0].hash_balance_factor);
        sg_cfg_free(cfg);
    }
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        char text[1024];
        snprintf(text, sizeof(text), POOL_OK("\nhash_balance_factor = %s;"), bad[i]);
        expect_error(text, 6, "'hash_balance_factor' in pool 'app' is ");
        expect_error(text, 6, "expected 0 (unbounded) or a factor from 1.0 to 100.0");
    }
    expect_error(POOL_OK("hash_balance_factor = 0.5;"), 5,
                 "'hash_balance_factor' in pool 'app' is 0.5: expected 0 (unbounded)");
    expect_error(POOL_OK("hash_balance_factor = \"1.25\";"), 5,
                 "'hash_balance_factor' in pool 'app' must be a number, not a string");
    expect_error(POOL_OK("hash_balance_factor = true;"), 5, "must be a number, not a boolean");
}

static void test_slowstart(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    cfg = expect_clean(POOL_OK("slowstart = \"30s\";"));
    assert_int_equal(cfg->pools[0].slowstart_ms, 30000);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("slowstart = \"1h\";"));
    assert_int_equal(cfg->pools[0].slowstart_ms, 3600000);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("slowstart = \"0s\";"));
    assert_int_equal(cfg->pools[0].slowstart_ms, 0);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("slowstart = \"250ms\";"));
    assert_int_equal(cfg->pools[0].slowstart_ms, 250);
    sg_cfg_free(cfg);
    expect_error(POOL_OK("slowstart = \"61m\";"), 5,
                 "'slowstart' in pool 'app' is 61m, out of range 0ms..1h");
    expect_error(POOL_OK("slowstart = \"3601s\";"), 5, "out of range 0ms..1h");
    expect_error(POOL_OK("slowstart = 30;"), 5,
                 "'slowstart' in pool 'app': duration needs a unit, e.g. \"30s\"");
    expect_error(POOL_OK("slowstart = \"1.5s\";"), 5,
                 "bad duration '1.5s' for 'slowstart' in pool 'app': fractions are not allowed");
}

static void test_retry_budget(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    cfg = expect_clean(POOL_OK("retry_budget = {\n percent = 50.5;\n min_retries = 0; };"));
    assert_true(cfg->pools[0].retry_budget.percent == 50.5);
    assert_int_equal(cfg->pools[0].retry_budget.min_retries, 0);
    assert_int_equal(cfg->pools[0].retry_budget.line, 5);
    sg_cfg_free(cfg);
    /* an integer percent; a group with one key keeps the other's default */
    cfg = expect_clean(POOL_OK("retry_budget = { percent = 100; };"));
    assert_true(cfg->pools[0].retry_budget.percent == 100.0);
    assert_int_equal(cfg->pools[0].retry_budget.min_retries, 3);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("retry_budget = { percent = 0; min_retries = 10000; };"));
    assert_true(cfg->pools[0].retry_budget.percent == 0.0);
    assert_int_equal(cfg->pools[0].retry_budget.min_retries, 10000);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("retry_budget = { min_retries = 7; };"));
    assert_true(cfg->pools[0].retry_budget.percent == 20.0);
    assert_int_equal(cfg->pools[0].retry_budget.min_retries, 7);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("retry_budget = { };"));
    assert_true(cfg->pools[0].retry_budget.percent == 20.0);
    assert_int_equal(cfg->pools[0].retry_budget.min_retries, 3);
    sg_cfg_free(cfg);

    expect_error(POOL_OK("retry_budget = {\n percent = 150; };"), 6,
                 "'percent' in retry_budget of pool 'app' is 150, out of range 0..100");
    expect_error(POOL_OK("retry_budget = { percent = 100.5; };"), 5,
                 "'percent' in retry_budget of pool 'app' is 100.5, out of range 0..100");
    expect_error(POOL_OK("retry_budget = { percent = -1.0; };"), 5, "is -1, out of range 0..100");
    expect_error(POOL_OK("retry_budget = { percent = \"20%\"; };"), 5,
                 "'percent' in retry_budget of pool 'app' must be a number, not a string");
    expect_error(POOL_OK("retry_budget = { min_retries = 10001; };"), 5,
                 "'min_retries' in retry_budget of pool 'app' is 10001, out of range 0..10000");
    expect_error(POOL_OK("retry_budget = { min_retries = 1.5; };"), 5,
                 "'min_retries' in retry_budget of pool 'app' must be an integer");
    expect_error(POOL_OK("retry_budget = {\n  precent = 10; };"), 6,
                 "unknown key 'precent' in retry_budget of pool 'app' (did you mean 'percent'?)");
    expect_error(POOL_OK("retry_budget = 20;"), 5,
                 "'retry_budget' in pool 'app' must be a group { ... }, not an integer");
    expect_error(OK_CONFIG "retry_budget = { percent = 10; };\n", 6,
                 "unknown key 'retry_budget' in the top level ('retry_budget' belongs in a pool)");
}

static void test_outlier(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    cfg = expect_clean(POOL_OK("outlier = { consecutive_errors = 3;\n"
                               "  base_ejection = \"10s\"; max_ejection = \"24h\";\n"
                               "  max_ejection_percent = 100; };"));
    assert_int_equal(cfg->pools[0].outlier.consecutive_errors, 3);
    assert_int_equal(cfg->pools[0].outlier.base_ejection_ms, 10000);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_ms, 86400000);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_percent, 100);
    assert_int_equal(cfg->pools[0].outlier.line, 5);
    sg_cfg_free(cfg);
    /* 0 = off; the lowest durations; max_ejection == base_ejection */
    cfg = expect_clean(POOL_OK("outlier = { consecutive_errors = 0; base_ejection = \"100ms\";\n"
                               "  max_ejection = \"100ms\"; max_ejection_percent = 0; };"));
    assert_int_equal(cfg->pools[0].outlier.consecutive_errors, 0);
    assert_int_equal(cfg->pools[0].outlier.base_ejection_ms, 100);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_ms, 100);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_percent, 0);
    sg_cfg_free(cfg);
    /* keys not written keep their defaults */
    cfg = expect_clean(POOL_OK("outlier = { consecutive_errors = 1000; base_ejection = \"1h\"; "
                               "max_ejection = \"2h\"; };"));
    assert_int_equal(cfg->pools[0].outlier.consecutive_errors, 1000);
    assert_int_equal(cfg->pools[0].outlier.base_ejection_ms, 3600000);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_ms, 7200000);
    assert_int_equal(cfg->pools[0].outlier.max_ejection_percent, 50);
    sg_cfg_free(cfg);

    expect_error(POOL_OK("outlier = {\n  base_ejection = \"1m\";\n  max_ejection = \"30s\"; };"), 7,
                 "outlier max_ejection 30s of pool 'app' is shorter than its base_ejection 1m");
    /* the default max_ejection (5m) below a written base_ejection: on its line */
    expect_error(POOL_OK("outlier = {\n  base_ejection = \"1h\"; };"), 6,
                 "outlier max_ejection 5m (the default) of pool 'app' is shorter than its "
                 "base_ejection 1h");
    expect_error(POOL_OK("outlier = {\n  max_ejection = \"10s\"; };"), 6,
                 "outlier max_ejection 10s of pool 'app' is shorter than its base_ejection 30s");
    expect_error(POOL_OK("outlier = { consecutive_errors = 1001; };"), 5,
                 "'consecutive_errors' in outlier of pool 'app' is 1001, out of range 0..1000");
    expect_error(POOL_OK("outlier = { consecutive_errors = -1; };"), 5, "out of range 0..1000");
    expect_error(POOL_OK("outlier = { max_ejection_percent = 101; };"), 5,
                 "'max_ejection_percent' in outlier of pool 'app' is 101, out of range 0..100");
    expect_error(POOL_OK("outlier = { base_ejection = \"50ms\"; };"), 5,
                 "'base_ejection' in outlier of pool 'app' is 50ms, out of range 100ms..1h");
    expect_error(POOL_OK("outlier = { base_ejection = \"2h\"; max_ejection = \"3h\"; };"), 5,
                 "'base_ejection' in outlier of pool 'app' is 2h, out of range 100ms..1h");
    expect_error(POOL_OK("outlier = { max_ejection = \"25h\"; };"), 5,
                 "'max_ejection' in outlier of pool 'app' is 25h, out of range 100ms..24h");
    expect_error(POOL_OK("outlier = { max_ejection = \"99ms\"; };"), 5, "out of range 100ms..24h");
    expect_error(POOL_OK("outlier = { base_ejection = 30; };"), 5, "duration needs a unit");
    expect_error(POOL_OK("outlier = {\n  interval = \"5s\"; };"), 6,
                 "unknown key 'interval' in outlier of pool 'app' ('interval' belongs in health or "
                 "queue or discover)");
    expect_error(POOL_OK("outlier = {\n  consecutive_5xx = 5; };"), 6,
                 "unknown key 'consecutive_5xx' in outlier of pool 'app'");
    expect_error(POOL_OK("outlier = { max_ejections = \"1m\"; };"), 5,
                 "unknown key 'max_ejections' in outlier of pool 'app' (did you mean "
                 "'max_ejection'?)");
    expect_error(POOL_OK("outlier = ( );"), 5, "'outlier' in pool 'app' must be a group");

    /* a bad max_ejection is reported once, not compared with base_ejection */
    struct sg_cfg_diags d;
    assert_null(load(POOL_OK("outlier = { base_ejection = \"1h\"; max_ejection = \"5x\"; };"), &d));
    assert_int_equal(d.nerrors, 1);
    assert_true(has_diag(&d, SG_CFG_ERROR, 5, "bad duration '5x' for 'max_ejection'"));
    sg_cfg_diags_free(&d);
}

static void test_health_intervals(void **state)
{
    static const struct {
        const char *interval;
        uint32_t interval_ms, fast_ms, down_ms;
    } derived[] = {
        {"500ms", 500, 250, 1000},
        {"2s", 2000, 1000, 4000},
        {"100ms", 100, 100, 200},
        {"199ms", 199, 100, 398},
        {"201ms", 201, 100, 402},
        {"1s", 1000, 500, 2000},
        {"13h", 46800000, 23400000, 86400000},
        {"24h", 86400000, 43200000, 86400000},
    };
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;

    for (size_t i = 0; i < SG_ARRAY_SIZE(derived); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 POOL_OK("health = { interval = \"%s\"; timeout = \"50ms\"; };"),
                 derived[i].interval);
        cfg = expect_clean(text);
        const struct sg_cfg_health *h = &cfg->pools[0].health;
        assert_int_equal(h->interval_ms, derived[i].interval_ms);
        if (h->fast_interval_ms != derived[i].fast_ms || h->down_interval_ms != derived[i].down_ms)
            fail_msg("interval %s: fast %u down %u, want %u %u", derived[i].interval,
                     h->fast_interval_ms, h->down_interval_ms, derived[i].fast_ms,
                     derived[i].down_ms);
        sg_cfg_free(cfg);
    }
    /* written values win; the other one is still derived */
    cfg = expect_clean(POOL_OK(
        "health = { interval = \"4s\"; fast_interval = \"100ms\"; down_interval = \"24h\"; };"));
    assert_int_equal(cfg->pools[0].health.fast_interval_ms, 100);
    assert_int_equal(cfg->pools[0].health.down_interval_ms, 86400000);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("health = { interval = \"4s\"; down_interval = \"1s\"; };"));
    assert_int_equal(cfg->pools[0].health.fast_interval_ms, 2000);
    assert_int_equal(cfg->pools[0].health.down_interval_ms, 1000);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("health = { fast_interval = \"2s\"; };")); /* == interval */
    assert_int_equal(cfg->pools[0].health.fast_interval_ms, 2000);
    assert_int_equal(cfg->pools[0].health.down_interval_ms, 4000);
    sg_cfg_free(cfg);

    /* a fast interval longer than the interval: a warning on its line */
    cfg = load(POOL_OK("health = { interval = \"1s\";\n  fast_interval = \"3s\"; };"), &d);
    if (cfg == NULL || d.n != 1)
        dump(&d);
    assert_non_null(cfg);
    assert_int_equal(d.nerrors, 0);
    assert_int_equal(d.nwarnings, 1);
    assert_true(has_diag(&d, SG_CFG_WARNING, 6,
                         "health fast_interval 3s of pool 'app' is longer than its interval 1s"));
    assert_int_equal(cfg->pools[0].health.fast_interval_ms, 3000);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    expect_error(POOL_OK("health = {\n  fast_interval = \"10ms\"; };"), 6,
                 "'fast_interval' in health of pool 'app' is 10ms, out of range 100ms..24h");
    expect_error(POOL_OK("health = { fast_interval = \"2d\"; };"), 5,
                 "bad duration '2d' for 'fast_interval' in health of pool 'app'");
    expect_error(POOL_OK("health = { fast_interval = \"25h\"; };"), 5, "out of range 100ms..24h");
    expect_error(POOL_OK("health = { down_interval = \"99ms\"; };"), 5,
                 "'down_interval' in health of pool 'app' is 99ms, out of range 100ms..24h");
    expect_error(POOL_OK("health = { down_interval = \"25h\"; };"), 5, "out of range 100ms..24h");
    expect_error(POOL_OK("health = { down_interval = 5; };"), 5, "duration needs a unit");
    expect_error(POOL_OK("health = { fastinter = \"1s\"; };"), 5,
                 "unknown key 'fastinter' in health of pool 'app'");
}

static void test_health_expect(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    cfg = expect_clean(POOL_OK("health = { expect_status = \"200\"; };"));
    assert_int_equal(cfg->pools[0].health.nexpect, 1);
    assert_int_equal(cfg->pools[0].health.expect[0].lo, 200);
    assert_int_equal(cfg->pools[0].health.expect[0].hi, 200);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("health = { expect_status = \"200-399\"; };"));
    assert_int_equal(cfg->pools[0].health.nexpect, 1);
    assert_int_equal(cfg->pools[0].health.expect[0].lo, 200);
    assert_int_equal(cfg->pools[0].health.expect[0].hi, 399);
    sg_cfg_free(cfg);
    cfg = expect_clean(POOL_OK("health = { expect_status = \"200,204,300-399\"; };"));
    const struct sg_cfg_health *h = &cfg->pools[0].health;
    assert_string_equal(h->expect_status, "200,204,300-399");
    assert_int_equal(h->nexpect, 3);
    assert_int_equal(h->expect[0].lo, 200);
    assert_int_equal(h->expect[0].hi, 200);
    assert_int_equal(h->expect[1].lo, 204);
    assert_int_equal(h->expect[1].hi, 204);
    assert_int_equal(h->expect[2].lo, 300);
    assert_int_equal(h->expect[2].hi, 399);
    assert_true(sg_cfg_status_in(h->expect, h->nexpect, 301));
    assert_false(sg_cfg_status_in(h->expect, h->nexpect, 201));
    sg_cfg_free(cfg);
    /* a health group without expect_status: the default */
    cfg = expect_clean(POOL_OK("health = { path = \"/h\"; };"));
    assert_int_equal(cfg->pools[0].health.nexpect, 1);
    assert_int_equal(cfg->pools[0].health.expect[0].lo, 200);
    assert_int_equal(cfg->pools[0].health.expect[0].hi, 399);
    sg_cfg_free(cfg);
    /* every pool gets its own */
    cfg = expect_clean(
        TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 10; "
                 "default_pool = \"a\"; } );\n"
                 "pools = ( { name = \"a\"; backends = ( { address = \"127.0.0.1:9001\"; } );\n"
                 "  health = { expect_status = \"204\"; }; },\n"
                 "  { name = \"b\"; backends = ( { address = \"127.0.0.1:9002\"; } ); } );\n");
    assert_int_equal(cfg->pools[0].health.expect[0].lo, 204);
    assert_int_equal(cfg->pools[1].health.expect[0].lo, 200);
    assert_int_equal(cfg->pools[1].health.expect[0].hi, 399);
    sg_cfg_free(cfg);

    expect_error(POOL_OK("health = {\n  expect_status = \"700\"; };"), 6,
                 "bad status list '700' for 'expect_status' in health of pool 'app': each item "
                 "must be a status 100..599");
    expect_error(POOL_OK("health = { expect_status = \"200,600\"; };"), 5, "100..599");
    expect_error(POOL_OK("health = { expect_status = 200; };"), 5,
                 "'expect_status' in health of pool 'app' must be a string");
}

/* Every new key at once, each on its line, with the right values. */
static void test_pool_new_keys_full(void **state)
{
    struct sg_cfg *cfg;
    (void)state;
    cfg = expect_clean(POOL_OK("balance = \"hash\"; hash_key = \"cookie:sid\";\n" /* 5 */
                               "hash_balance_factor = 1.5; slowstart = \"2m\";\n" /* 6 */
                               "retry_budget = { percent = 25.0; min_retries = 5; };\n"
                               "outlier = { consecutive_errors = 7; base_ejection = \"15s\";\n"
                               "  max_ejection = \"10m\"; max_ejection_percent = 30; };\n"
                               "health = { interval = \"3s\"; fast_interval = \"1s\";\n"
                               "  down_interval = \"10s\"; expect_status = \"204\"; };"));
    const struct sg_cfg_pool *p = &cfg->pools[0];
    assert_string_equal(p->balance, "hash");
    assert_string_equal(p->hash_key, "cookie:sid");
    assert_true(p->hash_balance_factor == 1.5);
    assert_int_equal(p->slowstart_ms, 120000);
    assert_true(p->retry_budget.percent == 25.0);
    assert_int_equal(p->retry_budget.min_retries, 5);
    assert_int_equal(p->retry_budget.line, 7);
    assert_int_equal(p->outlier.consecutive_errors, 7);
    assert_int_equal(p->outlier.base_ejection_ms, 15000);
    assert_int_equal(p->outlier.max_ejection_ms, 600000);
    assert_int_equal(p->outlier.max_ejection_percent, 30);
    assert_int_equal(p->outlier.line, 8);
    assert_int_equal(p->health.fast_interval_ms, 1000);
    assert_int_equal(p->health.down_interval_ms, 10000);
    assert_int_equal(p->health.nexpect, 1);
    assert_int_equal(p->health.expect[0].lo, 204);
    sg_cfg_free(cfg);

    /* and every new error in one pass, each on its line */
    struct sg_cfg_diags d;
    cfg = load(POOL_OK("hash_key = \"body\";\n"                    /* 5 */
                       "hash_balance_factor = 0.5;\n"              /* 6 */
                       "slowstart = \"2h\";\n"                     /* 7 */
                       "retry_budget = { percent = 150; };\n"      /* 8 */
                       "outlier = { base_ejection = \"1m\";\n"     /* 9 */
                       "  max_ejection = \"30s\"; bogus = 1; };\n" /* 10 */
                       "health = { fast_interval = \"10ms\";\n"    /* 11 */
                       "  expect_status = \"700\"; };"),           /* 12 */
               &d);
    assert_null(cfg);
    assert_true(has_diag(&d, SG_CFG_ERROR, 5, "bad value 'body' for 'hash_key'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 6, "'hash_balance_factor' in pool 'app' is 0.5"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 7, "'slowstart' in pool 'app' is 2h"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 8, "'percent' in retry_budget of pool 'app' is 150"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 10, "outlier max_ejection 30s of pool 'app'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 10, "unknown key 'bogus' in outlier of pool 'app'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 11, "'fast_interval' in health of pool 'app' is 10ms"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 12, "bad status list '700'"));
    if (d.nerrors != 8)
        dump(&d);
    assert_int_equal(d.nerrors, 8);
    sg_cfg_diags_free(&d);
}

/* Every problem in one pass, each on its own line, in line order. */
static void test_all_errors_at_once(void **state)
{
    const char *text =
        "workers = 300;\n"                                                              /* 1 */
        "timeouts = { connect = 4; };\n"                                                /* 2 */
        "frontends = ( { name = \"web\"; listen = \"example.com:80\";\n"                /* 3 */
        "  routes = ( { pool = \"nope\"; } ); default_pool = \"app\"; },\n"             /* 4 */
        "  { name = \"web\"; listen = \"127.0.0.1:81\"; default_pool = \"app\"; } );\n" /* 5 */
        "pools = ( { name = \"app\"; balance = \"fastest\";\n"                          /* 6 */
        "  backends = ( { address = \"127.0.0.1:9001\"; weight = 999; } ); },\n"        /* 7 */
        "  { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n"  /* 8 */
        "colour = \"blue\";\n";                                                         /* 9 */
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;

    cfg = load(text, &d);
    assert_null(cfg);
    assert_true(has_diag(&d, SG_CFG_ERROR, 1, "'workers'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 2, "duration needs a unit"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 3, "bad address 'example.com:80'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 4, "unknown pool 'nope'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 5, "duplicate frontend name 'web'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 6, "bad value 'fastest'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 7, "'weight'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 8, "duplicate pool name 'app'"));
    assert_true(has_diag(&d, SG_CFG_ERROR, 9, "unknown key 'colour'"));
    if (d.nerrors != 9)
        dump(&d);
    assert_int_equal(d.nerrors, 9);
    assert_int_equal(d.nwarnings, 0); /* no lint on a config with errors */
    for (size_t i = 1; i < d.n; i++)
        assert_true(d.items[i - 1].line <= d.items[i].line);
    sg_cfg_diags_free(&d);
}

/* ---- warnings ---- */

static void test_warn_backend_capacity(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;
    need_nofile(500 + 550 + 64);

    cfg = load(
        TIMEOUTS
        "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
        "  maxconn = 500; default_pool = \"app\";\n"
        "  routes = ( { path_prefix = \"/api/\"; pool = \"api\"; } ); } );\n"
        "pools = ( { name = \"app\"; backends = (\n"
        "    { address = \"127.0.0.1:9001\"; maxconn = 100; },\n"
        "    { address = \"127.0.0.1:9002\"; maxconn = 100; },\n"
        "    { address = \"127.0.0.1:9003\"; maxconn = 0; backup = true; } ); },\n"
        "  { name = \"api\"; backends = ( { address = \"127.0.0.1:9101\"; maxconn = 50; } ); },\n"
        "  { name = \"unused\"; backends = ( { address = \"127.0.0.1:9201\"; maxconn = 1000; } ); "
        "} );\n",
        &d);
    assert_non_null(cfg);
    if (d.n != 1)
        dump(&d);
    assert_int_equal(d.n, 1);
    assert_true(has_diag(&d, SG_CFG_WARNING, 4, "frontend 'web' accepts 500 connections"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 4, "accept only 250 in total"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* an unlimited backend: total unknown, no warning */
    cfg = expect_clean(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                                "maxconn = 500; default_pool = \"app\"; } );\n"
                                "pools = ( { name = \"app\"; backends = ( { address = "
                                "\"127.0.0.1:9001\"; maxconn = 100; },\n"
                                "    { address = \"127.0.0.1:9002\"; } ); } );\n");
    sg_cfg_free(cfg);
    /* enough capacity: no warning */
    cfg = expect_clean(TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; "
                                "maxconn = 200; default_pool = \"app\"; } );\n"
                                "pools = ( { name = \"app\"; backends = ( { address = "
                                "\"127.0.0.1:9001\"; maxconn = 100; },\n"
                                "    { address = \"127.0.0.1:9002\"; maxconn = 100; } ); } );\n");
    sg_cfg_free(cfg);
}

static void test_warn_nofile(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    const char *text = TIMEOUTS "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
                                "  maxconn = 1000; default_pool = \"app\"; } );\n"
                                "pools = ( { name = \"app\"; backends = (\n"
                                "  { address = \"127.0.0.1:9001\"; maxconn = 300; },\n"
                                "  { address = \"127.0.0.1:9002\"; maxconn = 300; },\n"
                                "  { address = \"127.0.0.1:9003\"; maxconn = 400; } ); } );\n";
    (void)state;

    set_nofile(256);
    cfg = load(text, &d);
    set_nofile(TEST_NOFILE);
    assert_non_null(cfg);
    if (d.n != 1)
        dump(&d);
    assert_int_equal(d.n, 1);
    /* 1000 client + 1000 backend + 64 */
    assert_true(has_diag(&d, SG_CFG_WARNING, 4,
                         "open file limit (RLIMIT_NOFILE) is 256 but the configured connections "
                         "need up to 2064 file descriptors"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 4, "LimitNOFILE=2064"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 4, "ulimit -n 2064"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    need_nofile(2064);
    cfg = expect_clean(text);
    sg_cfg_free(cfg);

    /* unlimited backends count as the frontend maxconn, capped by it */
    set_nofile(256);
    cfg = load(TIMEOUTS
               "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 90;\n"
               "  default_pool = \"app\"; } );\n"
               "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; },\n"
               "  { address = \"127.0.0.1:9002\"; } ); } );\n",
               &d);
    set_nofile(TEST_NOFILE);
    assert_non_null(cfg);
    /* 90 client + min(90 + 90, 90) backend + 64 = 244 <= 256 */
    if (d.n != 0)
        dump(&d);
    assert_int_equal(d.n, 0);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
}

static void test_warn_queue_client(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;

    cfg =
        load("timeouts = { connect = \"4s\"; http_request = \"5s\"; client = \"30s\";\n"
             "  server = \"30s\";\n"
             "  queue = \"1m\"; keepalive = \"60s\"; };\n"
             "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 100; "
             "default_pool = \"app\"; } );\n"
             "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
             &d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 1);
    assert_true(has_diag(&d, SG_CFG_WARNING, 3,
                         "timeout 'queue' (1m) is longer than timeout 'client' (30s)"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
}

static void test_warn_missing_timeouts(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    (void)state;

    cfg = load(OK_CONFIG "\n", &d);
    assert_int_equal(d.n, 0);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    cfg =
        load("workers = 1;\n"
             "timeouts = { connect = \"4s\"; client = \"30s\"; queue = \"5s\"; };\n"
             "frontends = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; maxconn = 100; "
             "default_pool = \"app\"; } );\n"
             "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9001\"; } ); } );\n",
             &d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 2);
    assert_true(
        has_diag(&d, SG_CFG_WARNING, 2, "timeout 'http_request' not set, using default 5s"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 2, "timeout 'server' not set, using default 30s"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
}

/* ---- diagnostics, files ---- */

static void test_diags_print(void **state)
{
    struct sg_cfg_diags d;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;

    sg_cfg_diags_init(&d, "x.conf");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 12, "bad %s", "thing");
    sg_cfg_diag_add(&d, SG_CFG_WARNING, 3, "careful");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 0, "global");
    assert_int_equal(d.nerrors, 2);
    assert_int_equal(d.nwarnings, 1);
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    sg_cfg_diags_print(&d, f);
    fclose(f);
    assert_string_equal(buf, "x.conf:12: error: bad thing\n"
                             "x.conf:3: warning: careful\n"
                             "x.conf: error: global\n");
    free(buf);
    sg_cfg_diags_free(&d);

    /* many diags: the list grows */
    sg_cfg_diags_init(&d, "y.conf");
    for (int i = 0; i < 100; i++)
        sg_cfg_diag_add(&d, SG_CFG_WARNING, i, "w%d", i);
    assert_int_equal(d.n, 100);
    assert_string_equal(d.items[99].msg, "w99");
    sg_cfg_diags_free(&d);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/sg-test-cfg-XXXXXX";
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;
    int fd;
    (void)state;

    sg_cfg_diags_init(&d, "/nonexistent/surgegate.conf");
    assert_null(sg_cfg_load_file("/nonexistent/surgegate.conf", &d));
    assert_true(has_diag(&d, SG_CFG_ERROR, 0, "cannot open: No such file or directory"));
    sg_cfg_diags_free(&d);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, OK_CONFIG, strlen(OK_CONFIG)), (ssize_t)strlen(OK_CONFIG));
    close(fd);
    sg_cfg_diags_init(&d, path);
    cfg = sg_cfg_load_file(path, &d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 0);
    assert_string_equal(cfg->file, path);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* a file with a NUL byte is refused, not silently cut */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "workers = 1;\n\0x", 15), 15);
    close(fd);
    sg_cfg_diags_init(&d, path);
    assert_null(sg_cfg_load_file(path, &d));
    assert_true(has_diag(&d, SG_CFG_ERROR, 0, "NUL byte"));
    sg_cfg_diags_free(&d);
    unlink(path);

    /* a directory */
    sg_cfg_diags_init(&d, "/tmp");
    assert_null(sg_cfg_load_file("/tmp", &d));
    assert_int_equal(d.nerrors, 1);
    sg_cfg_diags_free(&d);

    /* diags not initialised by name: the loader names them */
    memset(&d, 0, sizeof(d));
    cfg = sg_cfg_load_string(OK_CONFIG, "<demo>", &d);
    assert_non_null(cfg);
    assert_string_equal(d.file, "<demo>");
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    sg_cfg_diags_init(&d, "<none>");
    assert_null(sg_cfg_load_string(NULL, "<none>", &d));
    assert_int_equal(d.nerrors, 1);
    sg_cfg_diags_free(&d);
    sg_cfg_free(NULL);
}

/* config/demo.conf with @HOOKS@ filled in as `surgegate --demo` does, with
 * the source tree's hooks/; owned by the caller. */
static char *demo_conf_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char raw[1 << 16];
    size_t n = fread(raw, 1, sizeof(raw) - 1, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof(raw) - 1);
    raw[n] = '\0';
    return sg_demo_conf_fill(raw, SG_SOURCE_DIR "/hooks");
}

/* The shipped configs load; the demo has no warning at all. */
static void test_shipped_configs(void **state)
{
    static const char *const files[] = {"demo.conf", "minimal.conf", "api-routing.conf",
                                        "surgegate.conf"};
    (void)state;
    for (size_t i = 0; i < SG_ARRAY_SIZE(files); i++) {
        char path[512];
        struct sg_cfg_diags d;
        struct sg_cfg *cfg;
        snprintf(path, sizeof(path), "%s/config/%s", SG_SOURCE_DIR, files[i]);
        sg_cfg_diags_init(&d, path);
        if (i == 0) {
            char *text = demo_conf_text(path);
            cfg = sg_cfg_load_string(text, path, &d);
            free(text);
        } else {
            cfg = sg_cfg_load_file(path, &d);
        }
        if (cfg == NULL || (i == 0 && d.n != 0))
            dump(&d);
        assert_non_null(cfg);
        if (i == 0) {
            assert_int_equal(d.n, 0);
            assert_int_equal(cfg->workers, 1);
            assert_string_equal(cfg->frontends[0].name, "demo");
            assert_string_equal(cfg->frontends[0].listen.text, "127.0.0.1:8080");
            assert_int_equal(cfg->pools[0].nbackends, 2);
            assert_string_equal(cfg->pools[0].health.path, "/healthz");
            assert_true(cfg->pools[0].autoscale.enabled);
            assert_int_equal(cfg->pools[0].autoscale.nrules, 2);
            assert_string_equal(cfg->pools[0].autoscale.scale_up_hook[0],
                                SG_SOURCE_DIR "/hooks/local-spawn");
        }
        sg_cfg_free(cfg);
        sg_cfg_diags_free(&d);
    }
}

/* ---- access_log, journal and the admin listener ---- */

/* Loads text, which must be valid; the caller frees both. */
static struct sg_cfg *load_ok(const char *text, struct sg_cfg_diags *d)
{
    struct sg_cfg *cfg = load(text, d);
    if (cfg == NULL)
        dump(d);
    assert_non_null(cfg);
    return cfg;
}

static size_t count_diags(const struct sg_cfg_diags *d, const char *substr)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += strstr(d->items[i].msg, substr) != NULL;
    return n;
}

static void test_access_log_journal(void **state)
{
    (void)state;
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;

    /* defaults: no access log, a journal of 10000 events in memory */
    cfg = load_ok(OK_CONFIG, &d);
    assert_null(cfg->access_log.path);
    assert_string_equal(cfg->access_log.format, "json");
    assert_int_equal(cfg->access_log.line, 0);
    assert_null(cfg->journal.path);
    assert_int_equal(cfg->journal.size, 10000);
    assert_int_equal(cfg->journal.line, 0);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* everything written; /tmp exists: no warning */
    cfg = load_ok(OK_CONFIG "access_log = { path = \"/tmp/sg-access.log\";\n" /* 6 */
                            "  format = \"combined\"; };\n"
                            "journal = {\n" /* 8 */
                            "  path = \"/tmp/sg-events.jsonl\"; size = 100; };\n",
                  &d);
    assert_string_equal(cfg->access_log.path, "/tmp/sg-access.log");
    assert_string_equal(cfg->access_log.format, "combined");
    assert_int_equal(cfg->access_log.line, 6);
    assert_string_equal(cfg->journal.path, "/tmp/sg-events.jsonl");
    assert_int_equal(cfg->journal.size, 100);
    assert_int_equal(cfg->journal.line, 8);
    assert_int_equal(count_diags(&d, "directory"), 0);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* "off"; a journal group without a path; a file at the root */
    cfg = load_ok(OK_CONFIG "access_log = { path = \"off\"; format = \"json\"; };\n"
                            "journal = { size = 1000000; };\n",
                  &d);
    assert_null(cfg->access_log.path);
    assert_string_equal(cfg->access_log.format, "json");
    assert_int_equal(cfg->access_log.line, 6);
    assert_null(cfg->journal.path);
    assert_int_equal(cfg->journal.size, 1000000);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);
    cfg = load_ok(OK_CONFIG "journal = { path = \"off\"; };\n"
                            "access_log = { path = \"/sg-access.log\"; };\n",
                  &d);
    assert_null(cfg->journal.path);
    assert_string_equal(cfg->access_log.path, "/sg-access.log");
    assert_int_equal(count_diags(&d, "directory"), 0);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* a missing directory, or one that is a file: warnings with the line */
    cfg = load_ok(OK_CONFIG "access_log = { path = \"/nonexistent-sg-dir/logs/access.log\"; };\n"
                            "journal = {\n"
                            "  path = \"" SG_SOURCE_DIR "/README.md/events.jsonl\"; };\n",
                  &d);
    assert_string_equal(cfg->access_log.path, "/nonexistent-sg-dir/logs/access.log");
    if (!has_diag(&d, SG_CFG_WARNING, 6,
                  "directory '/nonexistent-sg-dir/logs' of 'path' in access_log does not exist") ||
        !has_diag(&d, SG_CFG_WARNING, 8,
                  "README.md' (the directory of 'path' in journal) is not "
                  "a directory"))
        dump(&d);
    assert_true(has_diag(&d, SG_CFG_WARNING, 6,
                         "directory '/nonexistent-sg-dir/logs' of 'path' in access_log does not "
                         "exist"));
    assert_true(has_diag(&d, SG_CFG_WARNING, 8,
                         "README.md' (the directory of 'path' in journal) is not a directory"));
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    /* errors */
    expect_error(OK_CONFIG "access_log = { path = \"/tmp/a.log\"; format = \"clf\"; };\n", 6,
                 "bad value 'clf' for 'format' in access_log: expected json or combined");
    expect_error(OK_CONFIG "access_log = { path = \"/tmp/a.log\"; format = 1; };\n", 6,
                 "'format' in access_log must be a string");
    expect_error(OK_CONFIG "access_log = { format = \"json\"; };\n", 6,
                 "access_log is missing the required key 'path'");
    expect_error(OK_CONFIG "access_log = { path = \"var/log/a.log\"; };\n", 6,
                 "'path' in access_log must be an absolute path (or \"off\"), got "
                 "'var/log/a.log'");
    expect_error(OK_CONFIG "access_log = { path = \"\"; };\n", 6,
                 "'path' in access_log must not be empty");
    expect_error(OK_CONFIG "access_log = { path = \"/tmp/a\\n.log\"; };\n", 6,
                 "'path' in access_log contains a control character");
    expect_error(OK_CONFIG "access_log = \"/tmp/a.log\";\n", 6,
                 "'access_log' in the top level must be a group");
    expect_error(OK_CONFIG "journal = { path = \"/tmp/\"; };\n", 6,
                 "'path' in journal must name a file, not a directory: '/tmp/' ends with '/'");
    expect_error(OK_CONFIG "journal = { path = \"Off\"; };\n", 6,
                 "'path' in journal must be an absolute path");
    expect_error(OK_CONFIG "journal = { size = 99; };\n", 6,
                 "'size' in journal is 99, out of range 100..1000000");
    expect_error(OK_CONFIG "journal = { size = 1000001; };\n", 6,
                 "'size' in journal is 1000001, out of range 100..1000000");
    expect_error(OK_CONFIG "journal = { size = \"10k\"; };\n", 6,
                 "'size' in journal must be an integer");
    expect_error(OK_CONFIG "journal = { sizes = 100; };\n", 6,
                 "unknown key 'sizes' in journal (did you mean 'size'?)");
    expect_error(OK_CONFIG "access_log = { path = \"/tmp/a.log\"; size = 100; };\n", 6,
                 "unknown key 'size' in access_log ('size' belongs in journal)");
}

static void test_admin_listen_tokens(void **state)
{
    (void)state;
    static const char *const need_tokens[] = {
        "0.0.0.0:9900",       "10.1.2.3:9900",          "[::]:9900",
        "[2001:db8::1]:9900", "[::ffff:10.0.0.1]:9900", "128.0.0.1:9900"};
    static const char *const allowed[] = {
        "127.0.0.1:9900", "127.8.9.10:9900",         "[::1]:9900",
        "localhost:9900", "[::ffff:127.0.0.1]:9900", "unix:/tmp/sg-admin.sock"};
    char text[1024];
    struct sg_cfg_diags d;
    struct sg_cfg *cfg;

    for (size_t i = 0; i < SG_ARRAY_SIZE(need_tokens); i++) {
        snprintf(text, sizeof(text), OK_CONFIG "admin = {\n  listen = \"%s\"; };\n",
                 need_tokens[i]);
        expect_error(text, 7, "admin listen on a non-loopback address needs tokens (Bearer auth)");
        /* an empty list of tokens is no tokens */
        snprintf(text, sizeof(text), OK_CONFIG "admin = { tokens = ( );\n  listen = \"%s\"; };\n",
                 need_tokens[i]);
        expect_error(text, 7, "admin listen on a non-loopback address needs tokens (Bearer auth)");
        /* with a token it is fine */
        snprintf(text, sizeof(text),
                 OK_CONFIG "admin = { listen = \"%s\";\n"
                           "  tokens = ( { name = \"ops\"; token = \"s3cret\"; } ); };\n",
                 need_tokens[i]);
        cfg = load_ok(text, &d);
        assert_int_equal(cfg->admin.ntokens, 1);
        sg_cfg_free(cfg);
        sg_cfg_diags_free(&d);
    }
    for (size_t i = 0; i < SG_ARRAY_SIZE(allowed); i++) {
        snprintf(text, sizeof(text), OK_CONFIG "admin = { listen = \"%s\"; };\n", allowed[i]);
        cfg = load_ok(text, &d);
        assert_int_equal(cfg->admin.ntokens, 0);
        assert_int_equal(count_diags(&d, "tokens"), 0);
        sg_cfg_free(cfg);
        sg_cfg_diags_free(&d);
    }
}

/* Is the address text (v4 or v6, no port) in one of the ranges? */
static const char *deny_hit(const struct sg_cfg_cidr *v, size_t n, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
    const struct sg_cfg_cidr *c = sg_cfg_cidr_find(v, n, (const struct sockaddr *)&ss);
    return c != NULL ? c->text : NULL;
}

/* admin.deny_backends: the CIDR parser, the match, the default, the key. */
static void test_deny_backends(void **state)
{
    (void)state;
    char err[256];
    struct sg_cfg_cidr c;
    static const struct {
        const char *in;
        const char *err; /* NULL: valid */
    } cases[] = {
        {"169.254.0.0/16", NULL},
        {"10.0.0.0/8", NULL},
        {"0.0.0.0/0", NULL},
        {"1.2.3.4", NULL},
        {"fe80::/10", NULL},
        {"::/0", NULL},
        {"fd00:ec2::254", NULL},
        {"169.254.169.254/16", "bits set past its /16 prefix"},
        {"fe80::1/10", "bits set past its /10 prefix"},
        {"1.2.3.4/33", "bad prefix length '33' (expected 0..32)"},
        {"::/129", "bad prefix length '129' (expected 0..128)"},
        {"1.2.3.4/", "bad prefix length"},
        {"1.2.3.4/x", "bad prefix length"},
        {"1.2.3.4/-1", "bad prefix length"},
        {"1.2.3.4/0008", "bad prefix length"},
        {"example.com/8", "not a numeric IPv4 or IPv6 address"},
        {"1.2.3/8", "not a numeric"},
        {"", "expected an address range"},
        {"/8", "expected an address range"},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        int rc = sg_cfg_parse_cidr(cases[i].in, &c, err, sizeof(err));
        if (cases[i].err == NULL) {
            assert_int_equal(rc, SG_OK);
            assert_string_equal(c.text, cases[i].in);
            sg_cfg_cidr_free(&c);
        } else {
            if (rc == SG_OK || strstr(err, cases[i].err) == NULL)
                fprintf(stderr, "%s: %s\n", cases[i].in, err);
            assert_int_equal(rc, SG_ERR);
            assert_non_null(strstr(err, cases[i].err));
            assert_null(c.text);
        }
    }

    /* the default: link-local and metadata, v4-mapped v6 included */
    struct sg_cfg *cfg = expect_clean(OK_CONFIG);
    const struct sg_cfg_cidr *d = cfg->admin.deny;
    size_t nd = cfg->admin.ndeny;
    assert_string_equal(deny_hit(d, nd, "169.254.169.254"), "169.254.0.0/16");
    assert_string_equal(deny_hit(d, nd, "169.254.1.2"), "169.254.0.0/16");
    assert_string_equal(deny_hit(d, nd, "::ffff:169.254.169.254"), "169.254.0.0/16");
    assert_string_equal(deny_hit(d, nd, "fe80::1"), "fe80::/10");
    assert_string_equal(deny_hit(d, nd, "febf:ffff::1"), "fe80::/10");
    assert_string_equal(deny_hit(d, nd, "fd00:ec2::254"), "fd00:ec2::254/128");
    assert_string_equal(deny_hit(d, nd, "100.100.100.200"), "100.100.100.200/32");
    assert_null(deny_hit(d, nd, "169.253.255.255"));
    assert_null(deny_hit(d, nd, "169.255.0.0"));
    assert_null(deny_hit(d, nd, "fec0::1"));
    assert_null(deny_hit(d, nd, "fd00:ec2::253"));
    assert_null(deny_hit(d, nd, "127.0.0.1"));
    assert_null(deny_hit(d, nd, "::1"));
    assert_null(deny_hit(d, nd, "::ffff:127.0.0.1"));
    assert_null(deny_hit(d, nd, "10.1.2.3"));
    sg_cfg_free(cfg);

    /* the key: replaces the default; [] turns it off; errors name the element */
    cfg = expect_clean(OK_CONFIG "admin = { deny_backends = [ \"10.0.0.0/8\", \"::1\" ]; };\n");
    assert_int_equal(cfg->admin.ndeny, 2);
    assert_string_equal(deny_hit(cfg->admin.deny, 2, "10.9.9.9"), "10.0.0.0/8");
    assert_string_equal(deny_hit(cfg->admin.deny, 2, "::1"), "::1");
    assert_null(deny_hit(cfg->admin.deny, 2, "169.254.169.254"));
    sg_cfg_free(cfg);
    cfg = expect_clean(OK_CONFIG "admin = { deny_backends = [ ]; };\n");
    assert_int_equal(cfg->admin.ndeny, 0);
    sg_cfg_free(cfg);
    expect_error(OK_CONFIG "admin = { deny_backends = [ \"10.0.0.0/8\", \"10.0.0.1/8\" ]; };\n", 6,
                 "bad address range '10.0.0.1/8' in 'deny_backends' of admin: '10.0.0.1' has bits "
                 "set past its /8 prefix");
    expect_error(OK_CONFIG "admin = { deny_backends = \"169.254.0.0/16\"; };\n", 6,
                 "'deny_backends' in admin must be an array of address ranges");
    expect_error(OK_CONFIG "admin = {\n deny_backends = ( \"1.2.3.0/24\",\n 5 ); };\n", 8,
                 "element 2 of 'deny_backends' in admin must be a string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_status_ranges),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_workers_auto),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_queue_priority),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unknown_pool),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_autoscale),
        cmocka_unit_test(test_alerts),
        cmocka_unit_test(test_hash_key),
        cmocka_unit_test(test_hash_balance_factor),
        cmocka_unit_test(test_slowstart),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_outlier),
        cmocka_unit_test(test_health_intervals),
        cmocka_unit_test(test_health_expect),
        cmocka_unit_test(test_pool_new_keys_full),
        cmocka_unit_test(test_all_errors_at_once),
        cmocka_unit_test(test_warn_backend_capacity),
        cmocka_unit_test(test_warn_nofile),
        cmocka_unit_test(test_warn_queue_client),
        cmocka_unit_test(test_warn_missing_timeouts),
        cmocka_unit_test(test_diags_print),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_shipped_configs),
        cmocka_unit_test(test_access_log_journal),
        cmocka_unit_test(test_admin_listen_tokens),
        cmocka_unit_test(test_deny_backends),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
