import Foundation

/// Errors raised while loading a model folder or generating.
public enum PipelineError: Error, CustomStringConvertible {
    case notImplemented(String)

    public var description: String {
        switch self {
        case .notImplemented(let what): return "\(what) is not implemented yet"
        }
    }
}

/// Text-to-image over a diffusers-layout model folder (tokenizer → text encoder →
/// sampler loop over the UNet with classifier-free guidance → VAE decode).
public final class TextToImagePipeline: ImageGenerating {
    /// Folder the model was loaded from.
    public let modelDirectory: URL

    /// Loads every component of the diffusers folder at `modelDirectory`, using `threads` cores.
    public init(modelDirectory: URL, threads: Int) throws {
        self.modelDirectory = modelDirectory
        throw PipelineError.notImplemented("TextToImagePipeline")
    }

    public func generate(_ request: GenerationRequest, snapshotEvery: Int,
                         onStep: (StepEvent) -> StepControl) throws -> RGBImage {
        throw PipelineError.notImplemented("TextToImagePipeline.generate")
    }
}
