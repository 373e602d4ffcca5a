/* admin-t.h: types of the admin API's request bodies (admin.c). */
#ifndef SURGEGATE_ADMIN_T_H
#define SURGEGATE_ADMIN_T_H

#include <stdint.h>

/* Request bodies larger than this are answered 413. */
#define SG_ADMIN_MAX_BODY (64 * 1024)

/* Which endpoint a JSON body was sent to. */
enum sg_admin_body {
    SG_ADMIN_BODY_ADD,    /* POST /api/v1/pools/P/backends: {"address", "weight", "maxconn"} */
    SG_ADMIN_BODY_WEIGHT, /* POST .../backends/B/weight: {"weight"} */
    SG_ADMIN_BODY_STATE,  /* POST .../backends/B/state: {"state"} */
};

/* A parsed request body; which members are set depends on the endpoint. */
struct sg_admin_req {
    char *address;          /* ADD: owned; freed by sg_admin_req_free() */
    uint32_t weight;        /* ADD (default 1), WEIGHT (required) */
    uint32_t maxconn;       /* ADD (default 0) */
    int state;              /* STATE: enum sg_backend_admin (ready, drain or maint) */
    const char *state_name; /* STATE: "ready", "drain" or "maint" (a literal) */
};

#endif
