// AVX-512 instructions Swift has no spelling for, for the KernelsAVX512 module (compiled for
// skylake-avx512, so these inline there), and the AMX tile product with its bf16 splits
// (AMX-TILE, AMX-BF16, AVX512-BF16: not in that target, so those functions stay out of line
// with their own target attributes and run only where `CPUFeatures.useAMX`), and the packed
// linear product's register tiles of one to six rows and fused attention's score tile (out of
// line). Header only. (SwiftPM does not rebuild KernelsAVX512 when only this header changes:
// touch a Swift file there after editing it.)
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

#include <stdint.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

/// Asks Linux for the AMX tile registers' state (arch_prctl ARCH_REQ_XCOMP_PERM with
/// XFEATURE_XTILEDATA, needed once per process before any tile instruction): 1 if granted.
static inline int diffusiond_amx_request(void) {
#if defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}

/// Configures the calling thread's eight tiles as 16 rows × 64 bytes (palette 1), the one
/// shape `diffusiond_amx_x6` uses. Pair with `diffusiond_amx_release`.
static inline __attribute__((target("amx-tile"), noinline))
void diffusiond_amx_configure(void) {
    struct { uint8_t palette, start; uint8_t reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) { config.colsb[t] = 64; config.rows[t] = 16; }
    _tile_loadconfig(&config);
}

/// Returns the thread's tiles to the init state (TILERELEASE).
static inline __attribute__((target("amx-tile"), noinline))
void diffusiond_amx_release(void) { _tile_release(); }

/// C[32][32] = A·B at fp32 accuracy from bf16 tiles. Each fp32 operand was split as
/// x = x0 + x1 + x2 (bf16 parts, x0 = bf16(x), x1 = bf16(x − x0), x2 = bf16(x − x0 − x1); for
/// finite x of magnitude at least 2⁻¹⁰³ their sum is x exactly), and the six products whose
/// weight is at least 2⁻¹⁶ of x0·y0 are summed in fp32 (a0b0, a0b1, a0b2, a1b0, a1b1, a2b0):
/// the three dropped ones are below fp32's own rounding (2⁻²⁴), the "bf16x6" fp32 emulation of
/// Henry, Tang & Heinecke, "Leveraging the bfloat16 Artificial Intelligence Datatype For
/// Higher-Precision Computations" (ARITH 2019). TDPBF16PS treats bf16 subnormals as zero
/// (magnitudes below 2⁻¹²⁶, far under any weight or activation's 2⁻¹⁶ part that matters).
/// Not for non-finite operands or magnitudes from 3.39e38 (bf16's largest finite value rounds
/// up there): their parts become ∞ − ∞, so a product that fp32 gives as ±∞ comes out NaN.
/// A: part p's row r, k-step s (32 bf16) at a + p·aPart + r·lda + aStep·s bytes (32 rows).
/// B: VNNI pairs, part q's 16-column group g, k-step s (16 rows × 64 bytes) at
/// b + q·bPart + g·bGroup + 1024s bytes (two groups). C: row-major, ldc bytes per row.
/// Tiles configured by `diffusiond_amx_configure`.
static inline __attribute__((target("amx-tile,amx-bf16"), noinline))
void diffusiond_amx_x6(const void *a, long lda, long aStep, long aPart, const void *b, long bGroup, long bPart,
                       int ksteps, float *c, long ldc) {
    char *c1 = (char *)c + 16 * ldc;
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    const char *ab = (const char *)a, *bb = (const char *)b;
    for (int s = 0; s < ksteps; s++) {
        const char *as = ab + aStep * (long)s, *bs = bb + 1024 * (long)s;
#define DIFFUSIOND_AMX_PAIR(p, q) \
        _tile_loadd(4, as + (p) * aPart, lda); _tile_loadd(5, as + (p) * aPart + 16 * lda, lda); \
        _tile_loadd(6, bs + (q) * bPart, 64); _tile_loadd(7, bs + (q) * bPart + bGroup, 64); \
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
        // The small terms first, so they meet the running sum together.
        DIFFUSIOND_AMX_PAIR(2, 0) DIFFUSIOND_AMX_PAIR(1, 1) DIFFUSIOND_AMX_PAIR(0, 2)
        DIFFUSIOND_AMX_PAIR(1, 0) DIFFUSIOND_AMX_PAIR(0, 1) DIFFUSIOND_AMX_PAIR(0, 0)
#undef DIFFUSIOND_AMX_PAIR
    }
    _tile_stored(0, c, ldc); _tile_stored(1, (char *)c + 64, ldc);
    _tile_stored(2, c1, ldc); _tile_stored(3, c1 + 64, ldc);
}

/// Sixteen bf16 (round to nearest even, VCVTNEPS2BF16) back in fp32 lanes.
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline))
__m512 diffusiond_bf16_round16(__m512 x) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/// The three bf16 parts of 16 floats, in fp32 lanes: p0 = bf16(x), p1 = bf16(x − p0),
/// p2 = x − p0 − p1 (exact in fp32, and itself a bf16 for finite x of magnitude ≥ 2⁻¹⁰³).
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline))
void diffusiond_bf16x3_parts16(__m512 x, __m512 *p0, __m512 *p1, __m512 *p2) {
    *p0 = diffusiond_bf16_round16(x);
    const __m512 r1 = _mm512_sub_ps(x, *p0);
    *p1 = diffusiond_bf16_round16(r1);
    *p2 = _mm512_sub_ps(r1, *p1);
}

