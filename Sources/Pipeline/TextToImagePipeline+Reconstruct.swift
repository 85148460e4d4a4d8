/// An image through the autoencoder and back, as diffusers' `AutoencoderKL.forward(x,
/// sample_posterior=False)` does it: `VaeImageProcessor.preprocess`, `encode` → the latent
/// distribution's mean (its mode, no noise drawn), `decode`, `postprocess` to 8-bit RGB.
/// `diffusion-bench adherence --reconstruct` scores what the VAE keeps of the training
/// renders (issue 18: a UNet cannot draw more cleanly than its decoder).
extension TextToImagePipeline {
    public func reconstruct(_ image: RGBImage) throws -> RGBImage {
        let f = vae.downscaleFactor
        guard image.width % f == 0, image.height % f == 0 else {
            throw PipelineError.invalidRequest("reconstruct: \(image.width)×\(image.height) is not a multiple of the VAE's factor \(f)")
        }
        let pixels = pixelTensor(image, role: "reconstruct pixels")
        let mean = tensor("reconstruct mean", [1, vae.config.latentChannels, image.height / f, image.width / f])
        try vae.encode(pixels, mean: mean, std: nil)
        let decoded = tensor("reconstruct decoded", [1, vae.config.outChannels, image.height, image.width])
        vae.decode(mean, output: decoded)
        return ImageConversion.rgbImage(decoded)
    }
}
