/* fuzz_hook_output.c: libFuzzer target for sg_hook_parse_output(), the
 * parser of a scale hook's stdout (JSON add/remove lists, addresses checked
 * by sg_cfg_parse_addr()). The input is the hook's whole stdout. */
#include <stdlib.h>

#include "fuzz.h"
#include "surgegate/common.h"
#include "surgegate/hook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sg_hook_changes ch = {0};
    char err[256];
    int rc = sg_hook_parse_output((const char *)data, size, &ch, err, sizeof(err));
    if (rc == SG_OK) {
        /* The contract: bounded lists, every member set and in range. */
        if (ch.nadd > SG_HOOK_MAX_CHANGES || ch.nremove > SG_HOOK_MAX_CHANGES)
            abort();
        for (size_t i = 0; i < ch.nadd; i++)
            if (ch.add[i].address == NULL || ch.add[i].weight > 256 || ch.add[i].maxconn > 1000000)
                abort();
        for (size_t i = 0; i < ch.nremove; i++)
            if (ch.remove[i] == NULL)
                abort();
    } else {
        /* All or nothing: a refused output leaves nothing behind. */
        if (rc != SG_ERR || ch.nadd != 0 || ch.nremove != 0 || ch.add != NULL || ch.remove != NULL)
            abort();
    }
    sg_hook_changes_free(&ch);
    return 0;
}
