// The CUDA driver API, NVRTC and cuBLAS, bound at run time with dlopen/dlsym (docs/spec.md §9, docs/gpu.md).
//
// What it is: the two dozen C entry points Eaglet's GPU mirror needs, each typed as a
// `@convention(c)` function pointer and looked up by name, so nothing CUDA is needed to BUILD Eaglet:
// the module compiles in CI, and on a machine without a GPU every entry fails with `GPUError` naming
// the library and the folders searched. Versioned symbols (`cuMemAlloc_v2`, …) are bound explicitly,
// as the headers' macros would. Device pointers are `CUdeviceptr` = UInt64.
// What it is not: a general CUDA wrapper (no streams beyond the default one, no graphs, no events).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Why the GPU path could not run. Every case names what was looked for or which call failed.
public enum GPUError: Error, CustomStringConvertible, Equatable {
    case libraryNotFound(library: String, searched: [String])
    case symbolNotFound(library: String, symbol: String)
    case noDevice(reason: String)
    case cuda(call: String, code: Int32, name: String)
    case nvrtc(call: String, code: Int32, log: String)
    case cublas(call: String, status: Int32)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .libraryNotFound(lib, searched):
            return "no GPU: could not load \(lib); looked in \(searched.joined(separator: ", ")) "
                + "(set EAGLET_CUDA_LIBRARY_PATH to the folder that holds it)"
        case let .symbolNotFound(lib, sym): return "GPU: \(lib) has no symbol \(sym) (driver or toolkit too old?)"
        case let .noDevice(reason): return "no GPU: \(reason)"
        case let .cuda(call, code, name): return "GPU: \(call) failed with CUDA error \(code) (\(name))"
        case let .nvrtc(call, code, log):
            return "GPU: \(call) failed with NVRTC error \(code)\(log.isEmpty ? "" : ":\n" + log)"
        case let .cublas(call, status): return "GPU: \(call) failed with cuBLAS status \(status)"
        case let .unsupported(what): return "GPU: \(what)"
        }
    }
}

/// Where the libraries are looked for: `EAGLET_CUDA_LIBRARY_PATH` (colon-separated folders) first, then
/// the driver's folder of NVIDIA's container images, CUDA toolkits, the NVIDIA wheels of Python
/// environments, and finally the dynamic loader's own search (plain soname).
public enum CUDALibraries {
    public static var searchFolders: [String] {
        var folders = [String]()
        if let env = ProcessInfo.processInfo.environment["EAGLET_CUDA_LIBRARY_PATH"] {
            folders += env.split(separator: ":").map(String.init)
        }
        if let home = ProcessInfo.processInfo.environment["CUDA_HOME"] {
            folders += [home + "/targets/x86_64-linux/lib", home + "/lib64"]
        }
        folders += [
            "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/local/cuda/targets/x86_64-linux/lib",
            "/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"
        ]
        for pattern in [
            "/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib",
            "/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
            "/usr/lib/python3/dist-packages/nvidia/*/lib"
        ] {
            folders += globPaths(pattern)
        }
        return folders
    }

    /// Paths matching a shell pattern, sorted.
    static func globPaths(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// dlopens the first of `names` found in the search folders (then by soname), RTLD_GLOBAL so that a
    /// library loaded first (cublasLt, nvrtc-builtins) satisfies the next one's dependency.
    static func open(_ names: [String], what: String) throws -> (handle: UnsafeMutableRawPointer, path: String) {
        let paths = searchFolders.flatMap { folder in names.flatMap { globPaths(folder + "/" + $0) } }
        if let found = dlopenFirst(paths, sonames: names.filter { !$0.contains("*") }) { return found }
        throw GPUError.libraryNotFound(
            library: what + " (" + names.joined(separator: " or ") + ")",
            searched: Array(Set(searchFolders)).sorted() + ["the loader's default path"])
    }

    /// The first of `paths` that dlopens (RTLD_NOW | RTLD_GLOBAL), else the first of `sonames` the loader finds by its
    /// own search; nil when none loads. Shared by the CUDA libraries and NCCL, whose errors name what they tried.
    static func dlopenFirst(_ paths: [String], sonames: [String]) -> (handle: UnsafeMutableRawPointer, path: String)? {
        for path in paths + sonames {
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) { return (h, path) }
        }
        return nil
    }

