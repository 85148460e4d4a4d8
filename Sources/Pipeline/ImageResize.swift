import Foundation

/// How an input picture is brought to the job's size (`resize:` of a job file).
public enum ResizeMode: String, Codable, Sendable, CaseIterable {
    /// Scaled to cover the frame with its aspect ratio kept, the overflow cut off evenly on
    /// both sides (the centre of the picture is kept). The default.
    case crop
    /// Scaled to fit inside the frame with its aspect ratio kept, centred; the bands left
    /// over continue the picture's edge pixels.
    case fit
    /// Scaled to exactly the frame, the aspect ratio ignored (diffusers' `resize_mode="default"`).
    case stretch

    /// Names a job file may use, for error messages.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension RGBImage {
    /// This picture at `width` × `height` by `mode`, resampled with Pillow's `Image.LANCZOS`
    /// filter (what diffusers' `VaeImageProcessor.resize` uses): unchanged when the size is
    /// already right.
    public func resized(width: Int, height: Int, mode: ResizeMode) -> RGBImage {
        if self.width == width && self.height == height { return self }
        let w = Double(self.width), h = Double(self.height)
        switch mode {
        case .stretch:
            return LanczosResampler.resample(self, width: width, height: height, box: (0, 0, w, h))
        case .crop:
            // The largest centred box of the frame's aspect ratio, resampled to the frame
            // (Pillow: image.resize(size, LANCZOS, box=…)).
            let target = Double(width) / Double(height)
            if w / h > target {
                let boxWidth = h * target
                return LanczosResampler.resample(self, width: width, height: height, box: ((w - boxWidth) / 2, 0, (w + boxWidth) / 2, h))
            }
            let boxHeight = w / target
            return LanczosResampler.resample(self, width: width, height: height, box: (0, (h - boxHeight) / 2, w, (h + boxHeight) / 2))
        case .fit:
            let scale = min(Double(width) / w, Double(height) / h)
            let innerWidth = max(1, min(width, Int((w * scale).rounded())))
            let innerHeight = max(1, min(height, Int((h * scale).rounded())))
            let inner = innerWidth == self.width && innerHeight == self.height ? self
                : LanczosResampler.resample(self, width: innerWidth, height: innerHeight, box: (0, 0, w, h))
            let left = (width - innerWidth) / 2, top = (height - innerHeight) / 2
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                let sy = min(max(y - top, 0), innerHeight - 1)
                for x in 0..<width {
                    let sx = min(max(x - left, 0), innerWidth - 1)
                    for c in 0..<3 { pixels[(y * width + x) * 3 + c] = inner.pixels[(sy * innerWidth + sx) * 3 + c] }
                }
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
    }
}

/// Pillow's two-pass convolution resampling (libImaging/Resample.c) with its Lanczos filter
/// (support 3), for 8-bit images: coefficients per output pixel over the source box, widened
/// by the downscale factor, normalised, turned into 22-bit fixed point; the horizontal pass
/// first (rounded and clamped to 8 bits), then the vertical one. Bit-exact with
/// `Image.resize(size, Image.LANCZOS, box)`.
enum LanczosResampler {
    static let precisionBits = 32 - 8 - 2
    static let support = 3.0

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let px = x * Double.pi
            return Foundation.sin(px) / px
        }
        return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0
    }

    /// `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel its first source
    /// index, its tap count and `ksize` fixed-point coefficients.
    static func coefficients(inSize: Int, from in0: Double, to in1: Double, outSize: Int)
        -> (ksize: Int, bounds: [(Int, Int)], weights: [Int]) {
        let scale = (in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1)
        let reach = support * filterScale
        let ksize = Int(reach.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var weights = [Int](repeating: 0, count: outSize * ksize)
        var taps = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = in0 + (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(0, Int(center - reach + 0.5))
            let xmax = min(inSize, Int(center + reach + 0.5)) - xmin
            var total = 0.0
            for x in 0..<max(0, xmax) {
                let w = lanczos((Double(x + xmin) - center + 0.5) * ss)
                taps[x] = w
                total += w
            }
            for x in 0..<max(0, xmax) {
                let w = total != 0 ? taps[x] / total : taps[x]
                let fixed = w * Double(1 << precisionBits)
                weights[xx * ksize + x] = w < 0 ? Int(-0.5 + fixed) : Int(0.5 + fixed)
            }
            bounds.append((xmin, max(0, xmax)))
        }
        return (ksize, bounds, weights)
    }

    @inline(__always)
    static func clip8(_ sum: Int) -> UInt8 { UInt8(min(max(sum >> precisionBits, 0), 255)) }

    static func resample(_ image: RGBImage, width: Int, height: Int, box: (Double, Double, Double, Double)) -> RGBImage {
        let horizontal = coefficients(inSize: image.width, from: box.0, to: box.2, outSize: width)
        var vertical = coefficients(inSize: image.height, from: box.1, to: box.3, outSize: height)
        let needHorizontal = width != image.width || box.0 != 0 || box.2 != Double(width)
        let needVertical = height != image.height || box.1 != 0 || box.3 != Double(height)
        var source = image.pixels
        var sourceWidth = image.width
        let half = 1 << (precisionBits - 1)
        if needHorizontal {
            // Only the rows the vertical pass reads.
            let first = vertical.bounds[0].0
            let last = vertical.bounds[height - 1].0 + vertical.bounds[height - 1].1
            vertical.bounds = vertical.bounds.map { ($0.0 - first, $0.1) }
            let rows = last - first
            var out = [UInt8](repeating: 0, count: width * rows * 3)
            for y in 0..<rows {
                let row = (y + first) * image.width * 3
                for xx in 0..<width {
                    let (xmin, count) = horizontal.bounds[xx]
                    let k = xx * horizontal.ksize
                    for c in 0..<3 {
                        var sum = half
                        for x in 0..<count { sum += Int(source[row + (xmin + x) * 3 + c]) * horizontal.weights[k + x] }
                        out[(y * width + xx) * 3 + c] = clip8(sum)
                    }
                }
            }
            source = out
            sourceWidth = width
        }
        guard needVertical else { return RGBImage(width: sourceWidth, height: source.count / (sourceWidth * 3), pixels: source) }
        var out = [UInt8](repeating: 0, count: sourceWidth * height * 3)
        for yy in 0..<height {
            let (ymin, count) = vertical.bounds[yy]
            let k = yy * vertical.ksize
            for xx in 0..<sourceWidth {
                for c in 0..<3 {
                    var sum = half
                    for y in 0..<count { sum += Int(source[((ymin + y) * sourceWidth + xx) * 3 + c]) * vertical.weights[k + y] }
                    out[(yy * sourceWidth + xx) * 3 + c] = clip8(sum)
                }
            }
        }
        return RGBImage(width: sourceWidth, height: height, pixels: out)
    }
}
