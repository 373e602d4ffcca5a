/* memory.h: the process's memory on a bad day (memory.c): the connection
 * buffers' limit and its warning, and freed heap given back to the system
 * once a crowd of connections is gone. Main thread only. */
#ifndef SURGEGATE_MEMORY_H
#define SURGEGATE_MEMORY_H

#include <stdint.h>

/* limits.buffer_memory in bytes (0: no limit). */
void sg_memory_init(uint64_t buffer_limit);
/* Once a second (the control tick): warns (at most every 10 s) when the
 * buffers went over the limit, and trims the heap when much of what is
 * resident is free. */
void sg_memory_tick(uint64_t now_ms);

#endif
