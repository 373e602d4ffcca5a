/* reload-t.h: a generation of the running configuration (reload.h). */
#ifndef SURGEGATE_RELOAD_T_H
#define SURGEGATE_RELOAD_T_H

#include <stdint.h>

#include "surgegate/cfg-t.h"
#include "surgegate/pool-t.h"

struct sg_gate;
struct sg_stats;
struct sg_worker;

/* Everything that serves traffic under one configuration: the file's
 * values, the pools built from them, each frontend's connection gate and
 * the worker threads. A reload builds the next generation beside the
 * running one, hands the control plane over to it, and lets the old one
 * drain (its workers finish what they hold, within timeouts.grace). */
struct sg_gen {
    struct sg_cfg *cfg; /* owned */
    struct sg_pools pools;
    struct sg_gate *gates; /* one per frontend */
    struct sg_worker **workers;
    uint32_t nworkers;
    uint32_t started;       /* workers whose thread was started */
    uint64_t retired_ms;    /* monotonic ms it was told to stop (0: serving) */
    struct sg_stats *stats; /* while draining: its statistics (sg_control_fold) */
    struct sg_gen *next;    /* the list of generations still draining (main.c) */
};

#endif
