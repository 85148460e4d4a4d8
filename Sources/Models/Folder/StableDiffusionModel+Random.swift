import Foundation
import Kernels

extension StableDiffusionModel {
    /// A model of the given real shapes with seeded random weights and `tokenizer`, for
    /// end-to-end benchmarks (`diffusion-bench image`); no files are read but the tokenizer's.
    /// With `secondText` (SDXL's `text_encoder_2`, for example `.sdxlBigG`), an SDXL-family
    /// model whose `tokenizer_2` is `tokenizer` as well (SDXL's pads with "!": the same work).
    public static func randomWeights(text: CLIPTextConfig, unet: UNetConfig, vae: VAEConfig, tokenizer: CLIPTokenizer,
                                     secondText: CLIPTextConfig? = nil, seed: UInt64 = 0,
                                     weights: WeightPrecision = .stored,
                                     pool: ThreadPool) throws -> StableDiffusionModel {
        var components = ["tokenizer": "CLIPTokenizer", "text_encoder": "CLIPTextModel",
                          "unet": "UNet2DConditionModel", "vae": "AutoencoderKL"]
        var xl: XLTextEncoder?
        if let secondText {
            components["tokenizer_2"] = "CLIPTokenizer"
            components["text_encoder_2"] = "CLIPTextModelWithProjection"
            xl = XLTextEncoder(tokenizer: tokenizer,
                               encoder: try CLIPTextEncoder.randomWeights(config: secondText, projection: true, seed: seed &+ 3,
                                                                          weights: weights, pool: pool),
                               forceZerosForEmptyPrompt: true)
        }
        let family: ModelFamily = secondText == nil ? .stableDiffusion : .stableDiffusionXL
        let index = ModelIndex(pipelineClass: family.pipelineClass, components: components)
        return StableDiffusionModel(directory: URL(fileURLWithPath: "/dev/null/random-weights"), index: index, tokenizer: tokenizer,
                                    textEncoder: try CLIPTextEncoder.randomWeights(config: text, seed: seed, weights: weights, pool: pool),
                                    unet: try UNet.randomWeights(config: unet, seed: seed &+ 1, weights: weights, pool: pool),
                                    vae: try VAE.randomWeights(config: vae, seed: seed &+ 2, weights: weights, pool: pool), xl: xl, singleFile: nil)
    }
}
