/* cfg_diag.h: the list of configuration problems (cfg_diag.c). Every loader
 * and check appends to one list, so that `surgegate -t` reports all of them
 * at once. Not thread-safe: one list belongs to one load. */
#ifndef SURGEGATE_CFG_DIAG_H
#define SURGEGATE_CFG_DIAG_H

#include <stdio.h>

#include "surgegate/cfg_diag-t.h"

/* An empty list whose messages name `file` (NULL: "<config>"). */
void sg_cfg_diags_init(struct sg_cfg_diags *d, const char *file);
/* Appends one problem; line <= 0 means "not tied to a line". Never fails
 * (aborts when memory runs out). */
void sg_cfg_diag_add(struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
/* Prints every diag as "FILE:LINE: error: msg" (or "FILE: error: msg" for line 0). */
void sg_cfg_diags_print(const struct sg_cfg_diags *d, FILE *out);
/* Frees the messages and the file name and leaves d empty (all zero). */
void sg_cfg_diags_free(struct sg_cfg_diags *d);

#endif
