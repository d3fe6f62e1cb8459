/* RFC 6455 masking, vectorized. */
#ifndef PICOWS_MASK_H
#define PICOWS_MASK_H

#include <string.h>
#include <stdint.h>

/* XOR `n` bytes at `p` with the 4-byte `mask`, as if the first byte were
   at position `offset` of the payload (RFC 6455 5.3). 128, 32, then 8
   bytes at a time; GCC and clang turn the 32-byte vectors into SIMD, and on
   x86-64 GCC also builds an AVX2 clone picked at load time. */
#if defined(__GNUC__)
typedef uint8_t picows_v32 __attribute__((vector_size(32)));
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void picows_mask_copy(uint8_t* dst, const uint8_t* src,
                                    size_t n, const uint8_t* mask,
                                    size_t offset) {
    /* The mask rotated to `offset`, 8 bytes of it: byte order does not
       matter, the same bytes are XORed at the same positions. */
    uint8_t m[8];
    size_t i = 0, j;
    uint64_t m64, w;
    if ((offset & 3) == 0) {
        memcpy(m, mask, 4);
    } else {
        for (j = 0; j < 4; j++) m[j] = mask[(offset + j) & 3];
    }
    memcpy(m + 4, m, 4);
    memcpy(&m64, m, 8);
#if defined(__GNUC__)
    if (n >= 32) {
        uint64_t m256[4] = {m64, m64, m64, m64};
        picows_v32 mv, v;
        memcpy(&mv, m256, 32);
        /* Four vectors per turn: a large payload pays a quarter of the
           loop's own instructions. */
        for (; i + 128 <= n; i += 128) {
            picows_v32 v0, v1, v2, v3;
            memcpy(&v0, src + i, 32);
            memcpy(&v1, src + i + 32, 32);
            memcpy(&v2, src + i + 64, 32);
            memcpy(&v3, src + i + 96, 32);
            v0 ^= mv;
            v1 ^= mv;
            v2 ^= mv;
            v3 ^= mv;
            memcpy(dst + i, &v0, 32);
            memcpy(dst + i + 32, &v1, 32);
            memcpy(dst + i + 64, &v2, 32);
            memcpy(dst + i + 96, &v3, 32);
        }
        for (; i + 32 <= n; i += 32) {
            memcpy(&v, src + i, 32);
            v ^= mv;
            memcpy(dst + i, &v, 32);
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= m64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ m[i & 7];
}

#endif /* PICOWS_MASK_H */
