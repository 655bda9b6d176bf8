// One NVIDIA GPU: its primary context, device buffers, kernels compiled by NVRTC (cached on disk per
// architecture) and launched through the driver API, and cuBLAS on the same (default) stream.
//
// What it is: the smallest runtime that lets `GPUOps` mirror the CPU operators. All work goes to the
// legacy default stream, so launches and cuBLAS calls run in the order they are issued; `synchronize`
// waits for them (downloads synchronise by themselves).
// What it is not: multi-GPU, asynchronous, or a memory pool (buffers are cuMemAlloc'd and freed when
// their Swift object goes away).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// A device allocation of `count` elements of `elementSize` bytes (4 for fp32, 2 for bf16).
// Not Sendable: its deinit hands the allocation back to its GPU's pool, which only that GPU's thread may touch.
public final class GPUBuffer {
    public let pointer: DevicePointer
    public let count: Int
    public let elementSize: Int
    let gpu: GPU

    init(gpu: GPU, count: Int, elementSize: Int) throws {
        self.gpu = gpu; self.count = count; self.elementSize = elementSize
        pointer = try gpu.take(bytes: max(1, count * elementSize))
    }

    deinit { gpu.give(pointer, bytes: max(1, count * elementSize)) }

    /// The address of element `i` (for views into a buffer: rows, heads).
    public func at(_ i: Int) -> DevicePointer { pointer + DevicePointer(i * elementSize) }
    public var bytes: Int { count * elementSize }
}

/// One argument of a kernel launch, passed by value as CUDA expects.
public enum KernelArgument {
    case pointer(DevicePointer)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
    /// A struct passed by value, 64-byte aligned (a CUtensorMap's 128 bytes).
    case bytes([UInt8])

    public static func ptr(_ b: GPUBuffer) -> KernelArgument { .pointer(b.pointer) }
    public static func int(_ v: Int) -> KernelArgument { .int32(Int32(v)) }
}

/// The GPU: open it once (`GPU.open()`), then allocate, compile, launch.
// Not Sendable: the kernel, module and memory-pool caches are unguarded and the CUDA context is current only on
// the opening thread, so a GPU and its buffers stay on that thread (as every caller keeps them).
public final class GPU {
    let driver: DriverAPI
    let libcudaPath: String
    public let device: Int32
    public let name: String
    public let computeCapability: (major: Int, minor: Int)
    public let totalMemory: Int
    public let driverVersion: Int
    private var context: OpaquePointer?
    private var modules: [String: OpaquePointer?] = [:]
    private var functions: [String: OpaquePointer?] = [:]
    private var nvrtcAPI: NVRTCAPI?
    private var cublasAPI: CuBLASAPI?
    private var cublasHandle: OpaquePointer?
    /// false: attention stays on the mma.sync flash kernel even where the Hopper one is loaded (a second, equally
    /// valid kernel to hold results against: `eaglet-gpu cp-prefill`'s yardstick).
    public var hopperFlashEnabled = true
    /// Where NVRTC and cuBLAS were found (for reports).
    public private(set) var nvrtcPath = "", cublasPath = ""

    /// Loads libcuda, initialises the driver and makes device `ordinal`'s primary context current on
    /// this thread. Throws `GPUError` naming what is missing when there is no usable GPU.
    public static func open(ordinal: Int32 = 0) throws -> GPU { try GPU(ordinal: ordinal) }

