import Foundation
import Jobs
import Pipeline
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Input pictures (issue 17): PNG and JPEG decoding against Pillow, the LANCZOS resize against
/// Pillow bit for bit, the resize rules, and what `InputFileAccess` refuses and why.
final class InputImageTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/img2img")

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name))) }

    func testPNGAndJPEGDecodeAsPillowDoes() throws {
        let png = try Self.bytes("init-32x32.png")
        XCTAssertEqual(InputImageFormat.sniff(png), .png)
        XCTAssertEqual(try InputImageFormat.png.size(png).width, 32)
        XCTAssertEqual(try InputImageFormat.png.decode(png).pixels, try Self.bytes("init-32x32.rgb"))
        let jpeg = try Self.bytes("init-32x32.jpg")
        XCTAssertEqual(InputImageFormat.sniff(jpeg), .jpeg)
        XCTAssertEqual(try JPEGCodec.size(jpeg).width, 32)
        let decoded = try JPEGCodec.decode(jpeg)
        let pillow = try Self.bytes("init-32x32.jpg.rgb")
        XCTAssertEqual(decoded.pixels.count, pillow.count)
        let worst = zip(decoded.pixels, pillow).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertEqual(worst, 0, "libjpeg-turbo islow + fancy upsampling is Pillow's decode")
        // The JPEG is lossy: it is not the PNG's pixels.
        XCTAssertNotEqual(decoded.pixels, try Self.bytes("init-32x32.rgb"))
        XCTAssertNil(InputImageFormat.sniff(Array("prompt: x".utf8)))
    }

    /// The JPEG cut off a few bytes into its scan: the header reads, the decode must fail
    /// (libjpeg only warns of a premature end; TurboJPEG is told to stop on warnings).
    static func truncatedJPEG() throws -> [UInt8] {
        let jpeg = try bytes("init-32x32.jpg")
        let sos = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        return Array(jpeg.prefix(sos + 40))
    }

    func testCorruptJPEGIsAnError() throws {
        let jpeg = try Self.truncatedJPEG()
        XCTAssertEqual(try JPEGCodec.size(jpeg).width, 32, "the header is intact")
        XCTAssertThrowsError(try JPEGCodec.decode(jpeg)) { XCTAssertTrue("\($0)".hasPrefix("JPEG: "), "\($0)") }
    }

    func testLanczosStretchIsPillowsResizeBitForBit() throws {
        let source = try InputImageFormat.png.decode(try Self.bytes("resize-source.png"))
        XCTAssertEqual(source.width, 45)
        XCTAssertEqual(source.height, 37)
        for (w, h) in [(32, 32), (64, 48)] {
            let resized = source.resized(width: w, height: h, mode: .stretch)
            XCTAssertEqual(resized.width, w)
            XCTAssertEqual(resized.height, h)
            XCTAssertEqual(resized.pixels, try Self.bytes("resize-\(w)x\(h).rgb"), "\(w)x\(h)")
        }
    }

    /// crop keeps the middle of a wide picture at the frame's aspect; fit letterboxes with the
    /// edge pixels; the right size is left alone.
    func testResizeRules() {
        // 8×2: left half red, right half blue, a green column pair in the middle.
        var pixels: [UInt8] = []
        for _ in 0..<2 { for x in 0..<8 { pixels += x == 3 || x == 4 ? [0, 255, 0] : x < 4 ? [255, 0, 0] : [0, 0, 255] } }
        let wide = RGBImage(width: 8, height: 2, pixels: pixels)
        XCTAssertEqual(wide.resized(width: 8, height: 2, mode: .crop), wide)
        let cropped = wide.resized(width: 2, height: 2, mode: .crop)
        XCTAssertEqual(Array(cropped.pixels[0..<3]), [0, 255, 0], "crop keeps the centre")
        let fitted = wide.resized(width: 8, height: 8, mode: .fit)
        XCTAssertEqual(fitted.width, 8)
        XCTAssertEqual(fitted.height, 8)
        // Rows 0…2 continue the picture's top row; the picture sits in rows 3…4.
        XCTAssertEqual(Array(fitted.pixels[0..<3]), [255, 0, 0])
        XCTAssertEqual(Array(fitted.pixels[(7 * 8 + 7) * 3..<(7 * 8 + 8) * 3]), [0, 0, 255])
        let stretched = wide.resized(width: 4, height: 4, mode: .stretch)
        XCTAssertEqual(stretched.width, 4)
        XCTAssertEqual(stretched.height, 4)
        XCTAssertGreaterThan(stretched.pixels[0], 200, "stretch keeps the whole width: red at the left")
    }

    // MARK: access

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("inputs-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func access(owner: UInt32 = getuid()) -> InputFileAccess {
        InputFileAccess(owner: owner, maxBytes: 1 << 20, maxPixels: 4096 * 4096)
    }

    func refusal(_ path: String, owner: UInt32 = getuid()) -> String {
        do {
            _ = try access(owner: owner).picture(path)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func testRefusals() throws {
        let png = try Self.bytes("init-32x32.png")
        let good = dir.appendingPathComponent("good.png").path
        try Data(png).write(to: URL(fileURLWithPath: good))
        XCTAssertEqual(try access().picture(good).width, 32)

        let link = dir.appendingPathComponent("link.png").path
        XCTAssertEqual(symlink(good, link), 0)
        XCTAssertEqual(refusal(link), "\(link): is a symbolic link; name the file itself")

        let linkedDir = dir.appendingPathComponent("linked").path
        XCTAssertEqual(symlink(dir.path, linkedDir), 0)
        XCTAssertEqual(refusal(linkedDir + "/good.png"), "\(linkedDir)/good.png: \(linkedDir) is a symbolic link; name the real path")

        let fifo = dir.appendingPathComponent("pipe.png").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertEqual(refusal(fifo), "\(fifo): is a FIFO (named pipe), not a regular file")
        XCTAssertEqual(refusal("/dev/zero"), "/dev/zero: is a character device, not a regular file")

        // A PNG header claiming 20000×20000: refused from the header, never decoded.
        var huge = Array(png.prefix(33))
        for (offset, value) in [(16, 20000), (20, 20000)] {
            for k in 0..<4 { huge[offset + k] = UInt8((value >> (8 * (3 - k))) & 0xFF) }
        }
        let hugePath = dir.appendingPathComponent("huge.png").path
        try Data(huge).write(to: URL(fileURLWithPath: hugePath))
        XCTAssertEqual(refusal(hugePath), "\(hugePath): is 20000×20000 pixels, more than max_input_pixels (16777216)")

        let jpeg = try Self.truncatedJPEG()
        let corrupt = dir.appendingPathComponent("corrupt.jpg").path
        try Data(jpeg).write(to: URL(fileURLWithPath: corrupt))
        XCTAssertTrue(refusal(corrupt).hasPrefix("\(corrupt): corrupt picture: JPEG: "), refusal(corrupt))

        let text = dir.appendingPathComponent("notes.png").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertEqual(refusal(text), "\(text): is not a PNG or JPEG file")
        XCTAssertEqual(refusal(dir.path + "/missing.png"), "\(dir.path)/missing.png: does not exist")
        XCTAssertEqual(refusal("relative.png"), "relative.png: is not an absolute path")
        XCTAssertEqual(refusal(dir.path + "/../x.png"), "\(dir.path)/../x.png: contains '..'; name the file by its own path")

        let big = InputFileAccess(owner: getuid(), maxBytes: 100, maxPixels: 1 << 20)
        XCTAssertThrowsError(try big.picture(good)) {
            XCTAssertEqual("\($0)", "\(good): is \(png.count) bytes, more than max_input_bytes (100)")
        }
    }

    /// Another user's private file, or a file in a folder the owner cannot enter, is refused
    /// for a job of a user who could not read it; world-readable is fine. Needs root (chown).
    func testOwnerMustBeAbleToReadIt() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to give files to other users") }
        let png = try Self.bytes("init-32x32.png")
        let secret = dir.appendingPathComponent("secret.png").path
        try Data(png).write(to: URL(fileURLWithPath: secret))
        XCTAssertEqual(chown(secret, 4343, 4343), 0)
        XCTAssertEqual(chmod(secret, 0o600), 0)
        XCTAssertEqual(refusal(secret, owner: 4242),
                       "\(secret): the job's owner (uid 4242) may not read it (owned by uid 4343, mode 600)")
        XCTAssertEqual(try access(owner: 4343).picture(secret).width, 32, "its own owner may")
        XCTAssertEqual(try access(owner: 0).picture(secret).width, 32, "root may")
        XCTAssertEqual(chmod(secret, 0o604), 0)
        XCTAssertEqual(try access(owner: 4242).picture(secret).width, 32, "world-readable")

        let closed = dir.appendingPathComponent("closed")
        try FileManager.default.createDirectory(at: closed, withIntermediateDirectories: false)
        let inside = closed.appendingPathComponent("pic.png").path
        try Data(png).write(to: URL(fileURLWithPath: inside))
        chmod(inside, 0o644)
        XCTAssertEqual(chown(closed.path, 4343, 4343), 0)
        XCTAssertEqual(chmod(closed.path, 0o700), 0)
        XCTAssertEqual(refusal(inside, owner: 4242), "\(inside): its owner (uid 4242) may not enter the folder \(closed.path)")
        XCTAssertThrowsError(try access(owner: 4242).folderPictures(closed.path))
    }

    func testFolderListsPicturesInNameOrder() throws {
        let png = try Self.bytes("init-32x32.png")
        for name in ["b.png", "a.PNG", "c.jpeg", ".hidden.png", "notes.txt", "d.jpg"] {
            try Data(png).write(to: dir.appendingPathComponent(name))
        }
        XCTAssertEqual(try access().folderPictures(dir.path + "/").map { URL(fileURLWithPath: $0).lastPathComponent },
                       ["a.PNG", "b.png", "c.jpeg", "d.jpg"])
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        XCTAssertThrowsError(try access().folderPictures(empty.path)) {
            XCTAssertEqual("\($0)", "\(empty.path): holds no .png, .jpg or .jpeg file")
        }
    }

    func testJobFieldsAreCheckedAtParse() throws {
        let parser = JobFileParser()
        func error(_ text: String) -> String {
            do { _ = try parser.parse(bytes: Array(text.utf8), file: "j.yaml"); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\ninit_image: pic.png\n"),
                       "j.yaml:4:13: field 'init_image': \"pic.png\" is relative; the daemon needs an absolute path (it cannot know where the job was written)")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nstrength: 0.5\n"),
                       "j.yaml:4:11: field 'strength': applies to img2img and inpainting only; add init_image or init_images")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\ninit_image: /p.png\nsteps: 10\nstrength: 0.05\n"),
                       "j.yaml:6:11: field 'strength': strength 0.05 with 10 steps leaves no step to run; int(steps × strength) must be at least 1")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\ninit_image: /p.png\nresize: squash\n"),
                       "j.yaml:5:9: field 'resize': unknown value \"squash\"; valid: crop, fit, stretch")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\ninit_image: /p.png\ninit_images: /d/\n"),
                       "j.yaml:5:14: field 'init_images': give init_image (one picture) or init_images (a folder), not both")
        let spec = try XCTUnwrap(parser.parse(bytes: Array("prompt: x\nwidth: 32\nheight: 32\ninit_images: /d/\nstrength: 0.6\nresize: fit\n".utf8), file: "j.yaml").first)
        let source = try XCTUnwrap(spec.initImage)
        XCTAssertEqual([source.path, "\(source.isFolder)", "\(source.line):\(source.column)"], ["/d/", "true", "4:14"])
        XCTAssertNil(source.format)
        XCTAssertEqual(spec.strength, 0.6)
        XCTAssertEqual(spec.resize, .fit)
        XCTAssertEqual(spec.request(image: 0).strength, 0.6)
        // The journal keeps them.
        let again = try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec))
        XCTAssertEqual(again, spec)
    }

    func testMaskFieldsLumaAndBlur() throws {
        let parser = JobFileParser()
        func error(_ text: String) -> String {
            do { _ = try parser.parse(bytes: Array(text.utf8), file: "j.yaml"); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nmask: /m.png\n"),
                       "j.yaml:4:7: field 'mask': applies to img2img and inpainting only; add init_image or init_images")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\ninit_image: /p.png\nmask_blur: 4\n"),
                       "j.yaml:5:12: field 'mask_blur': applies to inpainting only; add mask")
        let spec = try XCTUnwrap(parser.parse(bytes: Array("prompt: x\nwidth: 32\nheight: 32\ninit_image: /p.png\nmask: /m.png\nmask_blur: 4\n".utf8), file: "j.yaml").first)
        XCTAssertEqual(spec.mask?.path, "/m.png")
        XCTAssertEqual(spec.maskBlur, 4)
        XCTAssertEqual(spec.request(image: 0).strength, 1, "inpainting defaults to diffusers' strength 1.0")
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec)), spec)

        // Pillow's convert("L"): gray stays, colours weigh 0.299/0.587/0.114.
        let image = RGBImage(width: 3, height: 1, pixels: [77, 77, 77, 255, 0, 0, 0, 0, 255])
        XCTAssertEqual(image.luma, [77, 76, 29])
        // The blur spreads an edge symmetrically and keeps flat areas.
        var mask = [UInt8](repeating: 0, count: 16 * 4)
        for y in 0..<4 { for x in 8..<16 { mask[y * 16 + x] = 255 } }
        let blurred = MaskBlur.blurred(mask, width: 16, height: 4, sigma: 2)
        XCTAssertEqual(blurred[0], 0)
        XCTAssertEqual(blurred[15], 255)
        XCTAssertTrue(blurred[7] > 0 && blurred[7] < 128 && blurred[8] > 128 && blurred[8] < 255, "\(Array(blurred[0..<16]))")
        XCTAssertEqual(Int(blurred[7]) + Int(blurred[8]), 255, "symmetric about the edge")
        XCTAssertEqual(MaskBlur.blurred(mask, width: 16, height: 4, sigma: 0), mask)
    }

    func testHiresFields() throws {
        let parser = JobFileParser()
        func error(_ text: String) -> String {
            do { _ = try parser.parse(bytes: Array(text.utf8), file: "j.yaml"); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("prompt: x\nwidth: 512\nheight: 512\nupscale: 2.5\n"),
                       "j.yaml:4:10: field 'upscale': 512x512 upscaled is 1280x1280, over the limits of 1024x1024")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nupscale: 1\n"),
                       "j.yaml:4:10: field 'upscale': must be above 1 (leave it out for one pass)")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nupscale_strength: 0.5\n"),
                       "j.yaml:4:19: field 'upscale_strength': applies to the hires fix only; add upscale")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nupscale: 2\ninit_image: /p.png\n"),
                       "j.yaml:4:10: field 'upscale': the hires fix is for text-to-image; leave out init_image/init_images or upscale")
        XCTAssertEqual(error("prompt: x\nwidth: 32\nheight: 32\nsteps: 4\nupscale: 2\nupscale_strength: 0.1\n"),
                       "j.yaml:6:19: field 'upscale_strength': upscale_strength 0.1 with 4 steps leaves no step for the second pass")
        let spec = try XCTUnwrap(parser.parse(bytes: Array("prompt: x\nwidth: 40\nheight: 32\nupscale: 1.5\n".utf8), file: "j.yaml").first)
        XCTAssertEqual(spec.request(image: 0).hires, HiresFix(scale: 1.5, strength: 0.7), "AUTOMATIC1111's default strength 0.7")
        let target = try XCTUnwrap(spec.hires).targetSize(width: 40, height: 32)
        XCTAssertTrue(target == (56, 48), "int(side × scale) // 8 × 8")
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec)), spec)
    }
}
