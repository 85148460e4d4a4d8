/// The one thing the service needs from the engine: turn a request into an image.
/// `TextToImagePipeline` implements it on a loaded diffusers model folder.
public protocol ImageGenerating: AnyObject {
    /// Generates one image for `request` (its `seed` is this image's seed).
    /// - Parameters:
    ///   - snapshotEvery: attach a preview to the step event every N steps (0 = never).
    ///   - onStep: called after every step; returning `.cancel` stops the run with `GenerationCancelled`.
    func generate(_ request: GenerationRequest, snapshotEvery: Int,
                  onStep: (StepEvent) -> StepControl) throws -> RGBImage
}
