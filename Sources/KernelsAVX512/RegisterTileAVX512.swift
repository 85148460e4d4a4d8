// The register tiles this module's products share (the AVX-512 counterpart of Kernels'
// RegisterTile.swift): C (+)= A·B with A's rows broadcast and B's rows loaded as 16-lane
// vectors. The weight-streaming product (A = a layer's weights, B = unfolded input columns) and
// fused attention's value product at head dim 64 (A = softmax rows, B = value rows) both run on
// them.

#if arch(x86_64)
import CPrefetch

typealias V16 = SIMD16<Float>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> V16 {
    UnsafeRawPointer(p).loadUnaligned(as: V16.self)
}
@inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> V16 {
    UnsafeRawPointer(p).loadUnaligned(as: V16.self)
}
@inline(__always) func store16(_ v: V16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V16.self)
}

/// C[r][0..<64] (+)= Σ_p A[r][p]·B[p][0..<64] for six rows (A row r at a + r·lda, B row p at
/// b + p·ldb, C row r at c + r·ldc); `add` keeps what C holds. Twenty-four accumulators: per
/// step four loads of B, six broadcasts of A, 24 FMAs. (The packed linear product runs the
/// same tile written in C, CAVX512's `diffusiond_tile6x64_packed`, with the same bits.)
@inline(never)
func multiply6x64(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                  _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
    multiplyTile(6, 4, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add, nextRows: nil)
}

/// `multiply6x64` that, given `nextRows`, prefetches the six rows of A that follow at stride
/// `lda` from there into L2 (the weight-streaming product's next row group): one line of each
/// every 16 steps, `depth` floats of each.
@inline(__always)
func multiply6x64(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                  _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool, nextRows: UnsafePointer<Float>?) {
    multiplyTile(6, 4, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add, nextRows: nextRows)
}

/// C (+)= A·B for `m` rows (1 to 6) and `v` vectors of 16 columns (1 to 4), as `multiply6x64`,
/// with `nextRows` prefetched as there: per step `v` loads of B, `m` broadcasts, m·v FMAs. The
/// weight-streaming product's tiles for fewer than 64 columns (16–48: the 4×4 level at batch
/// 1 and 2) and for the rows after its groups of six.
func multiplyRows(_ m: Int, vectors v: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                  depth: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool, nextRows: UnsafePointer<Float>?) {
    switch v {
    case 4: multiplyRows(m, Vectors4.self, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                         nextRows: nextRows)
    case 3: multiplyRows(m, Vectors3.self, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                         nextRows: nextRows)
    case 2: multiplyRows(m, Vectors2.self, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                         nextRows: nextRows)
    default:
        precondition(v == 1, "multiplyRows: \(v) vectors")
        multiplyRows(m, Vectors1.self, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                     nextRows: nextRows)
    }
}

// Tile shapes as types: each (rows, vectors) pair is its own specialization of `tile`, so its
// counts are constants there and the unused accumulators compile away. (Switch cases that
// inlined one function with different constant counts were merged back by the optimizer into
// one copy that tested the counts on every step.)
protocol TileRows { static var count: Int { get } }
enum Rows1: TileRows { static var count: Int { 1 } }
enum Rows2: TileRows { static var count: Int { 2 } }
enum Rows3: TileRows { static var count: Int { 3 } }
enum Rows4: TileRows { static var count: Int { 4 } }
enum Rows5: TileRows { static var count: Int { 5 } }
enum Rows6: TileRows { static var count: Int { 6 } }
protocol TileVectors { static var count: Int { get } }
enum Vectors1: TileVectors { static var count: Int { 1 } }
enum Vectors2: TileVectors { static var count: Int { 2 } }
enum Vectors3: TileVectors { static var count: Int { 3 } }
enum Vectors4: TileVectors { static var count: Int { 4 } }

