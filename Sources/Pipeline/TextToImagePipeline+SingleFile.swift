import Foundation
import Kernels
import Models
import Sampling

extension TextToImagePipeline {
    /// Loads a Stable Diffusion 1.x / 2.x single-file checkpoint (see
    /// `StableDiffusionModel.init(singleFile:tokenizerDirectory:prediction:pool:)`) with the
    /// CLIP tokenizer in `tokenizerDirectory`, and samples with the family's standard
    /// scheduler config (SD 1.5's PNDMScheduler or SD 2.1's DDIMScheduler config; the
    /// request's sampler picks the algorithm as with a folder). `prediction` overrides the
    /// family default (SD 1.x epsilon, SD 2.x v_prediction). `modelDirectory` is the file.
    /// Inpainting checkpoints are refused (`SingleFileError.inpaintingNotSupported`) before
    /// their weights are read.
    public convenience init(singleFile: URL, tokenizerDirectory: URL, prediction: CheckpointPrediction? = nil,
                            weights: WeightPrecision = .stored, threads: Int) throws {
        let checkpoint = try SingleFileCheckpoint(url: singleFile, prediction: prediction)
        let info = checkpoint.info
        if info.isInpainting { throw SingleFileError.inpaintingNotSupported(file: info.path) }
        let schedulerConfig = try ModelReference.schedulerConfig(of: info)
        let pool = ThreadPool(threadCount: max(1, threads))
        let model = try StableDiffusionModel(checkpoint: checkpoint, tokenizerDirectory: tokenizerDirectory, weights: weights, pool: pool)
        self.init(model: model, schedulerConfig: schedulerConfig, pool: pool)
    }
}
