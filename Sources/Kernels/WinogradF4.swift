/// Winograd F(4×4, 3×3) transforms (Lavin & Gray 2016, interpolation points 0, ±1, ±2, ∞;
/// the same matrices as ncnn's and NNPACK's fp32 kernels). Each 4×4 output tile is
/// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over a 6×6 input tile d: 36 multiplies per 16 outputs where
/// direct convolution needs 144 and F(2×2, 3×3) 64, so the 36 channel GEMMs do 1.78× fewer
/// FLOPs than F(2×2)'s 16. The coefficients reach 8 (Aᵀ) and 1/24 (G), so rounding is a few
/// times F(2×2)'s; `winogradTile(for:)` uses it only on layers with many tiles.
///   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
///   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]
///   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
/// Layouts match the F(2×2) path: V is [36][C][tiles], M is [36][O][tiles], U is [36][O][C],
/// position k = 6·row + column of the transformed tile.

/// Bᵀ x for one 6-vector x (one row or column of a tile), eight tiles in SIMD lanes.
@inline(__always)
private func inputRow(_ x0: VFloat, _ x1: VFloat, _ x2: VFloat, _ x3: VFloat, _ x4: VFloat, _ x5: VFloat)
    -> (VFloat, VFloat, VFloat, VFloat, VFloat, VFloat) {
    (
        (x4 - x2).addingProduct(x0 - x2, 4),          // 4x0 − 5x2 + x4
        (x4 + x3).addingProduct(x1 + x2, -4),         // −4x1 − 4x2 + x3 + x4
        (x4 - x3).addingProduct(x1 - x2, 4),          // 4x1 − 4x2 − x3 + x4
        (x4 - x2).addingProduct(x3 - x1, 2),          // −2x1 − x2 + 2x3 + x4
        (x4 - x2).addingProduct(x1 - x3, 2),          // 2x1 − x2 − 2x3 + x4
        (x5 - x3).addingProduct(x1 - x3, 4)           // 4x1 − 5x3 + x5
    )
}

/// Aᵀ m for one 6-vector m, eight tiles in SIMD lanes.
@inline(__always)
private func outputRow(_ m0: VFloat, _ m1: VFloat, _ m2: VFloat, _ m3: VFloat, _ m4: VFloat, _ m5: VFloat)
    -> (VFloat, VFloat, VFloat, VFloat) {
    let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
    return (m0 + a + c, b.addingProduct(d, 2), a.addingProduct(c, 4), (b + m5).addingProduct(d, 8))
}

/// Span of input columns eight 6-wide tiles at stride 4 need, rounded up to the two
/// 32-float loads (at offsets 0 and 4) that split them into columns.
private let f4GroupSpan = 36
/// Row length of the zero-padded staging rows used at image edges.
private let f4StageStride = 40

