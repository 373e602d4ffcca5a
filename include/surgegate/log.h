/* log.h: leveled diagnostics to stderr (separate from access log and journal). */
#ifndef SURGEGATE_LOG_H
#define SURGEGATE_LOG_H

#include "surgegate/log-t.h"

extern enum sg_log_level sg_log_level;

void sg_log_set_level(enum sg_log_level level);
/* Parses "error", "warn", "info", "debug"; returns SG_OK or SG_ERR. */
int sg_log_parse_level(const char *s, enum sg_log_level *out);
void sg_log(enum sg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sg_log_error(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_log_warn(...)  sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_log_info(...)  sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_log_debug(...)                      \
    do {                                       \
        if (sg_log_level >= SG_LOG_DEBUG)      \
            sg_log(SG_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
