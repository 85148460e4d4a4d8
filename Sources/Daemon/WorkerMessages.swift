import Foundation
import Models
import Pipeline

/// The protocol between the daemon and its worker process (`diffusiond --worker FD`):
/// newline-delimited JSON over a socketpair, one ``WorkerOrder`` or ``WorkerReport`` per line.
/// The daemon sends one `run` at a time and may follow it with `cancel` and `stop`; the
/// worker answers `hello` once when it starts, then `loaded`, `progress` and finally
/// `finished` for each run. Both ends are the same binary, so there is no versioning.
enum WorkerWire {
    /// Longest line either side accepts (a job record carries its job file's text).
    static let maxLineBytes = 16 << 20
}

/// A message from the daemon to the worker; exactly one field is set.
struct WorkerOrder: Codable {
    /// Run this job (the worker is idle).
    var run: RunOrder?
    /// Stop this job (by id) between steps; it ends `cancelled`.
    var cancel: String?
    /// Stop the running job between steps for a shutdown; it ends `interrupted`.
    var stop: Bool?
}

/// Everything the worker needs for one job; it reads no config of its own.
struct RunOrder: Codable {
    var job: JobRecord
    /// The outbox root.
    var outbox: String
    /// The job's configured model, or nil when the config no longer names it (the job fails).
    var model: ModelOrder?
    /// Cores for the engine (the config's `threads`, resolved).
    var threads: Int
}

/// ``ModelReference`` on the wire.
struct ModelOrder: Codable {
    var path: String
    var prediction: String?
    var tokenizer: String?
    var tinyVAE: String?

    init(_ model: ModelReference) {
        path = model.path.path
        prediction = model.prediction?.rawValue
        tokenizer = model.tokenizer?.path
        tinyVAE = model.tinyVAE?.path
    }

    var reference: ModelReference {
        ModelReference(path: URL(fileURLWithPath: path), prediction: prediction.flatMap(CheckpointPrediction.init(rawValue:)),
                       tokenizer: tokenizer.map { URL(fileURLWithPath: $0) }, tinyVAE: tinyVAE.map { URL(fileURLWithPath: $0) })
    }
}

/// A message from the worker to the daemon; exactly one field is set.
struct WorkerReport: Codable {
    /// Sent once at start: the worker's pid, ready for orders.
    var hello: Int32?
    /// The model now loaded (its config name).
    var loaded: String?
    var progress: JobProgress?
    /// The run's outcome; the worker is idle again.
    var finished: RunReport?
}


