import CBLAS
// Module Kernels: tensors, SIMD primitives, GEMM (OpenBLAS), conv, norms, attention, thread pool.
func _cblasLinkCheck() -> Int32 { Int32(CblasRowMajor.rawValue) }
