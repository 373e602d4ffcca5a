/* Unit tests for the event journal (journal.c). */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "surgegate/common.h"
#include "surgegate/journal.h"

/* A fresh temporary directory per test, removed with its files. */
struct tmpdir {
    char dir[64];
    char path[128];
    char path2[128];
};

static void tmpdir_make(struct tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/sg-journal-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/events.jsonl", t->dir);
    snprintf(t->path2, sizeof(t->path2), "%s/events.jsonl.1", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
    unlink(t->path);
    unlink(t->path2);
    rmdir(t->dir);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads every line of a file as JSON objects into a new array. */
static json_t *read_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    assert_non_null(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t e;
        json_t *v;
        assert_true(line[n - 1] == '\n');
        v = json_loads(line, 0, &e);
        if (v == NULL)
            fail_msg("not JSON: %s (%s)", line, e.text);
        assert_true(json_is_object(v));
        json_array_append_new(arr, v);
    }
    free(line);
    fclose(f);
    return arr;
}

static json_t *ev_n(int n)
{
    return json_pack("{s:i}", "n", n);
}

static int ev_get_n(json_t *ev)
{
    json_t *v = json_object_get(ev, "n");
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

static void test_ring_keeps_newest(void **state)
{
    (void)state;
    char err[128];
    struct sg_journal *j = sg_journal_new(NULL, 100, err, sizeof(err));
    json_t *all;

    assert_non_null(j);
    for (int i = 0; i < 250; i++)
        sg_journal_add(j, "test", ev_n(i));
    all = sg_journal_since(j, 0, 0);
    assert_int_equal(json_array_size(all), 100);
    for (size_t i = 0; i < 100; i++) {
        json_t *ev = json_array_get(all, i);
        assert_int_equal(ev_get_n(ev), 150 + (int)i);
        assert_string_equal(json_string_value(json_object_get(ev, "type")), "test");
        assert_true(json_is_string(json_object_get(ev, "time")));
    }
    json_decref(all);
    sg_journal_free(j);
}

static void test_since_and_limit(void **state)
{
    (void)state;
    struct sg_journal *j = sg_journal_new(NULL, 1000, NULL, 0);
    json_t *r;
    uint64_t mid;

    assert_non_null(j);
    for (int i = 0; i < 10; i++)
        sg_journal_add(j, "a", ev_n(i));
    /* the next events are in a later millisecond */
    usleep(3000);
    mid = wall_ms();
    for (int i = 10; i < 20; i++)
        sg_journal_add(j, "b", ev_n(i));

    r = sg_journal_since(j, mid, 0);
    assert_int_equal(json_array_size(r), 10);
    assert_int_equal(ev_get_n(json_array_get(r, 0)), 10);
    assert_int_equal(ev_get_n(json_array_get(r, 9)), 19);
    json_decref(r);

    /* limit: the newest ones, oldest first */
    r = sg_journal_since(j, 0, 5);
    assert_int_equal(json_array_size(r), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ev_get_n(json_array_get(r, (size_t)i)), 15 + i);
    json_decref(r);

    r = sg_journal_since(j, mid, 3);
    assert_int_equal(json_array_size(r), 3);
    assert_int_equal(ev_get_n(json_array_get(r, 0)), 17);
    json_decref(r);

    /* limit larger than the matches */
    r = sg_journal_since(j, 0, 100);
    assert_int_equal(json_array_size(r), 20);
    json_decref(r);

    /* in the future: nothing */
    r = sg_journal_since(j, wall_ms() + 60000, 0);
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);

    /* the copies are independent of the ring */
    r = sg_journal_since(j, 0, 1);
    json_object_set_new(json_array_get(r, 0), "n", json_integer(-1));
    json_decref(r);
    r = sg_journal_since(j, 0, 1);
    assert_int_equal(ev_get_n(json_array_get(r, 0)), 19);
    json_decref(r);
    sg_journal_free(j);
}

static void test_file_lines(void **state)
{
    (void)state;
    struct tmpdir t;
    char err[128];
    struct sg_journal *j;
    json_t *lines;
    struct stat st;
    uint64_t before, after;

    tmpdir_make(&t);
    j = sg_journal_new(t.path, 10, err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    before = wall_ms();
    sg_journal_add(j, "backend_down",
                   json_pack("{s:s,s:s,s:s}", "pool", "app", "backend", "127.0.0.1:9001", "reason",
                             "quote \" backslash \\ newline \n tab \t"));
    sg_journal_add(j, "config_load", NULL);
    /* "time" and "type" in fields do not override the journal's */
    sg_journal_add(j, "x", json_pack("{s:s,s:s,s:i}", "time", "bogus", "type", "bogus", "k", 1));
    /* not an object: kept under "data" */
    sg_journal_add(j, "y", json_pack("[i,i]", 1, 2));
    after = wall_ms();

    lines = read_lines(t.path);
    assert_int_equal(json_array_size(lines), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *ev = json_array_get(lines, i);
        const char *ts = json_string_value(json_object_get(ev, "time"));
        uint64_t ms;
        assert_non_null(ts);
        /* "2026-11-30T19:40:22.123Z" */
        assert_int_equal(strlen(ts), 24);
        assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
        assert_int_equal(sg_journal_parse_time(ts, &ms), SG_OK);
        assert_true(ms >= before && ms <= after);
        /* "time" comes first, then "type" */
        assert_string_equal(json_object_iter_key(json_object_iter(ev)), "time");
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "type")),
                        "backend_down");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "reason")),
                        "quote \" backslash \\ newline \n tab \t");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 1), "type")),
                        "config_load");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 2), "type")), "x");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, 2), "k")), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(lines, 3), "data")), 2);
    json_decref(lines);
    sg_journal_free(j);
    tmpdir_remove(&t);
}

