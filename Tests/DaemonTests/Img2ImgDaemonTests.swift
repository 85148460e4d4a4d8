@testable import Daemon
import Foundation
import Jobs
import Pipeline
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// img2img through the running daemon (issue 17), as a user drives it: a folder of pictures
/// becomes one job per picture in name order, each made from its own picture; inputs the
/// job's owner could not read, links, FIFOs, oversized headers and corrupt files are refused
/// at intake with a one-line reason naming the file, while the daemon keeps serving.
final class Img2ImgDaemonTests: XCTestCase {
    static let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures/img2img")

    /// Distinct 32×32 pictures: the fixture drawing tinted per index.
    static func picture(_ index: Int) throws -> RGBImage {
        let base = try InputImageFormat.png.decode([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("init-32x32.png"))))
        return RGBImage(width: 32, height: 32, pixels: base.pixels.enumerated().map { k, v in
            k % 3 == index % 3 ? UInt8(min(255, Int(v) / 2 + 60 * index)) : v
        })
    }

    func testFolderOfPicturesBecomesOneJobPerPictureInNameOrder() throws {
        _ = try XCTUnwrap(DaemonHarness.fixtureModel)
        let daemon = try DaemonHarness()
        let pictures = daemon.root.appendingPathComponent("pictures")
        try FileManager.default.createDirectory(at: pictures, withIntermediateDirectories: true)
        // Written out of name order; the JPEG sorts last.
        var sources: [String: RGBImage] = [:]
        for (index, name) in ["c.png", "a.png", "b.png"].enumerated() {
            let image = try Self.picture(index)
            try Data(try PNGCodec.encode(image)).write(to: pictures.appendingPathComponent(name))
            sources[name] = image
        }
        let jpeg = try Data(contentsOf: Self.fixtures.appendingPathComponent("init-32x32.jpg"))
        try jpeg.write(to: pictures.appendingPathComponent("d.jpg"))
        sources["d.jpg"] = try JPEGCodec.decode([UInt8](jpeg))
        try daemon.start()
        try daemon.drop("folder.yaml", "prompt: a red circle\ninit_images: \(pictures.path)/\nstrength: 0.5\nsteps: 4\nseed: 5\n")
        daemon.waitUntil("4 finished jobs") { daemon.results.count == 4 }
        let results = daemon.results.sorted { $0.result.id < $1.result.id }
        XCTAssertEqual(results.map { URL(fileURLWithPath: $0.result.parameters.initImage ?? "").lastPathComponent },
                       ["a.png", "b.png", "c.png", "d.jpg"], "one job per picture, in name order")

        let pipeline = try TextToImagePipeline(modelDirectory: try XCTUnwrap(DaemonHarness.fixtureModel), threads: 1)
        var images: [[UInt8]] = []
        for (folder, result) in results {
            XCTAssertEqual(result.status, "done", "\(folder): \(result.error ?? "")")
            XCTAssertEqual(result.parameters.strength, 0.5)
            XCTAssertEqual(result.parameters.resize, "crop")
            let name = URL(fileURLWithPath: result.parameters.initImage ?? "").lastPathComponent
            // The copy taken at intake is the file as it was.
            let copy = daemon.outbox.appendingPathComponent("\(folder)/input.\(name.hasSuffix(".jpg") ? "jpg" : "png")")
            XCTAssertEqual(try Data(contentsOf: copy), try Data(contentsOf: pictures.appendingPathComponent(name)), folder)
            // The image is the engine's img2img of that picture.
            let png = [UInt8](try Data(contentsOf: daemon.outbox.appendingPathComponent("\(folder)/image-001.png")))
            let made = try PNGCodec.decode(png)
            let request = GenerationRequest(prompt: "a red circle", width: 32, height: 32, steps: 4, sampler: .euler,
                                            guidance: 5, seed: 5, initImage: try XCTUnwrap(sources[name]), strength: 0.5)
            let expected = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            let worst = zip(made.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
            XCTAssertLessThanOrEqual(worst, 1, "\(folder) (\(name)): differs by \(worst)/255 from img2img of its picture")
            let text = String(decoding: png, as: UTF8.self)
            XCTAssertTrue(text.contains("Denoising strength: 0.5"), "AUTOMATIC1111's key in the PNG")
            images.append(made.pixels)
        }
        XCTAssertEqual(Set(images).count, 4, "four different pictures give four different images")
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testUnreadableInputsAreRefusedWithOneLineReasonsWhileTheDaemonServes() throws {
        _ = try XCTUnwrap(DaemonHarness.fixtureModel)
        let daemon = try DaemonHarness()
        let inputs = daemon.root.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        chmod(daemon.root.path, 0o755)
        chmod(inputs.path, 0o755)
        let png = try Data(contentsOf: Self.fixtures.appendingPathComponent("init-32x32.png"))
        let good = inputs.appendingPathComponent("good.png")
        try png.write(to: good)
        chmod(good.path, 0o644)

        var cases: [(file: String, path: String, reason: String)] = []
        // Another user's private picture, for a job of a third user (needs root to set up).
        let asRoot = getuid() == 0
        if asRoot {
            let secret = inputs.appendingPathComponent("secret.png")
            try png.write(to: secret)
            XCTAssertEqual(chown(secret.path, 4343, 4343), 0)
            XCTAssertEqual(chmod(secret.path, 0o600), 0)
            cases.append(("secret.yaml", secret.path, "the job's owner (uid 4242) may not read it (owned by uid 4343, mode 600)"))
        }
        let link = inputs.appendingPathComponent("link.png")
        XCTAssertEqual(symlink(good.path, link.path), 0)
        cases.append(("link.yaml", link.path, "is a symbolic link; name the file itself"))
        let fifo = inputs.appendingPathComponent("pipe.png")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        cases.append(("fifo.yaml", fifo.path, "is a FIFO (named pipe), not a regular file"))
        var huge = Array([UInt8](png).prefix(33))
        for offset in [16, 20] { huge.replaceSubrange(offset..<(offset + 4), with: [0x00, 0x00, 0x4E, 0x20]) }  // 20000
        let hugeURL = inputs.appendingPathComponent("huge.png")
        try Data(huge).write(to: hugeURL)
        chmod(hugeURL.path, 0o644)
        cases.append(("huge.yaml", hugeURL.path, "is 20000×20000 pixels, more than max_input_pixels (16777216)"))
        let jpeg = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("init-32x32.jpg")))
        let sos = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        let corrupt = inputs.appendingPathComponent("corrupt.jpg")
        try Data(jpeg.prefix(sos + 40)).write(to: corrupt)
        chmod(corrupt.path, 0o644)
        cases.append(("corrupt.yaml", corrupt.path, "corrupt picture: JPEG: "))

        try daemon.start()
        for item in cases {
            let text = "prompt: a red circle\ninit_image: \(item.path)\nsteps: 4\nseed: 1\n"
            if asRoot {
                // Dropped by user 4242: written, given away, then renamed in.
                let temp = daemon.inbox.appendingPathComponent(".\(item.file)")
                try text.write(to: temp, atomically: false, encoding: .utf8)
                XCTAssertEqual(chown(temp.path, 4242, 4242), 0)
                XCTAssertEqual(rename(temp.path, daemon.inbox.appendingPathComponent(item.file).path), 0)
            } else {
                try daemon.drop(item.file, text)
            }
        }
        // A folder whose second picture is corrupt: the first one's copy, already kept, goes again.
        let mixed = inputs.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: mixed, withIntermediateDirectories: false)
        chmod(mixed.path, 0o755)
        try png.write(to: mixed.appendingPathComponent("a.png"))
        try Data(jpeg.prefix(sos + 40)).write(to: mixed.appendingPathComponent("b.jpg"))
        for name in ["a.png", "b.jpg"] { chmod(mixed.appendingPathComponent(name).path, 0o644) }
        try daemon.drop("mixed.yaml", "prompt: a red circle\ninit_images: \(mixed.path)\nsteps: 4\nseed: 1\n")
        try daemon.drop("good.yaml", "prompt: a red circle\ninit_image: \(good.path)\nsteps: 4\nseed: 1\n")
        daemon.waitUntil("\(cases.count + 1) rejections and the good job") {
            daemon.rejectedNames.count == cases.count + 1 && daemon.results.count == 1
        }
        XCTAssertTrue(daemon.rejectionReason("mixed.yaml")?.hasPrefix("mixed.yaml:2:14: field 'init_images': \(mixed.path)/b.jpg: corrupt picture") == true,
                      daemon.rejectionReason("mixed.yaml") ?? "")
        XCTAssertEqual(daemon.names(daemon.outbox).filter { $0 != "rejected" }.count, 1, "only the good job's folder: \(daemon.names(daemon.outbox))")
        for item in cases {
            let reason = try XCTUnwrap(daemon.rejectionReason(item.file), item.file)
            XCTAssertFalse(reason.contains("\n"), "one line")
            XCTAssertTrue(reason.hasPrefix("\(item.file):2:13: field 'init_image': \(item.path): \(item.reason)"),
                          "\(item.file): \(reason)")
        }
        XCTAssertEqual(daemon.results.first?.result.status, "done", "the daemon kept serving")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// `--oneshot` reads a relative picture from the job file's folder and, with
    /// `resize: stretch`, brings a 40×24 picture to the job's 32×32.
    func testOneshotReadsRelativePicturesNextToTheJobFile() throws {
        let model = try XCTUnwrap(DaemonHarness.fixtureModel)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("img2img-oneshot-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("init-40x24.png"), to: dir.appendingPathComponent("wide.png"))
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try DaemonHarness.oneshot(
            ["job": "prompt: a red circle\ninit_image: wide.png\nresize: stretch\nwidth: 32\nheight: 32\nsteps: 4\nstrength: 0.75\nseed: 3\n"],
            in: dir, arguments: ["--outbox", out.path, "--model", model.path])
        XCTAssertEqual(status, 0, stderr)
        let result = try JSONDecoder().decode(JobResult.self, from: Data(contentsOf: out.appendingPathComponent("job/result.json")))
        XCTAssertEqual(result.parameters.initImage, dir.appendingPathComponent("wide.png").path)
        XCTAssertEqual(result.parameters.resize, "stretch")
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("job/input.png")),
                       try Data(contentsOf: dir.appendingPathComponent("wide.png")))
        let made = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("job/image-001.png"))))
        let wide = try InputImageFormat.png.decode([UInt8](try Data(contentsOf: dir.appendingPathComponent("wide.png"))))
        let pipeline = try TextToImagePipeline(modelDirectory: model, threads: 1)
        let request = GenerationRequest(prompt: "a red circle", width: 32, height: 32, steps: 4, sampler: .euler, guidance: 5,
                                        seed: 3, initImage: wide.resized(width: 32, height: 32, mode: .stretch), strength: 0.75)
        let expected = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
        let worst = zip(made.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1)
    }

    /// An inpainting job end to end: `--oneshot` on the tiny 9-channel model with a picture and
    /// a mask gives diffusers' `StableDiffusionInpaintPipeline` image (Tests/Fixtures/inpaint).
    func testInpaintingJobGivesDiffusersImage() throws {
        let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inpaint-oneshot-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("img2img/init-32x32.png"), to: dir.appendingPathComponent("photo.png"))
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("inpaint/mask-32x32.png"), to: dir.appendingPathComponent("mask.png"))
        let out = dir.appendingPathComponent("out")
        let job = """
        prompt: a red circle on a blue square
        negative_prompt: blurry
        init_image: photo.png
        mask: mask.png
        width: 32
        height: 32
        steps: 8
        sampler: euler
        guidance: 7.5
        seed: 8001

        """
        let (status, stderr) = try DaemonHarness.oneshot(["job": job], in: dir,
                                                         arguments: ["--outbox", out.path, "--model", fixtures.appendingPathComponent("tiny-sd1-inpaint").path])
        XCTAssertEqual(status, 0, stderr)
        let result = try JSONDecoder().decode(JobResult.self, from: Data(contentsOf: out.appendingPathComponent("job/result.json")))
        XCTAssertEqual(result.parameters.strength, 1, "inpainting's default strength is diffusers' 1.0")
        XCTAssertEqual(result.parameters.mask, dir.appendingPathComponent("mask.png").path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("job/mask.png").path))
        let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("job/image-001.png")))
        let made = try PNGCodec.decode(png)
        let expected = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("inpaint/tiny-sd1-inpaint-euler-8-s1.0.rgb")))
        let worst = zip(made.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1, "differs by \(worst)/255 from diffusers' inpainting")
        let text = String(decoding: png, as: UTF8.self)
        XCTAssertTrue(text.contains("Denoising strength: 1, Mask blur: 0"), "AUTOMATIC1111's keys")
    }

    /// A hires-fix job end to end: `--oneshot` gives the two diffusers passes built by hand
    /// (Tests/Fixtures/hires), and the PNG records AUTOMATIC1111's hires keys.
    func testHiresFixJobGivesTheTwoPassImage() throws {
        let model = try XCTUnwrap(DaemonHarness.fixtureModel)
        let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hires-oneshot-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        let job = "prompt: a red circle on a blue square\nnegative_prompt: blurry\nwidth: 32\nheight: 32\nsteps: 8\n"
            + "sampler: euler\nguidance: 7.5\nseed: 9001\nupscale: 1.5\nupscale_strength: 0.5\n"
        let (status, stderr) = try DaemonHarness.oneshot(["job": job], in: dir, arguments: ["--outbox", out.path, "--model", model.path])
        XCTAssertEqual(status, 0, stderr)
        let png = [UInt8](try Data(contentsOf: out.appendingPathComponent("job/image-001.png")))
        let made = try PNGCodec.decode(png)
        XCTAssertEqual(made.width, 48)
        XCTAssertEqual(made.height, 48)
        let expected = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("hires/euler-32x32-x1.5-s0.5.rgb")))
        let worst = zip(made.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1, "differs by \(worst)/255 from the two diffusers passes")
        let text = String(decoding: png, as: UTF8.self)
        XCTAssertTrue(text.contains("Size: 32x32"), "Size is the first pass's, as the web UI records it")
        XCTAssertTrue(text.contains("Denoising strength: 0.5, Hires upscale: 1.5, Hires upscaler: Lanczos"), text)
        let result = try JSONDecoder().decode(JobResult.self, from: Data(contentsOf: out.appendingPathComponent("job/result.json")))
        XCTAssertEqual(result.parameters.upscale, 1.5)
        XCTAssertEqual(result.parameters.upscaleStrength, 0.5)
    }
}
