import Foundation
import Kernels

extension SamplerKind {
    /// `DPMSolverMultistepScheduler` (algorithm_type `dpmsolver++`, solver_order 2).
    public static let dpmpp2m = SamplerKind(DPMSolverSampler.definition(
        name: "dpm++2m", automatic1111Name: "DPM++ 2M", stochastic: false))
    /// `DPMSolverMultistepScheduler` (algorithm_type `sde-dpmsolver++`, solver_order 2).
    public static let dpmpp2mSDE = SamplerKind(DPMSolverSampler.definition(
        name: "dpm++2m_sde", automatic1111Name: "DPM++ 2M SDE", stochastic: true))
}

extension DPMSolverSampler {
    /// Both samplers are the one diffusers class, with a different `algorithm_type`.
    static func definition(name: String, automatic1111Name: String, stochastic: Bool) -> SamplerDefinition {
        SamplerDefinition(
            name: name, automatic1111Name: automatic1111Name, diffusersClass: "DPMSolverMultistepScheduler",
            defaults: SchedulerDefaults(betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear, timestepSpacing: .linspace),
            reads: [.sigmaSpacing, .finalSigmasType, .thresholding], zeroTerminalSNR: .terminalNudged,
            configure: { settings, config in
                // Only the learned variance types change DPM-Solver; "fixed_small" etc. from a
                // DDPM config are ignored by it. "logrho", "bh1", "bh2" (DEIS / UniPC configs)
                // are mapped to midpoint by its __init__.
                if let variance = config.varianceType, variance == "learned" || variance == "learned_range" {
                    throw settings.unsupported("variance_type", variance)
                }
                if config.solverType == "heun" { throw settings.unsupported("solver_type", "heun") }
                if config.useLuLambdas == true { throw settings.unsupported("use_lu_lambdas", true) }
            },
            build: { try DPMSolverSampler($0, $1, steps: $2, count: $3, stochastic: stochastic) })
    }
}

/// diffusers `DPMSolverMultistepScheduler` with `solver_order = 2`, `solver_type =
/// midpoint` and `algorithm_type = dpmsolver++` (DPM-Solver++(2M), Lu et al. 2022, eq. 3.x)
/// or `sde-dpmsolver++` (its SDE variant, which draws Gaussian noise from the generator on
/// every step like diffusers, not k-diffusion's Brownian tree).
///
/// Reads beta schedule, prediction type (epsilon, v_prediction, sample), timestep spacing
/// and steps_offset, Karras / exponential sigmas with sigma_min / sigma_max,
/// final_sigmas_type, lower_order_final, euler_at_final, lambda_min_clipped,
/// rescale_betas_zero_snr. Leaves out: thresholding, variance_type learned, solver_type heun,
/// use_lu_lambdas, flow sigmas, use_beta_sigmas (all rejected by SamplerSettings, via
/// the definitions above).
final class DPMSolverSampler: SamplerBase, DiffusionSampler {
    let modelInputDivisor: Float = 1
    private let prediction: PredictionType
    private let stochastic: Bool
    private let lowerOrderFinal: Bool
    private let eulerAtFinal: Bool
    private let finalSigmaIsSigmaMin: Bool
    /// Denoised predictions of this step and the previous one (`model_outputs`).
    private var current: LatentBuffer
    private var previous: LatentBuffer
    private let noiseBuffer: LatentBuffer
    private var lowerOrderCount = 0

