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

/// Tap t (0…8, row-major) of 16 consecutive 3×3 filters stored one after another at f (144
/// floats): lane j is f[9j + t]. Each pair of the nine 16-float rows gives its lanes by one
/// two-source permute (VPERMT2PS; the index (9j + t) mod 32 is the same for every pair), and
/// four masked blends pick each lane's pair: a transpose with no scalar inserts.
static inline __attribute__((target("avx512f"), always_inline))
diffusiond_float16 diffusiond_filter_tap16(const float *f, int t) {
    __m512i source = _mm512_add_epi32(
        _mm512_set_epi32(135, 126, 117, 108, 99, 90, 81, 72, 63, 54, 45, 36, 27, 18, 9, 0), _mm512_set1_epi32(t));
    // Opaque to the optimizer: with constant indices clang re-lowers the permutes into its own,
    // longer shuffle sequences.
    __asm__("" : "+v"(source));
    const __m512i index = _mm512_and_si512(source, _mm512_set1_epi32(31));
    const __m512i pair = _mm512_srli_epi32(source, 5);
    __m512 r = _mm512_permutex2var_ps(_mm512_loadu_ps(f), index, _mm512_loadu_ps(f + 16));
    r = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(1)), r,
                             _mm512_permutex2var_ps(_mm512_loadu_ps(f + 32), index, _mm512_loadu_ps(f + 48)));
    r = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(2)), r,
                             _mm512_permutex2var_ps(_mm512_loadu_ps(f + 64), index, _mm512_loadu_ps(f + 80)));
    r = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(3)), r,
                             _mm512_permutex2var_ps(_mm512_loadu_ps(f + 96), index, _mm512_loadu_ps(f + 112)));
    r = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(4)), r,
                             _mm512_permutexvar_ps(index, _mm512_loadu_ps(f + 128)));
    return (diffusiond_float16)r;
}
#endif

#endif
