import Foundation
import Pipeline
import Sampling

/// Facts read from a model's files once per job parser (scheduler config, native size,
/// tokenizer): the parser runs for every job document, and a single-file checkpoint's header
/// is a large JSON. A config reload makes new parsers, so edits to a model's files are seen then.
public final class ModelFactCache<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Value] = [:]

    public init() {}

    /// The value cached under `key`, loading it the first time (a failed load is not cached).
    public func value(_ key: String, load: () throws -> Value) throws -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let cached = values[key] { return cached }
        let loaded = try load()
        values[key] = loaded
        return loaded
    }
}

extension ServiceConfig {
    /// The configured model a job's `model` field names (`nil`: the default model), with its
    /// name: the one resolution every intake lookup (size, scheduler, tokenizer) shares.
    static func configuredModel(_ name: String?, models: [String: ModelReference], defaultModel: String?) throws
        -> (name: String, model: ModelReference) {
        guard let name = name ?? defaultModel else { throw NativeSizeError(reason: "no model named and no default model") }
        guard let model = models[name] else { throw NativeSizeError(reason: "model \(name) is not configured") }
        return (name, model)
    }
}

extension JobFileParser {
    /// The native-size and scheduler-config lookups for jobs that all run on `model`
    /// (`--oneshot --model`), each read once.
    public static func lookups(for model: ModelReference) -> (nativeSize: NativeSizeLookup, schedulerConfig: SchedulerConfigLookup) {
        let sizes = ModelFactCache<NativeImageSize>(), configs = ModelFactCache<SchedulerConfig>()
        return ({ _ in try sizes.value("") { try NativeImageSize(model: model) } },
                { _ in try configs.value("") { try model.schedulerConfig() } })
    }
}
