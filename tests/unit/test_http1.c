/* Unit tests for src/http1.c: header collection, limits, classification,
 * request checks and generated heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/http1.h"

/* Feeds "Name: value" pairs as llhttp would (one span each, in one call). */
static void add(struct sg_hdrs *hs, const char *name, const char *value)
{
    hs->exec_seq++;
    assert_int_equal(sg_hdrs_add_field(hs, name, strlen(name)), SG_OK);
    if (*value)
        assert_int_equal(sg_hdrs_add_value(hs, value, strlen(value)), SG_OK);
    assert_int_equal(sg_hdrs_value_done(hs), SG_OK);
}

static char *buf_str(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_copyout(b, s, n);
    s[n] = '\0';
    return s;
}

static void test_collect_split_spans(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    assert_int_equal(sg_hdrs_add_first(&hs, "/pa", 3), SG_OK);
    assert_int_equal(sg_hdrs_add_first(&hs, "th", 2), SG_OK);
    hs.exec_seq = 1;
    assert_int_equal(sg_hdrs_add_field(&hs, "Ho", 2), SG_OK);
    hs.exec_seq = 2;
    assert_int_equal(sg_hdrs_add_field(&hs, "st", 2), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, "exa", 3), SG_OK);
    hs.exec_seq = 3; /* value continues in the next read: not a fold */
    assert_int_equal(sg_hdrs_add_value(&hs, "mple  ", 6), SG_OK);
    assert_int_equal(sg_hdrs_value_done(&hs), SG_OK);
    assert_int_equal(hs.n, 1);
    assert_string_equal(hs.buf + hs.first_off, "/path");
    assert_true(sg_hdr_name_is(&hs, &hs.h[0], "host"));
    assert_string_equal(sg_hdr_value(&hs, &hs.h[0]), "example"); /* trailing OWS trimmed */
    sg_hdrs_free(&hs);
}

static void test_fold_detected(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    hs.exec_seq = 1;
    assert_int_equal(sg_hdrs_add_field(&hs, "X", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, "a", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, " b", 2), SG_ERR); /* same execute call */
    assert_true(hs.folded);
    sg_hdrs_reset(&hs);
    hs.exec_seq = 2;
    assert_int_equal(sg_hdrs_add_field(&hs, "X", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, " chunked", 8), SG_ERR); /* empty first line */
    assert_true(hs.folded);
    sg_hdrs_free(&hs);
}

static void test_value_controls_rejected(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    assert_int_equal(sg_hdrs_add_field(&hs, "X", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, "a\rb", 3), SG_OK);
    assert_int_equal(sg_hdrs_value_done(&hs), SG_ERR);
    sg_hdrs_reset(&hs);
    assert_int_equal(sg_hdrs_add_field(&hs, "X", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, "a\tb", 3), SG_OK);
    assert_int_equal(sg_hdrs_value_done(&hs), SG_OK); /* HTAB is allowed */
    sg_hdrs_free(&hs);
}

static void test_limits(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 10, 64, 3);
    assert_int_equal(sg_hdrs_add_first(&hs, "0123456789", 10), SG_OK);
    assert_int_equal(sg_hdrs_add_first(&hs, "x", 1), SG_ERR);
    assert_true(hs.first_too_long);
    sg_hdrs_reset(&hs);
    add(&hs, "a", "1");
    add(&hs, "b", "2");
    add(&hs, "c", "3");
    assert_int_equal(sg_hdrs_add_field(&hs, "d", 1), SG_ERR);
    assert_true(hs.too_many);
    sg_hdrs_reset(&hs);
    char big[80];
    memset(big, 'v', sizeof(big));
    assert_int_equal(sg_hdrs_add_field(&hs, "a", 1), SG_OK);
    assert_int_equal(sg_hdrs_add_value(&hs, big, sizeof(big)), SG_ERR);
    assert_true(hs.too_large);
    sg_hdrs_free(&hs);
}

