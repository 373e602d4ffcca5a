/* Unit tests for the access log (accesslog.c). */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"

struct tmpdir {
    char dir[64];
    char path[128];
    char path2[128];
};

static void tmpdir_make(struct tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/sg-alog-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/access.log", t->dir);
    snprintf(t->path2, sizeof(t->path2), "%s/access.log.1", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
    unlink(t->path);
    unlink(t->path2);
    rmdir(t->dir);
}

/* The whole file, NUL-terminated; *len its size. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = sg_xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Every line of the file parsed as a JSON object, in a new array. */
static json_t *read_json_lines(const char *path)
{
    size_t len;
    char *buf = slurp(path, &len), *p = buf;
    json_t *arr = json_array();

    while (p < buf + len) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        json_error_t e;
        json_t *v;
        assert_non_null(nl); /* every line is complete */
        v = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &e);
        if (v == NULL)
            fail_msg("not JSON (%s): %.*s", e.text, (int)(nl - p), p);
        assert_true(json_is_object(v));
        json_array_append_new(arr, v);
        p = nl + 1;
    }
    free(buf);
    return arr;
}

/* 2026-11-30T19:40:22.123456Z */
#define T0 1796067622123456ull

static struct sg_alog_rec full_rec(void)
{
    struct sg_alog_rec r = {
        .start_us = T0,
        .client_ip = "192.0.2.7",
        .method = "GET",
        .method_len = 3,
        .target = "/x?a=1",
        .target_len = 6,
        .host = "example.com",
        .host_len = 11,
        .referer = "http://ref/",
        .referer_len = 11,
        .user_agent = "curl/8.0",
        .ua_len = 8,
        .http_minor = 1,
        .frontend = "web",
        .pool = "app",
        .backend = "127.0.0.1:9001",
        .status = 200,
        .bytes_in = 78,
        .bytes_out = 1234,
        .queue_us = 0,
        .connect_us = 120,
        .ttfb_us = 50300,
        .total_us = 50412,
        .retries = 1,
        .end = "ok",
    };
    return r;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        fail_msg("'%s' is not a string", k);
    return json_string_value(v);
}

static void assert_null_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || !json_is_null(v))
        fail_msg("'%s' is not null", k);
}

static void assert_ms(json_t *o, const char *k, double want)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_number(v));
    assert_true(json_number_value(v) > want - 1e-9 && json_number_value(v) < want + 1e-9);
}

