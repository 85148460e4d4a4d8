import Foundation
import Kernels
import XCTest
@testable import Models
@testable import Pipeline
import Sampling

/// SDXL text-to-image against diffusers' `StableDiffusionXLPipeline` on the tiny SDXL-like
/// fixture (Tests/Fixtures/tiny-sdxl, pipeline/tiny-sdxl.json, made by
/// tools/fixtures/sdxl_refs.py): every pixel within 1/255, plus the text conditioning the UNet
/// got at the last step and the final latents within 1e-4.
final class XLPipelineReferenceTests: XCTestCase {
    static let folder = ReferenceChecks.fixtures.appendingPathComponent("tiny-sdxl")

    /// One recorded case of pipeline/tiny-sdxl.json.
    struct Case {
        var id: String
        var request: GenerationRequest
        /// `timestep_spacing` the case's scheduler was made with (`from_config(…, timestep_spacing=…)`), if overridden.
        var spacing: String?
        var image: String
        var addTimeIDs: [Float]

        init(_ c: [String: Any]) throws {
            id = try XCTUnwrap(c["id"] as? String)
            let cls = try XCTUnwrap(c["scheduler_class"] as? String)
            let overrides = c["overrides"] as? [String: Any] ?? [:]
            let sampler: SamplerKind
            switch cls {
            case "EulerDiscreteScheduler": sampler = .euler
            case "EulerAncestralDiscreteScheduler": sampler = .eulerAncestral
            case "DPMSolverMultistepScheduler":
                XCTAssertEqual(overrides["algorithm_type"] as? String, "dpmsolver++")
                XCTAssertEqual(overrides["solver_order"] as? Int, 2)
                sampler = try XCTUnwrap(SamplerKind(rawValue: "dpm++2m"))
            default: throw XCTSkip("no sampler for \(cls)")
            }
            spacing = overrides["timestep_spacing"] as? String
            let schedule: ScheduleKind = overrides["use_karras_sigmas"] as? Bool == true ? .karras : .default
            // diffusers' negative_prompt=None is a request without a given negative prompt.
            let negative = c["negative_prompt"] as? String
            request = GenerationRequest(prompt: try XCTUnwrap(c["prompt"] as? String), negativePrompt: negative ?? "",
                                        width: try XCTUnwrap(c["width"] as? Int), height: try XCTUnwrap(c["height"] as? Int),
                                        steps: try XCTUnwrap(c["steps"] as? Int), sampler: sampler, schedule: schedule,
                                        guidance: Float(try XCTUnwrap(c["guidance"] as? Double)),
                                        seed: UInt64(try XCTUnwrap(c["seed"] as? Int)), negativePromptGiven: negative != nil)
            image = try XCTUnwrap(c["image"] as? String)
            addTimeIDs = try XCTUnwrap(c["add_time_ids"] as? [Double]).map(Float.init)
        }
    }

    static func cases() throws -> [Case] {
        // Python's json module writes the sigma schedules' inf as Infinity, which is not JSON.
        let text = try String(contentsOf: ReferenceChecks.fixtures.appendingPathComponent("pipeline/tiny-sdxl.json"), encoding: .utf8)
        let data = Data(text.replacingOccurrences(of: "-?Infinity", with: "null", options: .regularExpression).utf8)
        let index = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(index["cases"] as? [[String: Any]]).map(Case.init)
    }