    private init(ordinal: Int32) throws {
        let (h, path) = try CUDALibraries.open(["libcuda.so.1", "libcuda.so"], what: "the CUDA driver library")
        driver = try DriverAPI(h)
        libcudaPath = path
        let initCode = driver.cuInit(0)
        guard initCode == 0 else {
            throw GPUError.noDevice(
                reason: "cuInit failed with CUDA error \(initCode) (\(GPU.errorName(driver, initCode))) using \(path)")
        }
        var n: Int32 = 0
        _ = driver.cuDeviceGetCount(&n)
        guard n > ordinal else {
            throw GPUError.noDevice(
                reason: "the driver at \(path) reports \(n) devices; device \(ordinal) was asked for")
        }
        var dev: Int32 = 0
        var code = driver.cuDeviceGet(&dev, ordinal)
        guard code == 0 else { throw GPUError.cuda(call: "cuDeviceGet", code: code, name: GPU.errorName(driver, code)) }
        device = dev
        var buf = [CChar](repeating: 0, count: 256)
        _ = driver.cuDeviceGetName(&buf, 256, dev)
        name = String(cString: buf)
        var major: Int32 = 0, minor: Int32 = 0
        _ = driver.cuDeviceGetAttribute(&major, 75, dev) // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        _ = driver.cuDeviceGetAttribute(&minor, 76, dev) // …_MINOR
        computeCapability = (Int(major), Int(minor))
        var mem = 0
        _ = driver.cuDeviceTotalMem(&mem, dev)
        totalMemory = mem
        var v: Int32 = 0
        _ = driver.cuDriverGetVersion(&v)
        driverVersion = Int(v)
        code = driver.cuDevicePrimaryCtxRetain(&context, dev)
        guard code == 0 else {
            throw GPUError.cuda(call: "cuDevicePrimaryCtxRetain", code: code, name: GPU.errorName(driver, code))
        }
        code = driver.cuCtxSetCurrent(context)
        guard code == 0 else {
            throw GPUError.cuda(call: "cuCtxSetCurrent", code: code, name: GPU.errorName(driver, code))
        }
    }

    static func errorName(_ d: DriverAPI, _ code: Int32) -> String {
        var p: UnsafePointer<CChar>? = nil
        _ = d.cuGetErrorName(code, &p)
        return p.map { String(cString: $0) } ?? "unknown"
    }

    func check(_ code: Int32, _ call: @autoclosure () -> String) throws {
        if code != 0 { throw GPUError.cuda(call: call(), code: code, name: GPU.errorName(driver, code)) }
    }

    /// "NVIDIA H200, sm_90, 139.8 GiB, driver 13.0".
    public var summary: String {
        name + ", sm_\(computeCapability.major)\(computeCapability.minor), "
            + cFormat("%.1f", Double(totalMemory) / 1_073_741_824)
            + " GiB, driver \(driverVersion / 1000).\((driverVersion % 1000) / 10)"
    }

    // MARK: Memory

    /// Freed allocations by exact size, reused before cuMemAlloc is asked again: cuMemFree waits for the
    /// whole device, and a forward pass frees a buffer after nearly every op. Reuse is safe because every
    /// launch runs on the one default stream, in issue order.
    private var pool: [Int: [DevicePointer]] = [:]
    /// Bytes held from cuMemAlloc (in use or pooled), and the most ever held in this process.
    public private(set) var heldBytes = 0, peakBytes = 0

    func take(bytes: Int) throws -> DevicePointer {
        if let p = pool[bytes]?.popLast() { return p }
        var p: DevicePointer = 0
        var code = driver.cuMemAlloc(&p, bytes)
        if code == 2 { // CUDA_ERROR_OUT_OF_MEMORY: give the pool back and try once more
            releasePool()
            code = driver.cuMemAlloc(&p, bytes)
        }
        try check(code, "cuMemAlloc_v2(\(bytes) bytes)")
        heldBytes += bytes
        peakBytes = max(peakBytes, heldBytes)
        return p
    }

    func give(_ p: DevicePointer, bytes: Int) { pool[bytes, default: []].append(p) }

    /// Frees every pooled allocation.
    public func releasePool() {
        for (bytes, ps) in pool {
            for p in ps { _ = driver.cuMemFree(p) }
            heldBytes -= bytes * ps.count
        }
        pool = [:]
    }

    /// An uninitialised buffer of `count` fp32 (or `elementSize`-byte) elements.
    public func alloc(_ count: Int, elementSize: Int = 4) throws -> GPUBuffer {
        try GPUBuffer(gpu: self, count: count, elementSize: elementSize)
    }

    /// A zero-filled buffer.
    public func zeros(_ count: Int, elementSize: Int = 4) throws -> GPUBuffer {
        let b = try alloc(count, elementSize: elementSize)
        try check(driver.cuMemsetD8(b.pointer, 0, b.bytes), "cuMemsetD8_v2")
        return b
    }

    /// Copies host floats to a new device buffer.
    public func upload(_ x: [Float]) throws -> GPUBuffer {
        let b = try alloc(x.count)
        try x.withUnsafeBytes {
            try check(driver.cuMemcpyHtoD(b.pointer, $0.baseAddress!, $0.count), "cuMemcpyHtoD_v2")
        }
        return b
    }

