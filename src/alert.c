/* alert.c: the alert event names (alert.h). A leaf: a table and two
 * lookups, used by the config loader (validation, `-t` messages), the
 * control plane (the events it alerts on) and `surgegate --list-names`. */
#include <string.h>

#include "surgegate/alert.h"

static const char *const alert_names[SG_ALERT_NEVENTS] = {
    [SG_ALERT_BACKEND_DOWN] = "backend_down",     [SG_ALERT_BACKEND_UP] = "backend_up",
    [SG_ALERT_POOL_DEGRADED] = "pool_degraded",   [SG_ALERT_POOL_EMPTY] = "pool_empty",
    [SG_ALERT_POOL_RECOVERED] = "pool_recovered", [SG_ALERT_QUEUE_OVERFLOW] = "queue_overflow",
    [SG_ALERT_HOOK_FAILED] = "hook_failed",
};

const char *sg_alert_event_name(size_t e)
{
    return e < SG_ALERT_NEVENTS ? alert_names[e] : NULL;
}

int sg_alert_event_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int e = 0; e < SG_ALERT_NEVENTS; e++)
        if (strcmp(alert_names[e], name) == 0)
            return e;
    return -1;
}
