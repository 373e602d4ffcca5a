/* cfg_diag-t.h: the problems found while loading or checking a
 * configuration, each with the line it is about. */
#ifndef SURGEGATE_CFG_DIAG_T_H
#define SURGEGATE_CFG_DIAG_T_H

#include <stddef.h>

enum sg_cfg_severity { SG_CFG_ERROR, SG_CFG_WARNING };

/* One problem found while loading or checking. */
struct sg_cfg_diag {
    enum sg_cfg_severity severity;
    int line; /* 0 when not tied to a line */
    char *msg;
};

struct sg_cfg_diags {
    char *file; /* name to print in FILE:LINE */
    struct sg_cfg_diag *items;
    size_t n, cap;
    size_t nerrors, nwarnings;
};

#endif
