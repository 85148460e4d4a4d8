/// A seeded source of standard-normal noise, drawn the way torch draws it.
///
/// Every call continues the generator's stream exactly as the torch generator it ports
/// would: the initial latents and the per-step noise of ancestral / SDE samplers come from
/// one generator, in the order diffusers draws them.
public protocol NoiseGenerator: AnyObject {
    /// The seed the generator was created with.
    var seed: UInt64 { get }
    /// Fills `out` like `torch.randn(out.count, generator=g, dtype=torch.float32)` (one call).
    func fillNormal(_ out: UnsafeMutableBufferPointer<Float>)
}

extension NoiseGenerator {
    /// Fills the whole array in one `torch.randn` call (no reallocation).
    public func fillNormal(_ out: inout [Float]) {
        out.withUnsafeMutableBufferPointer { fillNormal($0) }
    }

    /// Returns `count` fresh standard-normal values (allocates; for tests and setup code).
    public func normal(count: Int) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        fillNormal(&values)
        return values
    }
}

/// Makes the generator a job's `rng` field names, seeded with `seed`.
public func makeNoiseGenerator(_ kind: RNGKind, seed: UInt64) -> NoiseGenerator {
    switch kind {
    case .cpu: return TorchCPUGenerator(seed: seed)
    case .philox: return PhiloxGenerator(seed: seed)
    }
}
