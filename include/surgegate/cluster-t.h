/* cluster-t.h: types of the cluster membership and leader election through
 * etcd (cluster.h) and of the metrics instances share (cluster_agg.c). */
#ifndef SURGEGATE_CLUSTER_T_H
#define SURGEGATE_CLUSTER_T_H

#include <stdbool.h>
#include <stdint.h>

/* The role of this instance.
 * ALONE:    no cluster group: it decides alone (as before issue 18).
 * LEADER:   holds the leader key with a live lease: runs the scale hooks.
 * FOLLOWER: etcd answers and another instance (or nobody yet) leads.
 * LOST:     etcd has not answered for longer than the lease TTL (or not
 *           since startup for that long): nobody is known to lead; this
 *           instance runs no scale hooks (see cluster.h). */
enum sg_cluster_role { SG_CLUSTER_ALONE, SG_CLUSTER_LEADER, SG_CLUSTER_FOLLOWER, SG_CLUSTER_LOST };

/* One instance's raw inputs of one pool's autoscale metrics: what the
 * instance measured itself, published to the others. Aggregated over the
 * instances by sg_cluster_derive() into the autoscaler's metrics. NaN: no
 * data. */
struct sg_cluster_raw {
    double queue_peak; /* highest queue depth during the last second */
    double queued;     /* requests in the queue now */
    double inflight;   /* requests in flight to the pool's backends */
    double maxconn;    /* sum of the usable backends' maxconn */
    bool unlimited;    /* some usable backend has no maxconn */
    double usable;     /* backends usable now */
    double current;    /* backends in the pool (not being removed) */
    double rps;        /* requests per second (last 10 s) */
    double error_rate; /* 5xx and upstream errors / requests (last 10 s) */
    double lat_count;  /* requests in the latency window (last 10 s) */
    double lat_p50_ms; /* NaN when lat_count is 0 */
    double lat_p95_ms;
    double lat_p99_ms;
};

/* The cluster client (cluster.c). */
struct sg_cluster;

#endif
