/* hook.h: the hook runner (scale and alert hooks run as child processes,
 * never through a shell, without ever blocking the event loop) and the
 * parser of the hooks' output protocol. */
#ifndef SURGEGATE_HOOK_H
#define SURGEGATE_HOOK_H

#include "surgegate/hook-t.h"

struct event_base;

/* Makes a runner on `base` (the main thread's) and installs a SIGCHLD
 * evsignal on it. Reaping uses waitpid(pid, WNOHANG) on this runner's own
 * children only, never waitpid(-1), so other code may have children of its
 * own. Main thread only. Returns NULL if libevent could not make the event. */
struct sg_hookrunner *sg_hookrunner_new(struct event_base *base);

/* Starts argv[0] (an absolute path; never a shell) with argv, the
 * environment exactly envp (NULL-terminated "K=V" strings; NULL means an
 * empty environment) and stdin_data (copied; may be NULL when stdin_len is 0)
 * written to the child's stdin without blocking, then closed. The child gets
 * only fds 0, 1 and 2, its own process group, default signal dispositions and
 * an empty signal mask. At timeout_ms (0: no timeout) its group gets SIGTERM,
 * and SIGKILL SG_HOOK_KILL_DELAY_MS later if it still runs.
 *
 * Returns SG_OK: done(r, arg) will be called exactly once, later, from the
 * event loop, when the child has exited and both its output pipes reached EOF
 * (or SG_HOOK_EOF_GRACE_MS after the exit). A spawn failure (missing file,
 * not executable...) is also reported that way, with r->spawned false.
 * Returns SG_ERR when nothing was started and done will never be called: bad
 * arguments (NULL argv or done, argv[0] not absolute) or no resources (pipes,
 * events). argv, envp and stdin_data need not outlive the call.
 * done may start new runs; it must not call sg_hookrunner_free(). Main thread
 * only. */
int sg_hook_run(struct sg_hookrunner *hr, char *const argv[], char *const envp[],
                const char *stdin_data, size_t stdin_len, uint32_t timeout_ms, sg_hook_done_cb done,
                void *arg);

/* Number of runs whose done callback has not been called yet. */
size_t sg_hookrunner_running(const struct sg_hookrunner *hr);

/* SIGKILLs the process group of every child still running, reaps them
 * (blocking only on those just killed), closes the pipes, calls no done
 * callback, and frees hr. NULL is a no-op. Main thread only, never from a
 * done callback. */
void sg_hookrunner_free(struct sg_hookrunner *hr);

/* Parses a hook's stdout (len bytes, need not be NUL-terminated).
 * Empty or whitespace-only output is "no change". Otherwise it must be one
 * JSON object with only the keys "add" (array of at most SG_HOOK_MAX_CHANGES
 * objects with "address" (required), "weight" (integer 0..256, default 1),
 * "maxconn" (integer 0..1000000, default 0)) and "remove" (array of at most
 * SG_HOOK_MAX_CHANGES address strings). Addresses are host:port with a
 * numeric IPv4 host (or localhost) or a [v6] host and a port 1..65535,
 * checked with the config's sg_cfg_parse_addr() (unix: paths refused).
 * Returns SG_OK with *ch filled (possibly empty; the caller owns it and
 * frees it with sg_hook_changes_free()), or SG_ERR with *ch empty (all or
 * nothing) and a one-line reason in err (errlen bytes, may be 0). Pure: any
 * thread. */
int sg_hook_parse_output(const char *out, size_t len, struct sg_hook_changes *ch, char *err,
                         size_t errlen);

/* Frees what *ch holds and empties it; ch may be NULL. */
void sg_hook_changes_free(struct sg_hook_changes *ch);

#endif