/// The three bf16 parts of 16 floats at x (`diffusiond_bf16x3_parts16`), 16 bf16 (32 bytes) to
/// each of o0, o1, o2.
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline))
void diffusiond_bf16x3_split16_(const float *x, void *o0, void *o1, void *o2) {
    __m512 p0, p1, p2;
    diffusiond_bf16x3_parts16(_mm512_loadu_ps(x), &p0, &p1, &p2);
    _mm256_storeu_si256((__m256i *)o0, (__m256i)_mm512_cvtneps_pbh(p0));
    _mm256_storeu_si256((__m256i *)o1, (__m256i)_mm512_cvtneps_pbh(p1));
    _mm256_storeu_si256((__m256i *)o2, (__m256i)_mm512_cvtneps_pbh(p2));
}

/// The three parts (as `diffusiond_bf16x3_split16_`) of 16 columns of two consecutive rows r0
/// and r1 of a [k][n] operand, each part as one VNNI row of 16 pairs (r0[j], r1[j]), 64 bytes
/// to each of o0, o1, o2: what TDPBF16PS reads as its second operand.
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline))
void diffusiond_bf16x3_pairs16_(const float *r0, const float *r1, void *o0, void *o1, void *o2) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512 a0, a1, a2, b0, b1, b2;
    diffusiond_bf16x3_parts16(_mm512_loadu_ps(r0), &a0, &a1, &a2);
    diffusiond_bf16x3_parts16(_mm512_loadu_ps(r1), &b0, &b1, &b2);
    // cvtne2ps(b, a): a's 16 bf16 in the low half, b's in the high; the permute pairs them.
    _mm512_storeu_si512(o0, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b0, a0)));
    _mm512_storeu_si512(o1, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b1, a1)));
    _mm512_storeu_si512(o2, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b2, a2)));
}

/// One row of `depth` floats at x split (as `diffusiond_bf16x3_split16_`) into `padded` bf16
/// per part (a multiple of 32 ≥ depth; zero past depth) at o0, o1, o2, in runs of 32 (one tile
/// k-step) `step` bf16 apart.
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), noinline))
void diffusiond_bf16x3_split_row(const float *x, int depth, int padded, long step, uint16_t *o0, uint16_t *o1,
                                 uint16_t *o2) {
    for (int k = 0; k < padded; k += 16) {
        const long o = (k / 32) * step + k % 32;
        if (k + 16 <= depth) {
            diffusiond_bf16x3_split16_(x + k, o0 + o, o1 + o, o2 + o);
        } else {
            float t[16];
            for (int j = 0; j < 16; j++) t[j] = k + j < depth ? x[k + j] : 0.0f;
            diffusiond_bf16x3_split16_(t, o0 + o, o1 + o, o2 + o);
        }
    }
}

