import Kernels

extension SamplerKind {
    /// `LMSDiscreteScheduler`.
    public static let lms = SamplerKind(SamplerDefinition(
        name: "lms", automatic1111Name: "LMS", diffusersClass: "LMSDiscreteScheduler",
        defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .linspace),
        reads: [.sigmaSpacing], zeroTerminalSNR: .notRead,
        build: { try LMSSampler($0, $1, steps: $2, count: $3) }))
}

/// diffusers `LMSDiscreteScheduler` (linear multistep, order 4, k-diffusion's
/// `sample_lms`): `prev = sample + sum_j c_j * d_(i-j)` over the last derivatives, with
/// `c_j` the integral from sigma_i to sigma_(i+1) of the Lagrange basis polynomial through
/// the previous sigmas. diffusers integrates with scipy's `quad`; the integrand is a
/// polynomial of degree at most 3, so 3-point Gauss–Legendre integrates it exactly.
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), timestep spacing
/// and steps_offset, Karras / exponential sigmas. Leaves out: use_beta_sigmas, orders
/// other than 4 (StableDiffusionPipeline never passes `order`).
final class LMSSampler: SamplerBase, DiffusionSampler {
    private let prediction: PredictionType
    private static let order = 4
    /// Ring of the last `order` derivatives; `derivativeCount` of them are valid.
    private let derivatives: [LatentBuffer]
    private var newest = -1
    private var derivativeCount = 0
    private let sum: LatentBuffer

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int) throws {
        prediction = settings.predictionType
        let (schedule, spaced) = KarrasStyle.sigmasAndTimesteps(settings, training, steps: steps,
                                                                 karrasUsesConfigBounds: false)
        let sigmas = schedule.map { Float($0) } + [0]
        derivatives = (0..<Self.order).map { _ in LatentBuffer(count: count) }
        sum = LatentBuffer(count: count)
        super.init(kind: .lms, elementCount: count, timesteps: spaced.map { Float($0) }, sigmas: sigmas,
                   initNoiseSigma: KarrasStyle.initNoiseSigma(sigmas, spacing: settings.timestepSpacing))
    }

    var modelInputDivisor: Float { KarrasStyle.inputDivisor(sigmas[min(stepIndex, sigmas.count - 1)]) }

    /// `get_lms_coefficient(order, t, current_order)`.
    func coefficient(order: Int, step t: Int, currentOrder: Int) -> Double {
        let s = sigmas.map { Double($0) }
        func basis(_ tau: Double) -> Double {
            var product = 1.0
            for k in 0..<order where k != currentOrder {
                product *= (tau - s[t - k]) / (s[t - currentOrder] - s[t - k])
            }
            return product
        }
        let a = s[t]
        let b = s[t + 1]
        let half = (b - a) / 2
        let mid = (b + a) / 2
        let node = (3.0 / 5.0).squareRoot()
        return half * (5.0 / 9.0 * basis(mid - half * node) + 8.0 / 9.0 * basis(mid) + 5.0 / 9.0 * basis(mid + half * node))
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let sigma = sigmas[stepIndex]
        let prediction = self.prediction
        newest = (newest + 1) % Self.order
        derivativeCount = min(derivativeCount + 1, Self.order)
        LaneMaps.map(derivatives[newest].pointer, x, out, count: elementCount) { s, m in
            (s - KarrasStyle.denoised(prediction, sigma: sigma, sample: s, output: m)) / sigma
        }
        let order = min(stepIndex + 1, Self.order)
        // prev = sample + (((c0 * d_i) + c1 * d_(i-1)) + …), newest derivative first. diffusers
        // zips the coefficients with the derivatives it has, so after a begin index (img2img)
        // the first steps use fewer terms of the higher-order coefficients.
        let accumulator = sum.pointer
        for j in 0..<min(order, derivativeCount) {
            let c = Float(coefficient(order: order, step: stepIndex, currentOrder: j))
            let d = derivatives[(newest - j + Self.order) % Self.order].pointer
            if j == 0 {
                LaneMaps.map(accumulator, d, count: elementCount) { c * $0 }
            } else {
                LaneMaps.map(accumulator, accumulator, d, count: elementCount) { acc, dj in acc + c * dj }
            }
        }
        LaneMaps.map(x, x, accumulator, count: elementCount) { s, acc in s + acc }
        advance()
    }
}
