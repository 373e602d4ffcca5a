/* cfg_progs.c: the programs a configuration runs (scale and alert hooks;
 * a pool's discovery command calls sg_cfg_check_program() too). Each must be
 * an absolute path to a regular file this user may execute. The loaders do
 * not look at the file system (unit tests and fuzzers load configs naming
 * programs that are not there); `surgegate -t` and the start run this check
 * after the load, so that a typo shows up before the surge that needs it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg-internal.h"
#include "surgegate/common.h"

int sg_cfg_check_program(const char *path, const char *what, int line, struct sg_cfg_diags *d)
{
    struct stat st;

    if (path == NULL || path[0] != '/') {
        sg_cfg_diag_add(d, SG_CFG_ERROR, line,
                        "%s: '%s' is not an absolute path (programs run without a shell or "
                        "$PATH)",
                        what, path != NULL ? path : "");
        return SG_ERR;
    }
    if (stat(path, &st) != 0) {
        int e = errno;
        sg_cfg_diag_add(d, SG_CFG_ERROR, line, "%s: program '%s' %s", what, path,
                        e == ENOENT || e == ENOTDIR ? "does not exist" : strerror(e));
        return SG_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        sg_cfg_diag_add(d, SG_CFG_ERROR, line, "%s: '%s' is not a regular file (%s)", what, path,
                        S_ISDIR(st.st_mode) ? "a directory" : "a device, socket or fifo");
        return SG_ERR;
    }
    if (access(path, X_OK) != 0) {
        sg_cfg_diag_add(d, SG_CFG_ERROR, line,
                        "%s: '%s' is not executable by this user (mode %04o): chmod +x it, or "
                        "name the program that runs it",
                        what, path, (unsigned)(st.st_mode & 07777));
        return SG_ERR;
    }
    return SG_OK;
}

int sg_cfg_check_programs(const struct sg_cfg *cfg, struct sg_cfg_diags *d)
{
    char what[192];
    int rc = SG_OK;

    for (size_t i = 0; i < cfg->npools; i++) {
        const struct sg_cfg_pool *p = &cfg->pools[i];
        const struct sg_cfg_autoscale *as = &p->autoscale;
        if (!as->enabled)
            continue;
        if (as->scale_up_hook != NULL) {
            snprintf(what, sizeof(what), "scale_up_hook of pool '%s'", p->name);
            if (sg_cfg_check_program(as->scale_up_hook[0], what, as->scale_up_hook_line, d) !=
                SG_OK)
                rc = SG_ERR;
        }
        if (as->scale_down_hook != NULL) {
            snprintf(what, sizeof(what), "scale_down_hook of pool '%s'", p->name);
            if (sg_cfg_check_program(as->scale_down_hook[0], what, as->scale_down_hook_line, d) !=
                SG_OK)
                rc = SG_ERR;
        }
    }
    if (cfg->alerts.hook != NULL && sg_cfg_check_program(cfg->alerts.hook[0], "hook of alerts",
                                                         cfg->alerts.hook_line, d) != SG_OK)
        rc = SG_ERR;
    cfg_diags_sort(d, 0); /* with the load's own, top to bottom */
    return rc;
}
