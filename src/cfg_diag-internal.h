/* cfg_diag-internal.h: what the cfg_*.c files use of cfg_diag.c beyond
 * cfg_diag.h; not part of the API. */
#ifndef SURGEGATE_CFG_DIAG_INTERNAL_H
#define SURGEGATE_CFG_DIAG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "surgegate/cfg_diag.h"

/* sg_cfg_diag_add() with a va_list (the section loaders' own wrappers). */
void cfg_diag_vadd(struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));

/* vsnprintf(buf, len, fmt, ap) with the diags' cut of long string arguments
 * (a user value is shown as its first 64 bytes, "..." and its length): for
 * the reasons the value parsers write into an errbuf that ends up quoted in
 * a diag or an admin API error. Does nothing when buf is NULL or len 0. */
void cfg_diag_vreason(char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Orders the diags from index `from` on by line (stable), with the ones tied
 * to no line last: a reader goes through the file top to bottom. */
void cfg_diags_sort(struct sg_cfg_diags *d, size_t from);

#endif
