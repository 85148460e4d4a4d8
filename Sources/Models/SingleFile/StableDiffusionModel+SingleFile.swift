import Foundation
import Kernels

extension ModelIndex {
    /// An index for components that did not come from a `model_index.json`.
    init(pipelineClass: String, components: [String: String]) {
        self.pipelineClass = pipelineClass
        self.components = components
        forceZerosForEmptyPrompt = nil
    }
}

extension StableDiffusionModel {
    /// Loads a Stable Diffusion 1.x / 2.x single-file checkpoint (`.safetensors` with the
    /// original LDM key names) with the CLIP tokenizer folder `tokenizerDirectory` (single
    /// files carry no vocabulary). The architecture is inferred from the file (see
    /// `SingleFileCheckpoint`); `prediction` overrides the family default (SD 1.x epsilon,
    /// SD 2.x v_prediction). `singleFile` then holds what was inferred, including the
    /// family's standard scheduler config; `directory` is the file's URL.
    ///
    /// Throws `SingleFileError` (pickle, SDXL, not a checkpoint, leftover tensors …),
    /// `SafeTensorsError` (damaged file), `WeightError` (missing tensors, named by their
    /// diffusers and original names; wrong shapes) or `ModelConfigError` / `ModelFolderError`.
    public convenience init(singleFile url: URL, tokenizerDirectory: URL, prediction: CheckpointPrediction? = nil,
                            weights: WeightPrecision = .stored, pool: ThreadPool) throws {
        let checkpoint = try SingleFileCheckpoint(url: url, prediction: prediction)
        try self.init(checkpoint: checkpoint, tokenizerDirectory: tokenizerDirectory, weights: weights, pool: pool)
    }

    /// Loads the components of an opened single-file checkpoint (open it first to look at
    /// `checkpoint.info` before spending the time and memory on the weights).
    public convenience init(checkpoint: SingleFileCheckpoint, tokenizerDirectory: URL, weights: WeightPrecision = .stored,
                            pool: ThreadPool) throws {
        let info = checkpoint.info
        // A bare vocabulary (no tokenizer_config.json) gets the family's pad token, as the
        // hub's SD 1.5 / SD 2.1 tokenizer configs give it to diffusers' from_single_file.
        let tokenizer = try CLIPTokenizer(directory: tokenizerDirectory, defaultPadToken: info.family.standardPadToken)
        // Smallest first, so a broken file usually fails before the UNet is read.
        let textEncoder = try checkpoint.loadTextEncoder(weights: weights, pool: pool)
        let vae = try checkpoint.loadVAE(weights: weights, pool: pool)
        let unet = try checkpoint.loadUNet(weights: weights, pool: pool)
        try checkpoint.checkLeftovers()
        // An inpainting UNet takes latents + mask + masked-image latents (9 channels) but
        // predicts `latent_channels`: check the text-to-image part of the contract.
        var unetShape = unet.config
        if info.isInpainting { unetShape.inChannels = unetShape.outChannels }
        try StableDiffusionModel.checkCompatible(folder: info.path, tokenizer: tokenizer, text: textEncoder.config,
                                                 unet: unetShape, vae: vae.config)
        let schedulerClass = info.family == .sd1 ? "PNDMScheduler" : "DDIMScheduler"
        let index = ModelIndex(
            pipelineClass: info.isInpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline",
            components: ["tokenizer": "CLIPTokenizer", "text_encoder": "CLIPTextModel", "unet": "UNet2DConditionModel",
                         "vae": "AutoencoderKL", "scheduler": schedulerClass])
        self.init(directory: URL(fileURLWithPath: info.path), index: index, tokenizer: tokenizer, textEncoder: textEncoder,
                  unet: unet, vae: vae, singleFile: info)
    }
}
