/* fuzz_cfg.c: libFuzzer target for the config loader: the input is a whole
 * configuration file, loaded with sg_cfg_load_string() (libconfig, keyword
 * tables, validation, then sg_cfg_lint() on what loads), printed as
 * `surgegate -t` would print it, and freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "surgegate/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* a NUL inside ends the text, as it would for the file */
    struct sg_cfg_diags diags;
    sg_cfg_diags_init(&diags, "fuzz.conf");
    struct sg_cfg *cfg = sg_cfg_load_string(text, "fuzz.conf", &diags);
    /* The loader's contract: a config exactly when no error was reported. */
    if ((cfg != NULL) != (diags.nerrors == 0))
        abort();
    static FILE *devnull;
    if (devnull == NULL)
        devnull = fopen("/dev/null", "we");
    if (devnull != NULL)
        sg_cfg_diags_print(&diags, devnull);
    sg_cfg_free(cfg);
    sg_cfg_diags_free(&diags);
    free(text);
    return 0;
}
