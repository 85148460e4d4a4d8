import XCTest
import Foundation
import ControlProtocol
import Daemon

/// Encode/decode of protocol lines: shapes, dates, unknown fields, unknown codes.
final class ProtocolCodingTests: XCTestCase {
    static let sample = JobInfo(
        id: "j-000042", name: "cat", state: .running, priority: 75,
        owner: JobInfo.Owner(uid: 1000, user: "alice"), model: "shapes",
        submitted: Date(timeIntervalSince1970: 1_700_000_000), started: Date(timeIntervalSince1970: 1_700_000_010),
        prompt: "a red circle", steps: 20, count: 2,
        progress: JobInfo.Progress(step: 5, total: 20, image: 1, count: 2), attempts: 1)

    func testJobRecordRoundTripsWithISODatesAndSnakeKeys() throws {
        let line = try WireCodec.encodeLine(ServerMessage(type: .item, job: Self.sample))
        XCTAssertEqual(line.last, 0x0A, "a line ends with a newline")
        XCTAssertFalse(line.dropLast().contains(0x0A), "exactly one newline per line")
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertTrue(text.contains("\"submitted\":\"2023-11-14T22:13:20.000Z\""), text)
        XCTAssertTrue(text.contains("\"state\":\"running\""), text)
        XCTAssertTrue(text.contains("\"owner\":{\"uid\":1000,\"user\":\"alice\"}"), text)
        let back = try WireCodec.decode(ServerMessage.self, from: line.dropLast())
        XCTAssertEqual(back.job, Self.sample)
        XCTAssertEqual(back.knownType, .item)
        XCTAssertEqual(Self.sample.progress?.completedSteps, 25)
        XCTAssertEqual(Self.sample.remainingSteps, 15)
    }

    func testDatesKeepMillisecondsAndPlainISODatesAreAccepted() throws {
        let event = ControlEvent(kind: .step, at: Date(timeIntervalSince1970: 1_700_000_000.25), id: "j")
        let back = try WireCodec.decode(ControlEvent.self, from: try WireCodec.encodeLine(event).dropLast())
        XCTAssertEqual(back.at.timeIntervalSince1970, 1_700_000_000.25, accuracy: 1e-6)
        let plain = try WireCodec.decode(ControlEvent.self, from: Data(#"{"kind":"step","at":"2023-11-14T22:13:20Z"}"#.utf8))
        XCTAssertEqual(plain.at.timeIntervalSince1970, 1_700_000_000, accuracy: 1e-6)
        XCTAssertThrowsError(try WireCodec.decode(ControlEvent.self, from: Data(#"{"kind":"step","at":"yesterday"}"#.utf8)))
    }

    func testUnknownFieldsAreIgnoredAndUnknownStatusIsUnavailable() throws {
        let line = Data(#"{"type":"response","status":"teapot","message":"m","future":{"x":[1,2]},"job":null}"#.utf8)
        let message = try WireCodec.decode(ServerMessage.self, from: line)
        XCTAssertEqual(message.status, .unavailable)
        XCTAssertEqual(message.message, "m")
        XCTAssertNil(message.job)
        let typeless = try WireCodec.decode(ServerMessage.self, from: Data(#"{"type":"gossip","count":3}"#.utf8))
        XCTAssertNil(typeless.knownType)
        XCTAssertEqual(typeless.count, 3)
    }

    func testStatusCodesHaveTheirWireNames() throws {
        XCTAssertEqual(StatusCode.allCases.map(\.rawValue),
                       ["ok", "bad_request", "forbidden", "not_found", "conflict", "unavailable"])
        let line = try WireCodec.encodeLine(ServerMessage.failure(.notFound(job: "x")))
        XCTAssertTrue(String(decoding: line, as: UTF8.self).contains("\"status\":\"not_found\""))
    }

    func testRequestKeepsUnknownVerbAsText() throws {
        let request = try WireCodec.decode(Request.self, from: Data(#"{"type":"request","verb":"teleport","id":"a"}"#.utf8))
        XCTAssertEqual(request.verb, "teleport")
        XCTAssertNil(Verb(rawValue: request.verb))
        let encoded = String(decoding: try WireCodec.encodeLine(Request(verb: .priority, id: "j1", priority: 90)), as: UTF8.self)
        XCTAssertEqual(encoded, #"{"id":"j1","priority":90,"type":"request","verb":"priority"}"# + "\n")
    }

    func testMalformedLinesThrowInvalidJSONNamingTheField() {
        XCTAssertThrowsError(try WireCodec.decode(Request.self, from: Data(#"{"type":"request","verb":7}"#.utf8))) { error in
            guard case WireError.invalidJSON(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("verb"), detail)
        }
        XCTAssertThrowsError(try WireCodec.decode(Request.self, from: Data([0xFF, 0xFE]))) { error in
            XCTAssertEqual(error as? WireError, .notUTF8)
        }
        XCTAssertThrowsError(try WireCodec.decode(Request.self, from: Data("{".utf8)))
    }

    func testEventKindsAndVerbAccess() throws {
        let event = ControlEvent(kind: .step, at: Date(timeIntervalSince1970: 0), id: "j1",
                                 progress: JobInfo.Progress(step: 3, total: 10, image: 0, count: 1))
        let back = try WireCodec.decode(ControlEvent.self, from: try WireCodec.encodeLine(event).dropLast())
        XCTAssertEqual(back, event)
        XCTAssertEqual(back.knownKind, .step)
        XCTAssertEqual(Verb.pause.access, .queueWide)
        XCTAssertEqual(Verb.cancel.access, .job)
        XCTAssertEqual(Verb.watch.access, .read)
        XCTAssertEqual(Verb.allCases.filter(\.isList), [.queue, .history, .models, .intake])
        XCTAssertEqual(Verb.intake.access, .read)
    }

    /// A result.json written before the parameters were recorded still reads; written again,
    /// it keeps every key it had, at the top level, and adds none it did not have.
    func testOldResultFilesStillDecodeAndKeepTheirKeys() throws {
        let old = """
        {"attempts":1,"document":1,"finished":"2026-01-01T00:00:01.000Z","id":"000001",
         "images":[{"file":"image-001.png","seconds":1.5,"seed":7}],"model":"main","owner":0,
         "prompt":"a cat","seed":7,"source":"cat.yaml","status":"done","submitted":"2026-01-01T00:00:00.000Z"}
        """
        let result = try JSONDecoder().decode(JobResult.self, from: Data(old.utf8))
        XCTAssertEqual(result.prompt, "a cat")
        XCTAssertEqual(result.model, "main")
        XCTAssertEqual(result.seed, 7)
        XCTAssertNil(result.width)
        XCTAssertNil(result.parameters.sampler)
        XCTAssertNil(result.loras)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let again = try XCTUnwrap(try JSONSerialization.jsonObject(with: try encoder.encode(result)) as? NSDictionary)
        let original = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(old.utf8)) as? NSDictionary)
        XCTAssertEqual(again, original)
        XCTAssertEqual(try JSONDecoder().decode(JobResult.self, from: try encoder.encode(result)), result)
    }
}