/// The first kb rows (kb even; rows ≥ depth read as zero) of a [depth][64] panel as the three
/// parts' VNNI pairs: part q, 16-column group g, pair j at byte q·4·group + g·group + 64j of
/// out, group = 32·kb bytes.
static inline __attribute__((target("avx512f,avx512bw,avx512bf16"), noinline))
void diffusiond_bf16x3_pack_panel(const float *panel, int depth, int kb, void *out) {
    static const float zeros[64] = {0};
    const long group = 32L * kb, part = 4 * group;
    char *o = (char *)out;
    for (int j = 0; j < kb / 2; j++) {
        const int i = 2 * j;
        const float *r0 = i < depth ? panel + (long)i * 64 : zeros;
        const float *r1 = i + 1 < depth ? panel + (long)(i + 1) * 64 : zeros;
        for (int g = 0; g < 4; g++) {
            char *d = o + g * group + 64L * j;
            diffusiond_bf16x3_pairs16_(r0 + 16 * g, r1 + 16 * g, d, d + part, d + 2 * part);
        }
    }
}
/// C[m][64] (+)= A[m][depth]·B[depth][64] (+ bias) for m = 1…6 rows: the packed linear
/// product's register tile (B a weight panel packed at load, row p at b + 64p), KernelsAVX512's
/// `multiplyTile` written here so that its loop keeps every pointer in a register and runs four
/// steps per turn: Swift's version reloaded four pointers from the stack on every step, and that
/// integer work took issue slots from the two FMA ports (the text encoder at batch 2, 0.0636 →
/// 0.0621 s). The same operations in the same order, so the same bits: each sum starts at zero
/// (or C when `add`), one FMA per step in order of p, then the bias. A row r at a + r·lda
/// floats, C row r at c + r·ldc. `lines` cache lines from `prefetch` on (the next block of
/// weights) are requested into L2, spread over the turns. Always inlined into one function per
/// row count (`diffusiond_tile6x64_packed` and `diffusiond_tile_rows_x64_packed`), where `m` is
/// a constant and the rows past it compile away. (The weight-streaming product, whose A comes
/// from memory, keeps the Swift tile: four steps per turn made it 50% slower there, for no
/// cause found.)
static inline __attribute__((target("avx512f"), always_inline))
void diffusiond_tile_x64_packed_body(const int m, const float *a, long lda, const float *b, long depth, float *c,
                                     long ldc, int add, const float *bias, const char *prefetch, long lines) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    __m512 c40 = c00, c41 = c00, c42 = c00, c43 = c00, c50 = c00, c51 = c00, c52 = c00, c53 = c00;
#define DIFFUSIOND_ROW_INIT(r) \
    if (m > r && add) { \
        c##r##0 = _mm512_loadu_ps(c + r * ldc); c##r##1 = _mm512_loadu_ps(c + r * ldc + 16); \
        c##r##2 = _mm512_loadu_ps(c + r * ldc + 32); c##r##3 = _mm512_loadu_ps(c + r * ldc + 48); \
    }
    DIFFUSIOND_ROW_INIT(0) DIFFUSIOND_ROW_INIT(1) DIFFUSIOND_ROW_INIT(2)
    DIFFUSIOND_ROW_INIT(3) DIFFUSIOND_ROW_INIT(4) DIFFUSIOND_ROW_INIT(5)
#undef DIFFUSIOND_ROW_INIT
    const long turns = depth / 4;
    const long perTurn = prefetch && turns > 0 ? (lines + turns - 1) / turns : 0;
    const char *line = prefetch, *lineEnd = prefetch ? prefetch + 64 * lines : prefetch;
    // Rows 0–2 from a0, rows 3–5 from a3, each at offset 0, lda or 2·lda: base + index
    // addressing, two pointers to advance (a3 unused below four rows).
    const float *a0 = a, *a3 = m > 3 ? a + 3 * lda : a;
    const long l1 = lda, l2 = 2 * lda;
#define DIFFUSIOND_FMA_ROW(r, s) \
    c##r##0 = _mm512_fmadd_ps(s, x0, c##r##0); c##r##1 = _mm512_fmadd_ps(s, x1, c##r##1); \
    c##r##2 = _mm512_fmadd_ps(s, x2, c##r##2); c##r##3 = _mm512_fmadd_ps(s, x3, c##r##3);
