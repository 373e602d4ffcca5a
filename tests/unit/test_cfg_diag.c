/* Unit tests for the configuration problem list (src/cfg_diag.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/cfg_diag-internal.h"

/* What sg_cfg_diags_print() writes, as a string owned by the caller. */
static char *printed(const struct sg_cfg_diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    sg_cfg_diags_print(d, f);
    fclose(f);
    return buf;
}

static void test_diag_add_count_print(void **state)
{
    (void)state;
    struct sg_cfg_diags d;
    sg_cfg_diags_init(&d, "a.conf");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 3, "bad %s", "thing");
    sg_cfg_diag_add(&d, SG_CFG_WARNING, 0, "no line");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, -2, "negative line is no line");
    assert_int_equal(d.n, 3);
    assert_int_equal(d.nerrors, 2);
    assert_int_equal(d.nwarnings, 1);
    assert_int_equal(d.items[2].line, 0);
    char *out = printed(&d);
    assert_string_equal(out, "a.conf:3: error: bad thing\n"
                             "a.conf: warning: no line\n"
                             "a.conf: error: negative line is no line\n");
    free(out);
    sg_cfg_diags_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.items);
    assert_null(d.file);

    sg_cfg_diags_init(&d, NULL);
    assert_string_equal(d.file, "<config>");
    sg_cfg_diags_free(&d);
}

/* Many messages (the list grows), long ones (arguments up to 256 bytes are
 * formatted in full). */
static void test_diag_grows(void **state)
{
    (void)state;
    struct sg_cfg_diags d;
    char big[257];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sg_cfg_diags_init(&d, "b.conf");
    for (int i = 0; i < 100; i++)
        sg_cfg_diag_add(&d, SG_CFG_WARNING, i + 1, "%d %s %s", i, big, big);
    assert_int_equal(d.n, 100);
    assert_int_equal(d.nwarnings, 100);
    assert_int_equal(strlen(d.items[99].msg), 3 + 2 * (sizeof(big) - 1) + 1);
    sg_cfg_diags_free(&d);
}

/* A user value of any size is cut in the message: its first 64 bytes, "..."
 * and its length (a 5 MB bad value once made a 5 MB line in `surgegate -t`). */
static void test_diag_cuts_long_values(void **state)
{
    (void)state;
    struct sg_cfg_diags d;
    size_t n = 5u << 20;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memset(huge, 'a', n);
    huge[n] = '\0';
    sg_cfg_diags_init(&d, "c.conf");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 1, "bad value '%s' for '%s' in %s", huge, "balance",
                    "pool 'app'");
    char want[256];
    snprintf(want, sizeof(want), "bad value '%.64s...(5242880 bytes)' for 'balance' in pool 'app'",
             huge);
    assert_string_equal(d.items[0].msg, want);

    /* 257 bytes: cut; a precision bounds the length first */
    huge[257] = '\0';
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 2, "<%s>", huge);
    snprintf(want, sizeof(want), "<%.64s...(257 bytes)>", huge);
    assert_string_equal(d.items[1].msg, want);
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 3, "<%.*s>", 10, huge);
    assert_string_equal(d.items[2].msg, "<aaaaaaaaaa>");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 3, "<%.300s>", huge);
    snprintf(want, sizeof(want), "<%.64s...(257 bytes)>", huge);
    assert_string_equal(d.items[3].msg, want);

    /* the cut never splits a UTF-8 sequence: 63 'a' then "é" (2 bytes) */
    memcpy(huge + 63, "\xc3\xa9", 2);
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 4, "%s", huge);
    snprintf(want, sizeof(want), "%.63s...(257 bytes)", huge);
    assert_string_equal(d.items[4].msg, want);
    free(huge);

    /* every other conversion as printf does it */
    sg_cfg_diag_add(&d, SG_CFG_WARNING, 5,
                    "%d|%5u|%-4s|%lld|%llu|%zu|%ld|%g|%.2f|%*d|%.*s|%%|%c|%x|%s|%03d%%", -7, 42u,
                    "ab", -9000000000LL, 18000000000ULL, (size_t)12, 123456789L, 0.25, 3.14159, 4,
                    7, 2, "xyz", 'Q', 255u, "s", 5);
    char ref[256];
    snprintf(ref, sizeof(ref), "%d|%5u|%-4s|%lld|%llu|%zu|%ld|%g|%.2f|%*d|%.*s|%%|%c|%x|%s|%03d%%",
             -7, 42u, "ab", -9000000000LL, 18000000000ULL, (size_t)12, 123456789L, 0.25, 3.14159, 4,
             7, 2, "xyz", 'Q', 255u, "s", 5);
    assert_string_equal(d.items[5].msg, ref);
    sg_cfg_diags_free(&d);
}

/* Sorting from an index on: by line, stable, line 0 last; the items before
 * `from` stay where they are. */
static void test_diag_sort(void **state)
{
    (void)state;
    struct sg_cfg_diags d;
    sg_cfg_diags_init(&d, "c.conf");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 9, "kept first");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 0, "z");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 5, "b");
    sg_cfg_diag_add(&d, SG_CFG_WARNING, 2, "a");
    sg_cfg_diag_add(&d, SG_CFG_ERROR, 5, "c");
    cfg_diags_sort(&d, 1);
    const char *want[] = {"kept first", "a", "b", "c", "z"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(d.items[i].msg, want[i]);
    sg_cfg_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag_add_count_print),
        cmocka_unit_test(test_diag_grows),
        cmocka_unit_test(test_diag_cuts_long_values),
        cmocka_unit_test(test_diag_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
