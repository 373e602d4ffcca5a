/* cfg_keys-internal.h: the key tables' types and the handlers of scalar
 * keys (cfg_scalars.c) that the section tables of cfg_keys.c name; not part
 * of the API. cfg_keys.c -> cfg_scalars.c, never back. */
#ifndef SURGEGATE_CFG_KEYS_INTERNAL_H
#define SURGEGATE_CFG_KEYS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg-internal.h"

/* CFG_OFF(type, field): offset + 1 of a field; 0 in a table means "none". */
#define CFG_OFF(type, field)       (offsetof(type, field) + 1)
#define CFG_FIELD(obj, off1, type) ((type *)((char *)(obj) + (off1)-1))

#define CFG_WHERE_LEN              192

struct cfg_key;

/* A key handler: checks setting s of key k and stores it into obj (the
 * section's struct). `where` names the enclosing element for messages
 * ("pool 'app'"). Problems are reported through ctx; never fails otherwise. */
typedef void (*cfg_key_fn)(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where);

struct cfg_section {
    const char *name;           /* for messages: "timeouts", "a pool" */
    const char *title;          /* for "health of pool 'x'": "health"; NULL for list elements */
    const struct cfg_key *keys; /* terminated by a key with a NULL name */
    size_t line_off;            /* CFG_OFF of the struct's `line` */
    size_t enabled_off;         /* CFG_OFF of a bool set when the group is present, or 0 */
};

struct cfg_key {
    const char *name;
    cfg_key_fn fn;
    size_t off;                         /* CFG_OFF of the field */
    long long min, max;                 /* integers; durations in ms */
    const char *const *choices;         /* cfg_k_enum, NULL-terminated */
    const char *(*choice_at)(size_t i); /* cfg_k_enum: instead of choices, a list kept by its
                                         * subsystem (i-th name, NULL past the last) */
    const struct cfg_section *sub;      /* cfg_k_group */
    size_t set_off;                     /* CFG_OFF of a bool set when the key is written, or 0 */
    size_t line_off;                    /* CFG_OFF of an int receiving the key's line, or 0 */
    bool required;
};

/* cfg_scalars.c: messages (an error on s's line, 0 when s is NULL), value
 * helpers, and the handlers of scalar keys (cfg_key_fn). */
void cfg_err(struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *cfg_type_name(const config_setting_t *s);
void cfg_type_err(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                  const char *expected);
const char *cfg_suggest(const char *word, const char *const *names, size_t n);
const char *cfg_get_string(struct cfg_ctx *ctx, const config_setting_t *s, const char *where);
void cfg_set_string(void *obj, size_t off, const char *v);
/* s as a new NULL-terminated array of strings (an array or list of strings,
 * not empty, no newline in any); NULL after reporting. */
char **cfg_get_strings(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                       const char *what);
void cfg_k_uint(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_size32(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_size64(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_duration(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                    void *obj, const char *where);
void cfg_k_bool(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_string(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_name(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_enum(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_addr(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_cidrs(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                 const char *where);
void cfg_k_admin_listen(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where);
void cfg_k_logpath(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                   void *obj, const char *where);
void cfg_k_urlpath(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                   void *obj, const char *where);
void cfg_k_host(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_method(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_status(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_hash_key(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                    void *obj, const char *where);
void cfg_k_double(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_balance_factor(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                          void *obj, const char *where);
/* Strings of an array or list (none empty of elements, none with a newline);
 * NULL after reporting a problem. NULL-terminated, owned by the caller. */
char **cfg_get_strings(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                       const char *what);
void cfg_k_argv(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_events(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
void cfg_k_rule_value(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                      void *obj, const char *where);

/* cfg_cluster.c: the cluster group's etcd endpoints and key prefix. */
void cfg_k_etcd(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where);
void cfg_k_prefix(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where);
/* cfg_discover.c: host-name backends, "resolvers", "resolve_interval" and
 * the pool's "discover" group. cfg_keys.c -> cfg_discover.c -> cfg_scalars.c. */
extern const struct cfg_section cfg_sec_discover;
/* "address" of a backend: a numeric address as cfg_k_addr, or "name:port". */
void cfg_k_backend_addr(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where);
/* "resolvers" at the top level: [ "ip", "ip:port", "[v6]:port" ]. */
void cfg_k_resolvers(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                     void *obj, const char *where);
/* Checks a pool's discover group (e is the pool's setting) and its host-name
 * backends; fills the members' default maxconn. */
void cfg_discover_check(struct cfg_ctx *ctx, const config_setting_t *e, struct sg_cfg_pool *pool,
                        const char *where);
/* Two backends of one pool name the same host and port (host names compare
 * case-insensitively, without a trailing dot). */
bool cfg_backend_same_name(const struct sg_cfg_backend *a, const struct sg_cfg_backend *b);

#endif
