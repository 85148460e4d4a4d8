import Foundation

/// Errors while reading a model folder's JSON files (`model_index.json`, `config.json`,
/// `tokenizer_config.json`, `vocab.json`, `vae/latent_rgb.json`). Each names the file and the field.
public enum ModelConfigError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    case invalidJSON(file: String, reason: String)
    case missingField(file: String, field: String)
    case wrongType(file: String, field: String, expected: String)
    case invalidValue(file: String, field: String, reason: String)
    case unsupported(file: String, field: String, value: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason): return "\(file): cannot read: \(reason)"
        case let .invalidJSON(file, reason): return "\(file): invalid JSON: \(reason)"
        case let .missingField(file, field): return "\(file): missing required field '\(field)'"
        case let .wrongType(file, field, expected): return "\(file): field '\(field)' must be \(expected)"
        case let .invalidValue(file, field, reason): return "\(file): field '\(field)': \(reason)"
        case let .unsupported(file, field, value):
            return "\(file): field '\(field)' = \(value) is not supported by this engine"
        }
    }
}

/// A JSON object read from a config file, with typed accessors whose errors name the
/// file and field. Absent and `null` fields are treated alike (diffusers writes `null`
/// for unset options).
struct ConfigJSON {
    let file: String
    let object: [String: Any]

    init(file: String, object: [String: Any]) {
        self.file = file
        self.object = object
    }

    /// Reads and parses `url`.
    init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelConfigError.cannotRead(file: url.path, reason: error.localizedDescription)
        }
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data, options: []) } catch {
            throw ModelConfigError.invalidJSON(file: url.path, reason: error.localizedDescription)
        }
        guard let dict = any as? [String: Any] else {
            throw ModelConfigError.invalidJSON(file: url.path, reason: "top level is not an object")
        }
        self.init(file: url.path, object: dict)
    }

    func has(_ key: String) -> Bool {
        guard let v = object[key] else { return false }
        return !(v is NSNull)
    }

    private func value(_ key: String) -> Any? { has(key) ? object[key] : nil }

    private static func asInt(_ v: Any) -> Int? {
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 1e15 else { return nil }
            return n.intValue
        }
        return nil
    }

    func int(_ key: String) throws -> Int {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard !(v is String), let i = ConfigJSON.asInt(v) else {
            throw ModelConfigError.wrongType(file: file, field: key, expected: "an integer")
        }
        return i
    }

    func int(_ key: String, default d: Int) throws -> Int { has(key) ? try int(key) : d }

    func positiveInt(_ key: String, default d: Int? = nil) throws -> Int {
        let v: Int
        if let d, !has(key) { v = d } else { v = try int(key) }
        guard v > 0 else { throw ModelConfigError.invalidValue(file: file, field: key, reason: "must be positive, got \(v)") }
        return v
    }

    func double(_ key: String) throws -> Double {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard !(v is String), let n = v as? NSNumber else {
            throw ModelConfigError.wrongType(file: file, field: key, expected: "a number")
        }
        return n.doubleValue
    }

    func double(_ key: String, default d: Double) throws -> Double { has(key) ? try double(key) : d }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key) else { return d }
        guard let b = v as? Bool else { throw ModelConfigError.wrongType(file: file, field: key, expected: "true or false") }
        return b
    }

    func string(_ key: String) throws -> String {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard let s = v as? String else { throw ModelConfigError.wrongType(file: file, field: key, expected: "a string") }
        return s
    }

    func string(_ key: String, default d: String) throws -> String { has(key) ? try string(key) : d }

    func optionalString(_ key: String) throws -> String? { has(key) ? try string(key) : nil }

    func strings(_ key: String) throws -> [String] {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard let a = v as? [Any] else { throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of strings") }
        return try a.map {
            guard let s = $0 as? String else { throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of strings") }
            return s
        }
    }

    func ints(_ key: String) throws -> [Int] {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard let a = v as? [Any] else { throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of integers") }
        return try a.map {
            guard !($0 is String), let i = ConfigJSON.asInt($0) else {
                throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of integers")
            }
            return i
        }
    }

    /// `v` as a list of `count` finite numbers within ±1e6, else nil.
    private static func finiteNumbers(_ v: Any, count: Int) -> [Double]? {
        guard let items = v as? [Any], items.count == count else { return nil }
        var numbers: [Double] = []
        for item in items {
            guard !(item is String), let n = item as? NSNumber, n.doubleValue.isFinite, abs(n.doubleValue) <= 1e6 else { return nil }
            numbers.append(n.doubleValue)
        }
        return numbers
    }

    /// A list of `count` finite numbers (within ±1e6).
    func numbers(_ key: String, count: Int) throws -> [Double] {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard let numbers = Self.finiteNumbers(v, count: count) else {
            throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of \(count) finite numbers")
        }
        return numbers
    }

    /// A list of rows of `width` finite numbers (within ±1e6), e.g. `[[0.1, 0.2, 0.3], …]`.
    func numberRows(_ key: String, width: Int) throws -> [[Double]] {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        guard let rows = v as? [Any] else {
            throw ModelConfigError.wrongType(file: file, field: key, expected: "a list of rows of \(width) numbers")
        }
        return try rows.enumerated().map { index, row in
            guard let numbers = Self.finiteNumbers(row, count: width) else {
                throw ModelConfigError.wrongType(file: file, field: "\(key)[\(index)]", expected: "a list of \(width) finite numbers")
            }
            return numbers
        }
    }

    /// A field that is either one integer (applied to every block) or a list of `count`.
    func intOrList(_ key: String, count: Int) throws -> [Int] {
        guard let v = value(key) else { throw ModelConfigError.missingField(file: file, field: key) }
        if v is [Any] {
            let list = try ints(key)
            guard list.count == count else {
                throw ModelConfigError.invalidValue(file: file, field: key, reason: "has \(list.count) entries, expected \(count) (one per block)")
            }
            return list
        }
        return Array(repeating: try int(key), count: count)
    }

    /// Throws `unsupported` when `key` is set to something other than null / `allowed`.
    func requireAbsentOr(_ key: String, _ allowed: [String] = []) throws {
        guard let v = value(key) else { return }
        if let s = v as? String, allowed.contains(s) { return }
        throw ModelConfigError.unsupported(file: file, field: key, value: "\(v)")
    }
}

/// Decodes one of the built-in configs (literals in this module, not user input): a failure
/// is a programming error in this module.
func builtInConfig<T>(_ make: () throws -> T) -> T {
    do { return try make() } catch { preconditionFailure("built-in config failed to decode: \(error)") }
}
