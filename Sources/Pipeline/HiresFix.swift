/// AUTOMATIC1111's "hires fix" with its Lanczos upscaler: generate at the request's size,
/// resize the 8-bit picture with Pillow's LANCZOS by `scale` (each side `Int(side · scale)`,
/// rounded down to a multiple of 8), then image-to-image at that size with `strength`, the
/// same steps, prompts, sampler and seed (a fresh generator). What `tools/fixtures/hires_refs.py`
/// builds by hand with diffusers' `StableDiffusionPipeline` and `StableDiffusionImg2ImgPipeline`.
public struct HiresFix: Sendable, Equatable, Codable {
    /// `upscale`: 1 < scale ≤ 4.
    public var scale: Double
    /// `upscale_strength`: the second pass's img2img strength.
    public var strength: Double

    public init(scale: Double, strength: Double) {
        self.scale = scale
        self.strength = strength
    }

    /// The second pass's size for a first pass of `width` × `height`.
    public func targetSize(width: Int, height: Int) -> (width: Int, height: Int) {
        (Int(Double(width) * scale) / 8 * 8, Int(Double(height) * scale) / 8 * 8)
    }
}

extension TextToImagePipeline {
    /// The two passes of `hires` for `request` (whose `hires` is already taken off).
    func generateHires(_ request: GenerationRequest, hires: HiresFix, snapshotEvery: Int,
                       onStep: (StepEvent) -> StepControl) throws -> RGBImage {
        guard request.initImage == nil else {
            throw PipelineError.invalidRequest("hires fix (upscale) is for text-to-image; this request has an init image")
        }
        let first = try generate(request, snapshotEvery: snapshotEvery, onStep: onStep)
        let size = hires.targetSize(width: request.width, height: request.height)
        var second = request
        second.width = size.width
        second.height = size.height
        second.initImage = first.resized(width: size.width, height: size.height, mode: .stretch)
        second.strength = hires.strength
        return try generate(second, snapshotEvery: snapshotEvery, onStep: onStep)
    }
}
