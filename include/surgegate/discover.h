/* discover.h: run-time membership of pools (main thread): backends named
 * by a host name (each A/AAAA record a member, re-resolved at the TTL but
 * at most every resolve_interval) and a pool's "discover" source (dns_srv,
 * file, command). Lookups are asynchronous (c-ares on the main event_base;
 * commands through the hook runner), so the workers never wait for them.
 * Members are added and removed through the control plane (source
 * "discovery"): a member that disappears drains; a failed lookup keeps the
 * last good set and is journaled as "discovery_failed". */
#ifndef SURGEGATE_DISCOVER_H
#define SURGEGATE_DISCOVER_H

#include <jansson.h>

struct event_base;
struct evbuffer;
struct sg_cfg;
struct sg_pool;
struct sg_pools;
struct sg_control;
struct sg_discover;

/* Starts the sources of every pool of cfg; the first lookups run at the
 * loop's next turn. Returns NULL when no pool has one (nothing to do) or
 * when the resolver cannot start (logged; the pools then keep their
 * configured backends only). base, cfg, pools and ctl must outlive it.
 * Main thread. */
struct sg_discover *sg_discover_new(struct event_base *base, const struct sg_cfg *cfg,
                                    struct sg_pools *pools, struct sg_control *ctl);

/* A reload: each source of `to` (built on the new pools) takes over the
 * last good set of the source of `from` watching the same thing (pool,
 * kind, name), with which members that source added, so that it keeps
 * removing only its own. Either may be NULL. Free `from` next. */
void sg_discover_carry(struct sg_discover *to, struct sg_discover *from);

/* Stops every source: cancels DNS queries, kills running commands (their
 * results are dropped), frees d. Members already added stay. NULL is a
 * no-op. Main thread, never from one of d's callbacks. */
void sg_discover_free(struct sg_discover *d);

/* Appends the discovery metric families to out: surgegate_discovery_members
 * {pool,source,name} (the last good set's size) and
 * surgegate_discovery_lookups_total{pool,source,name,result="ok"|"failed"}.
 * d may be NULL (nothing). Main thread. */
void sg_discover_metrics(const struct sg_discover *d, struct evbuffer *out);

/* The pool's sources for the admin API: an array of {source, name, members,
 * lookups_ok, lookups_failed, failing, error?, last_ok?}; empty for a pool
 * without any (or d NULL). Main thread. */
json_t *sg_discover_pool_json(const struct sg_discover *d, const struct sg_pool *p);

#endif
