import Foundation
import Jobs
import Pipeline
import Sampling
import XCTest

/// Job files naming LoRAs: the `loras` field, AUTOMATIC1111's `<lora:name:weight>` prompt
/// tags, and every way a LoRA is refused at intake (with file, line and column).
final class LoRAJobTests: XCTestCase {
    var loraDir: URL!

    override func setUpWithError() throws {
        loraDir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-jobs-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: loraDir, withIntermediateDirectories: true)
        for name in ["lcm-sd15.safetensors", "style_v2.safetensors", "old.ckpt"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: loraDir.appendingPathComponent(name).path, contents: Data([0])))
        }
        try FileManager.default.createDirectory(at: loraDir.appendingPathComponent("folder.safetensors"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: loraDir)
    }

    func parser(loraDirectory: URL?) -> JobFileParser {
        JobFileParser(knownModels: ["tiny"], nativeSize: JobFileParserTests.nativeSizes, loraDirectory: loraDirectory)
    }

    func parse(_ text: String) throws -> JobSpec {
        let jobs = try parser(loraDirectory: loraDir).parse(bytes: Array(text.utf8), file: "job.yaml")
        return try XCTUnwrap(jobs.first)
    }

    func error(_ text: String, loraDirectory: URL?? = .none) -> String {
        let p = parser(loraDirectory: loraDirectory ?? loraDir)
        do {
            _ = try p.parse(bytes: Array(text.utf8), file: "job.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func url(_ name: String) -> URL { loraDir.appendingPathComponent(name + ".safetensors") }

    func testLorasFieldReadsNamesAndWeights() throws {
        let job = try parse("""
        prompt: a cat
        loras:
          - name: lcm-sd15
            weight: 0.8
          - {name: style_v2}

        """)
        XCTAssertEqual(job.loras, [LoRASelection(name: "lcm-sd15", file: url("lcm-sd15"), weight: 0.8),
                                   LoRASelection(name: "style_v2", file: url("style_v2"), weight: 1)])
        XCTAssertEqual(job.request(image: 0).loras, job.loras)
        XCTAssertEqual(job.request(image: 0).prompt, "a cat")
        // Recorded as the web UI records LoRAs: as prompt tags.
        XCTAssertEqual(job.recordedPrompt, "a cat <lora:lcm-sd15:0.8> <lora:style_v2:1>")
        let plain = try parse("prompt: x\nloras: [style_v2.safetensors]\n")
        XCTAssertEqual(plain.loras, [LoRASelection(name: "style_v2", file: url("style_v2"), weight: 1)])
        XCTAssertEqual(try parse("prompt: x\nloras: []\n").loras, [])
        XCTAssertEqual(try parse("prompt: x\nloras:\n").loras, [])
    }

    func testPromptTagsAreStrippedAndKeptForTheRecord() throws {
        let job = try parse("prompt: \"a <lora:lcm-sd15:0.8>cat, <lora:style_v2> at night\"\nnegative_prompt: \"<lora:style_v2:2> blurry\"\n")
        XCTAssertEqual(job.loras, [LoRASelection(name: "lcm-sd15", file: url("lcm-sd15"), weight: 0.8),
                                   LoRASelection(name: "style_v2", file: url("style_v2"), weight: 1)])
        let request = job.request(image: 0)
        // As AUTOMATIC1111's parse_prompt: the tags go, the text around them stays as written.
        XCTAssertEqual(request.prompt, "a cat,  at night")
        // Only the positive prompt's tags are read (as in the web UI); the negative prompt is text.
        XCTAssertEqual(request.negativePrompt, "<lora:style_v2:2> blurry")
        XCTAssertEqual(job.recordedPrompt, "a <lora:lcm-sd15:0.8>cat, <lora:style_v2> at night")
        XCTAssertEqual(try PromptLoRATags.tags(in: "<lora: lcm-sd15 : -0.25 >"), [.init(name: "lcm-sd15", weight: -0.25)])
        XCTAssertEqual(PromptLoRATags.stripped("a < b <lora:x> <:y> <lora:> c>"), "a < b  <:y> <lora:> c>")
    }

    func testFieldAndTagsCombineAndDuplicatesAreRefused() throws {
        let job = try parse("prompt: a <lora:style_v2:0.5> cat\nloras: [{name: lcm-sd15, weight: 1}]\n")
        XCTAssertEqual(job.loras.map(\.name), ["lcm-sd15", "style_v2"])
        XCTAssertEqual(job.recordedPrompt, "a <lora:style_v2:0.5> cat <lora:lcm-sd15:1>")
        XCTAssertEqual(error("prompt: a <lora:lcm-sd15:0.5> cat\nloras: [lcm-sd15]\n"),
                       "job.yaml:1:9: field 'prompt': LoRA \"lcm-sd15\" is given twice (first on line 2); give it once with the weight wanted")
    }

    func testNamesThatArePathsAreRefusedWithTheirPosition() {
        XCTAssertEqual(error("prompt: x\nloras:\n  - name: ../secret\n"),
                       "job.yaml:3:11: field 'loras.name': \"../secret\" is not a LoRA name; use 1 to 128 letters, digits, '.', '_', '-', not starting with '.', without '..' (a name in lora_dir, never a path)")
        XCTAssertTrue(error("prompt: x\nloras: [{name: sub/lcm-sd15}]\n").hasPrefix("job.yaml:2:16: field 'loras.name': \"sub/lcm-sd15\" is not a LoRA name"))
        XCTAssertTrue(error("prompt: x\nloras: [{name: a..b}]\n").contains("is not a LoRA name"))
        XCTAssertTrue(error("prompt: x\nloras: [.hidden]\n").hasPrefix("job.yaml:2:9: field 'loras.name': \".hidden\" is not a LoRA name"))
        XCTAssertTrue(error("prompt: a <lora:/etc/passwd:1> cat\n").hasPrefix("job.yaml:1:9: field 'prompt': \"/etc/passwd\" is not a LoRA name"),
                      error("prompt: a <lora:/etc/passwd:1> cat\n"))
    }

    func testMissingLoraDirMissingFileAndPicklesAreRefused() {
        XCTAssertEqual(error("prompt: x\nloras: [lcm-sd15]\n", loraDirectory: .some(nil)),
                       "job.yaml:2:9: field 'loras.name': LoRA \"lcm-sd15\": no lora_dir is configured, so jobs cannot use LoRAs (set lora_dir in the service config)")
        XCTAssertTrue(error("prompt: <lora:lcm-sd15>\n", loraDirectory: .some(nil)).contains("no lora_dir is configured"))
        XCTAssertEqual(error("prompt: x\nloras: [nope]\n"),
                       "job.yaml:2:9: field 'loras.name': no LoRA \"nope\" in lora_dir \(loraDir.path) (looked for nope.safetensors)")
        XCTAssertTrue(error("prompt: x\nloras: [folder]\n").contains("no LoRA \"folder\""), "a folder is not a LoRA file")
        XCTAssertTrue(error("prompt: x\nloras: [old.ckpt]\n").contains("only .safetensors LoRAs are read"))
        XCTAssertTrue(error("prompt: x\nloras: [x.pt]\n").contains("only .safetensors LoRAs are read"))
        XCTAssertEqual(error("prompt: x\nloras: [old]\n"),
                       "job.yaml:2:9: field 'loras.name': LoRA \"old\" is a .ckpt file; only .safetensors LoRAs are read (pickles can run code when loaded): convert it")
    }

    func testMalformedEntriesAndTags() {
        XCTAssertEqual(error("prompt: x\nloras: lcm-sd15\n"),
                       "job.yaml:2:8: field 'loras': expected a list of LoRAs, each {name: NAME, weight: NUMBER} or a plain name")
        XCTAssertTrue(error("prompt: x\nloras: [{name: lcm-sd15, strength: 1}]\n").contains("unknown key in a LoRA entry; valid: name, weight"))
        XCTAssertTrue(error("prompt: x\nloras: [{weight: 1}]\n").contains("field 'loras.name': required key is missing"))
        XCTAssertTrue(error("prompt: x\nloras: [{name: lcm-sd15, weight: 11}]\n").contains("field 'loras.weight'"))
        // Depth 4 is allowed since grids (grid → axis → field → list); the entry is still refused, by its field.
        XCTAssertEqual(error("prompt: x\nloras: [{name: [a]}]\n"), "job.yaml:2:16: field 'loras.name': expected a single value")
        XCTAssertTrue(error("prompt: x\ngrid: {x: {steps: [[2]]}}\n").contains("nesting deeper than 4 levels"))
        XCTAssertTrue(error("prompt: x\nloras: [[a]]\n").contains("field 'loras': expected a list of LoRAs"))
        XCTAssertTrue(error("prompt: a <lora:lcm-sd15:lots> cat\n").contains("the weight must be a number"))
        XCTAssertTrue(error("prompt: a <lora:lcm-sd15:1:0.5> cat\n").contains("separate text-encoder and UNet weights"))
        XCTAssertTrue(error("prompt: a <hypernet:lcm-sd15:1> cat\n").contains("only <lora:name> and <lora:name:weight> tags are supported"))
        XCTAssertTrue(error("prompt: x\nsteps: [1]\n").contains("field 'steps': expected a single value, found a list"))
    }

    func testParametersRecordLoraAndModelHashesAsTheWebUIDoes() throws {
        let job = try parse("prompt: a <lora:lcm-sd15:0.8> cat\nloras: [style_v2]\nseed: 5\nsteps: 4\nsampler: lcm\nguidance: 1\nwidth: 32\nheight: 32\n")
        let request = job.request(image: 0)
        let text = A1111Parameters.text(for: request, model: "tiny", prompt: job.recordedPrompt, modelHash: "0123456789",
                                        loraHashes: ["lcm-sd15": "aaaaaaaaaaaa", "style_v2": "bbbbbbbbbbbb"])
        XCTAssertEqual(text, """
        a <lora:lcm-sd15:0.8> cat <lora:style_v2:1>
        Steps: 4, Sampler: LCM, CFG scale: 1, Seed: 5, Size: 32x32, Model hash: 0123456789, Model: tiny, RNG: CPU, Lora hashes: "style_v2: bbbbbbbbbbbb, lcm-sd15: aaaaaaaaaaaa"
        """)
        // Without hashes, no hash fields (engines that do not know their files).
        XCTAssertFalse(A1111Parameters.text(for: request, model: "tiny").contains("hash"))
    }

    /// A spec journalled before LoRAs existed still decodes (as one without LoRAs), and one
    /// with LoRAs round-trips.
    func testSpecsJournalledWithoutLorasStillDecode() throws {
        let job = try parse("prompt: a <lora:lcm-sd15:0.8> cat\n")
        let data = try JSONEncoder().encode(job)
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: data), job)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["loras"] = nil
        let old = try JSONDecoder().decode(JobSpec.self, from: try JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(old.loras, [])
        XCTAssertEqual(old.prompt, job.prompt)
    }

    func testServiceConfigReadsLoraDir() throws {
        let base = URL(fileURLWithPath: "/srv/diffusiond")
        let config = try ServiceConfig.parse(bytes: Array("lora_dir: loras\n".utf8), file: "c.yaml", base: base)
        XCTAssertEqual(config.loraDirectory, base.appendingPathComponent("loras"))
        XCTAssertEqual(config.jobParser.loraDirectory, base.appendingPathComponent("loras"))
        XCTAssertNil(try ServiceConfig.parse(bytes: Array("threads: 1\n".utf8), file: "c.yaml", base: base).loraDirectory)
    }
}
