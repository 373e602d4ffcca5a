/* alert.h: the names of the alert events (alert.c), the one list that the
 * config loader checks alerts.events against and the control plane emits
 * from. */
#ifndef SURGEGATE_ALERT_H
#define SURGEGATE_ALERT_H

#include <stddef.h>

#include "surgegate/alert-t.h"

/* The name of event e ("backend_down", ...), or NULL when e is out of
 * range. Also the iterator of the list: sg_alert_event_name(0), (1), ...
 * until NULL. The string is static. Pure, any thread. */
const char *sg_alert_event_name(size_t e);

/* The event called `name`, or -1 for an unknown (or NULL) name. Pure, any
 * thread. */
int sg_alert_event_parse(const char *name);

#endif