    /// Copies host Int32 values (token ids, row indices) to a new device buffer.
    public func upload(_ x: [Int32]) throws -> GPUBuffer {
        let b = try alloc(x.count)
        try x.withUnsafeBytes {
            try check(driver.cuMemcpyHtoD(b.pointer, $0.baseAddress!, $0.count), "cuMemcpyHtoD_v2")
        }
        return b
    }

    /// Copies `count` fp32 elements starting at element `offset` of `b` back to the host (synchronises).
    public func download(_ b: GPUBuffer, offset: Int = 0, count: Int? = nil) throws -> [Float] {
        precondition(b.elementSize == 4, "download: fp32 buffers only")
        let n = count ?? (b.count - offset)
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBytes {
            try check(driver.cuMemcpyDtoH($0.baseAddress!, b.at(offset), n * 4), "cuMemcpyDtoH_v2")
        }
        return out
    }

    /// Device-to-device copy of `bytes` bytes.
    public func copy(from src: DevicePointer, to dst: DevicePointer, bytes: Int) throws {
        try check(driver.cuMemcpyDtoD(dst, src, bytes), "cuMemcpyDtoD_v2")
    }

    /// Waits for every launch issued so far.
    public func synchronize() throws { try check(driver.cuCtxSynchronize(), "cuCtxSynchronize") }

    // MARK: Kernels

    func nvrtc() throws -> NVRTCAPI {
        if let a = nvrtcAPI { return a }
        // The builtins library must be loadable when NVRTC compiles; load it first from the same places.
        _ = try? CUDALibraries.open(
            ["libnvrtc-builtins.so.13*", "libnvrtc-builtins.so.12*", "libnvrtc-builtins.so"], what: "NVRTC builtins")
        let (h, path) = try CUDALibraries.open(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"], what: "NVRTC")
        let a = try NVRTCAPI(h)
        nvrtcAPI = a; nvrtcPath = path
        return a
    }

    /// The architecture flag NVRTC gets: the device's own, as a CUBIN (PTX from a newer NVRTC than the
    /// driver is rejected, error 222).
    public var architecture: String { "sm_\(computeCapability.major)\(computeCapability.minor)" }

    /// Compiles `source` once per process (and once per machine: CUBINs are cached under
    /// $XDG_CACHE_HOME/eaglet or ~/.cache/eaglet, keyed by a hash of source, options and architecture)
    /// and loads it as module `key`.
    /// `architecture` overrides the device's own (`sm_90a` for Hopper's wgmma).
    public func load(source: String, key: String, architecture: String? = nil) throws {
        guard modules[key] == nil else { return }
        let architecture = architecture ?? self.architecture
        let options = ["--gpu-architecture=\(architecture)", "--std=c++17", "-default-device"]
        let hash = fnv1a64(source + options.joined(separator: " "))
        let cacheDir =
            (ProcessInfo.processInfo.environment["XDG_CACHE_HOME"]
                ?? ((ProcessInfo.processInfo.environment["HOME"] ?? "/tmp") + "/.cache")) + "/eaglet"
        let cachePath = cacheDir + "/\(key)-\(architecture)-\(String(hash, radix: 16)).cubin"
        var cubin: [UInt8]
        if let cached = FileManager.default.contents(atPath: cachePath), !cached.isEmpty {
            cubin = [UInt8](cached)
        } else {
            cubin = try compile(source: source, name: key + ".cu", options: options)
            try? FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: cachePath, contents: Data(cubin))
        }
        var module: OpaquePointer? = nil
        try cubin.withUnsafeBytes {
            try check(driver.cuModuleLoadData(&module, $0.baseAddress!), "cuModuleLoadData(\(key))")
        }
        modules[key] = module
    }

    /// NVRTC: source → CUBIN bytes; a failed compile throws with NVRTC's log.
    public func compile(source: String, name: String, options: [String]) throws -> [UInt8] {
        let api = try nvrtc()
        var prog: OpaquePointer? = nil
        var code = api.create(&prog, source, name, 0, nil, nil)
        guard code == 0 else { throw GPUError.nvrtc(call: "nvrtcCreateProgram", code: code, log: "") }
        defer { _ = api.destroy(&prog) }
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        var optPointers = cOptions.map { UnsafePointer<CChar>($0) }
        code = optPointers.withUnsafeMutableBufferPointer { api.compile(prog, Int32(options.count), $0.baseAddress) }
        var logSize = 0
        _ = api.logSize(prog, &logSize)
        var log = [CChar](repeating: 0, count: max(1, logSize))
        _ = api.log(prog, &log)
        guard code == 0 else {
            throw GPUError.nvrtc(
                call: "nvrtcCompileProgram(\(name), \(options.joined(separator: " ")))", code: code,
                log: String(cString: log))
        }
        var size = 0
        code = api.cubinSize(prog, &size)
        guard code == 0, size > 0 else {
            throw GPUError.nvrtc(call: "nvrtcGetCUBINSize", code: code, log: String(cString: log))
        }
        var bytes = [CChar](repeating: 0, count: size)
        code = api.cubin(prog, &bytes)
        guard code == 0 else { throw GPUError.nvrtc(call: "nvrtcGetCUBIN", code: code, log: "") }
        return bytes.map { UInt8(bitPattern: $0) }
    }

