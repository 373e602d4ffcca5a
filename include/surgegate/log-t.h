/* log-t.h: types of the leveled diagnostics log. */
#ifndef SURGEGATE_LOG_T_H
#define SURGEGATE_LOG_T_H

enum sg_log_level { SG_LOG_ERROR = 0, SG_LOG_WARN = 1, SG_LOG_INFO = 2, SG_LOG_DEBUG = 3 };

#endif
