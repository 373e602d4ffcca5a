/* lb.h: balancer registry. */
#ifndef SURGEGATE_LB_H
#define SURGEGATE_LB_H

#include <stdbool.h>

#include "surgegate/lb-t.h"

extern const struct sg_lb_ops sg_lb_roundrobin;

/* Returns the algorithm called `name`, or NULL. */
const struct sg_lb_ops *sg_lb_find(const char *name);

/* True when backend id is in req->exclude. */
bool sg_lb_excluded(const struct sg_lb_req *req, uint32_t id);

#endif
