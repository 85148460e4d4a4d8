import ControlProtocol
import Foundation
import Pipeline

extension JobSpec {
    /// Every parameter that makes this job's images, as `result.json` and `show` report them.
    /// `model` is the model the job runs on (its own, or the default at submission).
    public func parameters(model: String) -> JobParameters {
        JobParameters(prompt: prompt, negativePrompt: negativePrompt, model: model, width: width, height: height,
                      steps: steps, sampler: sampler.rawValue, schedule: schedule.rawValue, guidance: guidance,
                      seed: seed, count: count, rng: rng.rawValue, snapshots: snapshots,
                      loras: loras.isEmpty ? nil
                          : loras.map { JobParameters.LoRA(name: $0.name, file: $0.file.path, weight: $0.weight) },
                      decoder: decoder == .tiny ? DecoderChoice.tiny.rawValue : nil,
                      longPrompt: longPrompt == .truncate ? nil : longPrompt.rawValue, guidanceCutoff: guidanceCutoff,
                      cache: cache)
    }
}
