import Pipeline

/// How one caption object fared.
public struct ObjectScore: Sendable, Equatable {
    public var expected: ExpectedScene.Object
    /// The detected object matched to it, if any.
    public var detected: DetectedObject?
    /// The named colour, as one clean region (`DetectedObject.colorClean`).
    public var colorCorrect: Bool
    /// The named shape by the strict rules (`StrictRules`).
    public var shapeCorrect: Bool
    /// `true` when the caption names no position and an object was matched.
    public var positionCorrect: Bool
}

/// Per-field correctness of one image against its caption.
public struct AdherenceScore: Sendable, Equatable {
    /// The named colour (or none named), one clean colour to the border, and nothing on it
    /// but the caption's objects (no extra object).
    public var backgroundCorrect: Bool
    public var objects: [ObjectScore]
    /// Detected objects left over after matching (they make the background wrong).
    public var extraObjects: Int
    public var detectedBackground: NamedColor

    /// Every caption object has the right colour and shape.
    public var colorsAndShapesCorrect: Bool { objects.allSatisfy { $0.colorCorrect && $0.shapeCorrect } }
    /// … and also the right position.
    public var objectsCorrect: Bool { colorsAndShapesCorrect && objects.allSatisfy(\.positionCorrect) }
    /// Background and every field of every object.
    public var allCorrect: Bool { backgroundCorrect && objectsCorrect }
}

/// Scores images against captions of the built-in model's grammar, strictly (issue 18): an
/// object's colour is right when it is one clean region of the named colour, its shape when
/// the outline meets that shape's rules (`ShapeDetector`, `StrictRules`).
///
/// Caption objects are matched one-to-one to detected objects (the largest
/// `candidateLimit`), choosing the assignment with the most matching fields (named colour,
/// shape, position), colour weighted above shape above position; ties go to larger
/// detected objects.
public struct AdherenceEvaluator: Sendable {
    public var detector = ShapeDetector()
    public var candidateLimit = 6

    public init() {}

    public func score(_ image: RGBImage, caption: String) throws -> AdherenceScore {
        score(detector.detect(image), expected: try CaptionParser.parse(caption))
    }

    public func score(_ seen: DetectedScene, expected: ExpectedScene) -> AdherenceScore {
        let candidates = Array(seen.objects.prefix(candidateLimit))
        var best: [Int?] = Array(repeating: nil, count: expected.objects.count)
        var bestValue = -1
        var current: [Int?] = best
        var used = [Bool](repeating: false, count: candidates.count)

        func value(_ o: ExpectedScene.Object, _ d: DetectedObject) -> Int {
            (d.color == o.color ? 4 : 0) + (d.shape == o.shape ? 2 : 0) + (o.position == nil || d.position == o.position ? 1 : 0)
        }
        // Exhaustive search: captions have one or two objects, candidates are few.
        func search(_ k: Int, _ total: Int) {
            if k == expected.objects.count {
                if total > bestValue { bestValue = total; best = current }
                return
            }
            for c in candidates.indices where !used[c] {
                used[c] = true
                current[k] = c
                search(k + 1, total + value(expected.objects[k], candidates[c]) * 1000 + candidates[c].area / 64)
                used[c] = false
            }
            current[k] = nil
            search(k + 1, total)
        }
        search(0, 0)

        var scores: [ObjectScore] = []
        for (k, o) in expected.objects.enumerated() {
            if let c = best[k] {
                let d = candidates[c]
                scores.append(ObjectScore(expected: o, detected: d, colorCorrect: d.color == o.color && d.colorClean,
                                          shapeCorrect: d.shape == o.shape,
                                          positionCorrect: o.position == nil || d.position == o.position))
            } else {
                scores.append(ObjectScore(expected: o, detected: nil, colorCorrect: false, shapeCorrect: false,
                                          positionCorrect: false))
            }
        }
        let matched = best.compactMap { $0 }.count
        let extra = seen.objects.count - matched
        let backgroundRight = (expected.background == nil || expected.background == seen.background)
            && seen.backgroundDefects.isEmpty && extra == 0
        return AdherenceScore(backgroundCorrect: backgroundRight, objects: scores, extraObjects: extra,
                              detectedBackground: seen.background)
    }
}
