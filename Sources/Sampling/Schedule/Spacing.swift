import Foundation

/// numpy helpers that diffusers' `set_timesteps` functions use, reproduced with numpy's
/// arithmetic (double precision, round-half-to-even) so the timesteps match exactly.
enum NumpyArith {
    /// `np.linspace(start, stop, count)` (endpoint included, last value exactly `stop`).
    static func linspace(_ start: Double, _ stop: Double, _ count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { Double($0) * step + start }
        values[count - 1] = stop
        return values
    }

    /// `np.arange(start, stop, step)` for float arguments: `start + i * delta` with
    /// `delta = (start + step) - start`, length `ceil((stop - start) / step)`.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        let delta = (start + step) - start
        return (0..<length).map { start + Double($0) * delta }
    }

    /// `np.round` (half to even).
    static func round(_ value: Double) -> Double { value.rounded(.toNearestOrEven) }

    /// `np.interp(x, arange(len(fp)), fp)` for integer sample points `0 … n-1`.
    static func interpolate(_ x: Double, _ values: [Float]) -> Double {
        let last = values.count - 1
        if x <= 0 { return Double(values[0]) }
        if x >= Double(last) { return Double(values[last]) }
        let j = Int(x.rounded(.down))
        if x == Double(j) { return Double(values[j]) }
        let slope = (Double(values[j + 1]) - Double(values[j])) / 1.0
        return slope * (x - Double(j)) + Double(values[j])
    }
}

/// Timestep and sigma spacing shared by the sigma-based schedulers (Euler, Euler a,
/// Heun, LMS, DPM-Solver): `set_timesteps` of diffusers 0.42.
enum SigmaSpacingMath {
    /// Float timesteps of EulerDiscrete / EulerAncestral / Heun / LMS `set_timesteps`.
    static func floatTimesteps(_ settings: SamplerSettings, steps: Int) -> [Double] {
        let train = settings.numTrainTimesteps
        switch settings.timestepSpacing {
        case .linspace:
            // np.linspace(..., dtype=np.float32)[::-1]
            return NumpyArith.linspace(0, Double(train - 1), steps).reversed().map { Double(Float($0)) }
        case .leading:
            let ratio = train / steps
            return (0..<steps).reversed().map { Double(Float($0 * ratio)) + Double(settings.stepsOffset) }
        case .trailing:
            let ratio = Double(train) / Double(steps)
            return NumpyArith.arange(Double(train), 0, -ratio).map { Double(Float(NumpyArith.round($0))) - 1 }
        }
    }

    /// `np.log` of the training sigmas, as float32 (numpy keeps the dtype).
    static func logSigmas(_ sigmas: [Float]) -> [Double] {
        sigmas.map { Double(Foundation.log($0)) }
    }

    /// `_sigma_to_t`: the fractional training timestep whose sigma is `sigma`, by linear
    /// interpolation in log sigma.
    static func sigmaToT(_ sigma: Double, logSigmas: [Double]) -> Double {
        let logSigma = Foundation.log(max(sigma, 1e-10))
        // low_idx = cumsum(log_sigma - log_sigmas >= 0).argmax(): the first index where the
        // running count of "at or below log_sigma" reaches its maximum.
        var running = 0
        var best = 0
        var lowIndex = 0
        for (index, value) in logSigmas.enumerated() {
            if logSigma - value >= 0 { running += 1 }
            if running > best {
                best = running
                lowIndex = index
            }
        }
        lowIndex = min(lowIndex, logSigmas.count - 2)
        let highIndex = lowIndex + 1
        let low = logSigmas[lowIndex]
        let high = logSigmas[highIndex]
        var w = (low - logSigma) / (low - high)
        w = min(max(w, 0), 1)
        return (1 - w) * Double(lowIndex) + w * Double(highIndex)
    }

    /// `_convert_to_karras` (Karras et al. 2022, eq. 5, rho = 7).
    static func karras(sigmaMin: Double, sigmaMax: Double, steps: Int) -> [Double] {
        let rho = 7.0
        let ramp = NumpyArith.linspace(0, 1, steps)
        let minInvRho = pow(sigmaMin, 1 / rho)
        let maxInvRho = pow(sigmaMax, 1 / rho)
        return ramp.map { pow(maxInvRho + $0 * (minInvRho - maxInvRho), rho) }
    }

    /// `_convert_to_exponential`: `exp(linspace(log sigma_max, log sigma_min, steps))`.
    static func exponential(sigmaMin: Double, sigmaMax: Double, steps: Int) -> [Double] {
        NumpyArith.linspace(Foundation.log(sigmaMax), Foundation.log(sigmaMin), steps).map { Foundation.exp($0) }
    }
}