/// Bᵀ d B for tiles [firstTile, firstTile + count) and the given input channels; V is
/// [36][C][count]. Tiles go eight at a time (consecutive tiles of one tile row) through
/// SIMD lanes: column j of tile i is input column 4i + j, taken from two 32-float loads by
/// even/odd lane splits. Groups whose 36-column span or 6 rows leave the image are first
/// copied into zero-padded staging rows.
@inline(__always)
func winogradF4InputTransform(_ input: UnsafePointer<Float>, _ s: Conv2DShape, inImage: Int, tilesW: Int,
                              tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                              into v: UnsafeMutablePointer<Float>) {
    let cin = s.inChannels, H = s.height, W = s.width
    let padT = s.padding.top, padL = s.padding.left
    let kStride = cin * count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * f4StageStride + 36 * 8) { buffer in
        guard let stage = buffer.baseAddress else { return }
        let rows = stage + 6 * f4StageStride   // 36 VFloats: (d B) per tile row, then reused
        var t = 0
        while t < count {
            let (n, ty, tx) = winogradTilePosition(firstTile + t, tilesPerImage: tilesPerImage, tilesW: tilesW)
            let lanes = min(8, tilesW - tx, count - t)
            let iy0 = 4 * ty - padT, ix0 = 4 * tx - padL
            let inside = iy0 >= 0 && iy0 + 6 <= H && ix0 >= 0 && ix0 + f4GroupSpan <= W
            let img = input + n * inImage
            for c in channels {
                let (src, stride) = winogradGroupRows(img + c * H * W, height: H, width: W, top: iy0, left: ix0,
                                                      rows: 6, span: f4GroupSpan, inside: inside, stage: stage,
                                                      stageStride: f4StageStride)
                // (d B) for each of the 6 rows: row r's columns as lanes over the 8 tiles.
                for r in 0..<6 {
                    let p = UnsafeRawPointer(src + r * stride)
                    let a = p.loadUnaligned(as: SIMD32<Float>.self)
                    let b = p.loadUnaligned(fromByteOffset: 16, as: SIMD32<Float>.self)
                    let w = inputRow(a.evenHalf.evenHalf, a.oddHalf.evenHalf, a.evenHalf.oddHalf,
                                     a.oddHalf.oddHalf, b.evenHalf.evenHalf, b.oddHalf.evenHalf)
                    let row = rows + r * 48
                    vstore(w.0, row, 0); vstore(w.1, row, 8); vstore(w.2, row, 16)
                    vstore(w.3, row, 24); vstore(w.4, row, 32); vstore(w.5, row, 40)
                }
                // Bᵀ along the rows, column j of (d B) at a time: V[6i + j].
                let dst = v + c * count + t
                for j in 0..<6 {
                    @inline(__always) func ld(_ r: Int) -> VFloat { vload(rows, r * 48 + 8 * j) }
                    let col = inputRow(ld(0), ld(1), ld(2), ld(3), ld(4), ld(5))
                    @inline(__always) func put(_ i: Int, _ x: VFloat) {
                        let o = dst + (6 * i + j) * kStride
                        if lanes == 8 { vstore(x, o, 0) } else { for l in 0..<lanes { o[l] = x[l] } }
                    }
                    put(0, col.0); put(1, col.1); put(2, col.2); put(3, col.3); put(4, col.4); put(5, col.5)
                }
            }
            t += lanes
        }
    }
}

/// Aᵀ m A (+ bias) for tiles [firstTile, firstTile + count) and the given output channels,
/// writing 4×4 output tiles clipped at the image's edges. M is [36][O][count].
@inline(__always)
func winogradF4OutputTransform(_ m: UnsafeMutablePointer<Float>, _ s: Conv2DShape, outImage: Int, tilesW: Int,
                               tilesPerImage: Int, firstTile: Int, count: Int, channels: Range<Int>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
    let ho = s.outHeight, wo = s.outWidth
    let o0 = channels.lowerBound
    let kStride = channels.count * count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 * 8 + 16 * 8) { buffer in
        guard let rows = buffer.baseAddress else { return }
        let ys = rows + 24 * 8   // y[r][j] for the 4×4 outputs, eight tiles each
        var t = 0
        while t < count {
            let (n, ty, tx) = winogradTilePosition(firstTile + t, tilesPerImage: tilesPerImage, tilesW: tilesW)
            let lanes = min(8, tilesW - tx, count - t)
            let oy = 4 * ty, ox = 4 * tx
            let whole = lanes == 8 && oy + 4 <= ho && ox + 32 <= wo
            let img = output + n * outImage
            for o in channels {
                let src = m + (o - o0) * count + t
                // A short group at the end of a run loads only its own lanes (M ends there).
                @inline(__always) func ld(_ k: Int) -> VFloat {
                    if lanes == 8 { return vload(src, k * kStride) }
                    var x = VFloat()
                    for l in 0..<lanes { x[l] = src[k * kStride + l] }
                    return x
                }
                // (m A) for each of the 6 rows: 4 columns.
                for i in 0..<6 {
                    let s = outputRow(ld(6 * i), ld(6 * i + 1), ld(6 * i + 2), ld(6 * i + 3), ld(6 * i + 4), ld(6 * i + 5))
                    vstore(s.0, rows, 32 * i); vstore(s.1, rows, 32 * i + 8)
                    vstore(s.2, rows, 32 * i + 16); vstore(s.3, rows, 32 * i + 24)
                }
                let b = VFloat(repeating: bias?[o] ?? 0)
                let dst = img + o * ho * wo + oy * wo + ox
                for j in 0..<4 {
                    @inline(__always) func sr(_ i: Int) -> VFloat { vload(rows, 32 * i + 8 * j) }
                    let y = outputRow(sr(0), sr(1), sr(2), sr(3), sr(4), sr(5))
                    vstore(y.0 + b, ys, 8 * j); vstore(y.1 + b, ys, 32 + 8 * j)
                    vstore(y.2 + b, ys, 64 + 8 * j); vstore(y.3 + b, ys, 96 + 8 * j)
                }
                // ys[8·(4r + j) + lane] is output row r, column j of tile `lane`.
                for r in 0..<4 {
                    let y0 = vload(ys, 32 * r), y1 = vload(ys, 32 * r + 8)
                    let y2 = vload(ys, 32 * r + 16), y3 = vload(ys, 32 * r + 24)
                    if whole {
                        // Interleave to columns 4·lane + j.
                        var even = SIMD16<Float>(), odd = SIMD16<Float>(), row = SIMD32<Float>()
                        even.evenHalf = y0; even.oddHalf = y2
                        odd.evenHalf = y1; odd.oddHalf = y3
                        row.evenHalf = even; row.oddHalf = odd
                        UnsafeMutableRawPointer(dst + r * wo).storeBytes(of: row, as: SIMD32<Float>.self)
                    } else if oy + r < ho {
                        let line = dst + r * wo
                        for l in 0..<lanes {
                            let x = ox + 4 * l
                            if x < wo { line[4 * l] = y0[l] }
                            if x + 1 < wo { line[4 * l + 1] = y1[l] }
                            if x + 2 < wo { line[4 * l + 2] = y2[l] }
                            if x + 3 < wo { line[4 * l + 3] = y3[l] }
                        }
                    }
                }
            }
            t += lanes
        }
    }
}

