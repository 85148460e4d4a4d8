import Foundation
import Kernels

extension StableDiffusionModel {
    /// A model of the given real shapes with seeded random weights and `tokenizer`, for
    /// end-to-end benchmarks (`diffusion-bench image`); no files are read but the tokenizer's.
    public static func randomWeights(text: CLIPTextConfig, unet: UNetConfig, vae: VAEConfig, tokenizer: CLIPTokenizer,
                                     seed: UInt64 = 0, weights: WeightPrecision = .stored,
                                     pool: ThreadPool) throws -> StableDiffusionModel {
        let index = ModelIndex(pipelineClass: "StableDiffusionPipeline",
                               components: ["tokenizer": "CLIPTokenizer", "text_encoder": "CLIPTextModel",
                                            "unet": "UNet2DConditionModel", "vae": "AutoencoderKL"])
        return StableDiffusionModel(directory: URL(fileURLWithPath: "/dev/null/random-weights"), index: index, tokenizer: tokenizer,
                                    textEncoder: try CLIPTextEncoder.randomWeights(config: text, seed: seed, weights: weights, pool: pool),
                                    unet: try UNet.randomWeights(config: unet, seed: seed &+ 1, weights: weights, pool: pool),
                                    vae: try VAE.randomWeights(config: vae, seed: seed &+ 2, weights: weights, pool: pool), singleFile: nil)
    }
}
