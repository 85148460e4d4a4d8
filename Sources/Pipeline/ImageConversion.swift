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

    @inline(__always)
    static func byte(_ value: Float) -> UInt8 {
        let unit = min(max(value / 2 + 0.5, 0), 1)
        return UInt8((unit * 255).rounded(.toNearestOrEven))
    }
}

/// The cheap step preview: a fixed linear map from the 4 latent channels to RGB
/// (AUTOMATIC1111's "Approx cheap" factors for SD 1.x latents), nearest-neighbour
/// upscaled by the VAE factor. Latents are divided by the sampler's input divisor first
/// so that sigma-scaled latents land near unit range. Models whose latents have another
/// channel count show their first three channels as grey-balanced RGB.
struct LatentPreview {
    let channels: Int
    let latentWidth: Int
    let latentHeight: Int
    let factor: Int

    /// rgb[k] = sum_c latent[c] * weights[c][k]
    static let weights: [[Float]] = [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]

    func render(latents: UnsafeBufferPointer<Float>, divisor: Float) -> RGBImage {
        let plane = latentWidth * latentHeight
        let width = latentWidth * factor, height = latentHeight * factor
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<latentHeight {
            for x in 0..<latentWidth {
                var rgb: (Float, Float, Float) = (0, 0, 0)
                for c in 0..<channels {
                    let v = latents[c * plane + y * latentWidth + x] / divisor
                    if channels == 4 {
                        let w = Self.weights[c]
                        rgb.0 += v * w[0]
                        rgb.1 += v * w[1]
                        rgb.2 += v * w[2]
                    } else if c < 3 {
                        if c == 0 { rgb.0 = v } else if c == 1 { rgb.1 = v } else { rgb.2 = v }
                    }
                }
                let bytes = [ImageConversion.byte(rgb.0), ImageConversion.byte(rgb.1), ImageConversion.byte(rgb.2)]
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
