/// The 6×16 register tile that `streamingGemm` (A = a layer's weights, B = unfolded input
/// columns) and fused attention's score product (A = scaled queries, B = key panels) share:
/// C[6×16] (+)= A[6×k]·B[k×16], A's rows broadcast, B's rows loaded as two vectors. Twelve
/// accumulators: each step two loads, six broadcasts and twelve FMAs.

/// C[r][0..<16] (+)= Σ_k A[r][k]·B[k][0..<16] for six rows (A row r at a + r·lda, B row k at
/// b + k·ldb, C row r at c + r·ldc); `add` keeps what C holds.
@inline(__always)
func multiplyStrip6x16(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                       _ c: UnsafeMutablePointer<Float>, ldc: Int, add: Bool) {
    let c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc
    var a00 = VFloat(), a01 = VFloat(), a10 = VFloat(), a11 = VFloat(), a20 = VFloat(), a21 = VFloat()
    var a30 = VFloat(), a31 = VFloat(), a40 = VFloat(), a41 = VFloat(), a50 = VFloat(), a51 = VFloat()
    if add {
        a00 = vload(c, 0); a01 = vload(c, 8); a10 = vload(c1, 0); a11 = vload(c1, 8)
        a20 = vload(c2, 0); a21 = vload(c2, 8); a30 = vload(c3, 0); a31 = vload(c3, 8)
        a40 = vload(c4, 0); a41 = vload(c4, 8); a50 = vload(c5, 0); a51 = vload(c5, 8)
    }
    let r1 = a + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda
    var bp = b
    for k in 0..<depth {
        let b0 = vload(bp, 0), b1 = vload(bp, 8)
        var s = VFloat(repeating: a[k]); a00 = a00.addingProduct(s, b0); a01 = a01.addingProduct(s, b1)
        s = VFloat(repeating: r1[k]); a10 = a10.addingProduct(s, b0); a11 = a11.addingProduct(s, b1)
        s = VFloat(repeating: r2[k]); a20 = a20.addingProduct(s, b0); a21 = a21.addingProduct(s, b1)
        s = VFloat(repeating: r3[k]); a30 = a30.addingProduct(s, b0); a31 = a31.addingProduct(s, b1)
        s = VFloat(repeating: r4[k]); a40 = a40.addingProduct(s, b0); a41 = a41.addingProduct(s, b1)
        s = VFloat(repeating: r5[k]); a50 = a50.addingProduct(s, b0); a51 = a51.addingProduct(s, b1)
        bp += ldb
    }
    vstore(a00, c, 0); vstore(a01, c, 8); vstore(a10, c1, 0); vstore(a11, c1, 8)
    vstore(a20, c2, 0); vstore(a21, c2, 8); vstore(a30, c3, 0); vstore(a31, c3, 8)
    vstore(a40, c4, 0); vstore(a41, c4, 8); vstore(a50, c5, 0); vstore(a51, c5, 8)
}

/// `multiplyStrip6x16` for one row of A (the rows left over after groups of six).
@inline(__always)
func multiplyStrip1x16(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, ldb: Int, depth: Int,
                       _ c: UnsafeMutablePointer<Float>, add: Bool) {
    var a0 = add ? vload(c, 0) : VFloat(), a1 = add ? vload(c, 8) : VFloat()
    var bp = b
    for k in 0..<depth {
        let s = VFloat(repeating: a[k])
        a0 = a0.addingProduct(s, vload(bp, 0)); a1 = a1.addingProduct(s, vload(bp, 8))
        bp += ldb
    }
    vstore(a0, c, 0); vstore(a1, c, 8)
}