static void test_json_fields(void **state)
{
    (void)state;
    struct tmpdir t;
    char err[160];
    struct sg_alog *a;
    struct sg_alog_w *w;
    struct sg_alog_rec r = full_rec();
    json_t *lines, *o;
    struct stat st;

    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_JSON, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    w = sg_alog_worker_new(a);
    assert_non_null(w);
    sg_alog_write(w, &r);

    /* nothing parsed, nothing reached */
    r = (struct sg_alog_rec){.start_us = 5,
                             .client_ip = "::1",
                             .status = 400,
                             .http_minor = 0,
                             .queue_us = -1,
                             .connect_us = -1,
                             .ttfb_us = -1,
                             .total_us = 1,
                             .end = "bad_request"};
    sg_alog_write(w, &r);
    /* HTTP/1.0 and no status sent */
    r = full_rec();
    r.http_minor = 0;
    r.status = 0;
    r.end = "client_closed";
    r.host = NULL;
    sg_alog_write(w, &r);
    sg_alog_worker_free(w);
    sg_alog_close(a);

    lines = read_json_lines(t.path);
    assert_int_equal(json_array_size(lines), 3);
    o = json_array_get(lines, 0);
    assert_int_equal(json_object_size(o), 20);
    assert_string_equal(jstr(o, "time"), "2026-11-30T19:40:22.123Z");
    assert_string_equal(jstr(o, "client"), "192.0.2.7");
    assert_string_equal(jstr(o, "method"), "GET");
    assert_string_equal(jstr(o, "uri"), "/x?a=1");
    assert_string_equal(jstr(o, "host"), "example.com");
    assert_string_equal(jstr(o, "proto"), "HTTP/1.1");
    assert_string_equal(jstr(o, "frontend"), "web");
    assert_string_equal(jstr(o, "pool"), "app");
    assert_string_equal(jstr(o, "backend"), "127.0.0.1:9001");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_in")), 78);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_out")), 1234);
    assert_ms(o, "queue_ms", 0.0);
    assert_ms(o, "connect_ms", 0.12);
    assert_ms(o, "ttfb_ms", 50.3);
    assert_ms(o, "total_ms", 50.412);
    assert_int_equal(json_integer_value(json_object_get(o, "retries")), 1);
    assert_string_equal(jstr(o, "end"), "ok");
    assert_string_equal(jstr(o, "referer"), "http://ref/");
    assert_string_equal(jstr(o, "user_agent"), "curl/8.0");

    o = json_array_get(lines, 1);
    assert_int_equal(json_object_size(o), 20);
    assert_string_equal(jstr(o, "time"), "1970-01-01T00:00:00.000Z");
    assert_string_equal(jstr(o, "client"), "::1");
    assert_null_field(o, "method");
    assert_null_field(o, "uri");
    assert_null_field(o, "host");
    assert_null_field(o, "proto");
    assert_null_field(o, "frontend");
    assert_null_field(o, "pool");
    assert_null_field(o, "backend");
    assert_null_field(o, "queue_ms");
    assert_null_field(o, "connect_ms");
    assert_null_field(o, "ttfb_ms");
    assert_ms(o, "total_ms", 0.001);
    assert_null_field(o, "referer");
    assert_null_field(o, "user_agent");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 400);
    assert_string_equal(jstr(o, "end"), "bad_request");

    o = json_array_get(lines, 2);
    assert_string_equal(jstr(o, "proto"), "HTTP/1.0");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 0);
    assert_null_field(o, "host");
    assert_string_equal(jstr(o, "end"), "client_closed");
    json_decref(lines);
    tmpdir_remove(&t);
}