#define DIFFUSIOND_STEP(q) { \
        const float *bq = b + 64 * (q); \
        const __m512 x0 = _mm512_loadu_ps(bq), x1 = _mm512_loadu_ps(bq + 16); \
        const __m512 x2 = _mm512_loadu_ps(bq + 32), x3 = _mm512_loadu_ps(bq + 48); \
        __m512 s; \
        s = _mm512_set1_ps(a0[q]); DIFFUSIOND_FMA_ROW(0, s) \
        if (m > 1) { s = _mm512_set1_ps(a0[l1 + (q)]); DIFFUSIOND_FMA_ROW(1, s) } \
        if (m > 2) { s = _mm512_set1_ps(a0[l2 + (q)]); DIFFUSIOND_FMA_ROW(2, s) } \
        if (m > 3) { s = _mm512_set1_ps(a3[q]); DIFFUSIOND_FMA_ROW(3, s) } \
        if (m > 4) { s = _mm512_set1_ps(a3[l1 + (q)]); DIFFUSIOND_FMA_ROW(4, s) } \
        if (m > 5) { s = _mm512_set1_ps(a3[l2 + (q)]); DIFFUSIOND_FMA_ROW(5, s) } }
    for (long k = 0; k < turns; k++) {
        for (long i = 0; i < perTurn; i++)
            if (line < lineEnd) { _mm_prefetch(line, _MM_HINT_T1); line += 64; }
        DIFFUSIOND_STEP(0) DIFFUSIOND_STEP(1) DIFFUSIOND_STEP(2) DIFFUSIOND_STEP(3)
        a0 += 4; a3 += 4; b += 256;
    }
    for (long p = 4 * turns; p < depth; p++) {
        DIFFUSIOND_STEP(0)
        a0 += 1; a3 += 1; b += 64;
    }
#undef DIFFUSIOND_STEP
#undef DIFFUSIOND_FMA_ROW
    for (; line < lineEnd; line += 64) _mm_prefetch(line, _MM_HINT_T1);
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    const __m512 b2 = bias ? _mm512_loadu_ps(bias + 32) : _mm512_setzero_ps();
    const __m512 b3 = bias ? _mm512_loadu_ps(bias + 48) : _mm512_setzero_ps();
