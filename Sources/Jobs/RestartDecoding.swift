import ControlProtocol
import Sampling

/// Reading of the `restart` value, `[steps, times, sigma_min, sigma_max]` (ComfyUI's
/// restart-sampling segment order), shared by job files and the config's `defaults:`.
extension ScalarDecoder {
    /// A restart segment from its four list items; `listMark` is where the list begins.
    func restart(_ items: [(text: String, plain: Bool, mark: SourceMark)], field: String,
                 listMark: SourceMark) throws -> RestartSegment {
        guard items.count == 4 else {
            throw error(field, listMark, "expected 4 numbers [steps, times, sigma_min, sigma_max], got \(items.count)")
        }
        let steps = try integer(items[0].text, plain: items[0].plain, field: "\(field)[0] (steps)", mark: items[0].mark,
                                range: RestartSegment.stepsRange)
        let times = try integer(items[1].text, plain: items[1].plain, field: "\(field)[1] (times)", mark: items[1].mark,
                                range: RestartSegment.timesRange)
        let low = try number(items[2].text, plain: items[2].plain, field: "\(field)[2] (sigma_min)", mark: items[2].mark,
                             range: RestartSegment.sigmaRange)
        let high = try number(items[3].text, plain: items[3].plain, field: "\(field)[3] (sigma_max)", mark: items[3].mark,
                              range: RestartSegment.sigmaRange)
        guard high > low else { throw error("\(field)[3] (sigma_max)", items[3].mark, "must be above sigma_min (\(items[2].text))") }
        return RestartSegment(steps: steps, times: times, sigmaMin: low, sigmaMax: high)
    }
}
