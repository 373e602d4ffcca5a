/* demo.h: `surgegate --demo`: its backends and their processes (demo.c). */
#ifndef SURGEGATE_DEMO_H
#define SURGEGATE_DEMO_H

#include <stdint.h>

#include <stddef.h>
#include <sys/types.h>

/* The demo's defaults: proxy, admin API (the admin API is on the proxy's
 * port + 1 when `--demo-port P` moves them), the local-spawn state
 * directory of `-t --demo` (a run uses /tmp/surgegate-demo-PID). */
#define SG_DEMO_LISTEN        "127.0.0.1:8080"
#define SG_DEMO_ADMIN         "127.0.0.1:9900"
#define SG_DEMO_STATE_DEFAULT "/tmp/surgegate-local-spawn-demo"
#define SG_DEMO_MAX_BACKENDS  4

/* The demo's own backends: this binary in --demo-backend mode, each a
 * process of its own, all in one process group (pgid, the first one's pid)
 * apart from surgegate's, so that Ctrl-C in the terminal reaches only
 * surgegate, which stops them after the proxy. */
struct sg_demo_procs {
    size_t n;
    pid_t pgid;
    pid_t pid[SG_DEMO_MAX_BACKENDS]; /* 0: exited (reaped) */
    char addr[SG_DEMO_MAX_BACKENDS][64];
};

/* `text` with every `mark` replaced by `value`: a new string owned by the
 * caller. */
char *sg_demo_subst(const char *text, const char *mark, const char *value);

/* The demo configuration text `tmpl` (config/demo.conf, embedded at build
 * time) with every "@HOOKS@" replaced by hooks_dir, the directory of the
 * example hooks, and the other marks left (@LISTEN@, @ADMIN@, @BACKEND1@,
 * @BACKEND2@, @STATE@) by their defaults: replace them first
 * (sg_demo_subst) to set them. A new string owned by the caller. */
char *sg_demo_conf_fill(const char *tmpl, const char *hooks_dir);

/* Whether 127.0.0.1:port (host: a numeric IPv4 address) can be bound now:
 * SG_OK, or SG_ERR with "HOST:PORT is already in use" (or the error) in
 * err. Main thread, before the listeners. */
int sg_demo_port_check(const char *host, int port, char *err, size_t errlen);

/* Starts n demo backends (`exe --demo-backend 127.0.0.1:0`, any free port)
 * with our environment, and reads the address each one prints (5 s in all).
 * SG_OK with *dp filled, or SG_ERR with err set and whatever started
 * stopped. Main thread, before any thread or SIGCHLD handler. */
int sg_demo_spawn(struct sg_demo_procs *dp, const char *exe, size_t n, char *err, size_t errlen);

/* Reaps the demo backends that exited (a user killed one to watch the
 * failover) and logs each. Main thread, from a timer. */
void sg_demo_poll(struct sg_demo_procs *dp);

/* Stops the demo backends: SIGTERM to their process group, SIGKILL after
 * 3 s, and reaps them. Idempotent. Main thread. */
void sg_demo_reap(struct sg_demo_procs *dp);

/* Runs the scale hook `hook` (argv) as a scale_down of pool `pool` from n
 * to 0, as local-spawn documents for stopping all it started, and waits
 * for it (8 s at most; then its process group is killed). SG_OK when it
 * exited 0. Main thread, at the demo's end. */
int sg_demo_stop_spawned(char *const *hook, const char *pool, uint32_t n);

/* Simulated service time of the demo backends' "/" (an app server's work),
 * so that a surge visibly queues. */
#define SG_DEMO_DELAY_MS 20u

/* `surgegate --demo-backend ADDR`: one demo backend on ADDR (port 0: any
 * free port) in the foreground; prints "listening on HOST:PORT" as its first
 * line, serves until SIGTERM/SIGINT, or until the process that
 * $SURGEGATE_DEMO_OWNER names is gone (checked twice a second: the demo sets
 * it, so its backends and those local-spawn starts for it never outlive
 * it). Returns the exit status. */
int sg_demo_backend_run(const char *addr, uint32_t delay_ms);

#endif