    /// Whether module `key` is loaded.
    public func isLoaded(_ key: String) -> Bool { modules[key] != nil }

    func function(_ module: String, _ name: String) throws -> OpaquePointer? {
        let k = module + "." + name
        if let f = functions[k] { return f }
        guard let m = modules[module] else { throw GPUError.unsupported("kernel module \(module) is not loaded") }
        var f: OpaquePointer? = nil
        try check(driver.cuModuleGetFunction(&f, m, name), "cuModuleGetFunction(\(name))")
        functions[k] = f
        return f
    }

    /// Launches `module.name` on a grid of `grid` blocks of `block` threads with `shared` bytes of dynamic
    /// shared memory (above 48 KiB the kernel's limit is raised first), on `stream` (nil: the legacy default
    /// stream).
    public func launch(
        _ module: String, _ name: String, grid: (Int, Int, Int), block: (Int, Int, Int), shared: Int = 0,
        stream: GPUStream? = nil, _ args: [KernelArgument]
    ) throws {
        let f = try function(module, name)
        if shared > 48 * 1024 {
            try check(
                driver.cuFuncSetAttribute(f, 8, Int32(shared)),
                "cuFuncSetAttribute(\(name), max dynamic shared \(shared))")
        }
        // Each scalar argument lives in its own 8-byte slot, each struct in its own 64-byte-aligned block; the
        // params array points at them.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(1, args.count), alignment: 8)
        var blocks = [UnsafeMutableRawPointer]()
        defer {
            slots.deallocate()
            for b in blocks { b.deallocate() }
        }
        var params = [UnsafeMutableRawPointer?]()
        for (i, a) in args.enumerated() {
            var p = slots + 8 * i
            switch a {
            case let .pointer(v): p.storeBytes(of: v, as: UInt64.self)
            case let .int32(v): p.storeBytes(of: v, as: Int32.self)
            case let .int64(v): p.storeBytes(of: v, as: Int64.self)
            case let .float(v): p.storeBytes(of: v, as: Float.self)
            case let .bytes(v):
                p = UnsafeMutableRawPointer.allocate(byteCount: max(1, v.count), alignment: 64)
                blocks.append(p)
                v.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: $0.count) } }
            }
            params.append(p)
        }
        let code = params.withUnsafeMutableBufferPointer {
            driver.cuLaunchKernel(
                f, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1), UInt32(block.2),
                UInt32(shared), stream?.handle, $0.baseAddress, nil)
        }
        try check(code, "cuLaunchKernel(\(name), grid \(grid), block \(block), shared \(shared))")
    }

    // MARK: cuBLAS

    func cublas() throws -> (CuBLASAPI, OpaquePointer?) {
        if let a = cublasAPI { return (a, cublasHandle) }
        _ = try? CUDALibraries.open(["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"], what: "cuBLASLt")
        let (h, path) = try CUDALibraries.open(["libcublas.so.13", "libcublas.so.12", "libcublas.so"], what: "cuBLAS")
        let a = try CuBLASAPI(h)
        var handle: OpaquePointer? = nil
        let s = a.create(&handle)
        guard s == 0 else { throw GPUError.cublas(call: "cublasCreate_v2", status: s) }
        // The default math mode keeps fp32 GEMMs in fp32 (no TF32 rounding), as PyTorch does by default.
        let m = a.setMathMode(handle, CuBLASAPI.defaultMath)
        guard m == 0 else { throw GPUError.cublas(call: "cublasSetMathMode", status: m) }
        cublasAPI = a; cublasHandle = handle; cublasPath = path
        return (a, handle)
    }
}

/// FNV-1a, 64 bit: the kernel cache key.
func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}
