/* transport.h: the transports a connection can run over (see transport-t.h). */
#ifndef SURGEGATE_TRANSPORT_H
#define SURGEGATE_TRANSPORT_H

#include "surgegate/transport-t.h"

/* Plain TCP (or any stream socket): readv, sendmsg (MSG_NOSIGNAL, MSG_MORE
 * when asked), shutdown(SHUT_WR), close; batchable (SG_TP_F_BATCH). The
 * default transport of every connection. */
extern const struct sg_transport_ops sg_transport_tcp;

#endif
