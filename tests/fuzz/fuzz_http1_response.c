/* fuzz_http1_response.c: libFuzzer target for the backend side of the
 * HTTP/1 data plane: a backend played by fuzz_proxy.h answers one client
 * request with the input's bytes (in two writes, then it closes); they go
 * through the real exchange.c (llhttp, interim 1xx, trailers, Content-Length
 * bodies moved unparsed, close-delimited bodies, bad responses) and
 * session.c (framing for the client: chunked for HTTP/1.1, close for 1.0,
 * no body after HEAD, 204 or 304).
 *
 * Oracle: what the client receives parses, with strict llhttp, as interim
 * responses and at most one final response, possibly cut short (a backend
 * that fails mid-response ends the client connection), and nothing after
 * it. ASan and UBSan check the rest.
 *
 * Input: byte 0 picks where the rest is split into two writes; byte 1: bit
 * 1 a HEAD request, bit 2 an HTTP/1.0 client, bit 4 a POST whose body is
 * still arriving; the rest is what the backend sends. */
#include "fuzz.h"
#include "fuzz_proxy.h"

struct fz_client {
    bool head;  /* the request was HEAD: a final response has no body */
    int nfinal; /* final responses seen */
};

static int fz_client_headers_complete(llhttp_t *p)
{
    struct fz_client *c = p->data;
    if (p->status_code < 200)
        return 0;
    c->nfinal++;
    return c->head ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char *const requests[] = {
        "GET /r HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /r HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /r HTTP/1.0\r\n\r\n",
        "HEAD /r HTTP/1.0\r\n\r\n",
    };
    uint8_t opt = data[1];
    const char *rq = requests[opt & 3];
    char post[] = "POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf";
    if (opt & 4)
        rq = post;
    const uint8_t *resp = data + 2;
    size_t len = size - 2, split = fuzz_split(data[0], len);
    struct fz_exchange fx = {.mode = FZ_BACKEND_RAW,
                             .raw = {resp, resp + split},
                             .rawlen = {split, len - split},
                             .client_stays_open = true};
    fx.at_backend = evbuffer_new();
    fx.at_client = evbuffer_new();
    size_t rqlen = strlen(rq);
    fz_proxy_run((const uint8_t *)rq, rqlen, rqlen, &fx);

    static llhttp_settings_t st;
    static bool st_ready;
    if (!st_ready) {
        llhttp_settings_init(&st);
        st.on_headers_complete = fz_client_headers_complete;
        st_ready = true;
    }
    struct fz_client c = {.head = (opt & 4) == 0 && (opt & 1)};
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &st);
    p.data = &c;
    size_t n = evbuffer_get_length(fx.at_client);
    const char *got = (const char *)evbuffer_pullup(fx.at_client, -1);
    llhttp_errno_t err = n > 0 ? llhttp_execute(&p, got, n) : HPE_OK;
    if (err != HPE_OK || c.nfinal > 1) {
        fprintf(stderr,
                "the client received what it cannot parse (%s, %d final responses):\n%.*s\n",
                err != HPE_OK ? llhttp_get_error_reason(&p) : "ok", c.nfinal, (int)n, got);
        abort();
    }
    evbuffer_free(fx.at_backend);
    evbuffer_free(fx.at_client);
    return 0;
}
