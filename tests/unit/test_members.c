/* Unit tests for members.c (member sets: canonical address comparison, the
 * JSON / line / SRV parsers) and for what uses them: the canonical backend
 * lookup of pool.c and the host-name / discover keys of the config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/members.h"
#include "surgegate/pool.h"

/* s parsed as the config does. */
static struct sockaddr_storage addr_of(const char *s)
{
    struct sg_cfg_addr a;
    char why[160];
    assert_int_equal(sg_cfg_parse_addr(s, &a, why, sizeof(why)), SG_OK);
    struct sockaddr_storage ss = a.ss;
    sg_cfg_addr_free(&a);
    return ss;
}

static bool same(const char *x, const char *y)
{
    struct sockaddr_storage a = addr_of(x), b = addr_of(y);
    return sg_sockaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b);
}

static void test_sockaddr_same(void **state)
{
    assert_true(same("localhost:8080", "127.0.0.1:8080"));
    assert_true(same("127.0.0.1:8080", "[::ffff:127.0.0.1]:8080"));
    assert_true(same("[::1]:80", "[0:0:0:0:0:0:0:1]:80"));
    assert_true(same("[2001:db8::1]:443", "[2001:DB8:0::1]:443"));
    assert_false(same("127.0.0.1:8080", "127.0.0.1:8081"));
    assert_false(same("127.0.0.1:8080", "127.0.0.2:8080"));
    assert_false(same("[::1]:80", "127.0.0.1:80"));
    assert_false(same("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.2]:80"));
    assert_true(same("unix:/run/a.sock", "unix:/run/a.sock"));
    assert_false(same("unix:/run/a.sock", "unix:/run/b.sock"));
    assert_false(same("unix:/run/a.sock", "127.0.0.1:80"));
}

static void test_sockaddr_text(void **state)
{
    char buf[80];
    struct sockaddr_storage a = addr_of("[::ffff:10.1.2.3]:99");
    sg_sockaddr_text((struct sockaddr *)&a, buf, sizeof(buf));
    assert_string_equal(buf, "10.1.2.3:99");
    a = addr_of("[2001:DB8::0001]:8080");
    sg_sockaddr_text((struct sockaddr *)&a, buf, sizeof(buf));
    assert_string_equal(buf, "[2001:db8::1]:8080");
    a = addr_of("localhost:1");
    sg_sockaddr_text((struct sockaddr *)&a, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:1");
}

static void test_members_add(void **state)
{
    struct sg_members m = {0};
    struct sockaddr_storage a = addr_of("10.0.0.1:80"), b = addr_of("[::ffff:10.0.0.1]:80"),
                            c = addr_of("10.0.0.2:80"), u = addr_of("unix:/x");
    assert_int_equal(sg_members_add(&m, (struct sockaddr *)&a, 3, 2), SG_OK);
    assert_int_equal(sg_members_add(&m, (struct sockaddr *)&b, 5, 2), SG_OK); /* same: kept */
    assert_int_equal(m.n, 1);
    assert_int_equal(m.v[0].weight, 3);
    assert_string_equal(m.v[0].addr, "10.0.0.1:80");
    assert_int_equal(sg_members_add(&m, (struct sockaddr *)&c, 1, 2), SG_OK);
    struct sockaddr_storage e = addr_of("10.0.0.3:80");
    assert_int_equal(sg_members_add(&m, (struct sockaddr *)&e, 1, 2), SG_ERR); /* over max */
    assert_int_equal(sg_members_add(&m, (struct sockaddr *)&u, 1, 9), SG_ERR);
    assert_int_equal(sg_members_find(&m, (struct sockaddr *)&c), 1);
    assert_int_equal(sg_members_find(&m, (struct sockaddr *)&u), -1);
    sg_members_free(&m);
    assert_int_equal(m.n, 0);
    assert_null(m.v);
}

static int parse_json(const char *s, size_t max, struct sg_members *m, char *err)
{
    return sg_members_parse_json(s, strlen(s), max, m, err, 200);
}

static void test_json(void **state)
{
    struct sg_members m;
    char err[200];
    assert_int_equal(parse_json("[{\"address\":\"10.0.0.5:8080\",\"weight\":4,\"maxconn\":100},"
                                " \"10.0.0.6:8080\", {\"address\":\"[::1]:81\"}]",
                                10, &m, err),
                     SG_OK);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.v[0].addr, "10.0.0.5:8080");
    assert_true(m.v[0].has_weight && m.v[0].has_maxconn);
    assert_int_equal(m.v[0].weight, 4);
    assert_int_equal(m.v[0].maxconn, 100);
    assert_false(m.v[1].has_weight || m.v[1].has_maxconn);
    assert_string_equal(m.v[2].addr, "[::1]:81");
    sg_members_free(&m);

    assert_int_equal(parse_json("{\"members\":[{\"address\":\"localhost:9\"}]}", 10, &m, err),
                     SG_OK);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.v[0].addr, "127.0.0.1:9");
    sg_members_free(&m);
    assert_int_equal(parse_json("[]", 10, &m, err), SG_OK);
    assert_int_equal(m.n, 0);
    assert_int_equal(parse_json(" {\"members\":[]}\n", 10, &m, err), SG_OK);
    assert_int_equal(m.n, 0);
    /* duplicates merged, the first kept */
    assert_int_equal(
        parse_json("[{\"address\":\"1.2.3.4:5\",\"weight\":2},\"1.2.3.4:5\"]", 10, &m, err), SG_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.v[0].weight, 2);
    sg_members_free(&m);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "not JSON"},
        {"[{\"address\":", "not JSON"},
        {"{\"members\":[], \"x\":1}", "unknown key"},
        {"{\"add\":[]}", "unknown key"},
        {"\"10.0.0.1:80\"", "expected an array"},
        {"[{\"weight\":1}]", "\"address\""},
        {"[{\"address\":\"10.0.0.1:80\",\"port\":1}]", "unknown key"},
        {"[{\"address\":\"10.0.0.1:80\",\"weight\":257}]", "weight"},
        {"[{\"address\":\"10.0.0.1:80\",\"weight\":-1}]", "weight"},
        {"[{\"address\":\"10.0.0.1:80\",\"maxconn\":\"5\"}]", "maxconn"},
        {"[{\"address\":\"app.internal:80\"}]", "bad address"},
        {"[\"10.0.0.1\"]", "bad address"},
        {"[\"unix:/tmp/x.sock\"]", "unix"},
        {"[1]", "expected an object"},
        {"[\"1.1.1.1:1\",\"1.1.1.2:1\",\"1.1.1.3:1\"]", "more than 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse_json(bad[i].in, 2, &m, err), SG_ERR);
        assert_int_equal(m.n, 0);
        assert_null(m.v);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, err, bad[i].why);
    }
}

