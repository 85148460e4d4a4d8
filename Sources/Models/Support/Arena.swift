import Kernels

/// A stack allocator for activations. Modules take a `mark()`, carve temporaries with
/// `tensor(_:)`, and `release(to:)` before returning, so peak memory is the deepest stack
/// of live tensors, not the sum of all of them. Memory comes in large chunks that are kept
/// across `reset()`: once a forward pass of given shapes has run, running it again
/// allocates nothing new (docs/ARCHITECTURE.md: no allocation inside the denoising loop).
/// Models that never run at once may share one arena (the VAE decoder uses the UNet's,
/// `VAE.shareWorkspace(of:)`), so the memory is the larger of their needs, not the sum.
public final class Arena: @unchecked Sendable {
    /// A position in the arena to return to.
    public struct Mark { fileprivate var chunk: Int; fileprivate var offset: Int }

    private var chunks: [TensorStorage] = []
    private var chunk = 0
    private var offset = 0
    /// Smallest chunk allocated, in floats.
    public let minimumChunk: Int

    /// - Parameter minimumChunk: floats per chunk unless a request is larger (default 64 MiB).
    public init(minimumChunk: Int = 16 << 20) { self.minimumChunk = minimumChunk }

    /// Floats held by all chunks (what this arena costs in memory).
    public var capacity: Int { chunks.reduce(0) { $0 + $1.capacity } }

    public func mark() -> Mark { Mark(chunk: chunk, offset: offset) }

    public func release(to m: Mark) { chunk = m.chunk; offset = m.offset }

    /// Forgets every tensor handed out (keeps the memory).
    public func reset() { chunk = 0; offset = 0 }

    /// A tensor of `shape` (contents undefined) valid until released past.
    public func tensor(_ shape: [Int]) -> Tensor {
        let n = Tensor.elementCount(shape)
        // Keep every tensor 64-byte aligned (16 floats).
        let padded = (n + 15) & ~15
        while chunk < chunks.count {
            if offset + padded <= chunks[chunk].capacity {
                let t = Tensor(storage: chunks[chunk], offset: offset, shape: shape)
                offset += padded
                return t
            }
            if offset == 0 {
                // An unused chunk too small for this request (made for smaller shapes, or by
                // the other model sharing this arena): free it instead of keeping it beside
                // the larger one about to be made. Chunks past the current one hold nothing.
                chunks.remove(at: chunk)
                continue
            }
            chunk += 1
            offset = 0
        }
        // Not on huge pages: a chunk's unused tail would be filled 2 MiB at a time where its
        // last tensor ends (peak RSS 1–3 MB higher for about 1% of speed at 256², batch 1).
        chunks.append(TensorStorage(capacity: max(padded, minimumChunk), hugePages: false))
        chunk = chunks.count - 1
        let t = Tensor(storage: chunks[chunk], offset: 0, shape: shape)
        offset = padded
        return t
    }

    /// Drops all chunks (for example when the next job has other shapes).
    public func freeAll() { chunks.removeAll(); reset() }
}