#define DIFFUSIOND_ROW_STORE(r) \
    if (m > r) { \
        _mm512_storeu_ps(c + r * ldc, bias ? _mm512_add_ps(c##r##0, b0) : c##r##0); \
        _mm512_storeu_ps(c + r * ldc + 16, bias ? _mm512_add_ps(c##r##1, b1) : c##r##1); \
        _mm512_storeu_ps(c + r * ldc + 32, bias ? _mm512_add_ps(c##r##2, b2) : c##r##2); \
        _mm512_storeu_ps(c + r * ldc + 48, bias ? _mm512_add_ps(c##r##3, b3) : c##r##3); \
    }
    DIFFUSIOND_ROW_STORE(0) DIFFUSIOND_ROW_STORE(1) DIFFUSIOND_ROW_STORE(2)
    DIFFUSIOND_ROW_STORE(3) DIFFUSIOND_ROW_STORE(4) DIFFUSIOND_ROW_STORE(5)
#undef DIFFUSIOND_ROW_STORE
}

/// `diffusiond_tile_x64_packed_body` for six rows.
static inline __attribute__((target("avx512f"), noinline))
void diffusiond_tile6x64_packed(const float *a, long lda, const float *b, long depth, float *c, long ldc, int add,
                                const float *bias, const char *prefetch, long lines) {
    diffusiond_tile_x64_packed_body(6, a, lda, b, depth, c, ldc, add, bias, prefetch, lines);
}

#define DIFFUSIOND_TILE_ROWS(m) \
static inline __attribute__((target("avx512f"), noinline)) \
void diffusiond_tile##m##x64_packed_(const float *a, long lda, const float *b, long depth, float *c, long ldc, \
                                     int add, const float *bias, const char *prefetch, long lines) { \
    diffusiond_tile_x64_packed_body(m, a, lda, b, depth, c, ldc, add, bias, prefetch, lines); \
}
DIFFUSIOND_TILE_ROWS(1) DIFFUSIOND_TILE_ROWS(2) DIFFUSIOND_TILE_ROWS(3) DIFFUSIOND_TILE_ROWS(4) DIFFUSIOND_TILE_ROWS(5)
#undef DIFFUSIOND_TILE_ROWS

/// `diffusiond_tile_x64_packed_body` for the 1 to 5 rows after a range's groups of six (each
/// row count its own function).
static inline __attribute__((target("avx512f"), always_inline))
void diffusiond_tile_rows_x64_packed(int rows, const float *a, long lda, const float *b, long depth, float *c,
                                     long ldc, int add, const float *bias, const char *prefetch, long lines) {
    switch (rows) {
    case 1: diffusiond_tile1x64_packed_(a, lda, b, depth, c, ldc, add, bias, prefetch, lines); break;
    case 2: diffusiond_tile2x64_packed_(a, lda, b, depth, c, ldc, add, bias, prefetch, lines); break;
    case 3: diffusiond_tile3x64_packed_(a, lda, b, depth, c, ldc, add, bias, prefetch, lines); break;
    case 4: diffusiond_tile4x64_packed_(a, lda, b, depth, c, ldc, add, bias, prefetch, lines); break;
    case 5: diffusiond_tile5x64_packed_(a, lda, b, depth, c, ldc, add, bias, prefetch, lines); break;
    default: __builtin_trap();  // a caller's bug: the rows after groups of six are 1 to 5
    }
}

/// The 8-row register tile of fused attention's score product and short causal attention's
/// value product: C[r][0..<16·STRIPS] = Σ_k A(r)·B[k] over k < DEPTH for rows r = 0…7, A(r)
/// the macro naming row r's float at step k (broadcast), B0 and B1 the addresses of step k's
/// 16 floats of strip 0 and 1 (STRIPS 1 or 2: with one strip the second strip's code is dead, a
/// constant condition, and compiled out), C row r at c + r·ldc; given `maxLanes` (8 × 16
/// floats, in scope; 0 for none), each row's lane maxima over the strips are raised into it.
/// Sixteen accumulators: per step two loads, eight broadcasts, sixteen FMAs, k ascending.
/// `UNROLL` is the depth loop's pragma.
#define DIFFUSIOND_TILE8(STRIPS, DEPTH, UNROLL, A, B0, B1) \
    const int two = (STRIPS) == 2; \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00; \
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00; \
    _Pragma(UNROLL) \
    for (long k = 0; k < (DEPTH); k++) { \
        const __m512 x0 = _mm512_loadu_ps(B0), x1 = two ? _mm512_loadu_ps(B1) : x0; \
        DIFFUSIOND_TILE8_ROW(0, A) DIFFUSIOND_TILE8_ROW(1, A) DIFFUSIOND_TILE8_ROW(2, A) DIFFUSIOND_TILE8_ROW(3, A) \
        DIFFUSIOND_TILE8_ROW(4, A) DIFFUSIOND_TILE8_ROW(5, A) DIFFUSIOND_TILE8_ROW(6, A) DIFFUSIOND_TILE8_ROW(7, A) \
    } \
    DIFFUSIOND_TILE8_STORE(0) DIFFUSIOND_TILE8_STORE(1) DIFFUSIOND_TILE8_STORE(2) DIFFUSIOND_TILE8_STORE(3) \
    DIFFUSIOND_TILE8_STORE(4) DIFFUSIOND_TILE8_STORE(5) DIFFUSIOND_TILE8_STORE(6) DIFFUSIOND_TILE8_STORE(7)
#define DIFFUSIOND_TILE8_ROW(r, A) { \
        const __m512 s = _mm512_set1_ps(A(r)); \
        c##r##0 = _mm512_fmadd_ps(s, x0, c##r##0); \
        if (two) c##r##1 = _mm512_fmadd_ps(s, x1, c##r##1); }
#define DIFFUSIOND_TILE8_STORE(r) \
    _mm512_storeu_ps(c + (r) * ldc, c##r##0); \
    if (two) _mm512_storeu_ps(c + (r) * ldc + 16, c##r##1); \
    if (maxLanes) { \
        float *m = maxLanes + 16 * (r); \
        const __m512 rowMax = two ? _mm512_max_ps(c##r##0, c##r##1) : c##r##0; \
        _mm512_storeu_ps(m, _mm512_max_ps(_mm512_loadu_ps(m), rowMax)); \
    }

/// Fused attention's score tile: S[r][0..<16·STRIPS] = Σ_k Q[r][k]·K-strips, for 8 query rows
/// (row r at q + r·d) against one or two 16-key strips (`STRIPS`; strip 0 at b, strip 1 at
/// b + 16·d; element (k, j) at 16k + j), stored as rows of ldc floats at c; given `maxLanes`
/// (8 × 16 floats), each row's lane maxima over the strips are raised into it
/// (`DIFFUSIOND_TILE8`). SD's head dims (40, 64, 80) get a function each with `d` a constant and
/// the loop unrolled whole, so every load is base + constant offset and no pointer or counter
/// arithmetic shares the FMA ports (a Swift loop spent ten integer instructions per sixteen
/// FMAs there); any other head dim runs one function with `d` at run time, unrolled by four.
/// The FMA order per accumulator is the same in every copy (k ascending), so the same bits.
#define DIFFUSIOND_SCORE_TILE(name, STRIPS, depth, UNROLL, ...) \
static inline __attribute__((target("avx512f"), noinline)) \
void name(__VA_ARGS__ const float *q, const float *b, float *c, long ldc, float *maxLanes) { \
    const long d = (depth); \
    const float *b1 = b + 16 * d; \
    DIFFUSIOND_TILE8(STRIPS, d, UNROLL, DIFFUSIOND_SCORE_A, b + 16 * k, b1 + 16 * k) \
}
#define DIFFUSIOND_SCORE_A(r) q[(r) * d + k]
DIFFUSIOND_SCORE_TILE(diffusiond_score8x32_d40, 2, 40, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x32_d64, 2, 64, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x32_d80, 2, 80, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x32_dn, 2, dn, "clang loop unroll_count(4)", long dn,)
DIFFUSIOND_SCORE_TILE(diffusiond_score8x16_d40, 1, 40, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x16_d64, 1, 64, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x16_d80, 1, 80, "clang loop unroll(full)")
DIFFUSIOND_SCORE_TILE(diffusiond_score8x16_dn, 1, dn, "clang loop unroll_count(4)", long dn,)
#undef DIFFUSIOND_SCORE_TILE
#undef DIFFUSIOND_SCORE_A

/// The score tile above at head dim `d`, against `strips` (1 or 2) strips: SD's dims each run
/// their unrolled copy, any other the run-time-depth one.
static inline __attribute__((target("avx512f"), always_inline))
void diffusiond_score8xstrips(long strips, long d, const float *q, const float *b, float *c, long ldc, float *maxLanes) {
    if (strips == 2) {
        switch (d) {
        case 40: diffusiond_score8x32_d40(q, b, c, ldc, maxLanes); break;
        case 64: diffusiond_score8x32_d64(q, b, c, ldc, maxLanes); break;
        case 80: diffusiond_score8x32_d80(q, b, c, ldc, maxLanes); break;
        default: diffusiond_score8x32_dn(d, q, b, c, ldc, maxLanes); break;
        }
    } else {
        switch (d) {
        case 40: diffusiond_score8x16_d40(q, b, c, ldc, maxLanes); break;
        case 64: diffusiond_score8x16_d64(q, b, c, ldc, maxLanes); break;
        case 80: diffusiond_score8x16_d80(q, b, c, ldc, maxLanes); break;
        default: diffusiond_score8x16_dn(d, q, b, c, ldc, maxLanes); break;
        }
    }
}

/// Short causal attention's value tile (KernelsAVX512's ShortCausalAttentionAVX512.swift):
/// Oᵀ[r][0..<16·STRIPS] = Σ_k V[k][r]·Pᵀ[k][·] over k < depth, for 8 head columns r (V row k
/// at v + k·ldv, the 8 columns consecutive, each broadcast) against one or two 16-query strips
/// of Pᵀ (row k at p + k·ldp, the second strip 16 floats on), stored as rows of ldc floats at c
/// (`DIFFUSIOND_TILE8`, k ascending: the order the row-major value tile sums a query's keys
/// in, so the same bits).
#define DIFFUSIOND_VALUE_TILE(name, STRIPS) \
static inline __attribute__((target("avx512f"), noinline)) \
void name(long depth, const float *v, long ldv, const float *p, long ldp, float *c, long ldc) { \
    float *const maxLanes = 0; \
    DIFFUSIOND_TILE8(STRIPS, depth, "clang loop unroll_count(4)", DIFFUSIOND_VALUE_A, p + k * ldp, p + k * ldp + 16) \
}
#define DIFFUSIOND_VALUE_A(r) v[k * ldv + (r)]
DIFFUSIOND_VALUE_TILE(diffusiond_value8x32, 2)
DIFFUSIOND_VALUE_TILE(diffusiond_value8x16, 1)
#undef DIFFUSIOND_VALUE_TILE
#undef DIFFUSIOND_VALUE_A
#undef DIFFUSIOND_TILE8
#undef DIFFUSIOND_TILE8_ROW
#undef DIFFUSIOND_TILE8_STORE
#endif

#endif