/// U[k][c] = (G g Gᵀ)[k] for the `cin` 3×3 filters g of one output channel (`src` is
/// [cin, 3, 3]); element k of channel c goes to `u[k·plane + c]`. Eight channels at a time
/// in SIMD lanes, then the rest one lane at a time.
@inline(__always)
func winogradF4WeightTransform(_ src: UnsafePointer<Float>, cin: Int, into u: UnsafeMutablePointer<Float>, plane: Int) {
    /// G x for one 3-vector x: the six rows of G.
    @inline(__always) func g(_ a: VFloat, _ b: VFloat, _ c: VFloat) -> (VFloat, VFloat, VFloat, VFloat, VFloat, VFloat) {
        let sixth = VFloat(repeating: 1.0 / 6), quarter = VFloat(repeating: 0.25)
        let ac = a + c
        let p = ac.addingProduct(a, -0.75)          // ¼a + c
        return (quarter * a, -sixth * (ac + b), sixth * (b - ac),
                sixth * p.addingProduct(b, 0.5), sixth * p.addingProduct(b, -0.5), c)
    }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * 8 + 18 * 8) { buffer in
        guard let f = buffer.baseAddress else { return }
        let tg = f + 72   // (G g)[i][j] at tg + 8·(3i + j)
        var c = 0
        while c < cin {
            let lanes = min(8, cin - c)
            if lanes < 8 { f.update(repeating: 0, count: 72) }
            // f[8e + lane] = filter element e (row-major 3×3) of channel c + lane.
            for lane in 0..<lanes {
                let filter = src + (c + lane) * 9
                for e in 0..<9 { f[8 * e + lane] = filter[e] }
            }
            // G g, one column j of g = (g[0][j], g[1][j], g[2][j]) at a time.
            for j in 0..<3 {
                let t = g(vload(f, 8 * j), vload(f, 8 * (3 + j)), vload(f, 8 * (6 + j)))
                vstore(t.0, tg, 8 * j); vstore(t.1, tg, 8 * (3 + j)); vstore(t.2, tg, 8 * (6 + j))
                vstore(t.3, tg, 8 * (9 + j)); vstore(t.4, tg, 8 * (12 + j)); vstore(t.5, tg, 8 * (15 + j))
            }
            // (G g) Gᵀ, row i at a time: U[6i + j].
            for i in 0..<6 {
                let r = g(vload(tg, 24 * i), vload(tg, 24 * i + 8), vload(tg, 24 * i + 16))
                @inline(__always) func put(_ j: Int, _ x: VFloat) {
                    let base = u + (6 * i + j) * plane + c
                    if lanes == 8 { vstore(x, base, 0) } else { for l in 0..<lanes { base[l] = x[l] } }
                }
                put(0, r.0); put(1, r.1); put(2, r.2); put(3, r.3); put(4, r.4); put(5, r.5)
            }
            c += lanes
        }
    }
}
