/* alert-t.h: the events that an "alerts" group may send to its hook. */
#ifndef SURGEGATE_ALERT_T_H
#define SURGEGATE_ALERT_T_H

/* In the order `-t` lists them; the names are in alert.c. */
enum sg_alert_event {
    SG_ALERT_BACKEND_DOWN,   /* "backend_down" */
    SG_ALERT_BACKEND_UP,     /* "backend_up" */
    SG_ALERT_POOL_DEGRADED,  /* "pool_degraded": under half its backends usable */
    SG_ALERT_POOL_EMPTY,     /* "pool_empty": no backend usable */
    SG_ALERT_POOL_RECOVERED, /* "pool_recovered": usable again after pool_empty */
    SG_ALERT_QUEUE_OVERFLOW, /* "queue_overflow": requests refused at maxqueue */
    SG_ALERT_HOOK_FAILED,    /* "hook_failed": a scale hook failed */
    SG_ALERT_NEVENTS
};

#endif
