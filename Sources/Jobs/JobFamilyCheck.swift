import Foundation
import Models
import Pipeline

/// The family of the model a job runs on; the argument is the job's `model` field (`nil`: the
/// configured default). Lets the parser refuse at intake what the family cannot do.
public typealias ModelFamilyLookup = @Sendable (_ model: String?) throws -> ModelFamily

extension JobFileParser {
    /// Refuses, naming the field, what an SDXL-family model does not run here: img2img
    /// (`init_image`, `init_images`), inpainting (`mask`), the hires fix (`upscale`), LoRAs
    /// (`loras`, `<lora:…>` in the prompt: `loraMark`) and `long_prompt: chunk`. The pipeline
    /// refuses the same when the job runs (`TextToImagePipeline.checkXLRequest`); a model whose
    /// family cannot be read now is not judged here.
    func checkFamily(_ spec: JobSpec, marks: [String: SourceMark], loraMark: SourceMark?, decoder d: ScalarDecoder) throws {
        guard let lookup = modelFamily, let family = try? lookup(spec.model), family == .stableDiffusionXL else { return }
        let model = spec.model.map { "model \(SourceError.quote($0))" } ?? "the default model"
        func refuse(_ field: String, _ mark: SourceMark, _ what: String) -> SourceError {
            d.error(field, mark, "\(model) is an SDXL model, which runs text-to-image only here: \(what) is not supported on it")
        }
        for (field, what) in [("init_image", "img2img"), ("init_images", "img2img"), ("mask", "inpainting"), ("upscale", "the hires fix")] {
            if let mark = marks[field] { throw refuse(field, mark, what) }
        }
        if let loraMark, !spec.loras.isEmpty {
            throw refuse(marks["loras"] == nil ? "prompt" : "loras", loraMark, "a LoRA")
        }
        if spec.longPrompt == .chunk, let mark = marks["long_prompt"] {
            throw refuse("long_prompt", mark, "chunk (SDXL prompts are truncated to 77 tokens, as diffusers does)")
        }
    }
}

extension JobFileParser {
    /// The family lookup for jobs that all run on `model` (`--oneshot --model`), read once.
    public static func familyLookup(for model: ModelReference) -> ModelFamilyLookup {
        let cache = ModelFactCache<ModelFamily>()
        return { _ in try cache.value("") { try model.family() } }
    }
}

extension ServiceConfig {
    /// Reads the family of a configured model (`nil`: the default model) from its folder's
    /// `model_index.json`, once per model for the parser it is given to.
    public var modelFamilyLookup: ModelFamilyLookup {
        let models = models, defaultModel = defaultModel, cache = ModelFactCache<ModelFamily>()
        return { name in
            let (key, model) = try ServiceConfig.configuredModel(name, models: models, defaultModel: defaultModel)
            return try cache.value(key) { try model.family() }
        }
    }
}
