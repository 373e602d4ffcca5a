/* fuzz_members.c: libFuzzer target for the member-set parsers of
 * discovery (members.c): a discovery command's JSON, a member file and an
 * SRV answer in DNS wire format. The first byte picks the parser (mod 3),
 * the rest is its whole input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "surgegate/common.h"
#include "surgegate/members.h"

#define FUZZ_MAX_MEMBERS 16

static void fuzz_check_set(int rc, const struct sg_members *m)
{
    if (rc == SG_OK) {
        /* bounded, every member a numeric socket address with its text */
        if (m->n > FUZZ_MAX_MEMBERS)
            abort();
        for (size_t i = 0; i < m->n; i++) {
            const struct sg_member *e = &m->v[i];
            int fam = e->ss.ss_family;
            if ((fam != AF_INET && fam != AF_INET6) || e->weight > 256 || e->maxconn > 1000000 ||
                memchr(e->addr, '\0', sizeof(e->addr)) == NULL)
                abort();
            /* no two members are one endpoint */
            for (size_t j = 0; j < i; j++)
                if (sg_sockaddr_same((const struct sockaddr *)&e->ss,
                                     (const struct sockaddr *)&m->v[j].ss))
                    abort();
        }
    } else if (rc != SG_ERR || m->n != 0 || m->v != NULL) {
        abort(); /* all or nothing */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int kind = data[0] % 3;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    struct sg_members m;
    if (kind == 0) {
        int rc = sg_members_parse_json(in, len, FUZZ_MAX_MEMBERS, &m, err, sizeof(err));
        fuzz_check_set(rc, &m);
        sg_members_free(&m);
    } else if (kind == 1) {
        int rc = sg_members_parse_file(in, len, FUZZ_MAX_MEMBERS, &m, err, sizeof(err));
        fuzz_check_set(rc, &m);
        sg_members_free(&m);
    } else {
        struct sg_srv *v = NULL;
        size_t n = 0;
        int rc = sg_srv_parse((const unsigned char *)in, (int)(len > 65535 ? 65535 : len), &v, &n,
                              err, sizeof(err));
        if (rc == SG_OK) {
            for (size_t i = 0; i < n; i++)
                if (v[i].target == NULL || v[i].port == 0 || sg_srv_weight(v[i].weight) < 1 ||
                    sg_srv_weight(v[i].weight) > 256)
                    abort();
        } else if (v != NULL || n != 0) {
            abort();
        }
        sg_srv_free(v, n);
    }
    return 0;
}
