/* fuzz_admin_json.c: libFuzzer target for sg_admin_parse_body(), the parser
 * of the admin API's JSON request bodies (add a backend, set its weight,
 * set its state). The first input byte picks the endpoint; the rest is the
 * body. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "surgegate/admin.h"
#include "surgegate/pool-t.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const enum sg_admin_body kinds[] = {SG_ADMIN_BODY_ADD, SG_ADMIN_BODY_WEIGHT,
                                               SG_ADMIN_BODY_STATE};
    enum sg_admin_body kind = kinds[data[0] % 3];
    struct sg_admin_req rq;
    char err[200];
    err[0] = '\0';
    enum sg_ctl_err st =
        sg_admin_parse_body(kind, (const char *)data + 1, size - 1, &rq, err, sizeof(err));
    if (st == SG_CTL_OK) {
        switch (kind) {
        case SG_ADMIN_BODY_ADD:
            if (rq.address == NULL || rq.weight > 256 || rq.maxconn > 1000000)
                abort();
            break;
        case SG_ADMIN_BODY_WEIGHT:
            if (rq.weight > 256)
                abort();
            break;
        case SG_ADMIN_BODY_STATE:
            if (rq.state_name == NULL || (rq.state != SG_ADMIN_READY &&
                                          rq.state != SG_ADMIN_DRAIN && rq.state != SG_ADMIN_MAINT))
                abort();
            break;
        }
    } else {
        /* An error with a message for the client, nothing owned. */
        if ((st != SG_CTL_BAD_REQUEST && st != SG_CTL_TOO_LARGE && st != SG_CTL_INTERNAL) ||
            err[0] == '\0' || rq.address != NULL)
            abort();
    }
    sg_admin_req_free(&rq);
    return 0;
}
