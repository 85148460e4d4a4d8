/// The intake's second look at a parsed job file: reads the pictures its jobs name, on
/// behalf of the file's owner (`InputFileAccess`), and turns an `init_images` folder into one
/// job per picture, in name order. Used by the daemon's intake and by `--oneshot`, so a
/// refused picture refuses the whole file before any of its jobs is queued.
public enum JobInputs {
    /// Every job of `specs` with its picture (`nil` for text-to-image), folders expanded.
    /// Throws a `SourceError` naming the file, the field's line and column, the picture and why.
    public static func resolve(_ specs: [JobSpec], file: String, access: InputFileAccess,
                               maxJobs: Int) throws -> [(spec: JobSpec, picture: InputPicture?)] {
        var resolved: [(spec: JobSpec, picture: InputPicture?)] = []
        for spec in specs {
            guard let source = spec.initImage else {
                resolved.append((spec, nil))
                continue
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
                resolved.append((one, picture))
            }
        }
        return resolved
    }
}
