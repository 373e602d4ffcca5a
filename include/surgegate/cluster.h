/* cluster.h: several surgegate instances act once (issue 18, item 6).
 *
 * Each instance with a `cluster` group talks to etcd v3 through its JSON
 * gateway (HTTP/1.1 POST of JSON to /v3/..., keys and values in base64) with
 * libevent's evhttp client, on the control thread's event_base: every call is
 * asynchronous, at most one of each kind in flight, each bounded by a
 * timeout; nothing here blocks the workers or the control tick.
 *
 * - Lease: the instance grants itself a lease of cluster.ttl and keeps it
 *   alive every ttl/3. It counts the lease alive until the time it sent the
 *   last successful grant/keepalive plus the TTL etcd answered, so it never
 *   believes in a lease etcd may already have ended.
 * - Leader: at each publish the instance tries a transaction "create
 *   <prefix>leader with my name and my lease if it does not exist" (compare
 *   create_revision == 0). Whoever created it leads until its lease ends
 *   (process killed, etcd unreachable): etcd then deletes the key and the
 *   next transaction of another instance takes it, so the role moves within
 *   the TTL plus one tick. No consensus of our own: etcd's Raft decides.
 * - Members: every instance writes its own record (JSON: its name, the time,
 *   the raw metrics of each pool) under <prefix>members/<name> with its lease
 *   and reads the whole members prefix back; a killed instance's record goes
 *   with its lease.
 * - etcd unreachable: after ttl without an answer the role is LOST (journal
 *   "cluster_lost"); the leader stops leading at its lease's end at the
 *   latest. Nobody runs scale hooks while LOST: the pools keep serving with
 *   what they have (fail static); "cluster_connected" when etcd answers
 *   again.
 * Journal: cluster_leader, cluster_follower, cluster_lost,
 * cluster_connected, cluster_step_down (a leader stopping).
 * Everything here runs on the control thread. */
#ifndef SURGEGATE_CLUSTER_H
#define SURGEGATE_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/autoscale-t.h"
#include "surgegate/cluster-t.h"

struct event_base;
struct evbuffer;
struct sg_cfg_cluster;

/* Starts the client (grants the first lease at once). cfg is copied: the
 * client keeps its settings for its life (a change of the cluster group
 * needs a restart); NULL or a disabled group gives NULL (ALONE). */
struct sg_cluster *sg_cluster_new(struct event_base *base, const struct sg_cfg_cluster *cfg);

/* Cancels every request in flight (their callbacks never run), closes the
 * connections; the lease is not revoked (it ends by itself within the TTL,
 * so a crash and a stop look the same to the others). NULL is a no-op. */
void sg_cluster_free(struct sg_cluster *cl);

/* The process is stopping: revokes the lease (asynchronously; whatever
 * etcd answers) so that the leader key and this instance's record go at
 * once, and stops taking part (never the leader again). NULL: no-op. */
void sg_cluster_step_down(struct sg_cluster *cl);

/* The role now. NULL: SG_CLUSTER_ALONE. */
enum sg_cluster_role sg_cluster_role(const struct sg_cluster *cl);

/* "alone", "leader", "follower", "lost". */
const char *sg_cluster_role_name(enum sg_cluster_role r);

/* This instance's name in the cluster (cfg.name or hostname:pid). */
const char *sg_cluster_name(const struct sg_cluster *cl);

/* Publishes this instance's record (steals it: an object; "name" and
 * "time_ms" are set here) under members/<name>, campaigns for the leader key
 * and reads the members back. Called once a tick. */
void sg_cluster_publish(struct sg_cluster *cl, json_t *record);

/* The raw metrics of pool `pool` in the other live members' records as
 * last read (this instance left out; none while nothing was read within the
 * TTL, or from a record older than 3 TTLs by its own clock), at most max of
 * them into out. Returns how many. NULL: 0. */
size_t sg_cluster_pool_raws(const struct sg_cluster *cl, const char *pool,
                            struct sg_cluster_raw *out, size_t max);

/* The last scale action the leader (another instance) published for pool
 * `pool` ("acted": {action, current, desired, id}): fills *d and *id (the
 * leader's wall ms of it) and returns true; false when there is none or this
 * instance leads. Followers start the same cooldown from it, so that a new
 * leader does not repeat what the old one just did. */
bool sg_cluster_leader_acted(const struct sg_cluster *cl, const char *pool,
                             struct sg_as_decision *d, uint64_t *id);

/* The leader's name as last seen ("" when none is known). */
const char *sg_cluster_leader(const struct sg_cluster *cl);

/* For GET /stats: {"role", "name", "leader", "members": [names], "etcd",
 * "lease_ttl_s", "last_contact_ms_ago", "failovers"}; {"role": "alone"}
 * for NULL. New reference. */
json_t *sg_cluster_json(const struct sg_cluster *cl);

/* Appends surgegate_cluster_leader (0/1), surgegate_cluster_members and
 * surgegate_cluster_etcd_errors_total. NULL: leader 1 (alone decides). */
void sg_cluster_metrics(const struct sg_cluster *cl, struct evbuffer *out);

/* ---- cluster_agg.c: pure, any thread ---- */

/* The autoscaler's metrics from n >= 1 instances' raw inputs of one pool
 * (r[0] is this instance's), with `current` = this instance's backend count
 * (the instances share the pool's backends). Aggregates (README, "HA
 * pairs"): sums for counts and rates (queue depth, in flight, rps);
 * utilization = sum(in flight + queued) / sum(maxconn); error_rate weighted
 * by rps; latency percentiles the highest of the instances that had requests;
 * healthy_backends the lowest. With n = 1 this is the instance's own view. */
void sg_cluster_derive(const struct sg_cluster_raw *r, size_t n, uint32_t current,
                       double m[SG_AS_NMETRICS]);

/* r as a JSON object (NaN as null). New reference. */
json_t *sg_cluster_raw_json(const struct sg_cluster_raw *r);

/* Reads a record's pool object back into *r: missing, null or non-numeric
 * fields become NaN (0 for counts, false for unlimited). Returns SG_OK, or
 * SG_ERR when o is not an object (then *r is all "no data"). */
int sg_cluster_raw_parse(const json_t *o, struct sg_cluster_raw *r);

#endif