    /// The fixture folder's pipeline with its scheduler config, `timestep_spacing` overridden
    /// when the case asks (SDXL-Turbo's folder ships `trailing` itself).
    static func pipeline(spacing: String?) throws -> TextToImagePipeline {
        let pool = ThreadPool(threadCount: 2)
        let model = try StableDiffusionModel(directory: folder, pool: pool)
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: model.schedulerConfigURL)) as? [String: Any])
        if let spacing { json["timestep_spacing"] = spacing }
        let config = try SchedulerConfig(json: try JSONSerialization.data(withJSONObject: json))
        return TextToImagePipeline(model: model, schedulerConfig: config, pool: pool)
    }

    func testImagesMatchDiffusersWithinOneLevel() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 5)
        var pipelines: [String: TextToImagePipeline] = [:]
        let latents = try SafeTensorsFile(path: ReferenceChecks.fixtures.appendingPathComponent("pipeline/tiny-sdxl-latents.safetensors").path)
        var checked: [String] = []
        for item in cases {
            let key = item.spacing ?? ""
            let pipeline = try pipelines[key] ?? Self.pipeline(spacing: item.spacing)
            pipelines[key] = pipeline
            XCTAssertEqual(pipeline.family, .stableDiffusionXL)
            XCTAssertEqual(TextToImagePipeline.addTimeIDs(width: item.request.width, height: item.request.height), item.addTimeIDs, item.id)

            // The conditioning the UNet got ([uncond, cond] under guidance).
            let (context, added) = try pipeline.xlConditioning(item.request, xl: try XCTUnwrap(pipeline.xl))
            assertClose(context, Tensor(shape: try XCTUnwrap(latents.tensors["\(item.id).prompt_embeds"]).shape,
                                        values: try latents.floats("\(item.id).prompt_embeds")), "\(item.id) prompt_embeds")
            assertClose(added.textEmbeds, Tensor(shape: try XCTUnwrap(latents.tensors["\(item.id).add_text_embeds"]).shape,
                                                 values: try latents.floats("\(item.id).add_text_embeds")), "\(item.id) add_text_embeds")

            let final = try pipeline.denoisedLatents(item.request, snapshotEvery: 0) { _ in .proceed }
            let expected = try latents.floats("\(item.id).final")
            let scale = max(1, expected.map { abs($0) }.max() ?? 1)
            let difference = zip(final.toArray(), expected).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertEqual(final.count, expected.count, item.id)
            XCTAssertLessThan(difference / scale, 1e-4, "\(item.id): final latents")

            var steps = 0
            let image = try pipeline.generate(item.request, snapshotEvery: 0) { _ in steps += 1; return .proceed }
            XCTAssertEqual(steps, item.request.steps, item.id)
            XCTAssertEqual(image.width, item.request.width, item.id)
            XCTAssertEqual(image.height, item.request.height, item.id)
            try ReferenceChecks.assertImage(image.pixels, matches: item.image, item.id)
            checked.append(item.id)
        }
        // euler (zeros for the absent negative prompt), euler_a trailing 1 step guidance 0,
        // dpm++2m karras with a negative prompt, prompts over 77 tokens.
        // A given "" negative prompt, encoded (force_zeros applies to None only), at the native size.
        for wanted in ["tiny-sdxl-euler-48x32", "tiny-sdxl-euler_a-trailing-", "tiny-sdxl-dpm++2m-karras-", "tiny-sdxl-euler-long-",
                       "tiny-sdxl-euler-default-size-64x64"] {
            XCTAssertTrue(checked.contains { $0.hasPrefix(wanted) }, "no case \(wanted)* was checked")
        }
    }

    /// The absent negative prompt under force_zeros_for_empty_prompt gives zero rows; a given
    /// one does not; guidance ≤ 1 encodes the prompt alone.
    func testNegativeSideAndBatchRows() throws {
        let pipeline = try Self.pipeline(spacing: nil)
        let xl = try XCTUnwrap(pipeline.xl)
        XCTAssertTrue(xl.forceZerosForEmptyPrompt)
        var request = GenerationRequest(prompt: "a photo of a cat", width: 32, height: 48, steps: 1, sampler: .euler, guidance: 5, seed: 1)
        let (zeroed, zeroAdded) = try pipeline.xlConditioning(request, xl: xl)
        XCTAssertEqual(zeroed.shape, [2, 77, 72])
        XCTAssertEqual(zeroAdded.textEmbeds.shape, [2, 20])
        XCTAssertEqual(zeroAdded.timeIDs.toArray(), [48, 32, 0, 0, 48, 32, 48, 32, 0, 0, 48, 32])
        XCTAssertTrue(zeroed.toArray()[0..<(77 * 72)].allSatisfy { $0 == 0 })
        XCTAssertTrue(zeroAdded.textEmbeds.toArray()[0..<20].allSatisfy { $0 == 0 })
        let condRow = Array(zeroed.toArray()[(77 * 72)...])
        XCTAssertTrue(condRow.contains { $0 != 0 })
        // A given "" is encoded, not zeroed.
        request.negativePromptGiven = true
        let (empty, emptyAdded) = try pipeline.xlConditioning(request, xl: xl)
        XCTAssertTrue(empty.toArray()[0..<(77 * 72)].contains { $0 != 0 })
        XCTAssertTrue(emptyAdded.textEmbeds.toArray()[0..<20].contains { $0 != 0 })
        request.negativePromptGiven = false
        request.negativePrompt = "blurry"
        let (given, givenAdded) = try pipeline.xlConditioning(request, xl: xl)
        XCTAssertTrue(given.toArray()[0..<(77 * 72)].contains { $0 != 0 })
        XCTAssertTrue(givenAdded.textEmbeds.toArray()[0..<20].contains { $0 != 0 })
        XCTAssertEqual(Array(given.toArray()[(77 * 72)...]), condRow)
        request.guidance = 0
        let (alone, aloneAdded) = try pipeline.xlConditioning(request, xl: xl)
        XCTAssertEqual(alone.shape, [1, 77, 72])
        XCTAssertEqual(alone.toArray(), condRow)
        XCTAssertEqual(aloneAdded.timeIDs.toArray(), [48, 32, 0, 0, 48, 32])
    }

    /// What the SDXL pipeline does not do here is refused before anything runs, by generate
    /// and by promptReport (which the daemon asks first).
    func testUnsupportedRequestsAreRefused() throws {
        let pipeline = try Self.pipeline(spacing: nil)
        let base = GenerationRequest(prompt: "a cat", width: 32, height: 32, steps: 1, sampler: .euler, guidance: 0, seed: 1)
        var img2img = base
        img2img.initImage = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 128, count: 32 * 32 * 3))
        var hires = base
        hires.hires = HiresFix(scale: 2, strength: 0.5)
        var lora = base
        lora.loras = [LoRASelection(name: "x", file: URL(fileURLWithPath: "/nonexistent/x.safetensors"), weight: 1)]
        var chunk = base
        chunk.longPrompt = .chunk
        for (request, what) in [(img2img, "img2img"), (hires, "hires fix"), (lora, "LoRAs"), (chunk, "long_prompt: chunk")] {
            for call in [{ _ = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed } },
                         { _ = try pipeline.promptReport(request) }] {
                XCTAssertThrowsError(try call()) { error in
                    let text = "\(error)"
                    XCTAssertTrue(text.contains("SDXL") && text.contains(what), text)
                }
            }
        }
        // The supported request still runs after the refusals.
        XCTAssertEqual(try pipeline.generate(base, snapshotEvery: 0) { _ in .proceed }.width, 32)
    }

    /// guidance_cutoff: the cond-only evaluations get the conditional row of the pooled embeds and
    /// time ids (diffusers' SDXL callback recipe keeps `add_text_embeds.chunk(2)[-1]` and
    /// `add_time_ids.chunk(2)[-1]`); cache: 2 runs the shallow branch with the same added
    /// conditioning and changes the image a little.
    func testGuidanceCutoffAndCacheCarryTheAddedConditioning() throws {
        let pipeline = try Self.pipeline(spacing: nil)
        var request = GenerationRequest(prompt: "a photo of a cat", negativePrompt: "blurry", width: 32, height: 48, steps: 4,
                                        sampler: .euler, guidance: 5, seed: 4, guidanceCutoff: 0.5)
        var aug: [[Float]] = [], batch: [Int] = [], deep: [Bool] = []
        pipeline.unet.observer = { name, tensor in
            if name == "add_embedding" { aug.append(tensor.toArray()); batch.append(tensor.shape[0]); deep.append(false) }
            if name == "mid_block", !deep.isEmpty { deep[deep.count - 1] = true }
        }
        defer { pipeline.unet.observer = nil }
        let cut = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        // Evaluations after int(4 × 0.5) = 2 run the conditional row alone.
        XCTAssertEqual(batch, [2, 2, 2, 1])
        let width = aug[0].count / 2
        // Equal to the conditional row up to rounding: a batch of one may take another BLAS
        // kernel than a batch of two (an ulp apart on some CPUs); the rows differ by O(1).
        let condRow = Array(aug[0][width...]), uncondRow = Array(aug[0][..<width])
        let scale = max(condRow.map { abs($0) }.max() ?? 0, 1e-30)
        let toCond = zip(aug[3], condRow).map { abs($0 - $1) }.max() ?? .infinity
        let toUncond = zip(aug[3], uncondRow).map { abs($0 - $1) }.max() ?? 0
        XCTAssertEqual(aug[3].count, width)
        XCTAssertLessThanOrEqual(toCond / scale, 1e-5, "the conditional row's aug_emb")
        XCTAssertGreaterThan(toUncond / scale, 1e-2, "not the unconditional row's")
        request.guidanceCutoff = nil
        let full = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertNotEqual(cut.pixels, full.pixels)

        aug = []; batch = []; deep = []
        request.cache = 2
        let cached = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertEqual(deep, [true, false, true, false])
        XCTAssertEqual(batch, [2, 2, 2, 2])
        XCTAssertNotEqual(cached.pixels, full.pixels, "caching approximates")
        XCTAssertEqual([cached.width, cached.height], [32, 48])
    }

    /// `decoder: tiny` with a TAESDXL-shaped AutoencoderTiny (tiny-taesd-x4, made by
    /// tools/fixtures/taesdxl_refs.py) gives diffusers' StableDiffusionXLPipeline(vae=AutoencoderTiny)
    /// image within 1/255; a tiny VAE of another factor is refused.
    func testTinyVAEDecodesAsDiffusers() throws {
        let pipeline = try Self.pipeline(spacing: "trailing")
        XCTAssertThrowsError(try pipeline.loadTinyVAE(directory: ReferenceChecks.fixtures.appendingPathComponent("tiny-taesd"))) {
            XCTAssertTrue("\($0)".contains("factor 8"), "\($0)")
        }
        try pipeline.loadTinyVAE(directory: ReferenceChecks.fixtures.appendingPathComponent("tiny-taesd-x4"))
        let request = GenerationRequest(prompt: "A painting of a Lighthouse, at night; stormy sea!!", width: 48, height: 32, steps: 1,
                                        sampler: .eulerAncestral, guidance: 0, seed: 2002, decoder: .tiny)
        XCTAssertEqual(pipeline.previewMethod(for: request, snapshotEvery: 1), .tinyVAE)
        let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        try ReferenceChecks.assertImage(image.pixels, matches: "tiny-taesd-x4/pipeline-tiny-sdxl.rgb", "tiny-sdxl + tiny-taesd-x4")
        // The full VAE's image of the same latents is another picture: the check can tell them apart.
        var full = request
        full.decoder = .full
        let reference = try ReferenceChecks.bytes("tiny-taesd-x4/pipeline-tiny-sdxl.rgb")
        let other = try pipeline.generate(full, snapshotEvery: 0) { _ in .proceed }
        XCTAssertGreaterThan(zip(other.pixels, reference).map { abs(Int($0) - Int($1)) }.max() ?? 0, 1)
    }

    /// A long prompt is cut at 77 tokens as diffusers does, and the report says so.
    func testLongPromptIsReportedTruncated() throws {
        let pipeline = try Self.pipeline(spacing: nil)
        let long = try XCTUnwrap(try Self.cases().first { $0.id.contains("-long-") })
        let warnings = try pipeline.promptReport(long.request).warnings
        XCTAssertTrue(warnings.contains { $0.hasPrefix("prompt truncated to 77 tokens") }, "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.hasPrefix("negative prompt truncated to 77 tokens") }, "\(warnings)")
    }

    /// Previews: the latent→RGB map of SDXL's latent space when there is no tiny VAE and the
    /// full VAE is too dear; cancel stops between steps.
    func testPreviewsAndCancel() throws {
        let pipeline = try Self.pipeline(spacing: nil)
        let request = GenerationRequest(prompt: "a cat", width: 32, height: 48, steps: 4, sampler: .euler, guidance: 5, seed: 9)
        var seen: [Int] = []
        XCTAssertThrowsError(try pipeline.generate(request, snapshotEvery: 1) { event in
            seen.append(event.step)
            XCTAssertEqual(event.preview?.width, 32)
            XCTAssertEqual(event.preview?.height, 48)
            return event.step == 2 ? .cancel : .proceed
        }) { XCTAssertEqual(($0 as? GenerationCancelled)?.step, 2) }
        XCTAssertEqual(seen, [1, 2])
    }
}

/// `actual` within 1e-4 of `reference`'s largest magnitude, same shape.
private func assertClose(_ actual: Tensor, _ reference: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, reference.shape, "\(what): shape", file: file, line: line)
    let a = actual.toArray(), r = reference.toArray()
    let scale = max(r.map { abs($0) }.max() ?? 0, 1e-30)
    let difference = a.count == r.count ? zip(a, r).map { abs($0 - $1) }.max() ?? 0 : .infinity
    XCTAssertLessThanOrEqual(difference / scale, 1e-4, "\(what): relative error \(difference / scale)", file: file, line: line)
}