/* Appends the UTF-8 of code point cp < 0x800 to out. */
static size_t put_cp(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static void test_json_nasty_bytes(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_alog *a;
    struct sg_alog_w *w;
    struct sg_alog_rec r = full_rec();
    char target[1024], want[2048];
    size_t n = 0, wn = 0;
    json_t *lines, *uri;

    /* every byte value, each alone (so a lead byte never forms a sequence) */
    for (unsigned c = 0; c < 256; c++) {
        target[n++] = (char)c;
        target[n++] = 'x';
        wn += put_cp(want + wn, c); /* valid alone only below 0x80 */
        want[wn++] = 'x';
    }
    /* valid UTF-8 passes through as is */
    static const char valid[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf";
    memcpy(target + n, valid, sizeof(valid) - 1);
    n += sizeof(valid) - 1;
    memcpy(want + wn, valid, sizeof(valid) - 1);
    wn += sizeof(valid) - 1;
    /* invalid: overlong, surrogate, above U+10FFFF, bad continuation, truncated at the end */
    static const unsigned char invalid[] = {0xc0, 0xaf, 0xe0, 0x80, 0xaf, 0xed, 0xa0, 0x80, 0xf4,
                                            0x90, 0x80, 0x80, 0xe2, 0x28, 0xa1, 0xf0, 0x9f, 0x98};
    for (size_t i = 0; i < sizeof(invalid); i++) {
        target[n++] = (char)invalid[i];
        wn += put_cp(want + wn, invalid[i]); /* read as Latin-1 */
    }
    r.target = target;
    r.target_len = n;
    r.user_agent = "\"quoted\" \\ back\x01\x1f\x7f";
    r.ua_len = strlen(r.user_agent);

    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_JSON, NULL, 0);
    assert_non_null(a);
    w = sg_alog_worker_new(a);
    sg_alog_write(w, &r);
    sg_alog_worker_free(w);
    sg_alog_close(a);

    lines = read_json_lines(t.path); /* jansson checks the UTF-8 and the escapes */
    assert_int_equal(json_array_size(lines), 1);
    uri = json_object_get(json_array_get(lines, 0), "uri");
    assert_true(json_is_string(uri));
    assert_int_equal(json_string_length(uri), wn);
    assert_memory_equal(json_string_value(uri), want, wn);
    assert_string_equal(jstr(json_array_get(lines, 0), "user_agent"),
                        "\"quoted\" \\ back\x01\x1f\x7f");
    json_decref(lines);
    tmpdir_remove(&t);
}

static void test_combined(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_alog *a;
    struct sg_alog_w *w;
    struct sg_alog_rec r = full_rec();
    size_t len;
    char *buf;

    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_COMBINED, NULL, 0);
    assert_non_null(a);
    w = sg_alog_worker_new(a);
    sg_alog_write(w, &r);
    r = full_rec();
    r.target = "/a\"b\\c\x01\xc3\xa9";
    r.target_len = strlen(r.target);
    r.user_agent = "evil\" \"ua\n";
    r.ua_len = strlen(r.user_agent);
    r.referer = NULL;
    r.pool = NULL;
    r.backend = NULL;
    r.connect_us = -1;
    r.ttfb_us = -1;
    r.queue_us = 2500;
    r.status = 503;
    r.bytes_out = 0;
    r.end = "queue_timeout";
    sg_alog_write(w, &r);
    r = (struct sg_alog_rec){.start_us = T0,
                             .client_ip = NULL,
                             .status = 400,
                             .queue_us = -1,
                             .connect_us = -1,
                             .ttfb_us = -1,
                             .total_us = 3,
                             .end = NULL};
    sg_alog_write(w, &r);
    sg_alog_worker_free(w);
    sg_alog_close(a);

    buf = slurp(t.path, &len);
    assert_string_equal(
        buf, "192.0.2.7 - - [30/Nov/2026:19:40:22 +0000] \"GET /x?a=1 HTTP/1.1\" 200 1234 "
             "\"http://ref/\" \"curl/8.0\" pool=app backend=127.0.0.1:9001 queue_ms=0.000 "
             "connect_ms=0.120 ttfb_ms=50.300 total_ms=50.412 retries=1 end=ok\n"
             "192.0.2.7 - - [30/Nov/2026:19:40:22 +0000] \"GET /a\\x22b\\x5Cc\\x01\\xC3\\xA9 "
             "HTTP/1.1\" 503 0 \"-\" \"evil\\x22 \\x22ua\\x0A\" pool=- backend=- queue_ms=2.500 "
             "connect_ms=- ttfb_ms=- total_ms=50.412 retries=1 end=queue_timeout\n"
             "- - - [30/Nov/2026:19:40:22 +0000] \"-\" 400 0 \"-\" \"-\" pool=- backend=- "
             "queue_ms=- connect_ms=- ttfb_ms=- total_ms=0.003 retries=0 end=-\n");
    free(buf);
    tmpdir_remove(&t);
}

#define NWORKERS   2
#define PER_WORKER 50000

struct wctx {
    struct sg_alog_w *w;
    int id;
};

static void *worker_main(void *arg)
{
    struct wctx *c = arg;
    char target[64];
    struct sg_alog_rec r = full_rec();

    for (int i = 0; i < PER_WORKER; i++) {
        r.target = target;
        r.target_len = (size_t)snprintf(target, sizeof(target), "/w%d/%d", c->id, i);
        r.start_us = T0 + (uint64_t)i * 1000;
        sg_alog_write(c->w, &r);
        if (i % 7919 == 0)
            sg_alog_flush(c->w); /* as the 1 s timer would, between full buffers */
    }
    sg_alog_worker_free(c->w);
    return NULL;
}

/* Checks the lines "/wID/I": each worker's I from 0 to n-1 in order. */
static void check_worker_lines(json_t *lines, int nworkers, int from, int n)
{
    int next[NWORKERS];
    for (int i = 0; i < nworkers; i++)
        next[i] = from;
    for (size_t k = 0; k < json_array_size(lines); k++) {
        int id, i;
        const char *uri = jstr(json_array_get(lines, k), "uri");
        if (sscanf(uri, "/w%d/%d", &id, &i) != 2)
            fail_msg("bad uri %s", uri);
        assert_true(id >= 0 && id < nworkers);
        if (i != next[id])
            fail_msg("worker %d: line %d where %d was expected", id, i, next[id]);
        next[id]++;
    }
    for (int id = 0; id < nworkers; id++)
        assert_int_equal(next[id], from + n);
}