static void test_file(void **state)
{
    struct sg_members m;
    char err[200];
    const char *text = "# members\n\n10.0.0.1:80 weight=3\n  10.0.0.2:80\tmaxconn=7 weight=0 "
                       "# drained\n[::1]:81\n";
    assert_int_equal(sg_members_parse_file(text, strlen(text), 10, &m, err, sizeof(err)), SG_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.v[0].weight, 3);
    assert_true(m.v[0].has_weight);
    assert_false(m.v[0].has_maxconn);
    assert_int_equal(m.v[1].weight, 0);
    assert_int_equal(m.v[1].maxconn, 7);
    assert_string_equal(m.v[2].addr, "[::1]:81");
    sg_members_free(&m);
    /* no trailing newline; JSON detected */
    assert_int_equal(sg_members_parse_file("10.0.0.9:1", 10, 10, &m, err, sizeof(err)), SG_OK);
    assert_int_equal(m.n, 1);
    sg_members_free(&m);
    const char *js = "\n  [\"10.0.0.1:80\"]";
    assert_int_equal(sg_members_parse_file(js, strlen(js), 10, &m, err, sizeof(err)), SG_OK);
    assert_int_equal(m.n, 1);
    sg_members_free(&m);
    assert_int_equal(sg_members_parse_file("", 0, 10, &m, err, sizeof(err)), SG_OK);
    assert_int_equal(m.n, 0);
    assert_int_equal(sg_members_parse_file("# none\n\n", 8, 10, &m, err, sizeof(err)), SG_OK);
    assert_int_equal(m.n, 0);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"10.0.0.1:80\nbogus\n", "line 2: bad address"},
        {"10.0.0.1:80 weight=300\n", "line 1: bad option"},
        {"10.0.0.1:80 weight=\n", "line 1: bad option"},
        {"10.0.0.1:80 colour=red\n", "line 1: bad option"},
        {"10.0.0.1:80 weight=1 weight=2\n", "line 1: bad option"},
        {"10.0.0.1:80 a b c d\n", "too many fields"},
        {"1.1.1.1:1\n1.1.1.2:1\n1.1.1.3:1\n", "line 3: more than 2"},
        {"[\"10.0.0.1:80\"", "not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            sg_members_parse_file(bad[i].in, strlen(bad[i].in), 2, &m, err, sizeof(err)), SG_ERR);
        assert_int_equal(m.n, 0);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, err, bad[i].why);
    }
    char nul[] = "10.0.0.1:80\n\0\n";
    assert_int_equal(sg_members_parse_file(nul, sizeof(nul) - 1, 2, &m, err, sizeof(err)), SG_ERR);
}

