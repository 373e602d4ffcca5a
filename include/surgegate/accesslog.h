/* accesslog.h: the access log, one line per request (JSON lines or the
 * combined format), buffered per worker and written by a writer thread. */
#ifndef SURGEGATE_ACCESSLOG_H
#define SURGEGATE_ACCESSLOG_H

#include "surgegate/accesslog-t.h"

/* Opens path (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640; its directory
 * must exist) and starts the writer thread. Returns the log (the caller owns
 * it: sg_alog_close), or NULL with a message in err (errlen bytes, may be 0).
 * An access log that is off is simply NULL: every function below accepts a
 * NULL log or worker buffer and does nothing. */
struct sg_alog *sg_alog_open(const char *path, enum sg_alog_format fmt, char *err, size_t errlen);

/* A buffer for one worker thread (NULL when a is NULL). Any thread; the
 * buffer is then used by that one worker thread only. */
struct sg_alog_w *sg_alog_worker_new(struct sg_alog *a);

/* Worker thread only: formats r into the worker's buffer (no allocation, no
 * lock, no printf per line); once the buffer holds 32 KiB it is handed to
 * the writer thread (one lock and signal per buffer). If the writer falls
 * more than 64 MiB behind, whole buffers are dropped and counted (logged
 * once per episode) rather than let memory grow. */
void sg_alog_write(struct sg_alog_w *w, const struct sg_alog_rec *r);

/* Worker thread only: hands what is buffered to the writer (from a 1 s timer
 * and at stop). Nothing to do when the buffer is empty. */
void sg_alog_flush(struct sg_alog_w *w);

/* Worker thread (or after it stopped): flushes and frees the buffer. */
void sg_alog_worker_free(struct sg_alog_w *w);

/* Any thread (not from a signal handler: it takes a lock): the writer opens
 * the path again before writing what is handed to it after this call (what
 * was handed before goes to the old file); for logrotate. A failed reopen is
 * logged and the old file kept. */
void sg_alog_reopen(struct sg_alog *a);

/* After every worker buffer is freed: writes everything handed over, stops
 * and joins the writer thread, closes the file and frees the log. */
void sg_alog_close(struct sg_alog *a);

/* The access log's text for an end reason ("ok" for SG_END_NONE). */
const char *sg_end_name(enum sg_end e);

#endif
