import Foundation
import Models
import Sampling

/// A configured model: a diffusers folder, or a single-file checkpoint (`.safetensors` with the
/// original key names) plus what such a file lacks — the CLIP vocabulary folder and, for SD 2.x
/// files whose prediction type the weights do not tell, an optional override.
public struct ModelReference: Sendable, Equatable {
    /// The folder or the file.
    public var path: URL
    /// `prediction: epsilon|v` of the config entry (single files only; a folder's
    /// `scheduler_config.json` says it).
    public var prediction: CheckpointPrediction?
    /// CLIP vocabulary folder for a single file (`tokenizer:` of the entry, else the config's
    /// `clip_tokenizer`).
    public var tokenizer: URL?
    /// Folder of a diffusers `AutoencoderTiny` (TAESD for SD 1.x/2.x) whose latents match the
    /// model's (`tiny_vae:` of the entry): step previews, and images of jobs with `decoder: tiny`.
    public var tinyVAE: URL?
    /// How layer weights are kept in memory (`weights:` of the entry; see `WeightPrecision`).
    public var weights: WeightPrecision

    public init(path: URL, prediction: CheckpointPrediction? = nil, tokenizer: URL? = nil, tinyVAE: URL? = nil,
                weights: WeightPrecision = .stored) {
        self.path = path
        self.prediction = prediction
        self.tokenizer = tokenizer
        self.tinyVAE = tinyVAE
        self.weights = weights
    }

    /// File extensions that mean "one checkpoint file", not a folder: safetensors, and the
    /// pickle formats that are refused with a conversion command when loaded.
    static let fileExtensions: Set<String> = ["safetensors", "ckpt", "pt", "pth", "bin"]

    /// Whether `path` names a single-file checkpoint (by its extension) rather than a folder.
    public var isSingleFile: Bool { Self.fileExtensions.contains(path.pathExtension.lowercased()) }

    /// Opens a single-file checkpoint's header (cheap: no weights are read) to infer its
    /// family and configs; errors name the file and what is wrong with it.
    public func openSingleFile() throws -> SingleFileCheckpoint {
        try SingleFileCheckpoint(url: path, prediction: prediction)
    }

    /// The model's scheduler config, as the pipeline will read it: a folder's
    /// `scheduler/scheduler_config.json`, or a single file's family standard (header only).
    /// The job parser checks sampler, schedule and steps against it at intake.
    public func schedulerConfig() throws -> SchedulerConfig {
        guard isSingleFile else {
            return try SchedulerConfig(contentsOf: path.appendingPathComponent("scheduler/scheduler_config.json"))
        }
        return try Self.schedulerConfig(of: try openSingleFile().info)
    }

    /// A single file's scheduler config: its family's standard one (the file holds none).
    static func schedulerConfig(of info: SingleFileCheckpointInfo) throws -> SchedulerConfig {
        try SchedulerConfig(json: info.schedulerConfigJSON, path: "\(info.path) (standard \(info.family.rawValue) scheduler config)")
    }

    /// The model's family: a folder's `model_index.json`; a single file is SD 1.x/2.x (an SDXL
    /// single file is refused when it is opened, see `SingleFileError.sdxlUnsupported`).
    public func family() throws -> ModelFamily {
        isSingleFile ? .stableDiffusion : try ModelFamily(folder: path)
    }

    /// Loads the model (and its tiny VAE, if any) into a text-to-image pipeline using `threads` cores.
    public func makePipeline(threads: Int) throws -> TextToImagePipeline {
        let pipeline = try makeBasePipeline(threads: threads)
        if let tinyVAE { try pipeline.loadTinyVAE(directory: tinyVAE) }
        return pipeline
    }

    private func makeBasePipeline(threads: Int) throws -> TextToImagePipeline {
        guard isSingleFile else { return try TextToImagePipeline(modelDirectory: path, weights: weights, threads: threads) }
        guard let tokenizer else {
            throw PipelineError.invalidRequest("\(path.path) is a single-file checkpoint, which carries no tokenizer: "
                + "set clip_tokenizer in the config (the shipped one is models/clip-tokenizer) or tokenizer: in its models entry")
        }
        return try TextToImagePipeline(singleFile: path, tokenizerDirectory: tokenizer, prediction: prediction,
                                       weights: weights, threads: threads)
    }
}
