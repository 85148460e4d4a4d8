import Pipeline

/// The labelled grid of a grid job (`grid:`): the cells' images in rows (y values, top to
/// bottom) and columns (x values, left to right) on white, each column headed by its x value
/// and each row led by its y value, in the project's own pixel font (`BitmapFont`), black.
/// Cells of different sizes are centred in the largest. Labels that do not fit over their
/// column are cut.
public enum GridImage {
    /// Empty pixels around a label.
    static let padding = 4

    /// Glyph scale for cells of `width` × `height`: 1 up to 191 pixels, 2 from 192, and so on.
    static func scale(width: Int, height: Int) -> Int { max(1, min(width, height) / 192 + 1) }

    /// The grid of `cells` (row-major, `columns` per row) with `columnLabels` over the columns
    /// and `rowLabels` before the rows (either may be empty: no header row or no label column).
    public static func compose(_ cells: [RGBImage], columns: Int, columnLabels: [String], rowLabels: [String]) -> RGBImage {
        let cellWidth = cells.map(\.width).max() ?? 1
        let cellHeight = cells.map(\.height).max() ?? 1
        let rows = (cells.count + max(1, columns) - 1) / max(1, columns)
        let s = scale(width: cellWidth, height: cellHeight)
        let lineHeight = BitmapFont.glyphHeight * s + 2 * padding
        let top = columnLabels.isEmpty ? 0 : lineHeight
        let left = rowLabels.isEmpty ? 0 : (rowLabels.map { BitmapFont.width($0, scale: s) }.max() ?? 0) + 2 * padding
        let width = left + columns * cellWidth, height = top + rows * cellHeight
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for (k, cell) in cells.enumerated() {
            let x0 = left + (k % columns) * cellWidth + (cellWidth - cell.width) / 2
            let y0 = top + (k / columns) * cellHeight + (cellHeight - cell.height) / 2
            for y in 0..<cell.height {
                let source = y * cell.width * 3, target = ((y0 + y) * width + x0) * 3
                pixels.replaceSubrange(target..<(target + cell.width * 3), with: cell.pixels[source..<(source + cell.width * 3)])
            }
        }
        func draw(_ text: String, x: Int, y: Int, maxX: Int) {
            var penX = x
            for character in text {
                let rows = BitmapFont.glyph(character)
                guard penX + BitmapFont.glyphWidth * s <= maxX else { break }
                for (gy, row) in rows.enumerated() {
                    for (gx, ink) in row.enumerated() where ink == "#" {
                        for dy in 0..<s {
                            for dx in 0..<s {
                                let px = penX + gx * s + dx, py = y + gy * s + dy
                                guard px >= 0, px < width, py >= 0, py < height else { continue }
                                let at = (py * width + px) * 3
                                pixels[at] = 0
                                pixels[at + 1] = 0
                                pixels[at + 2] = 0
                            }
                        }
                    }
                }
                penX += BitmapFont.advance * s
            }
        }
        for (c, label) in columnLabels.prefix(columns).enumerated() {
            let columnLeft = left + c * cellWidth
            let textWidth = min(BitmapFont.width(label, scale: s), cellWidth - 2)
            draw(label, x: columnLeft + max(1, (cellWidth - textWidth) / 2), y: padding, maxX: columnLeft + cellWidth - 1)
        }
        for (r, label) in rowLabels.prefix(rows).enumerated() {
            draw(label, x: padding, y: top + r * cellHeight + (cellHeight - BitmapFont.glyphHeight * s) / 2, maxX: left)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
