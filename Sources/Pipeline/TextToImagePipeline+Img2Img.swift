import Kernels
import Models
import Sampling

/// Image-to-image start, as diffusers' `StableDiffusionImg2ImgPipeline` does it:
///
/// - `get_timesteps`: `init_timestep = min(int(steps * strength), steps)`,
///   `t_start = max(steps - init_timestep, 0)`; the scheduler begins at `t_start * order`
///   (`set_begin_index`) and runs the remaining `steps - t_start` steps;
/// - `prepare_latents`: the image (`VaeImageProcessor.preprocess`: `x / 255`, then `2x − 1`)
///   through `vae.encode`, `latent_dist.sample(generator)` = `mean + std · randn` (the
///   generator's first draw), times `scaling_factor`; then `noise = randn` (its second draw)
///   and `scheduler.add_noise(init_latents, noise, timesteps[t_start * order])`.
///
/// The image is always encoded with the full `AutoencoderKL`, also with `decoder: tiny`.
extension TextToImagePipeline {
    /// `get_timesteps`: the step img2img begins at for `steps` and `strength`, or an error when
    /// no step would be left.
    public static func img2imgStartStep(steps: Int, strength: Double) throws -> Int {
        guard strength >= 0, strength <= 1 else {
            throw PipelineError.invalidRequest("strength must be within 0…1, got \(strength)")
        }
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let start = max(steps - initTimestep, 0)
        guard steps - start >= 1 else {
            throw PipelineError.invalidRequest("strength \(strength) with \(steps) steps leaves no step to run "
                                               + "(int(steps × strength) must be at least 1)")
        }
        return start
    }

    /// Fills `latents` [1, C, h, w] with the noised encoding of `image` and moves `sampler` to
    /// its begin index. Draws twice from `generator` (latent sample, then noise).
    func startFromImage(_ image: RGBImage, strength: Double, steps: Int, sampler: DiffusionSampler,
                        generator: NoiseGenerator, latents: Tensor) throws {
        let height = latents.shape[2] * vae.downscaleFactor, width = latents.shape[3] * vae.downscaleFactor
        guard image.width == width, image.height == height else {
            throw PipelineError.invalidRequest("init image is \(image.width)×\(image.height), the request \(width)×\(height)")
        }
        guard latents.shape[1] == vae.config.latentChannels else {
            throw PipelineError.invalidRequest("img2img needs a UNet with \(vae.config.latentChannels) input channels, this one has \(latents.shape[1])")
        }
        let start = try Self.img2imgStartStep(steps: steps, strength: strength)
        sampler.begin(atStepIndex: start * sampler.order)

        // VaeImageProcessor: np.array(image).astype(float32) / 255.0, then 2.0 * x - 1.0.
        let pixels = pixelTensor(image, role: "init image")
        let mean = tensor("init mean", latents.shape)
        let std = tensor("init std", latents.shape)
        try vae.encode(pixels, mean: mean, std: std)

        let count = latents.count
        let draw = tensor("init noise", latents.shape)
        let drawBuffer = UnsafeMutableBufferPointer(start: draw.data, count: count)
        // latent_dist.sample(generator): mean + std * randn, then scaling_factor * x.
        generator.fillNormal(drawBuffer)
        let scaling = vae.config.scalingFactor
        LaneMaps.map(latents.data, mean.data, std.data, draw.data, count: count) { m, s, e in scaling * (m + s * e) }
        // noise = randn_tensor(shape, generator); scheduler.add_noise(init_latents, noise, latent_timestep).
        generator.fillNormal(drawBuffer)
        sampler.addNoise(to: UnsafeMutableBufferPointer(start: latents.data, count: count), noise: UnsafeBufferPointer(drawBuffer))
    }
}