/* ---- SRV answers in DNS wire format ---- */

static size_t put_name(unsigned char *p, const char *name)
{
    size_t o = 0;
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (unsigned char)l;
        memcpy(p + o, name, l);
        o += l;
        name += l + (dot ? 1 : 0);
    }
    p[o++] = 0;
    return o;
}

static size_t put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

/* A response to "name SRV" with the given records (target "" = "."). */
static int srv_answer(unsigned char *buf, const char *name, const char *const *targets,
                      const unsigned *ports, const unsigned *weights, size_t n)
{
    size_t o = 0;
    o += put16(buf + o, 0x1234);
    o += put16(buf + o, 0x8180); /* response, RD, RA, NOERROR */
    o += put16(buf + o, 1);
    o += put16(buf + o, (unsigned)n);
    o += put16(buf + o, 0);
    o += put16(buf + o, 0);
    o += put_name(buf + o, name);
    o += put16(buf + o, 33);
    o += put16(buf + o, 1);
    for (size_t i = 0; i < n; i++) {
        o += put16(buf + o, 0xc00c); /* the question's name */
        o += put16(buf + o, 33);
        o += put16(buf + o, 1);
        o += put16(buf + o, 0);
        o += put16(buf + o, 30); /* TTL */
        unsigned char rdata[300];
        size_t r = 0;
        r += put16(rdata + r, 10); /* priority */
        r += put16(rdata + r, weights[i]);
        r += put16(rdata + r, ports[i]);
        r += targets[i][0] ? put_name(rdata + r, targets[i]) : (rdata[r] = 0, 1);
        o += put16(buf + o, (unsigned)r);
        memcpy(buf + o, rdata, r);
        o += r;
    }
    return (int)o;
}

static void test_srv(void **state)
{
    unsigned char buf[1024];
    const char *t[] = {"node1.app.test", "", "node2.app.test"};
    unsigned ports[] = {8080, 8081, 9090}, weights[] = {0, 5, 1000};
    int len = srv_answer(buf, "_http._tcp.app.test", t, ports, weights, 3);
    struct sg_srv *v;
    size_t n;
    char err[200];
    assert_int_equal(sg_srv_parse(buf, len, &v, &n, err, sizeof(err)), SG_OK);
    assert_int_equal(n, 2); /* "." is no service */
    assert_string_equal(v[0].target, "node1.app.test");
    assert_int_equal(v[0].port, 8080);
    assert_int_equal(v[0].weight, 0);
    assert_int_equal(v[0].priority, 10);
    assert_string_equal(v[1].target, "node2.app.test");
    assert_int_equal(v[1].port, 9090);
    assert_int_equal(sg_srv_weight(v[0].weight), 1);
    assert_int_equal(sg_srv_weight(v[1].weight), 256);
    assert_int_equal(sg_srv_weight(7), 7);
    sg_srv_free(v, n);

    len = srv_answer(buf, "_http._tcp.app.test", t, ports, weights, 0);
    assert_int_equal(sg_srv_parse(buf, len, &v, &n, err, sizeof(err)), SG_OK);
    assert_int_equal(n, 0);
    sg_srv_free(v, n);

    /* cut short, and garbage */
    len = srv_answer(buf, "_http._tcp.app.test", t, ports, weights, 3);
    assert_int_equal(sg_srv_parse(buf, len - 5, &v, &n, err, sizeof(err)), SG_ERR);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "bad SRV answer"));
    memset(buf, 0xff, 64);
    assert_int_equal(sg_srv_parse(buf, 64, &v, &n, err, sizeof(err)), SG_ERR);
    assert_int_equal(sg_srv_parse(buf, 3, &v, &n, err, sizeof(err)), SG_ERR);
}

/* ---- the canonical lookup of pool.c and the config keys ---- */

