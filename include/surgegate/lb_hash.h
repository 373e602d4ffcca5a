/* lb_hash.h: the hash function of the consistent-hash balancer (lb_hash.c). */
#ifndef SURGEGATE_LB_HASH_H
#define SURGEGATE_LB_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A 64-bit non-cryptographic hash of data[0..len) (len 0 is fine, data may
 * then be NULL). The same on every host (bytes are read little-endian), so
 * every surgegate instance maps a key to the same ring point. Not meant to
 * resist deliberate collisions. */
uint64_t sg_lb_hash64(const void *data, size_t len);

#endif