static void test_classify_connection_tokens(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    add(&hs, "Host", "a");
    add(&hs, "Connection", "close, Foo , content-length");
    add(&hs, "Foo", "bar");
    add(&hs, "Keep-Alive", "timeout=5");
    add(&hs, "TE", "trailers");
    add(&hs, "Proxy-Connection", "keep-alive");
    add(&hs, "Content-Length", "3");
    add(&hs, "X-Keep", "yes");
    sg_hdrs_classify(&hs);
    assert_true(hs.h[0].flags & SG_HDR_HOST);
    assert_true(hs.h[1].flags & SG_HDR_HOPBYHOP);
    assert_true(hs.h[2].flags & SG_HDR_HOPBYHOP); /* named by Connection */
    assert_true(hs.h[3].flags & SG_HDR_HOPBYHOP);
    assert_true(hs.h[4].flags & SG_HDR_HOPBYHOP);
    assert_true(hs.h[5].flags & SG_HDR_HOPBYHOP);
    /* Connection cannot turn framing into a droppable header silently */
    assert_int_equal(hs.h[6].flags, SG_HDR_FRAMING);
    assert_int_equal(hs.h[7].flags, 0);
    assert_true(sg_hdrs_has_token(&hs, "connection", "foo"));
    assert_false(sg_hdrs_has_token(&hs, "connection", "fo"));
    sg_hdrs_free(&hs);
}

static void test_check_request(void **st)
{
    struct sg_hdrs hs;
    const char *why;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, false, false, false, &why),
                     400);                                                             /* no Host */
    assert_int_equal(sg_http1_check_request(&hs, 1, 0, false, false, false, &why), 0); /* 1.0 ok */
    add(&hs, "Host", "a.example:80");
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, false, false, false, &why), 0);
    assert_int_equal(sg_http1_check_request(&hs, 1, 0, true, true, false, &why),
                     400);                                                            /* 1.0 + TE */
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, true, true, true, &why), 400); /* CL + TE */
    add(&hs, "Host", "b");
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, false, false, false, &why), 400); /* dup */
    sg_hdrs_reset(&hs);
    add(&hs, "Host", "a b");
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, false, false, false, &why), 400);
    sg_hdrs_reset(&hs);
    add(&hs, "Host", "a");
    add(&hs, "Bad Name", "x");
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, false, false, false, &why), 400);
    sg_hdrs_reset(&hs);
    add(&hs, "Host", "a");
    add(&hs, "Transfer-Encoding", "gzip, chunked");
    assert_int_equal(sg_http1_check_request(&hs, 1, 1, true, true, false, &why), 400);
    sg_hdrs_free(&hs);
}

static void test_request_head(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    assert_int_equal(sg_hdrs_add_first(&hs, "/x?y=1", 6), SG_OK);
    add(&hs, "Host", "a.example");
    add(&hs, "X-Forwarded-For", "10.0.0.1");
    add(&hs, "Via", "1.0 edge");
    add(&hs, "Connection", "keep-alive, X-Drop");
    add(&hs, "X-Drop", "1");
    add(&hs, "Transfer-Encoding", "chunked");
    add(&hs, "Expect", "100-continue");
    add(&hs, "Accept", "*/*");
    sg_hdrs_classify(&hs);
    struct evbuffer *out = evbuffer_new();
    struct sg_http1_fwd f = {.method = "POST",
                             .method_len = 4,
                             .client_ip = "127.0.0.1",
                             .proto = "http",
                             .client_minor = 1,
                             .chunked = true};
    sg_http1_write_request_head(out, &hs, &f);
    char *s = buf_str(out);
    assert_string_equal(s, "POST /x?y=1 HTTP/1.1\r\n"
                           "Host: a.example\r\n"
                           "Accept: */*\r\n"
                           "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"
                           "X-Forwarded-Proto: http\r\n"
                           "X-Forwarded-Host: a.example\r\n"
                           "Via: 1.0 edge, 1.1 surgegate\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
    free(s);
    evbuffer_free(out);
    sg_hdrs_free(&hs);
}

static void test_request_head_absolute_form(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 32768, 100);
    assert_int_equal(sg_hdrs_add_first(&hs, "/p", 2), SG_OK);
    add(&hs, "Host", "wrong");
    add(&hs, "X-A", "1");
    sg_hdrs_classify(&hs);
    struct evbuffer *out = evbuffer_new();
    struct sg_http1_fwd f = {.method = "GET",
                             .method_len = 3,
                             .client_ip = "10.1.1.1",
                             .proto = "http",
                             .client_minor = 1,
                             .override_host = "right.example:81",
                             .override_host_len = 16};
    sg_http1_write_request_head(out, &hs, &f);
    char *s = buf_str(out);
    assert_string_equal(s, "GET /p HTTP/1.1\r\nHost: right.example:81\r\nX-A: 1\r\n"
                           "X-Forwarded-For: 10.1.1.1\r\nX-Forwarded-Proto: http\r\n"
                           "X-Forwarded-Host: right.example:81\r\nVia: 1.1 surgegate\r\n\r\n");
    free(s);
    evbuffer_free(out);
    sg_hdrs_free(&hs);
}