static struct sg_cfg *load(const char *text, struct sg_cfg_diags *d)
{
    sg_cfg_diags_init(d, "t.conf");
    return sg_cfg_load_string(text, "t.conf", d);
}

static bool has_error(const struct sg_cfg_diags *d, int line, const char *what)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].severity == SG_CFG_ERROR && d->items[i].line == line &&
            strstr(d->items[i].msg, what) != NULL)
            return true;
    return false;
}

static void test_pool_canonical(void **state)
{
    struct sg_cfg_diags d;
    struct sg_cfg *cfg = load("frontends = ( { name = \"f\"; listen = \"127.0.0.1:1\"; "
                              "default_pool = \"p\"; } );\n"
                              "pools = ( { name = \"p\"; backends = ( { address = "
                              "\"127.0.0.1:9001\"; }, { address = \"app.internal:80\"; } ); "
                              "discover = { file = \"/nonexistent\"; max_members = 5; }; } );\n",
                              &d);
    assert_non_null(cfg);
    assert_string_equal(cfg->pools[0].backends[1].host, "app.internal");
    assert_int_equal(cfg->pools[0].backends[1].port, 80);
    struct sg_pools ps;
    assert_int_equal(sg_pools_build(&ps, cfg), SG_OK);
    struct sg_pool *p = &ps.pools[0];
    assert_int_equal(p->ncfg, 1); /* the host name gets no slot until resolved */
    assert_true(p->nbackends >= 1 + 64 + 10 + 32);
    struct sg_backend *b = sg_pool_find_backend(p, "localhost:9001", 14);
    assert_non_null(b);
    assert_string_equal(b->name, "127.0.0.1:9001");
    assert_ptr_equal(sg_pool_find_backend(p, "[::ffff:127.0.0.1]:9001", 23), b);
    assert_null(sg_pool_find_backend(p, "127.0.0.1:9002", 14));
    char err[200];
    struct sg_backend *nb;
    assert_int_equal(sg_pool_add_backend(p, "localhost:9001", 1, 0, false, &nb, err, sizeof(err)),
                     SG_CTL_EXISTS);
    assert_non_null(strstr(err, "127.0.0.1:9001"));
    assert_int_equal(sg_pool_add_backend(p, "127.0.0.1:9002", 1, 0, false, &nb, err, sizeof(err)),
                     SG_CTL_OK);
    assert_int_equal(
        sg_pool_add_backend(p, "[::ffff:127.0.0.1]:9002", 1, 0, false, &nb, err, sizeof(err)),
        SG_CTL_EXISTS);
    sg_pools_free(&ps);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&d);

    cfg = load("frontends = ( { name = \"f\"; listen = \"127.0.0.1:1\"; default_pool = \"p\"; } "
               ");\n"                                                                        /* 1 */
               "pools = ( { name = \"p\"; backends = ( { address = \"localhost:9001\"; },\n" /* 2 */
               "  { address = \"127.0.0.1:9001\"; },\n"                                      /* 3 */
               "  { address = \"a.test:1\"; }, { address = \"A.TEST.:1\"; },\n"              /* 4 */
               "  { address = \"-x.test:1\"; }, { address = \"a..b:1\"; },\n"                /* 5 */
               "  { address = \"a.test:0\"; }, { address = \"10.0.0:1\"; } );\n"             /* 6 */
               "  discover = { dns_srv = \"_x._tcp.a.test\"; command = [ \"/bin/true\" ]; }; "
               "} );\n"                                                            /* 7 */
               "resolvers = [ \"10.0.0.1\", \"[::1]:5353\", \"dns.example\" ];\n", /* 8 */
               &d);
    assert_null(cfg);
    assert_true(has_error(&d, 3, "duplicate backend address"));
    assert_true(has_error(&d, 4, "duplicate backend address"));
    assert_true(has_error(&d, 5, "empty label"));
    assert_true(has_error(&d, 6, "bad port"));
    assert_true(has_error(&d, 6, "10.0.0:1"));
    assert_true(has_error(&d, 7, "exactly one source"));
    assert_true(has_error(&d, 8, "dns.example"));
    assert_false(has_error(&d, 8, "10.0.0.1"));
    sg_cfg_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sockaddr_same),  cmocka_unit_test(test_sockaddr_text),
        cmocka_unit_test(test_members_add),    cmocka_unit_test(test_json),
        cmocka_unit_test(test_file),           cmocka_unit_test(test_srv),
        cmocka_unit_test(test_pool_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
