import CYAML
import CPNG
// Module Jobs: job-file schema, YAML parsing, validation, PNG writing with metadata.
func _cLinkCheck() -> String { String(cString: yaml_get_version_string()) + String(cString: png_get_libpng_ver(nil)) }
