import Foundation
import Kernels
import Models
import Sampling

extension TextToImagePipeline {
    /// A pipeline over `model` (for example `StableDiffusionModel.randomWeights`) with
    /// `schedulerConfig` and, when given, a random-weight tiny VAE of `tinyVAE`'s shapes: the
    /// whole text-to-image path at real sizes without files, for `diffusion-bench image`.
    public static func benchmark(model: StableDiffusionModel, schedulerConfig: SchedulerConfig, tinyVAE: TinyVAEConfig?,
                                 pool: ThreadPool) throws -> TextToImagePipeline {
        let pipeline = TextToImagePipeline(model: model, schedulerConfig: schedulerConfig, pool: pool)
        if let tinyVAE { pipeline.tinyVAE = try TinyVAE.randomWeights(config: tinyVAE, seed: 3, pool: pool) }
        return pipeline
    }
}
