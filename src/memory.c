/* memory.c: the process's memory on a bad day.
 *
 * Connection buffers are bounded one by one (SG_OUT_HIGH and one read, about
 * 64 KiB for a client that reads slowly) and all together by
 * limits.buffer_memory (conn.c counts, the relays hold back while over it);
 * here the main thread says so in the log when the limit is reached.
 *
 * After an attack of thousands of slow connections, their buffers are free
 * but glibc keeps the pages in its arenas (one per worker thread): RSS
 * stayed at the peak. When RSS grew by SG_TRIM_FREE since the last trim, or
 * the heap's free bytes did, malloc_trim(0) gives the free pages back
 * (madvise), at most every SG_TRIM_EVERY_MS; a steady process costs no trim. It takes each arena's
 * lock in turn while it walks the free chunks: a few milliseconds once, after the crowd is gone,
 * never per request. */
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "surgegate/conn.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"
#include "surgegate/memory.h"

#define SG_TRIM_FREE     (1u << 20) /* free heap bytes, and RSS growth, worth a trim */
#define SG_TRIM_EVERY_MS 5000
#define SG_LIMIT_WARN_MS 10000

static struct {
    uint64_t limit;
    uint64_t hits_seen;
    uint64_t warned_ms;
    uint64_t next_trim_ms;
    uint64_t trimmed_rss;  /* RSS right after the last trim, or lower since */
    uint64_t trimmed_free; /* free heap bytes at the last trim */
} mem;

void sg_memory_init(uint64_t buffer_limit)
{
    mem.limit = buffer_limit;
    sg_conn_set_buffer_limit(buffer_limit);
}

/* Resident bytes of the process (/proc/self/statm), 0 when unknown. */
static uint64_t memory_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return n == 2 ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void memory_limit_check(uint64_t now)
{
    uint64_t hits = sg_conn_buffers_hits();
    if (hits == mem.hits_seen || (mem.warned_ms != 0 && now < mem.warned_ms + SG_LIMIT_WARN_MS))
        return;
    double mb = (double)sg_conn_buffered() / (1024.0 * 1024.0);
    sg_log_warn("buffer memory limit reached: %.1f MB in connection buffers, limit %.1f MB "
                "(limits.buffer_memory): responses are read from backends only as fast as "
                "clients take them until it falls (%llu times since the last warning)",
                mb, (double)mem.limit / (1024.0 * 1024.0),
                (unsigned long long)(hits - mem.hits_seen));
    json_t *f = json_pack("{s:f, s:f, s:I}", "buffered_mb", mb, "limit_mb",
                          (double)mem.limit / (1024.0 * 1024.0), "times",
                          (json_int_t)(hits - mem.hits_seen));
    sg_journal_emit("buffer_limit", f);
    mem.hits_seen = hits;
    mem.warned_ms = now;
}

static void memory_trim(uint64_t now)
{
    if (now < mem.next_trim_ms)
        return;
    mem.next_trim_ms = now + SG_TRIM_EVERY_MS;
    struct mallinfo2 mi = mallinfo2();
    uint64_t rss = memory_rss();
    if (rss < mem.trimmed_rss)
        mem.trimmed_rss = rss;
    /* Worth a trim: RSS grew, or more of the heap is free (a crowd left). */
    bool grew = rss >= mem.trimmed_rss + SG_TRIM_FREE;
    bool freed = mi.fordblks >= mem.trimmed_free + SG_TRIM_FREE;
    if (mi.fordblks < SG_TRIM_FREE || !(grew || freed))
        return;
    malloc_trim(0);
    mem.trimmed_rss = memory_rss();
    mem.trimmed_free = mi.fordblks;
    sg_log_debug("memory: heap trimmed, %.1f MB resident before, %.1f MB after (%.1f MB free)",
                 (double)rss / (1024.0 * 1024.0), (double)mem.trimmed_rss / (1024.0 * 1024.0),
                 (double)mi.fordblks / (1024.0 * 1024.0));
}

void sg_memory_tick(uint64_t now_ms)
{
    memory_limit_check(now_ms);
    memory_trim(now_ms);
}
