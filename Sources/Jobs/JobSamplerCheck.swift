import Foundation
import Sampling

/// The scheduler config of the model a job runs on; the argument is the job's `model` field
/// (`nil`: the configured default). Lets the parser check sampler, schedule and steps at intake.
public typealias SchedulerConfigLookup = @Sendable (_ model: String?) throws -> SchedulerConfig

/// The defaults of a job on `model` (`nil`: the configured default) when its config entry has
/// its own `defaults:`; `nil` for the config's `defaults:`.
public typealias ModelDefaultsLookup = @Sendable (_ model: String?) -> JobDefaults?

extension JobFileParser {
    /// Checks the job's sampler, schedule and step count against its model's scheduler config
    /// at intake, exactly as the engine will build the sampler (`SamplerSettings` +
    /// `makeSampler`), so a job that would fail when its turn comes is rejected now, naming
    /// the field: `schedule` (a schedule the sampler's diffusers class lacks), `steps` (more
    /// than the schedule allows), `sampler` (the model's scheduler config is one the engine
    /// refuses for this sampler). A value that came from the config's `defaults:` points at the job's
    /// first line and says so. A model whose scheduler config cannot be read now (a folder not
    /// mounted yet, a file being copied) is not judged here: loading it when the job runs
    /// reports that, as before.
    func checkSampler(_ spec: JobSpec, given: [String: SourceMark], decoder d: ScalarDecoder, mappingMark: SourceMark) throws {
        guard let lookup = schedulerConfig else { return }
        func mark(_ field: String) -> SourceMark { given[field] ?? mappingMark }
        func origin(_ field: String) -> String { given[field] == nil ? " (from the config's defaults.\(field))" : "" }
        guard let config = try? lookup(spec.model) else { return }
        do {
            var settings = try SamplerSettings(sampler: spec.sampler, config: config, schedule: spec.schedule)
            settings.options = spec.samplerOptions
            _ = try makeSampler(settings, steps: spec.steps, elementCount: 1)
        } catch let error as SamplingError {
            switch error {
            case .scheduleUnavailable:
                throw d.error("schedule", mark("schedule"), "\(error)\(origin("schedule"))")
            case .invalidSteps:
                throw d.error("steps", mark("steps"), "\(error)\(origin("steps"))")
            case let .invalidOption(_, option, _):
                throw optionError(error, option: option, given: given, decoder: d, mappingMark: mappingMark)
            case .unsupported, .invalidConfig, .unreadableConfig:
                throw d.error("sampler", mark("sampler"), "the model's scheduler config does not work with this sampler: \(error)")
            }
        }
    }

    /// `eta` and `restart` before the sampler is built: an option that came from the config's
    /// `defaults:` goes with the defaults' sampler and is dropped for a job that runs another
    /// (a model's defaults for euler_a say nothing about a job that picks ddim); one the job
    /// gives is checked (`SamplerOptions.check`). Restart segments are for text-to-image
    /// without the hires fix (img2img begins part-way through the schedule, counted in main
    /// steps); the config's default segment is dropped for the others. The job's steps and
    /// its segment's together stay within `limits.max_steps`.
    func checkSamplerOptions(_ spec: inout JobSpec, given: [String: SourceMark], defaults: JobDefaults,
                             decoder d: ScalarDecoder, mappingMark: SourceMark) throws {
        let maxSteps = limits.maxSteps
        if spec.sampler != defaults.sampler {
            if given["eta"] == nil { spec.samplerOptions.eta = nil }
            if given["restart"] == nil { spec.samplerOptions.restart = nil }
        }
        do {
            try spec.samplerOptions.check(for: spec.sampler)
        } catch let error as SamplingError {
            guard case let .invalidOption(_, option, _) = error else { throw error }
            throw optionError(error, option: option, given: given, decoder: d, mappingMark: mappingMark)
        }
        if spec.samplerOptions.restart != nil {
            for other in ["init_image", "init_images", "upscale"] where given[other] != nil {
                guard let mark = given["restart"] else {
                    spec.samplerOptions.restart = nil
                    break
                }
                throw d.error("restart", mark, "restart segments are for text-to-image; leave out \(other) or restart")
            }
        }
        // A restart's steps are model evaluations like the job's own: limits.max_steps bounds both.
        if spec.samplerOptions.restart != nil, spec.stepsWithRestarts > maxSteps {
            let mark = given["restart"] ?? given["sampler"] ?? mappingMark
            let origin = given["restart"] == nil ? " (from the config's defaults.restart)" : ""
            throw d.error("restart", mark, "adds \(spec.stepsWithRestarts - spec.steps) steps to the \(spec.steps) of the job, "
                          + "more than limits.max_steps (\(maxSteps)) in all\(origin)")
        }
    }

    /// An `eta` or `restart` the sampler refuses, at the job's field (or, for a default, at its
    /// sampler or first line, saying where the value came from).
    private func optionError(_ error: SamplingError, option: String, given: [String: SourceMark], decoder d: ScalarDecoder,
                             mappingMark: SourceMark) -> SourceError {
        let origin = given[option] == nil ? " (from the config's defaults.\(option))" : ""
        return d.error(option, given[option] ?? given["sampler"] ?? mappingMark, "\(error)\(origin)")
    }
}
