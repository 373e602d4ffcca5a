/* fuzz_http1.h: the oracle the two HTTP/1 fuzz targets share: whatever head
 * the proxy writes must parse back, with llhttp in the same strict mode, as
 * one head with exactly the framing the proxy meant to send (a forwarded
 * head that a backend would read differently is request smuggling). */
#ifndef SURGEGATE_FUZZ_HTTP1_H
#define SURGEGATE_FUZZ_HTTP1_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <llhttp.h>

static int fuzz_reparse_headers_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

/* Parses the whole of `head` (a message head the proxy wrote) as `type`.
 * Aborts unless it is exactly one complete head whose framing is
 * Transfer-Encoding: chunked when `chunked`, else Content-Length: `length`
 * when `has_length`, else neither. head_only: a response that can carry
 * no body (HEAD, 1xx, 204, 304): its framing is not checked. */
static inline void fuzz_reparse_head(struct evbuffer *head, llhttp_type_t type, bool chunked,
                                     bool has_length, uint64_t length, bool head_only)
{
    static llhttp_settings_t st;
    static bool st_ready;
    if (!st_ready) {
        llhttp_settings_init(&st);
        st.on_headers_complete = fuzz_reparse_headers_complete;
        st_ready = true;
    }
    size_t n = evbuffer_get_length(head);
    const char *data = (const char *)evbuffer_pullup(head, -1);
    if (n == 0 || data == NULL)
        abort();
    llhttp_t p;
    llhttp_init(&p, type, &st);
    llhttp_errno_t err = llhttp_execute(&p, data, n);
    if (err != HPE_PAUSED || llhttp_get_error_pos(&p) != data + n) {
        fprintf(stderr, "written head does not parse back (%s: %s):\n%.*s\n",
                llhttp_errno_name(err), llhttp_get_error_reason(&p), (int)n, data);
        abort();
    }
    if (head_only)
        return;
    bool te = (p.flags & F_CHUNKED) != 0;
    bool cl = (p.flags & F_CONTENT_LENGTH) != 0;
    if (te != chunked || cl != (!chunked && has_length) || (cl && p.content_length != length)) {
        fprintf(stderr, "written head has other framing than meant:\n%.*s\n", (int)n, data);
        abort();
    }
}

#endif
