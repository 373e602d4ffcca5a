/* sdnotify.h: telling systemd what the service is doing (sd_notify(3)),
 * for a unit of Type=notify with a watchdog.
 *
 * Built with libsystemd when CMake finds it (option SG_SYSTEMD, on by
 * default when libsystemd-dev is installed). A build without it has the
 * same functions, and they send nothing: such a binary suits Type=simple
 * units only. Outside systemd (no $NOTIFY_SOCKET) they send nothing either.
 * Main thread only. */
#ifndef SURGEGATE_SDNOTIFY_H
#define SURGEGATE_SDNOTIFY_H

#include <stdbool.h>

#include <event2/event.h>

struct sg_sd_watchdog;

/* True when this binary was built with libsystemd. */
bool sg_sd_available(void);

/* READY=1: every listener is open and the workers run (after startup, and
 * again after a reload). */
void sg_sd_ready(void);

/* RELOADING=1 with MONOTONIC_USEC= (now): a reload started; send
 * sg_sd_ready() when it is over, whatever its outcome. */
void sg_sd_reloading(void);

/* STOPPING=1: a graceful stop started. */
void sg_sd_stopping(void);
/* A binary upgrade: process pid (ours, serving now) is the service's main
 * process from now on (MAINPID=); sent by the old one before it stops. */
void sg_sd_mainpid(long pid);

/* When systemd asks for a watchdog (WatchdogSec=, seen through
 * sd_watchdog_enabled(3): $WATCHDOG_USEC, and $WATCHDOG_PID if set), sends
 * WATCHDOG=1 now and then from base's loop every half of that interval, so
 * a main loop that stops turning gets the service killed and restarted.
 * Returns NULL when no watchdog is asked for (or in a build without
 * libsystemd). */
struct sg_sd_watchdog *sg_sd_watchdog_start(struct event_base *base);
void sg_sd_watchdog_free(struct sg_sd_watchdog *wd);

#endif
