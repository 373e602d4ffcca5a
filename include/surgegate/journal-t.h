/* journal-t.h: types of the event journal (journal.c).
 *
 * The journal is the timeline a postmortem is built from: backend state
 * changes, ejections, queue overflows, admin changes, config loads, hook
 * runs, threshold crossings. Each event is one JSON object
 * {"time":"2026-11-30T19:40:22.123Z","type":"...", ...fields}, kept in a ring
 * in memory (for GET /api/v1/events) and appended as one line to a file. */
#ifndef SURGEGATE_JOURNAL_T_H
#define SURGEGATE_JOURNAL_T_H

/* Opaque: created by sg_journal_new(), freed by sg_journal_free(). */
struct sg_journal;

#endif