static void test_new_errors(void **state)
{
    (void)state;
    char err[128] = "";
    assert_null(sg_journal_new("/nonexistent-dir-sg/events.jsonl", 10, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-dir-sg/events.jsonl"));
    err[0] = '\0';
    assert_null(sg_journal_new(NULL, 0, err, sizeof(err)));
    assert_true(err[0] != '\0');
    /* NULL journal: adds only decref */
    sg_journal_add(NULL, "x", json_object());
    sg_journal_free(NULL);
}

static void test_parse_time(void **state)
{
    (void)state;
    uint64_t ms = 0;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-30",
        "2026-11-30T19:40",
        "2026-11-30 19:40:22Z",
        "2026-11-30T19:40:22ZZ",
        "2026-11-30T19:40:22.123Zjunk",
        "2026-11-30T19:40:22 ",
        "2026-11-30T19:40:22.",
        "2026-11-30T19:40:22.1234567890Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-29T00:00:00Z", /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-30T24:00:00Z",
        "2026-11-30T19:60:00Z",
        "2026-11-30T19:40:60Z",
        "2026-11-30T19:40:22+24:00",
        "2026-11-30T19:40:22+01:60",
        "2026-11-30T19:40:22+0100",
        "2026-11-30T19:40:22+01",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00", /* before the epoch */
        "+026-11-30T19:40:22Z",
        "2026-1-30T19:40:22Z",
        "abcd-11-30T19:40:22Z",
        "1700000000000",
    };

    assert_int_equal(sg_journal_parse_time("1970-01-01T00:00:00Z", &ms), SG_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22.123Z", &ms), SG_OK);
    assert_int_equal(ms, 1796067622123ull);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22Z", &ms), SG_OK);
    assert_int_equal(ms, 1796067622000ull);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22+01:00", &ms), SG_OK);
    assert_int_equal(ms, 1796067622000ull - 3600000);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22-05:30", &ms), SG_OK);
    assert_int_equal(ms, 1796067622000ull + 5 * 3600000 + 30 * 60000);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22.5", &ms), SG_OK);
    assert_int_equal(ms, 1796067622500ull);
    assert_int_equal(sg_journal_parse_time("2026-11-30T19:40:22.123456789Z", &ms), SG_OK);
    assert_int_equal(ms, 1796067622123ull);
    assert_int_equal(sg_journal_parse_time("2024-02-29T00:00:00Z", &ms), SG_OK); /* leap */
    assert_int_equal(ms, 1709164800000ull);
    assert_int_equal(sg_journal_parse_time("2000-02-29T12:00:00Z", &ms), SG_OK); /* 400 */
    assert_int_equal(ms, 951825600000ull);
    assert_int_equal(sg_journal_parse_time("2100-02-29T00:00:00Z", &ms), SG_ERR); /* 100 */
    assert_int_equal(sg_journal_parse_time("2038-01-19T03:14:08Z", &ms), SG_OK);
    assert_int_equal(ms, 2147483648000ull);

    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        ms = 42;
        if (sg_journal_parse_time(bad[i], &ms) != SG_ERR)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(sg_journal_parse_time(NULL, &ms), SG_ERR);

    /* every day of 1970..2100 round-trips through gmtime */
    for (int64_t day = 0; day < 131 * 366; day += 1) {
        time_t sec = (time_t)(day * 86400 + 45296); /* 12:34:56 */
        struct tm tm;
        char buf[64];
        gmtime_r(&sec, &tm);
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.007Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_int_equal(sg_journal_parse_time(buf, &ms), SG_OK);
        if (ms != (uint64_t)sec * 1000 + 7)
            fail_msg("%s: %llu", buf, (unsigned long long)ms);
    }
}

static void test_reopen_after_rename(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_journal *j;
    json_t *old_lines, *new_lines;

    tmpdir_make(&t);
    j = sg_journal_new(t.path, 10, NULL, 0);
    assert_non_null(j);
    sg_journal_add(j, "before", ev_n(1));
    assert_int_equal(rename(t.path, t.path2), 0);
    sg_journal_add(j, "before", ev_n(2)); /* still the old (renamed) file */
    assert_int_equal(sg_journal_reopen(j), SG_OK);
    sg_journal_add(j, "after", ev_n(3));
    sg_journal_add(j, "after", ev_n(4));

    old_lines = read_lines(t.path2);
    new_lines = read_lines(t.path);
    assert_int_equal(json_array_size(old_lines), 2);
    assert_int_equal(json_array_size(new_lines), 2);
    assert_int_equal(ev_get_n(json_array_get(old_lines, 1)), 2);
    assert_int_equal(ev_get_n(json_array_get(new_lines, 0)), 3);
    assert_int_equal(ev_get_n(json_array_get(new_lines, 1)), 4);
    json_decref(old_lines);
    json_decref(new_lines);

    /* memory-only journal: reopen is a no-op */
    sg_journal_free(j);
    j = sg_journal_new(NULL, 10, NULL, 0);
    assert_int_equal(sg_journal_reopen(j), SG_OK);
    sg_journal_free(j);
    tmpdir_remove(&t);
}

#define NTHREADS   4
#define PER_THREAD 5000

struct adder {
    struct sg_journal *j;
    int id;
    bool use_default;
};

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        json_t *f = json_pack("{s:i,s:i}", "thread", a->id, "i", i);
        if (a->use_default)
            sg_journal_emit("concurrent", f);
        else
            sg_journal_add(a->j, "concurrent", f);
    }
    return NULL;
}

