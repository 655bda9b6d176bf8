// libFuzzer target: a whole safetensors file (8-byte header length, JSON header, data section).
// The input is written to a scratch file (under /dev/shm when it exists) and opened through the public
// API, so the mapping, the header checks and every tensor read (widened to Float32, and as integers
// for integer dtypes) run on it. Property: the only error allowed is SafeTensorsError; anything else,
// a trap, an out-of-bounds read (ASan) or a leak is a finding.
import Foundation
import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/eaglet-fuzz-safetensors-\(getpid()).safetensors"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(scratch)") }
    var written = 0
    while written < size {
        let n = write(fd, data + written, size - written)
        guard n > 0 else { fatalError("short write to \(scratch)") }
        written += n
    }
    close(fd)
    do {
        let file = try SafeTensorsFile(path: scratch)
        for info in file.tensors {
            let t = try file.tensor(info.name)
            precondition(
                t.storage.count == info.elementCount,
                "tensor \(info.name): \(t.storage.count) values for shape \(info.shape)")
            if !info.dtype.isFloatingPoint { _ = try file.integers(info.name) }
        }
    } catch is SafeTensorsError {
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}