    init(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int, count: Int, stochastic: Bool) throws {
        let kind: SamplerKind = stochastic ? .dpmpp2mSDE : .dpmpp2m
        self.stochastic = stochastic
        prediction = settings.predictionType
        lowerOrderFinal = settings.lowerOrderFinal
        eulerAtFinal = settings.eulerAtFinal
        finalSigmaIsSigmaMin = settings.finalSigmaIsSigmaMin
        let train = settings.numTrainTimesteps
        // lambda_t = log(alpha_t) - log(sigma_t); the last timestep drops those below lambda_min_clipped.
        let lambdas = training.alphasCumprod.map { Foundation.log($0.squareRoot()) - Foundation.log((1 - $0).squareRoot()) }
        let clipped = lambdas.reversed().filter { Double($0) < settings.lambdaMinClipped }.count
        let lastTimestep = train - clipped
        var integerTimesteps: [Int]
        switch settings.timestepSpacing {
        case .linspace:
            integerTimesteps = NumpyArith.linspace(0, Double(lastTimestep - 1), steps + 1)
                .map { Int(NumpyArith.round($0)) }.reversed().dropLast()
        case .leading:
            let ratio = lastTimestep / (steps + 1)
            integerTimesteps = (0...steps).map { $0 * ratio }.reversed().dropLast().map { $0 + settings.stepsOffset }
        case .trailing:
            let ratio = Double(train) / Double(steps)
            integerTimesteps = NumpyArith.arange(Double(lastTimestep), 0, -ratio).map { Int(NumpyArith.round($0)) - 1 }
        }
        var schedule: [Double]
        let logSigmas = SigmaSpacingMath.logSigmas(training.sigmas)
        let descending = training.sigmas.reversed().map { Double($0) }
        switch settings.sigmaSpacing {
        case .interpolated:
            schedule = integerTimesteps.map { NumpyArith.interpolate(Double($0), training.sigmas) }
        case .karras:
            schedule = SigmaSpacingMath.karras(sigmaMin: settings.sigmaMin ?? descending[descending.count - 1],
                                               sigmaMax: settings.sigmaMax ?? descending[0], steps: steps)
            let fractional = schedule.map { SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas) }
            // timesteps.round() unless the beta schedule is squaredcos_cap_v2; then int64.
            integerTimesteps = fractional.map {
                settings.betaSchedule == .squaredcosCapV2 ? Int($0) : Int(NumpyArith.round($0))
            }
        case .exponential:
            schedule = SigmaSpacingMath.exponential(sigmaMin: settings.sigmaMin ?? descending[descending.count - 1],
                                                    sigmaMax: settings.sigmaMax ?? descending[0], steps: steps)
            integerTimesteps = schedule.map { Int(SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas)) }
        }
        guard !integerTimesteps.isEmpty else {
            throw SamplingError.invalidSteps(sampler: kind.rawValue, steps: steps, reason: "no timesteps left")
        }
        var sigmas = schedule.map { Float($0) }
        if settings.finalSigmaIsSigmaMin {
            let first = training.alphasCumprod[0]
            sigmas.append(((1 - first) / first).squareRoot())
        } else {
            sigmas.append(0)
        }
        current = LatentBuffer(count: count)
        previous = LatentBuffer(count: count)
        noiseBuffer = LatentBuffer(count: count)
        super.init(kind: kind, elementCount: count, timesteps: integerTimesteps.map { Float($0) }, sigmas: sigmas)
    }

    /// `_sigma_to_alpha_sigma_t`: alpha_t = 1 / sqrt(sigma² + 1), sigma_t = sigma * alpha_t.
    private static func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    /// `add_noise`: `alpha_t * original_samples + sigma_t * noise` with alpha_t, sigma_t from
    /// `sigmas[step_index]` (`_sigma_to_alpha_sigma_t`).
    override func addNoise(to sample: UnsafeMutableBufferPointer<Float>, noise: UnsafeBufferPointer<Float>) {
        guard let x = sample.baseAddress, let n = noise.baseAddress else { return }
        let (alpha, sigma) = Self.alphaSigma(sigmas[stepIndex])
        LaneMaps.map(x, x, n, count: min(sample.count, noise.count)) { s, e in alpha * s + sigma * e }
    }

    func step(modelOutput: UnsafeBufferPointer<Float>, sample: UnsafeMutableBufferPointer<Float>,
              noise: NoiseGenerator) throws {
        guard let out = modelOutput.baseAddress, let x = sample.baseAddress, stepIndex < timesteps.count else { return }
        let count = elementCount
        let stepCount = timesteps.count
        let isLast = stepIndex == stepCount - 1
        let useFirstOrderFinal = isLast && (eulerAtFinal || (lowerOrderFinal && stepCount < 15) || !finalSigmaIsSigmaMin)

        // convert_model_output (dpmsolver++): the denoised estimate x0.
        swap(&current, &previous)
        let (alphaS0, sigmaS0) = Self.alphaSigma(sigmas[stepIndex])
        let prediction = self.prediction
        LaneMaps.map(current.pointer, x, out, count: count) { s, m in
            switch prediction {
            case .epsilon: return (s - sigmaS0 * m) / alphaS0
            case .vPrediction: return alphaS0 * s - sigmaS0 * m
            case .sample: return m
            }
        }
        if stochastic { noise.fillNormal(noiseBuffer.buffer) }

        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[stepIndex + 1])
        let lambdaT = Foundation.log(alphaT) - Foundation.log(sigmaT)
        let lambdaS0 = Foundation.log(alphaS0) - Foundation.log(sigmaS0)
        let h = lambdaT - lambdaS0
        let d0 = current.pointer
        let z = noiseBuffer.pointer

        if lowerOrderCount < 1 || useFirstOrderFinal {
            // dpm_solver_first_order_update
            if stochastic {
                let a = sigmaT / sigmaS0 * Foundation.exp(-h)
                let b = alphaT * (1 - Foundation.exp(-2 * h))
                let c = sigmaT * (1 - Foundation.exp(-2 * h)).squareRoot()
                LaneMaps.map(x, x, d0, z, count: count) { s, m0, n in (a * s + b * m0) + c * n }
            } else {
                let a = sigmaT / sigmaS0
                let b = alphaT * (Foundation.exp(-h) - 1)
                LaneMaps.map(x, x, d0, count: count) { s, m0 in a * s - b * m0 }
            }
        } else {
            // multistep_dpm_solver_second_order_update (midpoint)
            let (alphaS1, sigmaS1) = Self.alphaSigma(sigmas[stepIndex - 1])
            let lambdaS1 = Foundation.log(alphaS1) - Foundation.log(sigmaS1)
            let h0 = lambdaS0 - lambdaS1
            let r0 = h0 / h
            let d1Scale = 1 / r0
            let m1 = previous.pointer
            if stochastic {
                let a = sigmaT / sigmaS0 * Foundation.exp(-h)
                let b = alphaT * (1 - Foundation.exp(-2 * h))
                let c = 0.5 * (alphaT * (1 - Foundation.exp(-2 * h)))
                let e = sigmaT * (1 - Foundation.exp(-2 * h)).squareRoot()
                LaneMaps.map(x, x, d0, m1, z, count: count) { s, m0, p, n in
                    let d1 = d1Scale * (m0 - p)
                    return ((a * s + b * m0) + c * d1) + e * n
                }
            } else {
                let a = sigmaT / sigmaS0
                let b = alphaT * (Foundation.exp(-h) - 1)
                let c = 0.5 * (alphaT * (Foundation.exp(-h) - 1))
                LaneMaps.map(x, x, d0, m1, count: count) { s, m0, p in
                    let d1 = d1Scale * (m0 - p)
                    return (a * s - b * m0) - c * d1
                }
            }
        }
        if lowerOrderCount < 2 { lowerOrderCount += 1 }
        advance()
    }
}