    static func symbol<T>(_ handle: UnsafeMutableRawPointer, _ name: String, library: String, as: T.Type) throws -> T {
        guard let p = dlsym(handle, name) else { throw GPUError.symbolNotFound(library: library, symbol: name) }
        return unsafeBitCast(p, to: T.self)
    }
}

/// CUdeviceptr.
public typealias DevicePointer = UInt64

/// The driver API entry points (libcuda.so.1).
struct DriverAPI {
    typealias Fn0 = @convention(c) () -> Int32
    let cuInit: @convention(c) (UInt32) -> Int32
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Int32
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Int32
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> Int32
    let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> Int32
    let cuCtxSynchronize: Fn0
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<DevicePointer>, Int) -> Int32
    let cuMemFree: @convention(c) (DevicePointer) -> Int32
    let cuMemcpyHtoD: @convention(c) (DevicePointer, UnsafeRawPointer, Int) -> Int32
    let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer, DevicePointer, Int) -> Int32
    let cuMemcpyDtoD: @convention(c) (DevicePointer, DevicePointer, Int) -> Int32
    let cuMemsetD8: @convention(c) (DevicePointer, UInt8, Int) -> Int32
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> Int32
    let cuModuleGetFunction:
        @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> Int32
    let cuFuncSetAttribute: @convention(c) (OpaquePointer?, Int32, Int32) -> Int32
    let cuLaunchKernel:
        @convention(c) (
            OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
            UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        ) -> Int32
    let cuGetErrorName: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32
    // Streams and events (context parallelism overlaps its exchanges with attention, GPUContextParallel.swift).
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> Int32
    let cuStreamDestroy: @convention(c) (OpaquePointer?) -> Int32
    let cuStreamSynchronize: @convention(c) (OpaquePointer?) -> Int32
    let cuStreamWaitEvent: @convention(c) (OpaquePointer?, OpaquePointer?, UInt32) -> Int32
    let cuEventCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> Int32
    let cuEventRecord: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let cuEventSynchronize: @convention(c) (OpaquePointer?) -> Int32
    let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, OpaquePointer?, OpaquePointer?) -> Int32
    let cuEventDestroy: @convention(c) (OpaquePointer?) -> Int32
    let cuMemcpyDtoDAsync: @convention(c) (DevicePointer, DevicePointer, Int, OpaquePointer?) -> Int32
    /// cuTensorMapEncodeTiled (driver 12.0 and later; nil before): map, data type, rank, global address, global
    /// dims, global strides (bytes, rank − 1 of them), box dims, element strides, interleave, swizzle, L2
    /// promotion, out-of-bounds fill.
    let cuTensorMapEncodeTiled:
        (
            @convention(c) (
                UnsafeMutableRawPointer, Int32, UInt32, UnsafeMutableRawPointer?, UnsafePointer<UInt64>,
                UnsafePointer<UInt64>, UnsafePointer<UInt32>, UnsafePointer<UInt32>, Int32, Int32, Int32, Int32
            ) -> Int32
        )?

    init(_ h: UnsafeMutableRawPointer) throws {
        func s<T>(_ n: String) throws -> T { try CUDALibraries.symbol(h, n, library: "libcuda", as: T.self) }
        cuInit = try s("cuInit")
        cuDeviceGetCount = try s("cuDeviceGetCount")
        cuDeviceGet = try s("cuDeviceGet")
        cuDeviceGetName = try s("cuDeviceGetName")
        cuDeviceGetAttribute = try s("cuDeviceGetAttribute")
        cuDeviceTotalMem = try s("cuDeviceTotalMem_v2")
        cuDriverGetVersion = try s("cuDriverGetVersion")
        cuDevicePrimaryCtxRetain = try s("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try s("cuCtxSetCurrent")
        cuCtxSynchronize = try s("cuCtxSynchronize")
        cuMemAlloc = try s("cuMemAlloc_v2")
        cuMemFree = try s("cuMemFree_v2")
        cuMemcpyHtoD = try s("cuMemcpyHtoD_v2")
        cuMemcpyDtoH = try s("cuMemcpyDtoH_v2")
        cuMemcpyDtoD = try s("cuMemcpyDtoD_v2")
        cuMemsetD8 = try s("cuMemsetD8_v2")
        cuModuleLoadData = try s("cuModuleLoadData")
        cuModuleGetFunction = try s("cuModuleGetFunction")
        cuFuncSetAttribute = try s("cuFuncSetAttribute")
        cuLaunchKernel = try s("cuLaunchKernel")
        cuGetErrorName = try s("cuGetErrorName")
        cuStreamCreate = try s("cuStreamCreate")
        cuStreamDestroy = try s("cuStreamDestroy_v2")
        cuStreamSynchronize = try s("cuStreamSynchronize")
        cuStreamWaitEvent = try s("cuStreamWaitEvent")
        cuEventCreate = try s("cuEventCreate")
        cuEventRecord = try s("cuEventRecord")
        cuEventSynchronize = try s("cuEventSynchronize")
        cuEventElapsedTime = try s("cuEventElapsedTime")
        cuEventDestroy = try s("cuEventDestroy_v2")
        cuMemcpyDtoDAsync = try s("cuMemcpyDtoDAsync_v2")
        cuTensorMapEncodeTiled = try? s("cuTensorMapEncodeTiled")
    }
}

