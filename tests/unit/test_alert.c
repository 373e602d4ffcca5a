/* Unit tests for the alert event names (src/alert.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "surgegate/alert.h"

/* name -> parse round-trips for every event, names are unique, and the
 * list ends with NULL at SG_ALERT_NEVENTS. */
static void test_alert_names(void **state)
{
    (void)state;
    for (size_t e = 0; e < SG_ALERT_NEVENTS; e++) {
        const char *name = sg_alert_event_name(e);
        assert_non_null(name);
        assert_int_equal(sg_alert_event_parse(name), (int)e);
        for (size_t j = 0; j < e; j++)
            assert_string_not_equal(sg_alert_event_name(j), name);
    }
    assert_null(sg_alert_event_name(SG_ALERT_NEVENTS));
    assert_null(sg_alert_event_name((size_t)-1));
    assert_string_equal(sg_alert_event_name(SG_ALERT_BACKEND_DOWN), "backend_down");
    assert_string_equal(sg_alert_event_name(SG_ALERT_HOOK_FAILED), "hook_failed");
}

static void test_alert_parse_unknown(void **state)
{
    (void)state;
    assert_int_equal(sg_alert_event_parse(NULL), -1);
    assert_int_equal(sg_alert_event_parse(""), -1);
    assert_int_equal(sg_alert_event_parse("backend_dwn"), -1);
    assert_int_equal(sg_alert_event_parse("BACKEND_DOWN"), -1);
    assert_int_equal(sg_alert_event_parse("backend_state"), -1); /* journaled, never alerted */
    assert_int_equal(sg_alert_event_parse("pool_empty"), SG_ALERT_POOL_EMPTY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_names),
        cmocka_unit_test(test_alert_parse_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
