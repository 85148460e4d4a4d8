/// `grid:` of a job (`man 5 diffusion-job`, GRIDS): one or two axes, each a job field with a
/// list of values; the job makes one image per cell (every x value in every y value) and a
/// labelled `grid.png` of them (`GridImage`).
public struct JobGrid: Codable, Equatable, Sendable {
    /// One axis: the field it varies and the values as written (also its labels).
    public struct Axis: Codable, Equatable, Sendable {
        public var field: String
        public var values: [String]
        public init(field: String, values: [String]) {
            self.field = field
            self.values = values
        }
    }

    /// Columns (left to right); `nil`: one column.
    public var x: Axis?
    /// Rows (top to bottom); `nil`: one row.
    public var y: Axis?
    /// Every cell's job, validated like any job, row by row (y outer, x inner).
    public var cells: [JobSpec]

    public init(x: Axis?, y: Axis?, cells: [JobSpec]) {
        self.x = x
        self.y = y
        self.cells = cells
    }

    /// Cells per row.
    public var columns: Int { x?.values.count ?? 1 }

    /// Fields a grid may vary: the ones that change an image of the job's model.
    public static let fields = ["prompt", "negative_prompt", "width", "height", "steps", "sampler", "schedule", "guidance",
                                "seed", "rng", "decoder", "long_prompt", "guidance_cutoff", "eta", "strength", "resize",
                                "mask_blur", "upscale", "upscale_strength"]

    /// Labels over the columns (the x values) and before the rows (`field: value`).
    public var columnLabels: [String] { x?.values ?? [] }
    public var rowLabels: [String] { y.map { axis in axis.values.map { "\(axis.field): \($0)" } } ?? [] }
}

extension JobSpec {
    /// The images this job makes, each with the spec that makes it and its request: a grid's
    /// cells (image 1 of each), else `count` images with seeds `seed, seed+1, …`.
    public var imagePlan: [(spec: JobSpec, request: GenerationRequestPlan)] {
        if let grid {
            return grid.cells.map { ($0, GenerationRequestPlan(spec: $0, index: 0)) }
        }
        return (0..<count).map { (self, GenerationRequestPlan(spec: self, index: $0)) }
    }
}

extension JobSpec {
    /// How many images the job makes: a grid's cells, else `count` (``imagePlan``'s length).
    public var imageCount: Int { grid?.cells.count ?? count }

    /// The seed image `index` of ``imagePlan`` is made with.
    public func seed(ofImage index: Int) -> UInt64 {
        let planned = imagePlan[index].request
        return planned.spec.request(image: planned.index).seed
    }
}

/// Which image of which spec: `spec.request(image: index)`.
public struct GenerationRequestPlan: Sendable {
    public var spec: JobSpec
    public var index: Int
}
