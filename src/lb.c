/* lb.c: the balancer registry (lb.h). Every algorithm is listed here once,
 * by its ops (name, flags, constructor): the config loader validates
 * "balance" against it, `-t` lists it, pools look their balancer up in it.
 * Adding a balancer is one file (lb_*.c) and one row below. Nothing outside
 * a balancer compares balancer names: it asks the ops (flags, pick). */
#include <string.h>

#include "surgegate/common.h"
#include "surgegate/lb.h"

/* The first row is the default ("balance" not written). */
static const struct sg_lb_ops *const lb_table[] = {
    &sg_lb_roundrobin, &sg_lb_leastreq, &sg_lb_ewma, &sg_lb_hash, &sg_lb_random,
};

const struct sg_lb_ops *sg_lb_default(void)
{
    return lb_table[0];
}

const struct sg_lb_ops *sg_lb_at(size_t i)
{
    return i < SG_ARRAY_SIZE(lb_table) ? lb_table[i] : NULL;
}

const char *sg_lb_name(size_t i)
{
    const struct sg_lb_ops *ops = sg_lb_at(i);
    return ops != NULL ? ops->name : NULL;
}

const struct sg_lb_ops *sg_lb_find(const char *name)
{
    if (name == NULL)
        return sg_lb_default();
    for (size_t i = 0; i < SG_ARRAY_SIZE(lb_table); i++)
        if (strcmp(lb_table[i]->name, name) == 0)
            return lb_table[i];
    return NULL;
}
