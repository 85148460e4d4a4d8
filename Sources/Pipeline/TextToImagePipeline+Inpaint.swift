import Kernels
import Models
import Sampling

/// Inpainting, as diffusers' `StableDiffusionInpaintPipeline` does it, for both UNets it
/// accepts:
///
/// - the mask (`mask_processor`: grayscale, `x / 255`, binarised at 0.5) → `masked_image =
///   image * (mask < 0.5)`; the mask nearest-resized to the latent size
///   (`F.interpolate(mask, size=(h/f, w/f))`) → `prepare_mask_latents`;
/// - `prepare_latents`: unless the UNet has 9 input channels and strength is 1, the image is
///   encoded (`latent_dist.sample(generator)`: a draw); then `noise = randn` (a draw); the
///   start latents are `noise · init_noise_sigma` at strength 1, else `add_noise(image_latents,
///   noise, timesteps[t_start · order])`; then the masked image is encoded (a third draw, also
///   for 4-channel UNets, which never read it);
/// - 9-channel (inpainting) UNets: every evaluation reads `cat([scaled latents, mask,
///   masked_image_latents])`;
/// - 4-channel UNets: after every evaluation but the last, the unmasked part of the latents is
///   put back as `add_noise(image_latents, noise, next timestep)` (after the last: the clean
///   `image_latents`), `latents = (1 − mask) · init_latents_proper + mask · latents`.
///
/// The decoded image is returned as is (no `apply_overlay`, which diffusers does only with
/// `padding_mask_crop`).
struct InpaintState {
    /// [1, 1, h, w]: 1 where the latents are repainted.
    let latentMask: Tensor
    /// [1, C, h, w]: `scaling_factor · sample(encode(masked image))`.
    let maskedImageLatents: Tensor
    /// 4-channel UNets: the image's latents and the noise drawn for them.
    let imageLatents: Tensor?
    let noise: Tensor?
}

extension TextToImagePipeline {
    /// `scaling_factor · latent_dist.sample(generator)` of `pixels` [1, 3, H, W] into `output`.
    func encodeSampled(_ pixels: Tensor, generator: NoiseGenerator, output: Tensor) throws {
        let mean = tensor("encode mean", output.shape)
        let std = tensor("encode std", output.shape)
        try vae.encode(pixels, mean: mean, std: std)
        let draw = tensor("encode draw", output.shape)
        generator.fillNormal(UnsafeMutableBufferPointer(start: draw.data, count: draw.count))
        let scaling = vae.config.scalingFactor
        LaneMaps.map(output.data, mean.data, std.data, draw.data, count: output.count) { m, s, e in scaling * (m + s * e) }
    }

    /// `VaeImageProcessor.preprocess` of 8-bit RGB (`ImageConversion.fill`) in a job buffer.
    func pixelTensor(_ image: RGBImage, role: String) -> Tensor {
        let pixels = tensor(role, [1, 3, image.height, image.width])
        ImageConversion.fill(pixels, from: image)
        return pixels
    }

    /// Sets up inpainting: fills `latents` with the start latents and moves `sampler` to its
    /// begin index (see the type's comment for the generator's draws).
    func startInpainting(_ request: GenerationRequest, image: RGBImage, mask: [UInt8], sampler: DiffusionSampler,
                         generator: NoiseGenerator, latents: Tensor, unetChannels: Int) throws -> InpaintState {
        let latentHeight = latents.shape[2], latentWidth = latents.shape[3]
        let factor = vae.downscaleFactor
        let width = latentWidth * factor, height = latentHeight * factor
        guard image.width == width, image.height == height, mask.count == width * height else {
            throw PipelineError.invalidRequest("init image \(image.width)×\(image.height) and mask (\(mask.count) pixels) must be \(width)×\(height)")
        }
        guard unetChannels == 4 || unetChannels == 9 else {
            throw PipelineError.invalidRequest("inpainting needs a UNet with 4 or 9 input channels, this one has \(unetChannels)")
        }
        let start = try Self.img2imgStartStep(steps: request.steps, strength: request.strength)
        sampler.begin(atStepIndex: start * sampler.order)
        let strengthIsMax = request.strength == 1
        let count = latents.count

        let pixels = pixelTensor(image, role: "init image")
        var imageLatents: Tensor?
        if unetChannels == 4 || !strengthIsMax {
            let encoded = tensor("image latents", latents.shape)
            try encodeSampled(pixels, generator: generator, output: encoded)
            imageLatents = encoded
        }
        let noise = tensor("inpaint noise", latents.shape)
        generator.fillNormal(UnsafeMutableBufferPointer(start: noise.data, count: count))
        if strengthIsMax {
            let sigma = sampler.initNoiseSigma
            LaneMaps.map(latents.data, noise.data, count: count) { $0 * sigma }
        } else if let imageLatents {
            latents.data.update(from: imageLatents.data, count: count)
            sampler.addNoise(to: UnsafeMutableBufferPointer(start: latents.data, count: count),
                             noise: UnsafeBufferPointer(start: noise.data, count: count))
        }

        // mask_processor: L / 255, binarised at 0.5 (L >= 128); masked_image = image * (mask < 0.5).
        let masked = tensor("masked image", pixels.shape)
        let plane = width * height
        for c in 0..<3 {
            for p in 0..<plane { masked.data[c * plane + p] = mask[p] >= 128 ? 0 : pixels.data[c * plane + p] }
        }
        // F.interpolate(mask, size=(h/f, w/f)), mode "nearest": source index floor(dst · in / out).
        let latentMask = tensor("latent mask", [1, 1, latentHeight, latentWidth])
        for y in 0..<latentHeight {
            for x in 0..<latentWidth {
                latentMask.data[y * latentWidth + x] = mask[(y * factor) * width + x * factor] >= 128 ? 1 : 0
            }
        }
        let maskedLatents = tensor("masked image latents", latents.shape)
        try encodeSampled(masked, generator: generator, output: maskedLatents)
        return InpaintState(latentMask: latentMask, maskedImageLatents: maskedLatents,
                            imageLatents: unetChannels == 4 ? imageLatents : nil, noise: unetChannels == 4 ? noise : nil)
    }

    /// 4-channel inpainting after an evaluation: the unmasked latents become the image's,
    /// noised to the sampler's next step (clean after the last).
    func restoreUnmasked(_ state: InpaintState, sampler: DiffusionSampler, latents: Tensor) {
        guard let imageLatents = state.imageLatents, let noise = state.noise else { return }
        let count = latents.count
        let proper = tensor("init latents proper", latents.shape)
        proper.data.update(from: imageLatents.data, count: count)
        if sampler.stepIndex < sampler.timesteps.count {
            sampler.addNoise(to: UnsafeMutableBufferPointer(start: proper.data, count: count),
                             noise: UnsafeBufferPointer(start: noise.data, count: count))
        }
        let plane = state.latentMask.count
        for c in 0..<(count / plane) {
            for p in 0..<plane where state.latentMask.data[p] == 0 {
                latents.data[c * plane + p] = proper.data[c * plane + p]
            }
        }
    }
}
