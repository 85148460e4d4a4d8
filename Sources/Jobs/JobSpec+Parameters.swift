import ControlProtocol
import Foundation
import Pipeline

extension JobSpec {
    /// Every parameter that makes this job's images, as `result.json` and `show` report them.
    /// `model` is the model the job runs on (its own, or the default at submission).
    public func parameters(model: String) -> JobParameters {
        var p = JobParameters(prompt: prompt, model: model)
        p.negativePrompt = negativePrompt
        (p.width, p.height, p.steps, p.guidance) = (width, height, steps, guidance)
        (p.sampler, p.schedule, p.rng) = (sampler.rawValue, schedule.rawValue, rng.rawValue)
        (p.seed, p.count, p.snapshots) = (seed, count, snapshots)
        for lora in loras { p.appendLoRA(name: lora.name, file: lora.file.path, weight: lora.weight) }
        if decoder == .tiny { p.decoder = DecoderChoice.tiny.rawValue }
        if longPrompt != .truncate { p.longPrompt = longPrompt.rawValue }
        p.guidanceCutoff = guidanceCutoff
        if let initImage {
            (p.initImage, p.strength, p.resize) = (initImage.path, effectiveStrength, (resize ?? .crop).rawValue)
        }
        (p.mask, p.maskBlur) = (mask?.path, maskBlur)
        if let upscale { (p.upscale, p.upscaleStrength) = (upscale, hires?.strength) }
        if let grid {
            var axes: [String: [String: [String]]] = [:]
            if let x = grid.x { axes["x"] = [x.field: x.values] }
            if let y = grid.y { axes["y"] = [y.field: y.values] }
            p.grid = axes
        }
        p.cache = cache
        p.eta = samplerOptions.eta
        p.restart = samplerOptions.restart.map { [Double($0.steps), Double($0.times), $0.sigmaMin, $0.sigmaMax] }
        return p
    }
}
