import Foundation
import Models
import Pipeline

/// The tokenizer of the model a job runs on (the job's `model` field; `nil`: the configured
/// default), so the intake can count a chunked prompt's tokens.
public typealias PromptTokenizerLookup = @Sendable (_ model: String?) throws -> CLIPTokenizer

extension ModelReference {
    /// The tokenizer this model's pipeline uses: `<folder>/tokenizer`, or a single file's
    /// `tokenizer` folder (the pad token does not matter for counting tokens).
    public func loadTokenizer() throws -> CLIPTokenizer {
        guard isSingleFile else { return try CLIPTokenizer(directory: path.appendingPathComponent("tokenizer")) }
        guard let tokenizer else { throw NativeSizeError(reason: "\(path.path) is a single file and no tokenizer is configured") }
        return try CLIPTokenizer(directory: tokenizer)
    }
}

/// Loads each model's tokenizer once, for the intake (`lookup`). Thread-safe: one lock
/// around the table, so concurrent parsers share it.
public final class PromptTokenizers: @unchecked Sendable {
    private let loaded = ModelFactCache<CLIPTokenizer>()
    private let resolve: @Sendable (String?) throws -> ModelReference

    /// Tokenizers of configured models: `models[name]`, `nil` → `defaultModel`.
    public init(models: [String: ModelReference], defaultModel: String?) {
        resolve = { name in try ServiceConfig.configuredModel(name, models: models, defaultModel: defaultModel).model }
    }

    /// The tokenizer of one model, whatever the job names (`--oneshot --model`).
    public init(model: ModelReference) { resolve = { _ in model } }

    /// The lookup to give `JobFileParser`.
    public var lookup: PromptTokenizerLookup {
        { [self] name in
            let model = try resolve(name)
            return try loaded.value(model.path.path) { try model.loadTokenizer() }
        }
    }
}

extension JobFileParser {
    /// `long_prompt: chunk`: the prompt (without its `<lora:…>` tags) and, when guidance
    /// applies, the negative prompt must fit in `LongPromptMode.maximumChunks` chunks of the
    /// job's model's tokenizer, else the field's value is the error's position. Skipped
    /// without a tokenizer lookup or when the tokenizer cannot be read (the run reports that).
    func checkLongPrompt(_ spec: JobSpec, marks: [String: SourceMark], decoder d: ScalarDecoder) throws {
        guard spec.longPrompt == .chunk, let promptTokenizer,
              let tokenizer = try? promptTokenizer(spec.model) else { return }
        var texts = [("prompt", PromptLoRATags.stripped(spec.prompt))]
        if spec.guidance > 1 { texts.append(("negative_prompt", spec.negativePrompt)) }
        for (field, text) in texts {
            let chunks = tokenizer.chunks(tokenizer.encode(text)).count
            guard chunks > LongPromptMode.maximumChunks, let mark = marks[field] else { continue }
            throw d.error(field, mark, LongPromptMode.tooManyChunksMessage(field: field, chunks: chunks, tokenizer: tokenizer))
        }
    }
}
