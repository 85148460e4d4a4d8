import Foundation
import Jobs

/// `diffusiond.yaml`: errors carry a position inside the file; a config that parses has a
/// default model among its models (when it has any) and sane limits.
enum FuzzServiceConfig {
    static func run(_ bytes: [UInt8]) {
        do {
            let config = try ServiceConfig.parse(bytes: bytes, file: "fuzz.yaml", base: URL(fileURLWithPath: "/nonexistent/fuzz"))
            if let model = config.defaultModel, !config.models.isEmpty {
                FuzzInvariant.check(config.models[model] != nil, "default model \(model) is not configured")
            }
        } catch let error as SourceError {
            FuzzSourcePosition.check(error, in: bytes)
        } catch {}
    }
}
