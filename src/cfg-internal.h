/* cfg-internal.h: what the cfg_*.c files share; not part of the API.
 *
 * cfg.c          loading (file/string), pre-scan, freeing
 * cfg_diag.c     the list of problems (cfg_diag-internal.h)
 * cfg_defaults.c the default of every element
 * cfg_values.c   duration/size/address/status-range parsers, argv arrays
 * cfg_keys.c     keyword tables per section and the section loaders
 * cfg_scalars.c  the handlers of scalar keys (cfg_keys-internal.h)
 * cfg_lint.c     capacity warnings
 * cfg_progs.c    the programs a config runs: present and executable (after a load)
 *
 * Calls go one way: cfg.c -> cfg_keys.c -> cfg_scalars.c, cfg_keys.c ->
 * cfg_defaults.c -> cfg_values.c, cfg.c -> cfg_lint.c, and every one of
 * them -> cfg_diag.c (cfg_progs.c too). */
#ifndef SURGEGATE_CFG_INTERNAL_H
#define SURGEGATE_CFG_INTERNAL_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>

#include "cfg_diag-internal.h"
#include "surgegate/cfg.h"

/* State of one load: the config being filled and where problems go. */
struct cfg_ctx {
    struct sg_cfg *cfg;
    struct sg_cfg_diags *diags;
    /* "frontends" is loaded after everything else, once pool names are known */
    const config_setting_t *frontends;
    const config_setting_t *admin_listen; /* for the duplicate listen check */
};

/* cfg_defaults.c */
/* Fills every field of a fresh struct with its documented default. */
void cfg_defaults(struct sg_cfg *cfg);
void cfg_frontend_defaults(struct sg_cfg_frontend *fe);
void cfg_pool_defaults(struct sg_cfg_pool *pool);
void cfg_backend_defaults(struct sg_cfg_backend *be);

/* cfg_values.c */
/* Like sg_cfg_parse_duration() but returns NULL on success or the reason. */
const char *cfg_duration_reason(const char *s, uint32_t *out_ms);
/* Writes ms with the largest unit that represents it exactly ("90s", "2m"). */
void cfg_format_duration(uint32_t ms, char *buf, size_t len);
/* Same socket address (IPv4/IPv6 address and port, or unix path). */
bool cfg_addr_equal(const struct sg_cfg_addr *a, const struct sg_cfg_addr *b);
/* Frees a NULL-terminated array of strings (hooks, alert events); NULL is a no-op. */
void cfg_argv_free(char **argv);

/* cfg_keys.c: loads the root group into ctx->cfg, appending every problem. */
void cfg_load_root(struct cfg_ctx *ctx, const config_setting_t *root);

#endif
