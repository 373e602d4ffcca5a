/* journal.h: the event journal, a ring of JSON events in memory and a JSON
 * lines file (separate from the diagnostics log and the access log). */
#ifndef SURGEGATE_JOURNAL_H
#define SURGEGATE_JOURNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/journal-t.h"

/* Creates a journal that keeps the last ring_size (>= 1) events in memory
 * and, when path != NULL, appends each one as a line to that file (opened
 * O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640; its directory must exist).
 * Returns the journal (the caller owns it), or NULL with a message in err
 * (errlen bytes, may be 0). Any thread. */
struct sg_journal *sg_journal_new(const char *path, size_t ring_size, char *err, size_t errlen);

/* Frees the journal, its events and closes the file. NULL is a no-op. The
 * caller makes sure no other thread uses it any more (unset it as the
 * default journal first). */
void sg_journal_free(struct sg_journal *j);

/* Adds the event {"time":"<now, UTC, ISO-8601 with ms>","type":type,...fields}.
 * fields is a JSON object or NULL and is stolen (decref'd here, whatever
 * happens); its keys "time" and "type" are ignored; a fields value that is
 * not an object is kept under "data". The line is written to the file at
 * once with one write(); a write error is logged once (sg_log_warn) until a
 * write succeeds again, and the event is kept in memory all the same.
 * Thread-safe. j == NULL only decrefs fields. */
void sg_journal_add(struct sg_journal *j, const char *type, json_t *fields);

/* The events whose time >= since_ms (ms since the epoch; 0 = all), oldest
 * first; at most `limit` of them (0 = no limit), the newest ones when more
 * match. Returns a new JSON array of copies (the caller owns it). Thread-safe. */
json_t *sg_journal_since(struct sg_journal *j, uint64_t since_ms, size_t limit);

/* For logrotate: opens the file again by its path and closes the old
 * descriptor; later events go to the new file. SG_OK (also when the journal
 * has no file), or SG_ERR after logging why (the old file is kept). Thread-safe. */
int sg_journal_reopen(struct sg_journal *j);

/* Parses an ISO-8601 time as used in ?since=: "2026-11-30T19:40:22.123Z",
 * "2026-11-30T19:40:22Z", "2026-11-30T19:40:22+01:00",
 * "2026-11-30T19:40:22.5" (no zone = UTC; 1 to 9 fraction digits). Stores ms
 * since the epoch in *ms and returns SG_OK; SG_ERR for anything else
 * (trailing junk, out-of-range fields, a time before 1970). Pure. */
int sg_journal_parse_time(const char *s, uint64_t *ms);

/* A process-wide default journal, so that any module can emit events
 * without plumbing. set_default(NULL) unsets it; once it returns no
 * sg_journal_emit() call is still using the old journal, which may then be
 * freed. Thread-safe. */
void sg_journal_set_default(struct sg_journal *j);

/* sg_journal_add() to the default journal; without one, only decrefs fields.
 * Thread-safe. */
void sg_journal_emit(const char *type, json_t *fields);

/* sg_journal_since() on the default journal; NULL when there is none. */
json_t *sg_journal_default_since(uint64_t since_ms, size_t limit);

#endif
