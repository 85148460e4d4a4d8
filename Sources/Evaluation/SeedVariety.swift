import Foundation
import Pipeline

/// Seed variety (issue 18): how much one caption's pictures differ from seed to seed in the
/// size and centre of each object, next to how much the training renders of that same caption
/// differ. The training data draws each object's size (14…22 px, or within its size word's
/// band) and a ±3 px jitter of its centre independently of the caption's words, so a model
/// that learned the data gives different sizes and places for different seeds; a model that
/// collapsed to one picture per caption gives (nearly) none.
///
/// Size is √area of the detected object (`DetectedObject.area`, px), centre its centroid; the
/// spread of each is the standard deviation over the pictures in which the object was found in
/// its colour (for the centre, √(var x + var y)), corrected for the bias of a standard deviation
/// from few samples (÷ c4, so 8 seeds and 64 renders estimate the same quantity). Generated
/// pictures and renders are measured by the same detector, so anti-aliasing or detection bias
/// counts the same on both. An object is found by its colour alone, whatever its shape: read
/// the spread next to `diffusion-bench adherence`, since scattered blobs vary too.
public enum SeedVariety {
    /// One expected object's spread over a set of pictures of one caption.
    public struct ObjectSpread: Sendable, Equatable {
        /// Standard deviation of √area, px.
        public var size: Double
        /// √(var(centroid x) + var(centroid y)), px.
        public var centre: Double
        /// Pictures in which the object was found in its colour (the spread needs two).
        public var found: Int
    }

    /// The spread of each object `caption` names over `images` (one picture per seed), in the
    /// caption's order; nil for an object found in fewer than two pictures.
    public static func spread(of images: [RGBImage], caption: String,
                              evaluator: AdherenceEvaluator = AdherenceEvaluator()) throws -> [ObjectSpread?] {
        let expected = try CaptionParser.parse(caption)
        var sizes = [[Double]](repeating: [], count: expected.objects.count)
        var xs = sizes, ys = sizes
        for image in images {
            let score = evaluator.score(evaluator.detector.detect(image), expected: expected)
            for (k, object) in score.objects.enumerated() {
                guard let d = object.detected, d.color == object.expected.color else { continue }
                sizes[k].append(Double(d.area).squareRoot())
                xs[k].append(d.centroidX)
                ys[k].append(d.centroidY)
            }
        }
        return sizes.indices.map { k in
            guard sizes[k].count >= 2 else { return nil }
            let n = sizes[k].count
            // √(var x + var y) has 2(n − 1) degrees of freedom, as one variable's s from 2n − 1 samples.
            return ObjectSpread(size: standardDeviation(sizes[k]) / c4(n),
                                centre: (variance(xs[k]) + variance(ys[k])).squareRoot() / c4(2 * n - 1), found: n)
        }
    }

    /// `count` renders of `scene`'s caption as the training data draws them: every object keeps
    /// its colour, shape and grid position; its size is drawn again (from its caption size
    /// word's band when the caption has one: small 14–16, medium 18, big 20–22 px) and so is its
    /// jitter (−3…3 px each way), redrawn while two objects' boxes are not apart, as
    /// `SceneSampler.scene` does. Deterministic in `seed`.
    public static func renderVariants(of scene: SceneSampler.Scene, count: Int, seed: UInt64) -> [RGBImage] {
        var rng = SceneSampler.SplitMix64(state: seed)
        let sizeChoices = scene.objects.map { sizes(for: $0, caption: scene.caption) }
        var images: [RGBImage] = []
        while images.count < count {
            var variant = scene
            for k in variant.objects.indices {
                let choices = sizeChoices[k]
                variant.objects[k].size = choices[rng.below(choices.count)]
                variant.objects[k].dx = rng.below(7) - 3
                variant.objects[k].dy = rng.below(7) - 3
            }
            let boxes = variant.objects.map { $0.box() }
            let apart = boxes.indices.allSatisfy { i in boxes.indices.allSatisfy { j in i == j || boxes[i].isApart(from: boxes[j]) } }
            if apart { images.append(SceneRenderer.render(variant)) }
        }
        return images
    }

    /// The sizes the training data draws for `object` under `caption`'s wording.
    static func sizes(for object: SceneSampler.Object, caption: String) -> [Int] {
        let named = "\(object.color.name) \(object.shape.name)"
        if caption.contains("small " + named) { return [14, 16] }
        if caption.contains("medium " + named) { return [18] }
        if caption.contains("big " + named) { return [20, 22] }
        return [14, 16, 18, 20, 22]
    }

    static func variance(_ v: [Double]) -> Double {
        guard v.count >= 2 else { return 0 }
        let mean = v.reduce(0, +) / Double(v.count)
        return v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
    }

    static func standardDeviation(_ v: [Double]) -> Double { variance(v).squareRoot() }

    /// E[s] / σ for the sample standard deviation s of n normal samples,
    /// c4(n) = √(2 / (n − 1)) · Γ(n / 2) / Γ((n − 1) / 2): 0.965 at n = 8, 0.996 at n = 64.
    static func c4(_ n: Int) -> Double {
        guard n >= 2 else { return 1 }
        let m = Double(n)
        return (2 / (m - 1)).squareRoot() * exp(lgamma(m / 2) - lgamma((m - 1) / 2))
    }
}