static void check_concurrent(json_t *events)
{
    int next[NTHREADS] = {0};
    assert_int_equal(json_array_size(events), NTHREADS * PER_THREAD);
    for (size_t k = 0; k < json_array_size(events); k++) {
        json_t *ev = json_array_get(events, k);
        int id = (int)json_integer_value(json_object_get(ev, "thread"));
        int i = (int)json_integer_value(json_object_get(ev, "i"));
        assert_true(id >= 0 && id < NTHREADS);
        /* each thread's events in its own order, none lost or doubled */
        assert_int_equal(i, next[id]);
        next[id]++;
    }
    for (int id = 0; id < NTHREADS; id++)
        assert_int_equal(next[id], PER_THREAD);
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    struct tmpdir t;
    struct sg_journal *j;
    pthread_t th[NTHREADS];
    struct adder a[NTHREADS];
    json_t *mem, *file;

    tmpdir_make(&t);
    j = sg_journal_new(t.path, NTHREADS * PER_THREAD, NULL, 0);
    assert_non_null(j);
    sg_journal_set_default(j);
    for (int i = 0; i < NTHREADS; i++) {
        a[i] = (struct adder){j, i, i % 2 == 1};
        assert_int_equal(pthread_create(&th[i], NULL, adder_main, &a[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    sg_journal_set_default(NULL);
    /* no default journal: emit only frees */
    sg_journal_emit("dropped", json_object());

    mem = sg_journal_since(j, 0, 0);
    check_concurrent(mem);
    file = read_lines(t.path);
    check_concurrent(file);
    /* the file and the ring hold the same events in the same order */
    assert_true(json_equal(mem, file));
    json_decref(mem);
    json_decref(file);
    sg_journal_free(j);
    tmpdir_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_keeps_newest), cmocka_unit_test(test_since_and_limit),
        cmocka_unit_test(test_file_lines),        cmocka_unit_test(test_new_errors),
        cmocka_unit_test(test_parse_time),        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_concurrent_adds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
