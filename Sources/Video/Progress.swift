// A progress bar for long video work, drawn on stderr only when stderr is a terminal (so pipes, logs and
// `--json` output never see it), and the one-call entry point the model uses: sample, then decode.
//
// What it is not: a general terminal UI; it redraws one line with a carriage return, at most ~10 times a
// second.
import Foundation
import Imaging

/// `label [#####.....] done/total`, on stderr, only on a TTY.
public final class ProgressBar {
    public let label: String
    public let enabled: Bool
    private var lastDraw = 0.0
    private var drawn = false

    public init(label: String, enabled: Bool = isatty(2) != 0) {
        self.label = label
        self.enabled = enabled
    }

    /// Redraws for `done` of `total` (throttled; always draws the final state).
    public func update(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let now = Date().timeIntervalSince1970
        guard done >= total || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let width = 30, filled = min(width, done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)".utf8))
        drawn = true
        if done >= total { finish() }
    }

    /// Ends the line (once).
    public func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }
}

/// A video's frames as the model takes them: the policy's indices and timestamps, and the RGB frames.
public struct SampledVideo: Sendable {
    public let info: VideoInfo
    public let sample: FrameSample
    public let frames: [RGBImage]
}

/// Opens `path`, applies `policy` to its frame count and average frame rate (docs/spec.md §6), and decodes the
/// chosen frames sparsely (`threads` as in `VideoFile(path:threads:)`). A progress bar shows on a
/// terminal when `showProgress` is set.
public func loadVideoFrames(
    _ path: String, policy: FrameSamplingPolicy = FrameSamplingPolicy(),
    threads: Int = 1, showProgress: Bool = true
) throws -> SampledVideo {
    let video = try VideoFile(path: path, threads: threads)
    let sample = try sampleFrames(
        totalFrames: video.info.frameCount, videoFPS: video.info.averageFrameRate, policy: policy)
    let bar = ProgressBar(label: "decoding \(sample.indices.count) frames", enabled: showProgress && isatty(2) != 0)
    let frames = try video.frames(at: sample.indices, progress: bar.update)
    bar.finish()
    return SampledVideo(info: video.info, sample: sample, frames: frames.map(\.image))
}
