// `eaglet frames VIDEO`: which frames Eagle 2.5's processor takes from a video (docs/spec.md §6) and when they
// occur. Defaults are the HF policy: 2 fps, at least 4, at most min(256, frames), an even count;
// --num-frames N takes N (rounded to even) instead. Reads the frame table only (no decoding).
import ArgumentParser
import Eaglet
import Foundation

struct Frames: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the frames Eagle 2.5's sampling policy picks from a video.",
        discussion: """
            Opens VIDEO with FFmpeg, counts its frames with a packet-only pass and applies the HF processor's \
            policy. --json prints one line {"indices":[...],"timestamps":[...],"fps":F,"total_frames":N}, where \
            fps is the sampling rate the prompt announces (n / N · video fps).
            """)

    @Argument(help: "A video file (MP4, MKV, WebM, AVI, …).")
    var video: String
    @Option(help: "Frames per second of video to take.")
    var fps: Double = 2
    @Option(help: "At least this many frames (rounded up to even).")
    var minFrames: Int = 4
    @Option(help: "At most this many frames (rounded down to even; default min(256, frames)).")
    var maxFrames: Int?
    @Option(help: "Take exactly this many frames (rounded to even) instead of the fps rule.")
    var numFrames: Int?
    @Flag(help: "Print exactly one line of JSON.")
    var json = false

    @Option(help: "Refuse videos whose frames have more pixels than this (default: PIL's 89478485).")
    var maxImagePixels: Int = RGBImage.defaultMaxPixels

    func validate() throws {
        if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1") }
        guard fps.isFinite, fps > 0 else { throw ValidationError("--fps must be a positive number (got \(fps))") }
        guard minFrames >= 0 else { throw ValidationError("--min-frames must be ≥ 0 (got \(minFrames))") }
        if let maxFrames, maxFrames < 0 { throw ValidationError("--max-frames must be ≥ 0 (got \(maxFrames))") }
        if let numFrames, numFrames < 0 { throw ValidationError("--num-frames must be ≥ 0 (got \(numFrames))") }
    }

    func run() throws {
        try reportingInputErrors {
            let file = try VideoFile(path: video, maxPixels: maxImagePixels)
            let info = file.info
            let policy = FrameSamplingPolicy(fps: fps, minFrames: minFrames, maxFrames: maxFrames, numFrames: numFrames)
            let s: FrameSample
            do {
                s = try sampleFrames(totalFrames: info.frameCount, videoFPS: info.averageFrameRate, policy: policy)
            } catch let e as FrameSamplingError { throw InputError(description: "\(video): \(e)") }
            if json {
                print(
                    "{\"indices\":[\(s.indices.map(String.init).joined(separator: ","))],"
                        + "\"timestamps\":[\(s.timestamps.map { jsonNumber($0) }.joined(separator: ","))],"
                        + "\"fps\":\(jsonNumber(s.sampleFPS)),\"total_frames\":\(info.frameCount)}")
                return
            }
            print(
                "\(video): \(info.codec) in \(info.container), \(info.width)×\(info.height), \(info.frameCount) frames"
                    + (info.declaredFrameCount == nil ? " (counted; the container stores no count)" : "")
                    + String(
                        format: ", %.3f fps average, %.2f s, %d keyframes", info.averageFrameRate, info.duration,
                        info.keyframes.count))
            print(String(format: "%d frames sampled at %.2f fps:", s.indices.count, s.sampleFPS))
            for (i, t) in zip(s.indices, s.timestamps) {
                print(String(format: "  frame %6d  at %9.3f s  (stream time %9.3f s)", i, t, info.timestamps[i]))
            }
        }
    }
}

/// A Double as JSON: integers without a fraction, others with up to 17 significant digits.
func jsonNumber(_ x: Double) -> String {
    guard x.isFinite else { return "null" }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return "\(x)"
}
