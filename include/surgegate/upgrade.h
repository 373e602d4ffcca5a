/* upgrade.h: binary upgrade without dropping a connection: the running
 * process starts the executable again and hands it its listening sockets
 * (SCM_RIGHTS over a socket pair) and its runtime state. Main thread. */
#ifndef SURGEGATE_UPGRADE_H
#define SURGEGATE_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "surgegate/pool-t.h"
#include "surgegate/worker-t.h"

/* The running side of an upgrade in progress. */
struct sg_upgrade {
    int sock;  /* our end of the pair: the new process answers 'R' on it */
    pid_t pid; /* the new process */
};

/* The runtime state an upgrade hands over: per pool, the backends with
 * their admin state, health, weight (and whether it was set at runtime) and
 * whether they were added at runtime. */
json_t *sg_upgrade_state(const struct sg_pools *ps);
/* Applies such a state to freshly built pools (not serving yet): backends
 * added at runtime are added, an operator's drain/maint, health and
 * runtime weights set. Returns the backends it applied to. */
size_t sg_upgrade_apply(struct sg_pools *ps, const json_t *state);

/* Starts exe with argv and SURGEGATE_UPGRADE_FD, and hands it the
 * listening sockets lfds and state. SG_OK with *up filled (the caller
 * watches up->sock for the answer), or SG_ERR with err (the child, if any,
 * is gone). */
int sg_upgrade_spawn(const char *exe, char *const argv[], const struct sg_lfds *lfds,
                     json_t *state, struct sg_upgrade *up, char *err, size_t errlen);
/* The new process: reads the handover from fd: the listening sockets
 * (appended to lfds, owned by the caller) and the state (*state, owned).
 * SG_OK or SG_ERR with err. */
int sg_upgrade_receive(int fd, struct sg_lfds *lfds, json_t **state, char *err, size_t errlen);

#endif
