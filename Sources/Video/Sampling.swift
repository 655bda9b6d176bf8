// Which frames of a video the model sees: the HF Eagle 2.5 processor's policy (docs/spec.md §6, `smart_nframes`
// and the uniform index rule), and a plain "N frames" mode.
//
// With T frames at r frames per second:
//   N frames mode: n = 2·round(N / 2)                       (round half to even, as Python's round)
//   fps mode:      n = T / r · fps   (fps default 2)
//                  n = min(min(max(n, ⌈min/2⌉·2), ⌊max/2⌋·2), T)   (min 4; max default min(256, T))
//                  n = ⌊n / 2⌋·2                            (an even count)
//   n must lie in [2, T].
//   indices:    i_k = round(k · (T − 1) / (n − 1)), k = 0 … n−1   (uniform, first and last frame included)
//   timestamps: start + i_k / r seconds;   sample fps = n / T · r.
// Rounding: the reference computes `torch.linspace(0, T−1, n).round()` in float32; Eaglet rounds the exact
// rational k·(T−1)/(n−1) half to even (what torch.round does to an exact value). On long videos float32
// now and then lands on the other side of a .5, so the two differ by one frame there (in the fixture:
// 101 of 815 random requests, all on videos of more than 23 000 frames; see frame_sampling.py's notes).
//
// What it is not: decoding (VideoFile.swift) or ADS, which may lower the count further (module ADS).

/// How many frames to take and how (docs/spec.md §6). Defaults are the HF processor's.
public struct FrameSamplingPolicy: Equatable, Sendable {
    /// Target frames per second of video (fps mode).
    public var fps: Double
    /// Lower bound on the count (rounded up to even).
    public var minFrames: Int
    /// Upper bound on the count (rounded down to even); nil means min(256, T).
    public var maxFrames: Int?
    /// Plain mode: exactly this many frames (rounded to even), ignoring fps/min/max.
    public var numFrames: Int?

    public static let defaultMaxFrames = 256
    /// Largest count any field may ask for (2³⁰).
    public static let maxCount = 1 << 30

    public init(fps: Double = 2, minFrames: Int = 4, maxFrames: Int? = nil, numFrames: Int? = nil) {
        self.fps = fps
        self.minFrames = minFrames
        self.maxFrames = maxFrames
        self.numFrames = numFrames
    }
}

/// The frames a policy picked.
public struct FrameSample: Equatable, Sendable {
    /// Frame indices in presentation order, ascending.
    public let indices: [Int]
    /// start + index / video fps, seconds (the processor's timestamps, used in the prompt).
    public let timestamps: [Double]
    /// n / T · video fps: the rate the prompt announces ("sampled with {fps:.2f} fps").
    public let sampleFPS: Double
    public let totalFrames: Int
    public let videoFPS: Double
}

/// Why a sampling request cannot be met.
public enum FrameSamplingError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalid(field: String, reason: String)
    /// The count came out outside [2, T].
    case countOutOfRange(count: Int, totalFrames: Int)

    public var description: String {
        switch self {
        case let .invalid(f, r): return "frame sampling: \(f) \(r)"
        case let .countOutOfRange(n, t):
            return
                "frame sampling chose \(n) frames but a video of \(t) frame\(t == 1 ? "" : "s") allows 2 to \(t); pass a different --num-frames or --min-frames/--max-frames"
        }
    }
}

/// round(k · (T − 1) / (n − 1)) for k = 0 … n−1, exact, half to even.
public func uniformFrameIndices(totalFrames t: Int, count n: Int) -> [Int] {
    precondition(t >= 1 && n >= 1, "uniformFrameIndices: need T ≥ 1 and n ≥ 1")
    guard n > 1 else { return [0] }
    let d = n - 1
    return (0..<n).map { k in
        let num = k * (t - 1)
        let q = num / d, r = num % d
        return 2 * r > d || (2 * r == d && q % 2 == 1) ? q + 1 : q
    }
}

