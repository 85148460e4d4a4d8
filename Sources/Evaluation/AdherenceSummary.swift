import Pipeline

/// Rates over a set of scored images, as `diffusion-bench adherence` prints them.
public struct AdherenceSummary: Sendable {
    public var count = 0
    /// Images with the background right.
    public var background = 0
    /// Images with every object's colour and shape right (issue 6's first target).
    public var colorsAndShapes = 0
    /// … and also every object's position (the second target).
    public var colorsShapesAndPositions = 0
    /// Everything, background included.
    public var all = 0
    /// Object-level counts.
    public var objects = 0, objectColor = 0, objectShape = 0, objectPosition = 0
    /// The first few images that were not fully right: caption and what was seen.
    public var failures: [String] = []

    public init(items: [(caption: String, image: RGBImage)], evaluator: AdherenceEvaluator,
                keepFailures: Int = 20) throws {
        for (caption, image) in items {
            let seen = evaluator.detector.detect(image)
            let s = evaluator.score(seen, expected: try CaptionParser.parse(caption))
            count += 1
            if s.backgroundCorrect { background += 1 }
            if s.colorsAndShapesCorrect { colorsAndShapes += 1 }
            if s.objectsCorrect { colorsShapesAndPositions += 1 }
            if s.allCorrect { all += 1 }
            for o in s.objects {
                objects += 1
                if o.colorCorrect { objectColor += 1 }
                if o.shapeCorrect { objectShape += 1 }
                if o.positionCorrect { objectPosition += 1 }
            }
            if !s.allCorrect && failures.count < keepFailures {
                let found = seen.objects.prefix(4).map(\.summary)
                let background = seen.backgroundDefects.isEmpty ? "" : " [" + seen.backgroundDefects.joined(separator: "; ") + "]"
                failures.append("\(caption) | seen: \(seen.background) background\(background); " + found.joined(separator: ", "))
            }
        }
    }

    func rate(_ n: Int, _ of: Int) -> Double { of == 0 ? 0 : (Double(n) / Double(of) * 10000).rounded() / 10000 }

    /// JSON-ready dictionary (rates in 0…1).
    public var json: [String: Any] {
        [
            "images": count,
            "background": rate(background, count),
            "colors_and_shapes": rate(colorsAndShapes, count),
            "colors_shapes_and_positions": rate(colorsShapesAndPositions, count),
            "all_fields": rate(all, count),
            "object_color": rate(objectColor, objects),
            "object_shape": rate(objectShape, objects),
            "object_position": rate(objectPosition, objects),
            "failures": failures,
        ]
    }
}
