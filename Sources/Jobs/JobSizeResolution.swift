extension JobFileParser {
    /// Fills in the `width` / `height` a job leaves out, each on its own as diffusers does
    /// (`height = height or unet.config.sample_size * vae_scale_factor`): the config's
    /// `defaults:` value if set, else the native size of the job's model. A resolved value is
    /// checked like a given one (8 … the limit, a multiple of 8, and of the VAE factor when
    /// the model was read); an error names the field and points at the job's first line.
    func resolveSize(_ spec: inout JobSpec, given: [String: SourceMark], defaults: JobDefaults, decoder d: ScalarDecoder,
                     mappingMark: SourceMark) throws {
        var native: NativeImageSize?
        func readNative(_ field: String) throws -> NativeImageSize {
            if let native { return native }
            guard let lookup = nativeSize else {
                throw d.error(field, mappingMark, "not given, and neither the config's defaults nor a model supply it; set \(field)")
            }
            do {
                let size = try lookup(spec.model)
                native = size
                return size
            } catch {
                throw d.error(field, mappingMark, "not given and not in the config's defaults, and the model's native size cannot be read: \(error); set \(field)")
            }
        }
        for field in ["width", "height"] where given[field] == nil {
            let isWidth = field == "width"
            let value: Int
            let origin: String
            if let configured = isWidth ? defaults.width : defaults.height {
                value = configured
                origin = "the config's defaults.\(field) \(configured)"
            } else {
                let size = try readNative(field)
                value = isWidth ? size.width : size.height
                origin = "the model's native \(field) \(value) (unet sample_size × VAE factor \(size.vaeFactor))"
            }
            let maximum = isWidth ? limits.maxWidth : limits.maxHeight
            guard (8...maximum).contains(value) else {
                throw d.error(field, mappingMark, "not given; \(origin) is outside 8 to \(maximum) (limits.max_\(field)); set \(field)")
            }
            guard value % 8 == 0 else {
                throw d.error(field, mappingMark, "not given; \(origin) is not a multiple of 8; set \(field)")
            }
            if isWidth { spec.width = value } else { spec.height = value }
        }
        // The VAE multiple, for given and resolved sides alike, when the model was read.
        if let factor = native?.vaeFactor {
            for (field, value) in [("width", spec.width), ("height", spec.height)] where value % factor != 0 {
                throw d.error(field, given[field] ?? mappingMark, "\(value) is not a multiple of the model's VAE factor \(factor)")
            }
        }
    }
}
