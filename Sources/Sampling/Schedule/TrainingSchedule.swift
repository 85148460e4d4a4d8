import Foundation

/// The training-time noise schedule shared by every diffusers scheduler's `__init__`:
/// betas, `alphas_cumprod` and the Karras-style sigmas `sqrt((1 - ᾱ) / ᾱ)`, computed with
/// torch's float32 arithmetic so the numbers match the scheduler's tensors.
public struct TrainingSchedule: Sendable {
    /// `betas` (float32), one per training timestep.
    public let betas: [Float]
    /// `alphas_cumprod` (float32): torch's `cumprod` accumulates in double, rounds each output.
    public let alphasCumprod: [Float]
    /// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` (float32), ascending in t.
    public let sigmas: [Float]

    public init(settings: SamplerSettings) throws {
        let count = settings.numTrainTimesteps
        guard count >= 2 else {
            throw SamplingError.invalidConfig(path: "scheduler_config.json", field: "num_train_timesteps", reason: "must be at least 2, got \(count)")
        }
        let raw: [Float]
        if let trained = settings.trainedBetas {
            guard trained.count == count else {
                throw SamplingError.invalidConfig(path: "scheduler_config.json", field: "trained_betas", reason: "has \(trained.count) values, num_train_timesteps is \(count)")
            }
            raw = trained.map { Float($0) }
        } else {
            switch settings.betaSchedule {
            case .linear:
                raw = Self.torchLinspace(Float(settings.betaStart), Float(settings.betaEnd), count)
            case .scaledLinear:
                raw = Self.torchLinspace(Float(settings.betaStart.squareRoot()), Float(settings.betaEnd.squareRoot()), count).map { $0 * $0 }
            case .squaredcosCapV2:
                raw = Self.cosineBetas(count)
            }
        }
        betas = settings.rescaleBetasZeroSNR ? Self.rescaledToZeroTerminalSNR(raw) : raw
        var cumulative = Self.cumulativeAlphas(betas)
        if settings.rescaleBetasZeroSNR && settings.sampler.definition.zeroTerminalSNR == .terminalNudged {
            // "close to 0 without being 0 so first sigma is not inf" (fp16's smallest
            // subnormal); the classes with `.exactZero` keep the exact 0.
            cumulative[count - 1] = 0x1p-24
        }
        alphasCumprod = cumulative
        sigmas = cumulative.map { ((1 - $0) / $0).squareRoot() }
    }

    /// `torch.cumprod(1.0 - betas)` in float32: `1 - beta` rounded to float32, the running
    /// product kept in double (torch's CPU cumprod accumulator) and each output rounded.
    static func cumulativeAlphas(_ betas: [Float]) -> [Float] {
        var product = 1.0
        return betas.map { beta in
            product *= Double(1 - beta)
            return Float(product)
        }
    }

    /// diffusers `rescale_zero_terminal_snr(betas)` (Lin et al. 2024, "Common Diffusion Noise
    /// Schedules and Sample Steps Are Flawed", Algorithm 1), in torch's float32 order of
    /// operations: shift sqrt(alphas_cumprod) so its last value is 0, scale it so its first
    /// value is unchanged, square, and turn the ratios back into betas (the last one is 1).
    static func rescaledToZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let roots = cumulativeAlphas(betas).map { $0.squareRoot() }
        guard let first = roots.first, let last = roots.last else { return betas }
        let scale = first / (first - last)
        let bars = roots.map { ($0 - last) * scale }.map { $0 * $0 }
        return bars.indices.map { i in 1 - (i == 0 ? bars[0] : bars[i] / bars[i - 1]) }
    }

    /// `torch.linspace(start, end, count, dtype=float32)` (CPU `linspace_kernel`: the first
    /// half counts up from `start`, the second half down from `end`; GCC contracts
    /// `start + step * i` into one FMA, which decides the last bit).
    static func torchLinspace(_ start: Float, _ end: Float, _ count: Int) -> [Float] {
        if count == 1 { return [start] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { index in
            index < halfway ? start.addingProduct(step, Float(index))
                : end.addingProduct(-step, Float(count - index - 1))
        }
    }

    /// `betas_for_alpha_bar(count, max_beta=0.999, "cosine")`, computed in double, stored float32.
    static func cosineBetas(_ count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count)
            let t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }
}
