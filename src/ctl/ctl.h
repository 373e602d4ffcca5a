/* ctl.h: surgectl's transport (ctl_http.c): the admin address and one
 * HTTP/1.1 exchange with the admin API. The stop flag and the allocation
 * helpers every file uses are in ctl_util.h (ctl_util.c), below both.
 * surgectl is a separate program and does not link the daemon's core. */
#ifndef SURGECTL_CTL_H
#define SURGECTL_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl_util.h"

/* Where the admin API listens: "unix:/path" or "host:port" ("[v6]:port"). */
struct ctl_addr {
    bool is_unix;
    char *path; /* unix socket path (is_unix) */
    char *host; /* host name or address, brackets removed (TCP) */
    char *port; /* decimal port (TCP) */
    char *text; /* the address as the user wrote it, for messages */
};

/* One response: status code, reason phrase and body (NUL-terminated). */
struct ctl_resp {
    int status;
    char *reason;
    char *body;
    size_t len;
};

/* Results of ctl_http_exchange(). */
enum ctl_http_result {
    CTL_HTTP_OK = 0,   /* a complete response is in *resp */
    CTL_HTTP_CONNECT,  /* could not connect (or resolve); err says why */
    CTL_HTTP_TIMEOUT,  /* no complete answer in time */
    CTL_HTTP_IO,       /* the connection broke or closed early */
    CTL_HTTP_PROTOCOL, /* not a valid HTTP/1.x response */
};

/* Parses text into *a (fields allocated; free with ctl_addr_free). Returns
 * 0, or -1 with a message in err. */
int ctl_addr_parse(const char *text, struct ctl_addr *a, char *err, size_t errlen);
void ctl_addr_free(struct ctl_addr *a);

/* Sends one request (method, origin-form target already percent-encoded,
 * optional bearer token, optional JSON body) with "Connection: close" and
 * reads the whole response, parsed by llhttp. timeout_ms bounds the connect
 * and, separately, sending plus reading. On CTL_HTTP_OK *resp owns its
 * strings (ctl_resp_free); otherwise err holds a message (strerror text for
 * CTL_HTTP_CONNECT). */
enum ctl_http_result ctl_http_exchange(const struct ctl_addr *a, const char *method,
                                       const char *target, const char *token, const char *body,
                                       int timeout_ms, struct ctl_resp *resp, char *err,
                                       size_t errlen);
void ctl_resp_free(struct ctl_resp *r);

#endif
