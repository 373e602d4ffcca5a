/* hook-t.h: types of the hook runner (hook.c) and of the hook output
 * protocol.
 *
 * struct sg_hookrunner is opaque: made by sg_hookrunner_new() on the main
 * thread's event_base, freed by sg_hookrunner_free(). It owns every child it
 * started until the child's result has been delivered. */
#ifndef SURGEGATE_HOOK_T_H
#define SURGEGATE_HOOK_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of the captured output; more is read and discarded (flagged
 * truncated), so a chatty hook never blocks on a full pipe. */
#define SG_HOOK_OUT_MAX (64 * 1024)
#define SG_HOOK_ERR_MAX (16 * 1024)
/* After SIGTERM at the timeout, SIGKILL to the group this much later. */
#define SG_HOOK_KILL_DELAY_MS 2000
/* After the child exited, how long to wait for EOF on its pipes (a grandchild
 * may hold them open) before delivering the result anyway. */
#define SG_HOOK_EOF_GRACE_MS 500
/* Most entries accepted in each of "add" and "remove". */
#define SG_HOOK_MAX_CHANGES 1000

struct sg_hookrunner;

/* What one run did. Valid only during the done callback (out and err belong
 * to the runner and are freed right after it returns). */
struct sg_hook_result {
    bool spawned;         /* false: posix_spawn failed (spawn_errno) */
    int spawn_errno;      /* errno of the failed spawn, 0 when spawned */
    bool timed_out;       /* killed at the timeout */
    int exit_code;        /* 0..255, -1 when killed by a signal (or not spawned) */
    int signal;           /* the signal that ended it, 0 if none */
    uint64_t duration_ms; /* from spawn to exit */
    const char *out;      /* stdout, NUL-terminated, at most SG_HOOK_OUT_MAX bytes */
    size_t outlen;
    bool out_truncated;
    const char *err; /* stderr, NUL-terminated, at most SG_HOOK_ERR_MAX bytes */
    size_t errlen;
    bool err_truncated;
};

typedef void (*sg_hook_done_cb)(const struct sg_hook_result *r, void *arg);

/* Hook output protocol (stdout):
 * {"add":[{"address":"host:port","weight":1,"maxconn":0}],"remove":["host:port"]} */
struct sg_hook_add {
    char *address;    /* as written: "1.2.3.4:80", "[::1]:80" */
    uint32_t weight;  /* 0..256, default 1 */
    uint32_t maxconn; /* 0..1000000 (0: unlimited) when maxconn_set */
    bool maxconn_set; /* false: not in the output; the pool's default applies */
};

struct sg_hook_changes {
    struct sg_hook_add *add;
    size_t nadd;
    char **remove;
    size_t nremove;
};

#endif
