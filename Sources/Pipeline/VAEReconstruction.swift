import Kernels
import Models

/// An image through an autoencoder and back, as diffusers' `AutoencoderKL.forward(x,
/// sample_posterior=False)` does it: `VaeImageProcessor.preprocess`, `encode` → the latent
/// distribution's mean (its mode, no noise drawn), `decode`, `postprocess` to 8-bit RGB.
/// `diffusion-bench adherence --reconstruct` scores what a VAE keeps of the training renders
/// (issue 18: a UNet cannot draw more cleanly than its decoder).
public enum VAEReconstruction {
    /// `image` (sides multiples of the VAE's factor) encoded and decoded by `vae`; throws for
    /// other sizes or a VAE loaded without its encoder.
    public static func reconstruct(_ image: RGBImage, vae: VAE) throws -> RGBImage {
        let f = vae.downscaleFactor
        guard image.width % f == 0, image.height % f == 0 else {
            throw PipelineError.invalidRequest("reconstruct: \(image.width)×\(image.height) is not a multiple of the VAE's factor \(f)")
        }
        let pixels = Tensor(zeros: [1, 3, image.height, image.width])
        ImageConversion.fill(pixels, from: image)
        let mean = Tensor(zeros: [1, vae.config.latentChannels, image.height / f, image.width / f])
        try vae.encode(pixels, mean: mean, std: nil)
        let decoded = Tensor(zeros: [1, vae.config.outChannels, image.height, image.width])
        vae.decode(mean, output: decoded)
        return ImageConversion.rgbImage(decoded)
    }
}

extension TextToImagePipeline {
    /// `VAEReconstruction.reconstruct` through this pipeline's VAE.
    public func reconstruct(_ image: RGBImage) throws -> RGBImage {
        try VAEReconstruction.reconstruct(image, vae: vae)
    }
}
