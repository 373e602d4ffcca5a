/* wstats.c: a worker's traffic records: latency histograms allocated on
 * first use, freed with the worker. The owning worker is the only writer. */
#include "surgegate/wstats.h"
#include "surgegate/common.h"
#include "surgegate/hist.h"

void sg_wstats_lat(struct sg_wstats *st, enum sg_lat k, uint64_t us)
{
    struct sg_hist *h = atomic_load_explicit(&st->h[k], memory_order_relaxed);
    if (SG_UNLIKELY(h == NULL)) {
        h = sg_hist_new();
        if (h == NULL)
            return;
        /* Release: the control thread sees a zeroed histogram. */
        atomic_store_explicit(&st->h[k], h, memory_order_release);
    }
    sg_hist_record(h, us);
}

void sg_wstats_free(struct sg_wstats *st)
{
    for (int k = 0; k < SG_LAT_N; k++) {
        sg_hist_free(atomic_load(&st->h[k]));
        atomic_store(&st->h[k], NULL);
    }
}
