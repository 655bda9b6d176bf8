// libFuzzer target: a whole video file (written to /dev/shm, opened through VideoFile): FFmpeg's demuxers
// and decoders (not instrumented) under the Swift packet pass, frame table, sampling and sparse decoding
// (instrumented). Limits are lowered for the run (2¹² frames, 2²⁰ pixels a frame). Property: only
// VideoError or FrameSamplingError is thrown; the frame table is consistent; the first, middle and last
// frames decode to images of positive size, or fail with a typed error.
import Foundation
import Imaging
import Video
#if canImport(Glibc)
import Glibc
#endif

let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/eaglet-fuzz-video-\(getpid()).bin"
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
        let video = try VideoFile(path: scratch, maxFrames: 1 << 12, maxPixels: 1 << 20)
        let info = video.info
        precondition(info.frameCount >= 1 && info.timestamps.count == info.frameCount && info.keyframes.first == 0)
        let picks = Array(Set([0, info.frameCount / 2, info.frameCount - 1])).sorted()
        for frame in try video.frames(at: picks) {
            precondition(frame.image.width > 0 && frame.image.height > 0)
        }
        _ = try? sampleFrames(totalFrames: info.frameCount, videoFPS: info.averageFrameRate)
    } catch is VideoError {
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}
