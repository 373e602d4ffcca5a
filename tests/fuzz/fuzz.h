/* fuzz.h: what every libFuzzer target in tests/fuzz shares. */
#ifndef SURGEGATE_FUZZ_H
#define SURGEGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point: called once per input; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the input's first byte splits the rest in two reads: 0..len,
 * proportional, so that long inputs are split anywhere too. */
static inline size_t fuzz_split(uint8_t b, size_t len)
{
    return (size_t)b * len / 255u;
}

#endif
