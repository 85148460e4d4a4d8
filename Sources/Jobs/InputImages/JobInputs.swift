/// The intake's second look at a parsed job file: reads the pictures its jobs name, on
/// behalf of the file's owner (`InputFileAccess`), and turns an `init_images` folder into one
/// job per picture, in name order. Used by the daemon's intake and by `--oneshot`, so a
/// refused picture refuses the whole file before any of its jobs is queued.
public enum JobInputs {
    /// Every job of `specs`, folders expanded, with the formats of its pictures recorded.
    /// Each job is handed to `each` with its pictures as soon as they are read (the intake
    /// stores them right away), so at most one picture and the mask are held at a time.
    /// Throws a `SourceError` naming the file, the field's line and column, the picture and why.
    public static func resolve(_ specs: [JobSpec], file: String, access: InputFileAccess, maxJobs: Int,
                               each: (_ index: Int, _ job: ResolvedJob) throws -> Void) throws -> [JobSpec] {
        var resolved: [JobSpec] = []
        func emit(_ job: ResolvedJob) throws {
            try each(resolved.count, job)
            resolved.append(job.spec)
        }
        for spec in specs {
            guard let source = spec.initImage else {
                try emit(ResolvedJob(spec: spec, picture: nil, mask: nil))
                continue
            }
            // The mask (inpainting): one picture for every job of the document.
            var mask: InputPicture?
            if var maskSource = spec.mask {
                do {
                    let picture = try access.picture(maskSource.path)
                    maskSource.format = picture.format
                    mask = picture
                } catch {
                    throw SourceError(file: file, line: maskSource.line, column: maskSource.column, field: "mask",
                                      message: SourceError.oneLine("\(error)"))
                }
            }
            let field = source.isFolder ? "init_images" : "init_image"
            func fail(_ error: Error) -> SourceError {
                SourceError(file: file, line: source.line, column: source.column, field: field,
                            message: SourceError.oneLine("\(error)"))
            }
            let paths: [String]
            do {
                paths = source.isFolder ? try access.folderPictures(source.path) : [source.path]
            } catch {
                throw fail(error)
            }
            guard resolved.count + paths.count <= maxJobs else {
                throw SourceError(file: file, line: source.line, column: source.column, field: field,
                                  message: "the file would become more than \(maxJobs) jobs (limits.max_jobs_per_file)")
            }
            for path in paths {
                let picture: InputPicture
                do {
                    picture = try access.picture(path)
                } catch {
                    throw fail(error)
                }
                var one = spec
                one.initImage = InitImageSource(path: path, isFolder: false, line: source.line, column: source.column,
                                                format: picture.format)
                one.mask?.format = mask?.format
                try emit(ResolvedJob(spec: one, picture: picture, mask: mask))
            }
        }
        return resolved
    }
}

/// One job of a file with the pictures read for it at intake.
public struct ResolvedJob: Sendable {
    public var spec: JobSpec
    /// `init_image` (or one picture of `init_images`); `nil`: text-to-image.
    public var picture: InputPicture?
    /// `mask` (inpainting).
    public var mask: InputPicture?
}
