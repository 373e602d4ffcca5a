/* demo.h: the local demo backends of `surgegate --demo`. */
#ifndef SURGEGATE_DEMO_H
#define SURGEGATE_DEMO_H

#include <stdint.h>

#include "surgegate/cfg-t.h"

struct event_base;
struct sg_demo;

/* Starts one small HTTP server on `base` per backend of the config's first
 * pool; each answers with its own name ("demo-1 ...") and /healthz. Returns
 * NULL (logged) when a port cannot be bound. Main thread. */
struct sg_demo *sg_demo_start(struct event_base *base, const struct sg_cfg *cfg);
void sg_demo_free(struct sg_demo *d);

/* The demo configuration text `tmpl` (config/demo.conf, embedded at build
 * time) with every "@HOOKS@" replaced by hooks_dir, the directory of the
 * example hooks. Returns a new NUL-terminated string owned by the caller. */
char *sg_demo_conf_fill(const char *tmpl, const char *hooks_dir);

/* Simulated service time of the demo backends' "/" (an app server's work),
 * so that a surge visibly queues. */
#define SG_DEMO_DELAY_MS 20u

/* `surgegate --demo-backend ADDR`: one demo backend on ADDR (port 0: any
 * free port) in the foreground; prints "listening on HOST:PORT" as its first
 * line, serves until SIGTERM/SIGINT. Returns the exit status. */
int sg_demo_backend_run(const char *addr, uint32_t delay_ms);

#endif
