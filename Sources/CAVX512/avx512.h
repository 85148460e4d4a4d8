// AVX-512 instructions Swift has no spelling for, for the KernelsAVX512 module (compiled for
// skylake-avx512, so these inline there). Header only.
#ifndef DIFFUSIOND_AVX512_H
#define DIFFUSIOND_AVX512_H

#if defined(__x86_64__)
#include <immintrin.h>

/// Sixteen floats: imported into Swift as SIMD16<Float>.
typedef float diffusiond_float16 __attribute__((ext_vector_type(16)));

/// a · 2^floor(b) lane by lane, exactly rounded (VSCALEFPS): one instruction where a power of
/// two built from b's bits and a multiply took three.
static inline __attribute__((target("avx512f"), always_inline))
diffusiond_float16 diffusiond_scalef16(diffusiond_float16 a, diffusiond_float16 b) {
    return (diffusiond_float16)_mm512_scalef_ps((__m512)a, (__m512)b);
}
#endif

#endif