static void test_two_workers_nothing_lost(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_alog *a;
    pthread_t th[NWORKERS];
    struct wctx c[NWORKERS];
    json_t *lines;

    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_JSON, NULL, 0);
    assert_non_null(a);
    for (int i = 0; i < NWORKERS; i++) {
        c[i] = (struct wctx){sg_alog_worker_new(a), i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &c[i]), 0);
    }
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    sg_alog_close(a);

    lines = read_json_lines(t.path);
    assert_int_equal(json_array_size(lines), NWORKERS * PER_WORKER);
    check_worker_lines(lines, NWORKERS, 0, PER_WORKER);
    json_decref(lines);
    tmpdir_remove(&t);
}

static void write_range(struct sg_alog_w *w, int from, int to)
{
    char target[64];
    struct sg_alog_rec r = full_rec();
    for (int i = from; i < to; i++) {
        r.target = target;
        r.target_len = (size_t)snprintf(target, sizeof(target), "/w0/%d", i);
        sg_alog_write(w, &r);
    }
}

static void test_reopen_after_rename(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_alog *a;
    struct sg_alog_w *w;
    json_t *old_lines, *new_lines;

    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_JSON, NULL, 0);
    assert_non_null(a);
    w = sg_alog_worker_new(a);
    write_range(w, 0, 1000); /* several full buffers and a partial one */
    sg_alog_flush(w);
    assert_int_equal(rename(t.path, t.path2), 0);
    sg_alog_reopen(a);
    write_range(w, 1000, 1500);
    sg_alog_flush(w);
    sg_alog_reopen(a); /* twice in a row, and no rename: same file again */
    write_range(w, 1500, 1700);
    sg_alog_worker_free(w);
    sg_alog_close(a);

    old_lines = read_json_lines(t.path2);
    new_lines = read_json_lines(t.path);
    assert_int_equal(json_array_size(old_lines), 1000);
    check_worker_lines(old_lines, 1, 0, 1000);
    assert_int_equal(json_array_size(new_lines), 700);
    check_worker_lines(new_lines, 1, 1000, 700);
    json_decref(old_lines);
    json_decref(new_lines);
    tmpdir_remove(&t);
}

static void test_huge_line_and_off(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_alog *a;
    struct sg_alog_w *w;
    struct sg_alog_rec r = full_rec();
    size_t big = 300000;
    char *target = sg_xmalloc(big), err[160] = "";
    json_t *lines;

    memset(target, '\x01', big); /* 6 bytes each once escaped */
    target[0] = '/';
    tmpdir_make(&t);
    a = sg_alog_open(t.path, SG_ALOG_JSON, NULL, 0);
    assert_non_null(a);
    w = sg_alog_worker_new(a);
    write_range(w, 0, 10);
    r.target = target;
    r.target_len = big;
    sg_alog_write(w, &r);
    write_range(w, 10, 20);
    sg_alog_worker_free(w);
    sg_alog_close(a);
    lines = read_json_lines(t.path);
    assert_int_equal(json_array_size(lines), 21);
    assert_int_equal(json_string_length(json_object_get(json_array_get(lines, 10), "uri")), big);
    json_decref(lines);
    free(target);
    tmpdir_remove(&t);

    /* an access log that is off is NULL everywhere */
    assert_null(sg_alog_worker_new(NULL));
    sg_alog_write(NULL, &r);
    sg_alog_flush(NULL);
    sg_alog_worker_free(NULL);
    sg_alog_reopen(NULL);
    sg_alog_close(NULL);
    assert_null(sg_alog_open("/nonexistent-dir-sg/access.log", SG_ALOG_JSON, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-dir-sg/access.log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_nasty_bytes),
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_two_workers_nothing_lost),
        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_huge_line_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
