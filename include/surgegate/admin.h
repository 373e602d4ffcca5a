/* admin.h: the admin HTTP/JSON API (/api/v1/...) on the control thread. */
#ifndef SURGEGATE_ADMIN_H
#define SURGEGATE_ADMIN_H

#include <stddef.h>

#include <jansson.h>

#include "surgegate/admin-t.h"
#include "surgegate/cfg-t.h"
#include "surgegate/control-t.h"
#include "surgegate/pool-t.h"

struct event_base;
struct sg_admin;
struct sg_control;
struct sg_discover;

/* Listens on cfg->admin.listen (a unix socket is created mode 0600). NULL
 * when it cannot (logged); an explicitly configured listener that fails is
 * fatal to the caller, the implicit default is not. Changes go through ctl
 * (journal, health checks, workers). Main thread. */
struct sg_admin *sg_admin_start(struct event_base *base, const struct sg_cfg *cfg,
                                struct sg_pools *pools, struct sg_control *ctl);
void sg_admin_stop(struct sg_admin *a);
/* POST reload calls reload, which reloads the configuration and returns its
 * report ({"reloaded": true|false, ...}; 200 or 400); POST upgrade calls
 * upgrade, which starts a binary upgrade ({"started": true|false, ...};
 * 202 or 409). */
void sg_admin_set_reload(struct sg_admin *a, json_t *(*reload)(void *arg),
                         json_t *(*upgrade)(void *arg), void *arg);
/* A reload: the admin API serves the new generation's pools (and reads its
 * admin settings: tokens, deny_backends). Its listener stays. */
void sg_admin_retarget(struct sg_admin *a, const struct sg_cfg *cfg, struct sg_pools *pools);
/* The discovery state to show (GET pools/{pool}: "discover"; /metrics); NULL:
 * none. Main thread. */
void sg_admin_set_discover(struct sg_admin *a, struct sg_discover *d);

/* Parses the JSON body (len bytes, need not be NUL-terminated) sent to the
 * endpoint `kind`. Returns SG_CTL_OK with *rq filled (the caller frees it
 * with sg_admin_req_free()), or the error to answer (SG_CTL_BAD_REQUEST;
 * SG_CTL_TOO_LARGE above SG_ADMIN_MAX_BODY bytes; SG_CTL_INTERNAL out of
 * memory) with *rq empty and the
 * one-line message for the client in err (errlen bytes, may be 0). Checks the body only: whether
 * the address is valid or new is sg_control_add_backend()'s business. Pure: any thread. */
enum sg_ctl_err sg_admin_parse_body(enum sg_admin_body kind, const char *body, size_t len,
                                    struct sg_admin_req *rq, char *err, size_t errlen);
/* Frees what *rq holds and empties it; rq may be NULL. */
void sg_admin_req_free(struct sg_admin_req *rq);

#endif
