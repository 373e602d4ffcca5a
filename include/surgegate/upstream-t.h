/* upstream-t.h: connections to backends. */
#ifndef SURGEGATE_UPSTREAM_T_H
#define SURGEGATE_UPSTREAM_T_H

#include <stdbool.h>
#include <stdint.h>

#include "surgegate/conn-t.h"

#define SG_UPCONN_MAGIC 0x0bc0a11eu

struct sg_worker;
struct sg_backend;

/* One connection to a backend. Owned by the worker's idle list while idle,
 * by exactly one session while in use. */
struct sg_upconn {
    uint32_t magic;
    struct sg_worker *w;
    struct sg_backend *b;
    struct sg_conn conn;
    struct sg_upconn *prev, *next; /* idle list links */
    bool idle;                     /* in the idle list */
    bool connected;                /* connect completed */
    bool reused;                   /* taken from the idle list (may be stale) */
    uint32_t nreq;                 /* requests sent on it */
    bool counted;                  /* counted in its backend's conns_active */
};

#endif
