/* sdnotify.c: readiness, reload, stop and watchdog messages to systemd
 * through libsystemd's sd_notify (contract in sdnotify.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "surgegate/log.h"
#include "surgegate/sdnotify.h"

#ifdef SG_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

struct sg_sd_watchdog {
    struct event *ev;
};

bool sg_sd_available(void)
{
    return true;
}

/* Sends msg; a failure is logged (once: a socket that refuses one message
 * refuses the next) and otherwise changes nothing. */
static void sd_send(const char *msg)
{
    static bool warned;
    int rc = sd_notify(0, msg);
    if (rc < 0 && !warned) {
        warned = true;
        sg_log_warn("systemd notify: cannot send '%.*s': %s", (int)strcspn(msg, "\n"), msg,
                    strerror(-rc));
    }
}

void sg_sd_ready(void)
{
    sd_send("READY=1\nSTATUS=serving");
}

void sg_sd_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    char msg[128];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading", usec);
    sd_send(msg);
}

void sg_sd_stopping(void)
{
    sd_send("STOPPING=1\nSTATUS=stopping gracefully");
}

void sg_sd_mainpid(long pid)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "MAINPID=%ld\nSTATUS=upgraded: process %ld serves", pid, pid);
    sd_send(msg);
}

static void sd_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    sd_send("WATCHDOG=1");
}

struct sg_sd_watchdog *sg_sd_watchdog_start(struct event_base *base)
{
    uint64_t usec = 0;
    int rc = sd_watchdog_enabled(0, &usec);
    if (rc < 0)
        sg_log_warn("systemd watchdog: bad WATCHDOG_USEC/WATCHDOG_PID: %s", strerror(-rc));
    if (rc <= 0 || usec == 0)
        return NULL;
    struct sg_sd_watchdog *wd = calloc(1, sizeof(*wd));
    if (wd == NULL)
        return NULL;
    wd->ev = event_new(base, -1, EV_PERSIST, sd_on_watchdog, NULL);
    uint64_t half = usec / 2 > 0 ? usec / 2 : 1;
    struct timeval tv = {(time_t)(half / 1000000u), (suseconds_t)(half % 1000000u)};
    if (wd->ev == NULL || event_add(wd->ev, &tv) != 0) {
        sg_log_error("systemd watchdog: cannot start its timer");
        sg_sd_watchdog_free(wd);
        return NULL;
    }
    sd_send("WATCHDOG=1");
    sg_log_info("systemd watchdog: WATCHDOG=1 every %" PRIu64 " ms (WatchdogSec=%" PRIu64 " ms)",
                half / 1000u, usec / 1000u);
    return wd;
}

void sg_sd_watchdog_free(struct sg_sd_watchdog *wd)
{
    if (wd == NULL)
        return;
    if (wd->ev != NULL)
        event_free(wd->ev);
    free(wd);
}

#else /* built without libsystemd (-DSG_SYSTEMD=OFF): nothing is sent */

bool sg_sd_available(void)
{
    return false;
}

void sg_sd_ready(void)
{
    if (getenv("NOTIFY_SOCKET") != NULL)
        sg_log_warn("systemd asks for notifications but this binary was built without libsystemd "
                    "(SG_SYSTEMD=OFF): use a unit of Type=simple");
}

void sg_sd_reloading(void)
{
}

void sg_sd_stopping(void)
{
}

void sg_sd_mainpid(long pid)
{
    (void)pid;
}

struct sg_sd_watchdog *sg_sd_watchdog_start(struct event_base *base)
{
    return NULL;
}

void sg_sd_watchdog_free(struct sg_sd_watchdog *wd)
{
}

#endif