/// NVRTC (libnvrtc.so.N): CUDA C++ source → CUBIN for the device's own architecture.
struct NVRTCAPI {
    let version: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    let create:
        @convention(c) (
            UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?
        ) -> Int32
    let compile: @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let logSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Int32
    let log: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Int32
    let cubinSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Int32
    let cubin: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Int32
    let destroy: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32

    init(_ h: UnsafeMutableRawPointer) throws {
        func s<T>(_ n: String) throws -> T { try CUDALibraries.symbol(h, n, library: "libnvrtc", as: T.self) }
        version = try s("nvrtcVersion")
        create = try s("nvrtcCreateProgram")
        compile = try s("nvrtcCompileProgram")
        logSize = try s("nvrtcGetProgramLogSize")
        log = try s("nvrtcGetProgramLog")
        cubinSize = try s("nvrtcGetCUBINSize")
        cubin = try s("nvrtcGetCUBIN")
        destroy = try s("nvrtcDestroyProgram")
    }
}

/// cuBLAS (libcublas.so.N). Column-major, as BLAS; `GPU.linear` turns row-major calls around.
struct CuBLASAPI {
    typealias Handle = OpaquePointer?
    let create: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
    let setMathMode: @convention(c) (Handle, Int32) -> Int32
    let sgemm:
        @convention(c) (
            Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, DevicePointer, Int32,
            DevicePointer, Int32, UnsafePointer<Float>, DevicePointer, Int32
        ) -> Int32
    let sgemmStridedBatched:
        @convention(c) (
            Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, DevicePointer, Int32, Int64,
            DevicePointer, Int32, Int64, UnsafePointer<Float>, DevicePointer, Int32, Int64, Int32
        ) -> Int32
    let gemmEx:
        @convention(c) (
            Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, DevicePointer, Int32, Int32,
            DevicePointer, Int32, Int32, UnsafeRawPointer, DevicePointer, Int32, Int32, Int32, Int32
        ) -> Int32
    let gemmStridedBatchedEx:
        @convention(c) (
            Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, DevicePointer, Int32, Int32, Int64,
            DevicePointer, Int32, Int32, Int64, UnsafeRawPointer, DevicePointer, Int32, Int32, Int64,
            Int32, Int32, Int32
        ) -> Int32

    init(_ h: UnsafeMutableRawPointer) throws {
        func s<T>(_ n: String) throws -> T { try CUDALibraries.symbol(h, n, library: "libcublas", as: T.self) }
        create = try s("cublasCreate_v2")
        setMathMode = try s("cublasSetMathMode")
        sgemm = try s("cublasSgemm_v2")
        sgemmStridedBatched = try s("cublasSgemmStridedBatched")
        gemmEx = try s("cublasGemmEx")
        gemmStridedBatchedEx = try s("cublasGemmStridedBatchedEx")
    }

    // cublasOperation_t, cudaDataType, cublasComputeType_t, cublasMath_t values from the public headers.
    static let opN: Int32 = 0, opT: Int32 = 1
    static let r32F: Int32 = 0, r16BF: Int32 = 14
    static let compute32F: Int32 = 68
    static let pedanticMath: Int32 = 2, defaultMath: Int32 = 0
    static let gemmDefault: Int32 = -1
}
