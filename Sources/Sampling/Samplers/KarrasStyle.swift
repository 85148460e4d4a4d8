import Kernels

/// Shared pieces of the Karras-style (sigma-parameterised) schedulers.
enum KarrasStyle {
    /// `scale_model_input` divisor `(sigma**2 + 1) ** 0.5` in float32.
    static func inputDivisor(_ sigma: Float) -> Float { (sigma * sigma + 1).squareRoot() }

    /// `init_noise_sigma`: max sigma for linspace/trailing spacing, else `(max**2 + 1) ** 0.5`.
    static func initNoiseSigma(_ sigmas: [Float], spacing: TimestepSpacing) -> Float {
        let maximum = sigmas.max() ?? 1
        return spacing == .leading ? (maximum * maximum + 1).squareRoot() : maximum
    }

    /// Interpolated / Karras / exponential sigmas and their (fractional) timesteps, as the
    /// Euler, Heun and LMS `set_timesteps` compute them (without the final sigma).
    /// LMS's `_convert_to_karras` ignores the config's sigma_min / sigma_max
    /// (`karrasUsesConfigBounds: false`); the other classes read them.
    static func sigmasAndTimesteps(_ settings: SamplerSettings, _ training: TrainingSchedule, steps: Int,
                                   karrasUsesConfigBounds: Bool = true) -> (sigmas: [Double], timesteps: [Double]) {
        var timesteps = SigmaSpacingMath.floatTimesteps(settings, steps: steps)
        var sigmas = timesteps.map { NumpyArith.interpolate($0, training.sigmas) }
        let logSigmas = SigmaSpacingMath.logSigmas(training.sigmas)
        switch settings.sigmaSpacing {
        case .interpolated:
            break
        case .karras:
            let configMin = karrasUsesConfigBounds ? settings.sigmaMin : nil
            let configMax = karrasUsesConfigBounds ? settings.sigmaMax : nil
            sigmas = SigmaSpacingMath.karras(sigmaMin: configMin ?? sigmas[sigmas.count - 1],
                                             sigmaMax: configMax ?? sigmas[0], steps: steps)
            timesteps = sigmas.map { SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas) }
        case .exponential:
            sigmas = SigmaSpacingMath.exponential(sigmaMin: settings.sigmaMin ?? sigmas[sigmas.count - 1],
                                                  sigmaMax: settings.sigmaMax ?? sigmas[0], steps: steps)
            timesteps = sigmas.map { SigmaSpacingMath.sigmaToT($0, logSigmas: logSigmas) }
        }
        return (sigmas, timesteps)
    }

    /// Predicted denoised sample from the model output at `sigma` (Euler / Heun / LMS `step`).
    @inline(__always)
    static func denoised(_ prediction: PredictionType, sigma: Float, sample: FloatLanes,
                         output: FloatLanes) -> FloatLanes {
        switch prediction {
        case .epsilon:
            return sample - sigma * output
        case .vPrediction:
            // model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
            let sigmaSquaredPlusOne = sigma * sigma + 1
            return output * (-sigma / sigmaSquaredPlusOne.squareRoot()) + sample / sigmaSquaredPlusOne
        case .sample:
            return output
        }
    }
}