/// The frame count of `policy` for a video of `totalFrames` frames at `videoFPS` (before the [2, T] check).
func policyCount(totalFrames t: Int, videoFPS r: Double, policy: FrameSamplingPolicy) -> Int {
    if let n = policy.numFrames { return 2 * Int((Double(n) / 2).rounded(.toNearestOrEven)) }
    let lo = Int((Double(policy.minFrames) / 2).rounded(.up)) * 2
    let hi = Int((Double(policy.maxFrames ?? min(FrameSamplingPolicy.defaultMaxFrames, t)) / 2).rounded(.down)) * 2
    let n = min(min(max(Double(t) / r * policy.fps, Double(lo)), Double(hi)), Double(t))
    return Int((n / 2).rounded(.down)) * 2
}

/// The frames `policy` picks from a video of `totalFrames` frames at `videoFPS` frames per second.
public func sampleFrames(
    totalFrames: Int, videoFPS: Double, policy: FrameSamplingPolicy = FrameSamplingPolicy(),
    start: Double = 0
) throws -> FrameSample {
    guard totalFrames >= 0 else {
        throw FrameSamplingError.invalid(field: "total frames", reason: "must be ≥ 0 (got \(totalFrames))")
    }
    guard videoFPS.isFinite, videoFPS > 0 else {
        throw FrameSamplingError.invalid(field: "video fps", reason: "must be a positive number (got \(videoFPS))")
    }
    if policy.numFrames == nil {
        guard policy.fps.isFinite, policy.fps > 0 else {
            throw FrameSamplingError.invalid(field: "--fps", reason: "must be a positive number (got \(policy.fps))")
        }
        guard policy.minFrames >= 0 else {
            throw FrameSamplingError.invalid(field: "--min-frames", reason: "must be ≥ 0 (got \(policy.minFrames))")
        }
        if let m = policy.maxFrames, m < 0 {
            throw FrameSamplingError.invalid(field: "--max-frames", reason: "must be ≥ 0 (got \(m))")
        }
    } else if let n = policy.numFrames, n < 0 {
        throw FrameSamplingError.invalid(field: "--num-frames", reason: "must be ≥ 0 (got \(n))")
    }
    // Counts are doubled and rounded in Int: bound them so that no request can overflow.
    for (field, v) in [
        ("--num-frames", policy.numFrames), ("--min-frames", policy.minFrames), ("--max-frames", policy.maxFrames)
    ] {
        if let v, v > FrameSamplingPolicy.maxCount {
            throw FrameSamplingError.invalid(
                field: field, reason: "must be at most \(FrameSamplingPolicy.maxCount) (got \(v))")
        }
    }
    let n = policyCount(totalFrames: totalFrames, videoFPS: videoFPS, policy: policy)
    guard n >= 2, n <= totalFrames else { throw FrameSamplingError.countOutOfRange(count: n, totalFrames: totalFrames) }
    let indices = uniformFrameIndices(totalFrames: totalFrames, count: n)
    return FrameSample(
        indices: indices, timestamps: indices.map { start + Double($0) / videoFPS },
        sampleFPS: Double(n) / max(Double(totalFrames), 1e-6) * videoFPS,
        totalFrames: totalFrames, videoFPS: videoFPS)
}

/// Exactly `count` uniform frames (no rounding to even): for a count ADS decided, which may be odd.
/// Same index rule, timestamps and sample-fps formula as `sampleFrames(totalFrames:videoFPS:policy:)`.
public func sampleFrames(totalFrames: Int, videoFPS: Double, exactCount count: Int, start: Double = 0) throws
    -> FrameSample
{
    guard videoFPS.isFinite, videoFPS > 0 else {
        throw FrameSamplingError.invalid(field: "video fps", reason: "must be a positive number (got \(videoFPS))")
    }
    guard count >= 1, count <= totalFrames else {
        throw FrameSamplingError.countOutOfRange(count: count, totalFrames: totalFrames)
    }
    let indices = uniformFrameIndices(totalFrames: totalFrames, count: count)
    return FrameSample(
        indices: indices, timestamps: indices.map { start + Double($0) / videoFPS },
        sampleFPS: Double(count) / Double(totalFrames) * videoFPS, totalFrames: totalFrames, videoFPS: videoFPS)
}
