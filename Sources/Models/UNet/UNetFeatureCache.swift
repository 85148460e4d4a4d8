import Kernels

/// DeepCache's kept deep feature (Ma et al. 2023, "DeepCache: Accelerating Diffusion Models
/// for Free", arXiv 2312.00858; github.com/horseee/DeepCache, `DeepCache/sd/unet_2d_condition.py`
/// with `cache_layer_id = 0, cache_block_id = 0`, the shallowest skip branch its Stable
/// Diffusion examples use).
///
/// A full UNet pass keeps the hidden state that enters the last up block's resnet
/// `layers_per_block[0] − 1` (the one whose skip is the first layer of down block 0): everything
/// the mid block and the deeper blocks contributed. A shallow pass then runs only `conv_in`, the
/// first layer of down block 0 and the last up block from that resnet on (popping that layer's
/// output and `conv_in`'s as skips), with the kept feature in place of the deep path; no
/// downsampler, mid block or other up block runs.
///
/// One cache per image: `reset()` before its first evaluation. The buffer is allocated by the
/// first full pass and reused while the shape stays the same (every image of a job).
public final class UNetFeatureCache: @unchecked Sendable {
    /// [N, C, h, w] of the last full pass (valid when `isFilled`).
    var features: Tensor?
    /// Whether a full pass has filled `features` since the last `reset()`.
    public private(set) var isFilled = false

    public init() {}

    /// Rows of the kept feature (the batch of the last full pass); 0 before one.
    public var batch: Int { isFilled ? (features?.shape[0] ?? 0) : 0 }

    /// Forgets the kept feature (the buffer stays for the next image).
    public func reset() { isFilled = false }

    /// Copies `x` in, reusing the buffer when its shape matches.
    func keep(_ x: Tensor) {
        if features?.shape != x.shape { features = Tensor(zeros: x.shape) }
        features?.copy(from: x)
        isFilled = true
    }

    /// Rows `first ..< first + count` of the kept feature, as a view.
    func rows(_ first: Int, count: Int) -> Tensor {
        guard isFilled, let f = features, first >= 0, first + count <= f.shape[0] else {
            preconditionFailure("UNetFeatureCache: rows \(first)..<\(first + count) of a cache holding \(batch)")
        }
        return f.batches(first ..< first + count)
    }
}

/// What one UNet evaluation does with a `UNetFeatureCache` (DeepCache).
public enum UNetCacheStep {
    /// The whole UNet; keeps the deep feature in the cache.
    case full(UNetFeatureCache)
    /// Only the shallow branch, reusing the cache's rows from `firstRow` on, one per batch
    /// element (a batch of 1 after a guided batch [uncond, cond] reuses row 1, the conditional one).
    case shallow(UNetFeatureCache, firstRow: Int)
}
