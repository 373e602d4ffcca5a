/* admin.h: the admin HTTP/JSON API (/api/v1/...) on the control thread. */
#ifndef SURGEGATE_ADMIN_H
#define SURGEGATE_ADMIN_H

#include "surgegate/cfg-t.h"
#include "surgegate/pool-t.h"

struct event_base;
struct sg_admin;
struct sg_control;

/* Listens on cfg->admin.listen (a unix socket is created mode 0600). NULL
 * when it cannot (logged); an explicitly configured listener that fails is
 * fatal to the caller, the implicit default is not. Changes go through ctl
 * (journal, health checks, workers). Main thread. */
struct sg_admin *sg_admin_start(struct event_base *base, const struct sg_cfg *cfg,
                                struct sg_pools *pools, struct sg_control *ctl);
void sg_admin_stop(struct sg_admin *a);

#endif
