import Foundation

extension RGBImage {
    /// Pillow's `convert("L")` (ITU-R 601-2 luma in 16-bit fixed point):
    /// `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`, one byte per pixel; a gray picture keeps
    /// its values. What diffusers' mask processor reads of a mask picture.
    public var luma: [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height)
        for p in 0..<(width * height) {
            let r = Int(pixels[p * 3]), g = Int(pixels[p * 3 + 1]), b = Int(pixels[p * 3 + 2])
            out[p] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
        }
        return out
    }
}

/// `mask_blur`: a separable Gaussian blur of a one-byte-per-pixel mask with standard deviation
/// `sigma` pixels over ±⌈3σ⌉ taps, edges continued, rounded to bytes. The inpainting pipeline
/// binarises the mask afterwards (at 128), so the blur rounds the mask's corners and closes
/// small gaps rather than feathering (diffusers' `VaeImageProcessor.blur` is Pillow's
/// box-blur approximation of the same Gaussian).
public enum MaskBlur {
    public static func blurred(_ mask: [UInt8], width: Int, height: Int, sigma: Double) -> [UInt8] {
        guard sigma > 0, mask.count == width * height else { return mask }
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { Foundation.exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var horizontal = [Double](repeating: 0, count: mask.count)
        for y in 0..<height {
            for x in 0..<width {
                var sum = 0.0
                for k in -radius...radius {
                    sum += kernel[k + radius] * Double(mask[y * width + min(max(x + k, 0), width - 1)])
                }
                horizontal[y * width + x] = sum
            }
        }
        var out = [UInt8](repeating: 0, count: mask.count)
        for y in 0..<height {
            for x in 0..<width {
                var sum = 0.0
                for k in -radius...radius {
                    sum += kernel[k + radius] * horizontal[min(max(y + k, 0), height - 1) * width + x]
                }
                out[y * width + x] = UInt8(min(max(sum.rounded(), 0), 255))
            }
        }
        return out
    }
}
