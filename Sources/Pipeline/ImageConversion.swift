import Kernels

/// Decoded VAE output to 8-bit pixels, as diffusers' `VaeImageProcessor.postprocess`
/// (`(x / 2 + 0.5).clamp(0, 1)`) followed by `numpy_to_pil` (`(x * 255).round()`, half to even).
enum ImageConversion {
    /// - Parameter image: [1, C ≥ 3, H, W] decoder output in about [−1, 1]; channels past 3 are ignored.
    static func rgbImage(_ image: Tensor) -> RGBImage {
        let height = image.shape[2], width = image.shape[3]
        let plane = height * width
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for c in 0..<min(3, image.shape[1]) {
            let channel = image.data + c * plane
            for p in 0..<plane {
                pixels[p * 3 + c] = byte(channel[p])
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// `VaeImageProcessor.preprocess` of 8-bit RGB: `2 · (x / 255) − 1` into `pixels`, planar
    /// [1, 3, H, W].
    static func fill(_ pixels: Tensor, from image: RGBImage) {
        let plane = image.width * image.height
        image.pixels.withUnsafeBufferPointer { rgb in
            for c in 0..<3 {
                let channel = pixels.data + c * plane
                for p in 0..<plane { channel[p] = 2 * (Float(rgb[p * 3 + c]) / 255) - 1 }
            }
        }
    }

    @inline(__always)
    static func byte(_ value: Float) -> UInt8 {
        let unit = min(max(value / 2 + 0.5, 0), 1)
        return UInt8((unit * 255).rounded(.toNearestOrEven))
    }
}

/// A fixed linear map from latent channels to RGB, `rgb = factorsᵀ · latent + bias` in
/// [−1, 1], nearest-neighbour upscaled by the VAE factor: the cheapest step preview, for
/// models whose VAE decode is too expensive to run every few steps and that have no tiny VAE.
/// It reads the diffusion model's latents as they are (scaled, like ComfyUI's `x0` and
/// AUTOMATIC1111's "Approx cheap" samples).
struct LatentRGBMap: Sendable, Equatable {
    /// [latent channel][R, G, B]
    let factors: [[Float]]
    /// [R, G, B]
    let bias: [Float]

    /// SD 1.x / 2.x latents (both use the same AutoencoderKL latent space): ComfyUI's
    /// `latent_formats.SD15.latent_rgb_factors` (comfy/latent_formats.py, no bias), a fit
    /// of the 4 channels to RGB. AUTOMATIC1111's "Approx cheap" (modules/sd_vae_approx.py,
    /// `cheap_approximation`) uses an older fit of the same map.
    static let sd = LatentRGBMap(factors: [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ], bias: [0, 0, 0])

    /// SDXL latents (its own AutoencoderKL, `scaling_factor` 0.13025): ComfyUI's
    /// `latent_formats.SDXL.latent_rgb_factors` and `latent_rgb_factors_bias`.
    static let sdxl = LatentRGBMap(factors: [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ], bias: [0.1084, -0.0175, -0.0011])

    /// The published map for a VAE's latent space: SDXL's for 4 channels with SDXL's
    /// `scaling_factor`, SD 1.x/2.x's for other 4-channel latents; other channel counts show
    /// their first three channels as R, G, B.
    static func forVAE(latentChannels: Int, scalingFactor: Float) -> LatentRGBMap {
        if latentChannels == 4 { return scalingFactor == 0.13025 ? .sdxl : .sd }
        let identity = (0..<latentChannels).map { c in (0..<3).map { k in Float(c == k ? 1 : 0) } }
        return LatentRGBMap(factors: identity, bias: [0, 0, 0])
    }

    /// - Parameters:
    ///   - latents: [1, C, h, w] pipeline latents (C = `factors.count`)
    ///   - factor: output pixels per latent cell
    func render(_ latents: Tensor, factor: Int) -> RGBImage {
        let latentHeight = latents.shape[2], latentWidth = latents.shape[3]
        let plane = latentWidth * latentHeight
        let width = latentWidth * factor, height = latentHeight * factor
        let channels = min(latents.shape[1], factors.count)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<latentHeight {
            for x in 0..<latentWidth {
                var rgb = bias
                for c in 0..<channels {
                    let v = latents.data[c * plane + y * latentWidth + x]
                    for k in 0..<3 { rgb[k] += v * factors[c][k] }
                }
                let bytes = rgb.map(ImageConversion.byte)
                for dy in 0..<factor {
                    let row = (y * factor + dy) * width
                    for dx in 0..<factor {
                        let p = (row + x * factor + dx) * 3
                        pixels[p] = bytes[0]
                        pixels[p + 1] = bytes[1]
                        pixels[p + 2] = bytes[2]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