/// `tile` for `m` rows (1 to 6) of `V.count` vectors.
@inline(__always)
private func multiplyRows<V: TileVectors>(_ m: Int, _ v: V.Type, _ a: UnsafePointer<Float>, lda: Int,
                                          _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                                          _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool,
                                          nextRows: UnsafePointer<Float>?) {
    switch m {
    case 6: tile(Rows6.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
    case 5: tile(Rows5.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
    case 4: tile(Rows4.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
    case 3: tile(Rows3.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
    case 2: tile(Rows2.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
    default:
        precondition(m == 1, "multiplyRows: \(m) rows")
        tile(Rows1.self, v, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
             nextRows: nextRows)
    }
}

/// One tile shape's own function (see `TileRows`).
@inline(never)
private func tile<R: TileRows, V: TileVectors>(_: R.Type, _: V.Type, _ a: UnsafePointer<Float>, lda: Int,
                                               _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                                               _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool,
                                               nextRows: UnsafePointer<Float>?) {
    multiplyTile(R.count, V.count, a, lda: lda, b, ldb: ldb, depth: depth, c, ldc: ldc, add: add,
                 nextRows: nextRows)
}

/// Rows of the next register tile when `left` rows of a range remain: six, except that seven
/// and eight are cut 4 + 3 and 4 + 4 (no tile of one or two rows after groups of six), and
/// fewer than six are one tile.
@inline(__always)
func rowGroup(left: Int) -> Int {
    left == 7 || left == 8 ? 4 : min(left, 6)
}

/// The one register tile every product above runs: `m` rows (1 to 6) × `v` vectors of 16
/// columns (1 to 4), up to 24 accumulators. Always inlined where `m` and `v` are constants
/// (`multiply6x64`, `tile`), so each gets straight-line code for its shape; rows and vectors
/// past them are never read or written (their pointers are only formed).
@inline(__always)
private func multiplyTile(_ m: Int, _ v: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>,
                          ldb: Int, depth: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool,
                          nextRows: UnsafePointer<Float>?) {
    let r1 = c + ldc, r2 = r1 + ldc, r3 = r2 + ldc, r4 = r3 + ldc, r5 = r4 + ldc
    var c00 = V16(), c01 = V16(), c02 = V16(), c03 = V16()
    var c10 = V16(), c11 = V16(), c12 = V16(), c13 = V16()
    var c20 = V16(), c21 = V16(), c22 = V16(), c23 = V16()
    var c30 = V16(), c31 = V16(), c32 = V16(), c33 = V16()
    var c40 = V16(), c41 = V16(), c42 = V16(), c43 = V16()
    var c50 = V16(), c51 = V16(), c52 = V16(), c53 = V16()
    if add {
        c00 = load16(c); if v > 1 { c01 = load16(c + 16) }; if v > 2 { c02 = load16(c + 32) }; if v > 3 { c03 = load16(c + 48) }
        if m > 1 { c10 = load16(r1); if v > 1 { c11 = load16(r1 + 16) }; if v > 2 { c12 = load16(r1 + 32) }; if v > 3 { c13 = load16(r1 + 48) } }
        if m > 2 { c20 = load16(r2); if v > 1 { c21 = load16(r2 + 16) }; if v > 2 { c22 = load16(r2 + 32) }; if v > 3 { c23 = load16(r2 + 48) } }
        if m > 3 { c30 = load16(r3); if v > 1 { c31 = load16(r3 + 16) }; if v > 2 { c32 = load16(r3 + 32) }; if v > 3 { c33 = load16(r3 + 48) } }
        if m > 4 { c40 = load16(r4); if v > 1 { c41 = load16(r4 + 16) }; if v > 2 { c42 = load16(r4 + 32) }; if v > 3 { c43 = load16(r4 + 48) } }
        if m > 5 { c50 = load16(r5); if v > 1 { c51 = load16(r5 + 16) }; if v > 2 { c52 = load16(r5 + 32) }; if v > 3 { c53 = load16(r5 + 48) } }
    }
    let a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
    // One loop: the prefetch is a well-predicted branch. (A nested function for the step, to
    // write two loops, made the compiler keep the accumulators on the stack.)
    var bp = b
    for p in 0..<depth {
        if let nextRows, p & 15 == 0 { prefetchSixRows(nextRows + p, lda) }
        let x0 = load16(bp)
        var x1 = V16(), x2 = V16(), x3 = V16()
        if v > 1 { x1 = load16(bp + 16) }
        if v > 2 { x2 = load16(bp + 32) }
        if v > 3 { x3 = load16(bp + 48) }
        rowStep(v, V16(repeating: a[p]), x0, x1, x2, x3, &c00, &c01, &c02, &c03)
        if m > 1 { rowStep(v, V16(repeating: a1[p]), x0, x1, x2, x3, &c10, &c11, &c12, &c13) }
        if m > 2 { rowStep(v, V16(repeating: a2[p]), x0, x1, x2, x3, &c20, &c21, &c22, &c23) }
        if m > 3 { rowStep(v, V16(repeating: a3[p]), x0, x1, x2, x3, &c30, &c31, &c32, &c33) }
        if m > 4 { rowStep(v, V16(repeating: a4[p]), x0, x1, x2, x3, &c40, &c41, &c42, &c43) }
        if m > 5 { rowStep(v, V16(repeating: a5[p]), x0, x1, x2, x3, &c50, &c51, &c52, &c53) }
        bp += ldb
    }
    store16(c00, c); if v > 1 { store16(c01, c + 16) }; if v > 2 { store16(c02, c + 32) }; if v > 3 { store16(c03, c + 48) }
    if m > 1 { store16(c10, r1); if v > 1 { store16(c11, r1 + 16) }; if v > 2 { store16(c12, r1 + 32) }; if v > 3 { store16(c13, r1 + 48) } }
    if m > 2 { store16(c20, r2); if v > 1 { store16(c21, r2 + 16) }; if v > 2 { store16(c22, r2 + 32) }; if v > 3 { store16(c23, r2 + 48) } }
    if m > 3 { store16(c30, r3); if v > 1 { store16(c31, r3 + 16) }; if v > 2 { store16(c32, r3 + 32) }; if v > 3 { store16(c33, r3 + 48) } }
    if m > 4 { store16(c40, r4); if v > 1 { store16(c41, r4 + 16) }; if v > 2 { store16(c42, r4 + 32) }; if v > 3 { store16(c43, r4 + 48) } }
    if m > 5 { store16(c50, r5); if v > 1 { store16(c51, r5 + 16) }; if v > 2 { store16(c52, r5 + 32) }; if v > 3 { store16(c53, r5 + 48) } }
}

/// One row's step of `multiplyTile`: c_j += s·x_j for the first `v` vectors (inlined with a
/// constant `v`; the accumulators are the caller's registers).
@inline(__always)
private func rowStep(_ v: Int, _ s: V16, _ x0: V16, _ x1: V16, _ x2: V16, _ x3: V16,
                     _ c0: inout V16, _ c1: inout V16, _ c2: inout V16, _ c3: inout V16) {
    c0 = c0.addingProduct(s, x0)
    if v > 1 { c1 = c1.addingProduct(s, x1) }
    if v > 2 { c2 = c2.addingProduct(s, x2) }
    if v > 3 { c3 = c3.addingProduct(s, x3) }
}

/// The line holding `p` and the same line of the five rows after it (stride `lda` floats), into L2.
@inline(__always)
func prefetchSixRows(_ p: UnsafePointer<Float>, _ lda: Int) {
    let raw = UnsafeRawPointer(p), stride = lda * 4
    diffusiond_prefetch_l2(raw); diffusiond_prefetch_l2(raw + stride); diffusiond_prefetch_l2(raw + 2 * stride)
    diffusiond_prefetch_l2(raw + 3 * stride); diffusiond_prefetch_l2(raw + 4 * stride); diffusiond_prefetch_l2(raw + 5 * stride)
}
#endif
