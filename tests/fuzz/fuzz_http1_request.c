/* fuzz_http1_request.c: libFuzzer target for the client side of the HTTP/1
 * data plane: what a client sends goes through the real session.c (llhttp,
 * limits, the smuggling checks of http1.c, keep-alive, pipelining, the
 * proxy's own errors) and exchange.c (routing, the forwarded head, body
 * re-framing) to a backend played by fuzz_proxy.h, which answers every
 * request it parses with a small 200.
 *
 * Oracle: everything the backend receives must parse, with llhttp as strict
 * as the proxy's own, as a clean sequence of requests: a forwarded byte a
 * backend would read differently is request smuggling. ASan and UBSan check
 * the rest.
 *
 * Input: byte 0 picks where the rest is split into two writes; byte 1 is
 * kept for options (unused); the rest is what the client sends. */
#include "fuzz.h"
#include "fuzz_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *client = data + 2;
    size_t len = size - 2;
    struct fz_exchange fx = {.mode = FZ_BACKEND_OK};
    fx.at_backend = evbuffer_new();
    fx.at_client = evbuffer_new();
    fz_proxy_run(client, len, fuzz_split(data[0], len), &fx);
    if (fx.backend_bad) {
        size_t n = evbuffer_get_length(fx.at_backend);
        fprintf(stderr, "the backend received what it cannot parse (%s):\n%.*s\n",
                llhttp_get_error_reason(&fx.bp), (int)n,
                (const char *)evbuffer_pullup(fx.at_backend, -1));
        abort();
    }
    evbuffer_free(fx.at_backend);
    evbuffer_free(fx.at_client);
    return 0;
}