static bool same(const char *a, const char *b)
{
    return sg_http1_same_authority(a, strlen(a), b, strlen(b), 80);
}

/* An absolute-form target's authority against Host (session_parse.c). */
static void test_same_authority(void **st)
{
    assert_true(same("a.example", "a.example"));
    assert_true(same("A.Example", "a.EXAMPLE"));
    assert_true(same("a.example:80", "a.example"));
    assert_true(same("a.example", "a.example:80"));
    assert_true(same("a.example:", "a.example:80"));
    assert_true(same("a.example:0080", "a.example"));
    assert_true(same("a.example:8080", "A.EXAMPLE:8080"));
    assert_true(same("[::1]", "[::1]:80"));
    assert_true(same("[FE80::1]:81", "[fe80::1]:81"));
    assert_false(same("evil.example", "a.example"));
    assert_false(same("a.example:81", "a.example"));
    assert_false(same("a.example", "a.example:8080"));
    assert_false(same("a.example.", "a.example"));
    assert_false(same("a.example:x", "a.example:x"));
    assert_false(same("a.example:65536", "a.example:65536"));
    assert_false(same("a.example:000080", "a.example"));
    assert_false(same("[::1", "[::1"));
    assert_false(same("[::1]x", "[::1]x"));
    assert_false(same("", ""));
    assert_false(same(":80", ":80"));
    assert_false(same("[::1]", "[::2]"));
}

static void test_response_head(void **st)
{
    struct sg_hdrs hs;
    sg_hdrs_init(&hs, 8192, 65536, 100);
    assert_int_equal(sg_hdrs_add_first(&hs, "OK", 2), SG_OK);
    add(&hs, "Content-Length", "10");
    add(&hs, "Keep-Alive", "timeout=5");
    add(&hs, "X-A", "1");
    sg_hdrs_classify(&hs);
    struct evbuffer *out = evbuffer_new();
    struct sg_http1_resp r = {.status = 200, .chunked = true, .close = true};
    sg_http1_write_response_head(out, &hs, &r);
    char *s = buf_str(out);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n");
    free(s);
    evbuffer_drain(out, evbuffer_get_length(out));
    struct sg_http1_resp h = {.status = 200, .head_only = true, .keep_cl = true};
    sg_http1_write_response_head(out, &hs, &h);
    s = buf_str(out);
    assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-A: 1\r\n\r\n");
    free(s);
    evbuffer_free(out);
    sg_hdrs_free(&hs);
}

static void test_error_responses(void **st)
{
    const int codes[] = {400, 408, 413, 414, 431, 502, 503, 504};
    for (size_t i = 0; i < SG_ARRAY_SIZE(codes); i++) {
        struct evbuffer *out = evbuffer_new();
        sg_http1_write_error(out, codes[i], 0, true, false);
        char *s = buf_str(out);
        char want[16];
        snprintf(want, sizeof(want), "HTTP/1.1 %d ", codes[i]);
        assert_true(strncmp(s, want, strlen(want)) == 0);
        assert_non_null(strstr(s, "Content-Length: "));
        assert_non_null(strstr(s, "Connection: close\r\n"));
        assert_true((strstr(s, "Retry-After: ") != NULL) == (codes[i] == 503));
        assert_true(strlen(s) < 512);
        free(s);
        evbuffer_free(out);
    }
}

/* The answer to a HEAD request carries no body (a keep-alive client would
 * read it as the next response); found by fuzz_http1_response. */
static void test_error_response_to_head(void **st)
{
    struct evbuffer *out = evbuffer_new();
    sg_http1_write_error(out, 502, 0, false, true);
    char *s = buf_str(out);
    const char *end = strstr(s, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end, "\r\n\r\n");
    assert_non_null(strstr(s, "Content-Length: 16\r\n"));
    assert_null(strstr(s, "Connection: close"));
    free(s);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_split_spans),
        cmocka_unit_test(test_fold_detected),
        cmocka_unit_test(test_value_controls_rejected),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_classify_connection_tokens),
        cmocka_unit_test(test_check_request),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_request_head_absolute_form),
        cmocka_unit_test(test_same_authority),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_error_responses),
        cmocka_unit_test(test_error_response_to_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
