/* autoscale.h: the autoscaler's decision engine. Pure logic (no I/O, no
 * clock of its own, no locks): the caller feeds it one pool's metrics once
 * per second, runs the hook it decides on, and tells it what it did.
 *
 * Semantics (issue 6, like the Kubernetes HPA):
 * - "above X for D": the metric was > X at every evaluation for >= D ->
 *   recommends current + step; otherwise the rule abstains. "below X for D":
 *   < X for >= D -> current - step; otherwise it recommends current (keep).
 * - "target T": desired = ceil(current x metric / T); within +-10% of T it
 *   recommends current; it abstains when current is 0. A "for" on a target
 *   rule delays it: it recommends current until the metric has stayed on the
 *   same side outside the dead band for that long.
 * - NaN (no data): the condition is false (above abstains, below keeps) and
 *   a target rule abstains.
 * - Up when any recommendation > current (the largest wins); down only when
 *   every rule that votes recommends < current (the largest of them).
 * - The result is clamped to [min, max]; one action changes the count by at
 *   most step. Every UP waits for scale_up_cooldown after the last UP. A DOWN
 *   goes only to the highest combined recommendation of the evaluations in
 *   the last scale_down_window (kept in buckets of 1 s, or window/3600 for
 *   windows over an hour; a bucket stays for a window after the last
 *   evaluation in it), and only when that is below current. The
 *   first evaluation also counts the pool as it is, so a fresh engine does
 *   not scale down before one window has passed. When current > max, DOWN
 *   to max at once.
 * - dry_run is the caller's business. */
#ifndef SURGEGATE_AUTOSCALE_H
#define SURGEGATE_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/autoscale-t.h"
#include "surgegate/cfg-t.h"

/* The config name of a metric ("queue_depth", ...) -> enum sg_as_metric, or
 * -1 for an unknown (or NULL) name. Pure, any thread. */
int sg_as_metric_parse(const char *name);

/* The config name of metric m, or "unknown" when m is out of range (never
 * NULL). The string is static. Pure, any thread. */
const char *sg_as_metric_name(int m);

/* The metric names in enum order, i = 0, 1, ...: the i-th one, or NULL past
 * the last (for lists and validation). Pure, any thread. */
const char *sg_as_metric_at(size_t i);

/* Creates the engine of one pool from its (checked) autoscale config. cfg is
 * borrowed and must outlive the engine. Returns NULL when cfg is NULL or a
 * rule names an unknown metric (cfg_keys.c rejects those at load). Memory is
 * bounded by the scale_down_window (at most ~3600 samples). */
struct sg_as *sg_as_new(const struct sg_cfg_autoscale *cfg);

/* A reload: `to` (built from the new configuration) takes over from
 * `from` its scale-up cooldown, its scale-down window's recommendations,
 * and the running conditions of the rules that stay the same at the same
 * place (metric, kind, value). */
void sg_as_carry(struct sg_as *to, const struct sg_as *from);

/* Frees the engine. NULL is a no-op. */
void sg_as_free(struct sg_as *as);

/* Evaluates at now_ms (monotonic; a time earlier than a previous call counts
 * as that previous time) with this tick's metric values m (NaN = no data)
 * and `current` = the backends in the pool now (not counting those being
 * removed). Fills *out: action NONE when nothing is to be done (including a
 * scale-up still in its cooldown, with "cooldown" in the reason). Updates
 * the rules' condition times and the scale-down window; does not change the
 * cooldown state. Not thread-safe: one thread per engine. */
void sg_as_eval(struct sg_as *as, uint64_t now_ms, const double m[SG_AS_NMETRICS], uint32_t current,
                struct sg_as_decision *out);

/* The caller acted on d (ran the hook, or journaled it in dry_run) at now_ms:
 * an UP starts the scale-up cooldown and keeps d->desired in the scale-down
 * window (no DOWN within the window after an UP); NONE is ignored. Same
 * thread as sg_as_eval(). */
void sg_as_acted(struct sg_as *as, uint64_t now_ms, const struct sg_as_decision *d);

/* Whether a scale-up acted on at most scale_up_cooldown before now_ms
 * keeps the next one waiting. Same thread as sg_as_eval(). */
bool sg_as_up_cooling(const struct sg_as *as, uint64_t now_ms);

/* For the admin API and the journal: whether rule `rule`'s condition held at
 * the last evaluation (above/below: the comparison; target: outside the dead
 * band) and, in *since_ms (may be NULL), since when (0 when it does not hold
 * or the rule index is out of range). Same thread as sg_as_eval(). */
bool sg_as_rule_state(const struct sg_as *as, size_t rule, uint64_t *since_ms);

#endif
