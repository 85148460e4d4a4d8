import KernelsAVX512

/// Side of the square blocks `transpose` hands out: a block's 32 source rows and 32
/// destination rows (8 KiB each way) stay in L1 while it is copied.
let transposeBlock = 32

/// dst = srcᵀ (+ addend) for `count` matrices one after another: each source is `rows` × `cols`
/// row-major, each destination `cols` × `rows` row-major, dst[j][i] = src[i][j] (+ addend[j][i],
/// an addend laid out as the destination). The NCHW ↔ tokens permutation of a spatial
/// transformer's `proj_in` and `proj_out` (channels × positions ↔ positions × channels), so the
/// projections can run as token-major linear layers, with `addend` the residual. Column blocks
/// of `transposeBlock` over the cores, each worker writing whole destination rows; inside them,
/// where the AVX-512 kernels run, 16 × 16 squares go through the registers
/// (`AVX512Transpose.block16`) and only the edges element by element. `dst` must not alias
/// `src` (it may alias `addend`). Exact: every value is copied, or the one sum src + addend
/// formed, the same bits by either route.
public func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, count: Int = 1,
                      adding addend: UnsafePointer<Float>? = nil, into dst: UnsafeMutablePointer<Float>,
                      pool: ThreadPool) {
    if rows <= 0 || cols <= 0 || count <= 0 { return }
    let b = transposeBlock
    let colBlocks = (cols + b - 1) / b, matrix = rows * cols
    pool.parallelFor(0..<(count * colBlocks)) { tasks, _ in
        for task in tasks {
            let m = task / colBlocks, j0 = (task % colBlocks) * b, j1 = min(cols, j0 + b)
            let s = src + m * matrix, d = dst + m * matrix, a = addend.map { $0 + m * matrix }
            // Whole 16 × 16 squares (rows below iSquares, columns below jSquares), then the rest.
            var iSquares = 0, jSquares = j0
            #if arch(x86_64)
            if CPUFeatures.useAVX512Kernels {
                iSquares = rows / 16 * 16
                jSquares = j0 + (j1 - j0) / 16 * 16
                for j in stride(from: j0, to: jSquares, by: 16) {
                    for i in stride(from: 0, to: iSquares, by: 16) {
                        AVX512Transpose.block16(s + i * cols + j, lds: cols, adding: a.map { $0 + j * rows + i },
                                                into: d + j * rows + i, ldd: rows)
                    }
                }
            }
            #endif
            // The rows past the squares in the squares' columns, then every row of the columns past them.
            copyTransposed(s, cols: cols, rows: rows, i: iSquares..<rows, j: j0..<jSquares, adding: a, into: d)
            copyTransposed(s, cols: cols, rows: rows, i: 0..<rows, j: jSquares..<j1, adding: a, into: d)
        }
    }
}

/// dst[j][i] = src[i][j] (+ addend[j][i]) element by element for i in `i`, j in `j`:
/// `transpose`'s edges (source row stride `cols`, destination and addend row stride `rows`).
private func copyTransposed(_ s: UnsafePointer<Float>, cols: Int, rows: Int, i: Range<Int>, j: Range<Int>,
                            adding a: UnsafePointer<Float>?, into d: UnsafeMutablePointer<Float>) {
    if i.isEmpty { return }
    for jj in j {
        let out = d + jj * rows, col = s + jj
        if let a {
            let add = a + jj * rows
            for ii in i { out[ii] = col[ii * cols] + add[ii] }
        } else {
            for ii in i { out[ii] = col[ii * cols] }
        }
    }
}
