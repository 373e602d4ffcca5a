/* demo.h: the local demo backends of `surgegate --demo`. */
#ifndef SURGEGATE_DEMO_H
#define SURGEGATE_DEMO_H

#include "surgegate/cfg-t.h"

struct event_base;
struct sg_demo;

/* Starts one small HTTP server on `base` per backend of the config's first
 * pool; each answers with its own name ("demo-1 ...") and /healthz. Returns
 * NULL (logged) when a port cannot be bound. Main thread. */
struct sg_demo *sg_demo_start(struct event_base *base, const struct sg_cfg *cfg);
void sg_demo_free(struct sg_demo *d);

#endif
