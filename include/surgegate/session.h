/* session.h: client sessions (the request lifecycle). */
#ifndef SURGEGATE_SESSION_H
#define SURGEGATE_SESSION_H

#include <event2/util.h>

#include "surgegate/session-t.h"

/* Takes ownership of an accepted socket and starts reading a request.
 * Worker thread. Returns SG_OK, or SG_ERR after closing fd. */
int sg_session_new(struct sg_worker *w, struct sg_wfrontend *fe, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen);

/* Graceful stop (w->stopping set): an idle session gets a moment for one
 * more request, then a lingering close; a busy one closes (lingering) after
 * a response that says Connection: close: the current one, or the next
 * when the current one's head is out already. Worker thread. */
void sg_session_shutdown(struct sg_session *s);

/* Closes the session now (grace period over). */
void sg_session_abort(struct sg_session *s);

#endif
