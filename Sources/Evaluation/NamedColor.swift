/// The eight named colours of the built-in `shapes` model, with the sRGB values the
/// training tool renders them with (tools/train/shapes_data.py, `COLORS`, same order).
public enum NamedColor: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case red, green, blue, yellow, purple, orange, white, black

    /// The word captions use.
    public var name: String {
        switch self {
        case .red: return "red"
        case .green: return "green"
        case .blue: return "blue"
        case .yellow: return "yellow"
        case .purple: return "purple"
        case .orange: return "orange"
        case .white: return "white"
        case .black: return "black"
        }
    }

    public var description: String { name }

    /// Rendered sRGB value.
    public var rgb: (r: Int, g: Int, b: Int) {
        switch self {
        case .red: return (220, 30, 40)
        case .green: return (40, 170, 60)
        case .blue: return (40, 80, 220)
        case .yellow: return (245, 215, 40)
        case .purple: return (140, 50, 170)
        case .orange: return (245, 140, 30)
        case .white: return (245, 245, 245)
        case .black: return (20, 20, 20)
        }
    }

    /// The colour named `word`, if any.
    public init?(word: String) {
        guard let c = NamedColor.allCases.first(where: { $0.name == word }) else { return nil }
        self = c
    }

    /// The named colour nearest to an sRGB value (squared Euclidean distance in sRGB;
    /// ties go to the earlier colour of the table).
    public static func nearest(r: UInt8, g: UInt8, b: UInt8) -> NamedColor {
        var best = NamedColor.red
        var bestDistance = Int.max
        for c in NamedColor.allCases {
            let v = c.rgb
            let dr = Int(r) - v.r, dg = Int(g) - v.g, db = Int(b) - v.b
            let d = dr * dr + dg * dg + db * db
            if d < bestDistance {
                bestDistance = d
                best = c
            }
        }
        return best
    }
}

/// The three shapes of the built-in model.
public enum ShapeKind: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case circle, square, triangle

    public var name: String {
        switch self {
        case .circle: return "circle"
        case .square: return "square"
        case .triangle: return "triangle"
        }
    }

    public var description: String { name }

    public init?(word: String) {
        guard let s = ShapeKind.allCases.first(where: { $0.name == word }) else { return nil }
        self = s
    }
}

/// A cell of the 3x3 position grid (row 0 = top, column 0 = left).
public struct GridPosition: Hashable, Sendable, Codable, CustomStringConvertible {
    public var row: Int
    public var column: Int

    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }

    /// Row-major index 0...8, the order of shapes_data.py's `POSITIONS`.
    public init(index: Int) {
        self.init(row: index / 3, column: index % 3)
    }

    public var index: Int { row * 3 + column }

    /// Caption words: "top left", "top", …, "center", …, "bottom right".
    public var name: String {
        let vertical = ["top", "", "bottom"][row]
        let horizontal = ["left", "", "right"][column]
        if vertical.isEmpty && horizontal.isEmpty { return "center" }
        if vertical.isEmpty { return horizontal }
        if horizontal.isEmpty { return vertical }
        return vertical + " " + horizontal
    }

    public var description: String { name }
}
