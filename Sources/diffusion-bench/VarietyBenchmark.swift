import Evaluation
import Foundation
import Pipeline

/// `diffusion-bench variety [options]`: seed variety of the built-in model (issue 18). For
/// each of `--captions` held-out captions (default 20, from `--first`, default 0), `--seeds` pictures (default
/// 8, seeds 0…7) from `TextToImagePipeline` with the adherence benchmark's settings, and 64
/// renders of the same caption as the training data draws them (`SeedVariety.renderVariants`);
/// prints one JSON object with the spread of object size and centre in both
/// (`SeedVariety.spread`) and their ratios. Issue 18 asks for at least half the renders'
/// spread in each.
///
/// Averages run over every object of every caption. An object found in its colour in fewer
/// than two of a caption's pictures counts as spread 0 (`objects_not_found`): a picture that
/// lacks the object shows no variety of it.
///
/// Options: those of `adherence` that make pictures (`--model`, `--steps`, `--guidance`,
/// `--sampler`, `--guidance-cutoff`, `--cache`, `--eta`, `--restart`, `--threads`, `--save`, `--first`: captions
/// first ..< first + captions instead of the first ones), and `--renders` to
/// measure a second, independently drawn set of renders instead of generated pictures (the
/// measure's own check: a ratio near 1). Exit status 0, or 64 for bad options.
func runVarietyBenchmark(_ args: [String]) throws -> Int32 {
    var rest: [String] = []
    var captions = 20, seeds = 8
    var i = 0
    while i < args.count {
        let name = args[i]
        if name == "--captions" || name == "--seeds" {
            guard i + 1 < args.count, let n = Int(args[i + 1]), n > (name == "--seeds" ? 1 : 0), n <= 1 << 20 else {
                throw BenchError.usage("variety: \(name) wants an integer from \(name == "--seeds" ? 2 : 1) to \(1 << 20)")
            }
            if name == "--captions" { captions = n } else { seeds = n }
            i += 2
            continue
        }
        if ["--count", "--images", "--reconstruct", "--vae"].contains(name) {
            throw BenchError.usage("variety: \(name) does not apply (see --captions, --seeds)")
        }
        rest.append(name)
        i += 1
    }
    let options: AdherenceOptions
    do {
        options = try AdherenceOptions.parse(rest)
    } catch let error as AdherenceOptions.UsageError {
        throw BenchError.usage("variety: \(error.message)")
    }
    let started = Date()
    let pipeline = options.source == .renders
        ? nil : try TextToImagePipeline(modelDirectory: options.model, threads: options.threads)
    if let save = options.saveDirectory {
        try FileManager.default.createDirectory(at: save, withIntermediateDirectories: true)
    }
    var generatedSize = 0.0, generatedCentre = 0.0, renderSize = 0.0, renderCentre = 0.0
    var objects = 0, notFound = 0
    var perCaption: [[String: Any]] = []
    for c in options.first..<(options.first + captions) {
        let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(c))
        var images: [RGBImage] = []
        if let pipeline {
            for s in 0..<seeds {
                images.append(try pipeline.generate(options.request(caption: scene.caption, seed: UInt64(s)),
                                                    snapshotEvery: 0) { _ in .proceed })
            }
        } else {
            // A second draw of renders, from another stream than the reference's.
            images = SeedVariety.renderVariants(of: scene, count: seeds, seed: ~(SceneSampler.heldOutSeedBase + UInt64(c)))
        }
        if let save = options.saveDirectory {
            for (s, image) in images.enumerated() {
                try PPM.encode(image).write(to: save.appendingPathComponent(String(format: "caption-%02d-seed-%d.ppm", c, s)))
            }
        }
        let reference = SeedVariety.renderVariants(of: scene, count: 64, seed: SceneSampler.heldOutSeedBase + UInt64(c))
        let generated = try SeedVariety.spread(of: images, caption: scene.caption)
        let rendered = try SeedVariety.spread(of: reference, caption: scene.caption)
        var entries: [[String: Any]] = []
        for (g, r) in zip(generated, rendered) {
            // Every render shows every object, so the reference spread is always there.
            guard let r else { continue }
            objects += 1
            if g == nil { notFound += 1 }
            generatedSize += g?.size ?? 0
            generatedCentre += g?.centre ?? 0
            renderSize += r.size
            renderCentre += r.centre
            entries.append(["size": g?.size ?? 0, "centre": g?.centre ?? 0, "found": g?.found ?? 0,
                            "size_renders": r.size, "centre_renders": r.centre])
        }
        perCaption.append(["caption": scene.caption, "objects": entries])
        FileHandle.standardError.write(Data("<7>variety: \(c + 1 - options.first)/\(captions)\n".utf8))
    }
    let n = Double(max(objects, 1))
    var json: [String: Any] = [
        "captions": captions, "seeds": seeds, "objects": objects, "objects_not_found": notFound,
        "size_spread": generatedSize / n, "size_spread_renders": renderSize / n,
        "centre_spread": generatedCentre / n, "centre_spread_renders": renderCentre / n,
        "size_ratio": renderSize > 0 ? generatedSize / renderSize : 0,
        "centre_ratio": renderCentre > 0 ? generatedCentre / renderCentre : 0,
        "per_caption": perCaption, "seconds": Date().timeIntervalSince(started),
    ]
    json["source"] = pipeline == nil ? "renders" : "pipeline:" + options.model.path
    if options.first > 0 { json["first"] = options.first }
    if pipeline != nil { json.merge(options.generationFields) { _, new in new } }
    let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
    return 0
}
