/* session-internal.h: what session.c shares with session_parse.c (the
 * request parser's callbacks); not part of the API. */
#ifndef SURGEGATE_SESSION_INTERNAL_H
#define SURGEGATE_SESSION_INTERNAL_H

#include <llhttp.h>

/* llhttp callbacks over a struct sg_session (parser data): they collect the
 * head, check it, pause at its end and hand the body to the exchange. */
extern const llhttp_settings_t sg_session_rq_settings;

#endif
