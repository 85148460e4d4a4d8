/// The thresholds of the strict evaluator (issue 18), each set from what a person calls a
/// clean shape and from the geometry of the training renders (tools/train/shapes_data.py:
/// 64 × 64 images, objects 14–22 px, hard edges), never from model output.
///
/// Pixel counts are for a 64 × 64 image and scale with the image area (never below their
/// 64 × 64 value); `edgeReach` and `edgeBlend` scale with the image side (a picture is judged
/// at the size it is shown, whatever its pixel count); the outline rules' lengths scale with
/// the object's own size. Colour distances are Euclidean in 8-bit sRGB.
/// The smallest distance between two palette colours is 75.7 (yellow–orange), the next
/// 113 (red–orange), so the nearest-colour boundary between any two lies at least 38 away
/// from each.
public struct StrictRules: Sendable, Equatable {
    // MARK: Colour

    /// The median colour of a region must lie within this distance of its palette value.
    /// A third of the closest palette pair's distance: visibly the same colour. A black
    /// drawn dark green-brown (≈ (60, 55, 25), 53 away) or a purple drawn pink-violet
    /// (≈ (185, 70, 185), 51 away) fails; colour noise of a few levels per channel passes.
    public var paletteTolerance = 24.0
    /// "One colour": at least `uniformFraction` of an object's inner pixels (its outline
    /// less one pixel) lie within this distance of its median, half the closest palette pair's
    /// distance (a gradient across the object fails).
    public var uniformRadius = 38.0
    public var uniformFraction = 0.95
    /// The background's share within `uniformRadius` of its median, away from the objects
    /// (a gradient, a vignette or a band along the border fails; a few specks pass).
    public var backgroundUniformFraction = 0.98
    /// A pixel between an object and the background is an edge blend (anti-aliasing) when it
    /// lies within this distance of the line between the two colours; farther off it is a
    /// third colour (a speck or halo). Half the closest palette pair's distance, less margin.
    public var blendResidual = 32.0

    // MARK: Regions

    /// "A few pixels": a speck or halo of another colour, a hole, a notch, or stray pixels
    /// on the background may cover at most this many (connected) pixels; one more fails.
    /// A 2 × 2 blot is the most a person overlooks on a 64 × 64 image.
    public var speckPixels = 4
    /// A connected region of one non-background colour with at least this many pixels is an
    /// object (the smallest rendered object, a 14 px triangle, has 98); smaller ones are
    /// specks. 40 px is a 6 × 6 blob plus a rim: a thing a person sees as drawn. It also
    /// needs a body: a quarter of that many pixels whose four neighbours share its colour
    /// (a 6 × 6 blob has 16); a thin rim (the mixed ring around a blurred edge, a halo) has
    /// none, and a region enclosing another object is a ring around it, never an object.
    public var objectPixels = 40
    /// How far (px, 8-neighbourhood) around an object its edge blends, specks and halos
    /// are looked for; beyond it stray pixels belong to the background.
    public var edgeReach = 2
    /// Edge sharpness: mixing per outline pixel (`SceneSegmentation.Region.blendWeight`: a
    /// pixel f of the way from the background to the object's colour counts 4·f·(1 − f)).
    /// A rendered edge has 0, an anti-aliased one at most 1 (one pixel half covered); 1.5
    /// allows half a pixel more, about a Gaussian blur of σ = 0.75 px. σ = 1 px gives
    /// 1.7–2.1 (by where the edge falls between pixel centres), σ = 1.5 px 2.5–2.9.
    public var edgeBlend = 1.5

    // MARK: Outline (on the object's pixels with enclosed holes filled)

    /// Every shape the model draws is convex. Pixels inside the span of their row or column
    /// but outside the shape (a notch, a bite, a side bowed inwards, lumps with dips between
    /// them) are counted; more than this many fails ("a few pixels", as `speckPixels`;
    /// renders: 0).
    public var concavePixels = 4
    /// Width and height agree within this fraction of the larger (at least 1 px): squares
    /// and circles (renders: equal).
    public var aspectTolerance = 0.1
    /// Square: the shape covers at least this share of its bounding box (renders: 1.0; a
    /// square with corners rounded by a fifth of its side still has 0.97; a pillow whose
    /// sides bow in by 2 px of 20 is near 0.75).
    public var squareFill = 0.88
    /// Sides straight: over the middle 60% of each side, the edge's position varies by at most
    /// this fraction of the side (at least 1 px; renders: 0).
    public var sideStraightness = 0.05
    /// Circle: fill within π/4 ± 0.07 (renders: 0.790–0.812; a square with corners rounded by
    /// a third of its side, 0.90, is not a circle).
    public var circleFill = 0.715...0.855
    /// Circle: intersection over union with the disc of the same area at the same centroid
    /// (renders: 1.0, the disc of the same area at the same centre is the rendered one; a lump
    /// or dent of 1 px in 9 px of radius along a fifth of the outline costs ≈ 0.05).
    public var circleRoundness = 0.88
    /// Triangle: fill "well under two thirds" (renders: 0.524–0.538; a triangle with sides
    /// bulging out by 2 px reaches ≈ 0.65).
    public var triangleFill = 0.40...0.60
    /// Triangle: height over width (renders: 13/14 … 21/22); a person still calls a somewhat
    /// squat or tall triangle a triangle.
    public var triangleAspect = 0.6...1.4
    /// Triangle sides: each side's edge stays within this many px (or 7% of the height, the
    /// larger) of the straight line from its top end to its base end (renders: ≤ 0.5).
    public var triangleSideDeviation = 1.5
    /// Pointed at the top: the sides, continued upwards as straight lines, meet at most this
    /// many px (or 10% of the height, the larger) above the shape's top (renders: 0.7–1.1 px,
    /// the renderer's pixel-centre sampling leaves the apex row empty; an apex rounded with a
    /// 3 px radius: ≈ 3.7).
    public var apexGap = 2.0
    /// … and the apex lies over the middle of the base, within this fraction of the width.
    public var apexOffset = 0.15

    public init() {}

    /// `speckPixels` for an image of `pixels` pixels (scaled from 64 × 64).
    func speckLimit(imagePixels: Int) -> Int { max(speckPixels, speckPixels * imagePixels / 4096) }
    /// `concavePixels` for an image of `pixels` pixels.
    func concaveLimit(imagePixels: Int) -> Int { max(concavePixels, concavePixels * imagePixels / 4096) }
    /// `objectPixels` for an image of `pixels` pixels.
    func objectLimit(imagePixels: Int) -> Int { max(objectPixels, objectPixels * imagePixels / 4096) }
    /// `edgeReach` for an image whose shorter side is `side` px.
    func reach(imageSide side: Int) -> Int { max(edgeReach, edgeReach * side / 64) }
    /// `edgeBlend` for an image whose shorter side is `side` px.
    func blendLimit(imageSide side: Int) -> Double { max(edgeBlend, edgeBlend * Double(side) / 64) }
}
