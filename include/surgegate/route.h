/* route.h: frontend routing rules -> pool index. */
#ifndef SURGEGATE_ROUTE_H
#define SURGEGATE_ROUTE_H

#include <stddef.h>

#include "surgegate/cfg-t.h"

/* Returns the pool index for a request with this Host (port ignored,
 * case-insensitive) and path: the first matching route, else the
 * frontend's default pool, else -1. host may be NULL. */
/* The first route matching a request (as sg_route_pick), or NULL. */
const struct sg_cfg_route *sg_route_match(const struct sg_cfg_frontend *fe, const char *host,
                                          size_t hostlen, const char *path, size_t pathlen);

int sg_route_pick(const struct sg_cfg_frontend *fe, const char *host, size_t hostlen,
                  const char *path, size_t pathlen);

#endif
