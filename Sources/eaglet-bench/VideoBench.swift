// `eaglet-bench video`: taking 64 and 512 uniformly spaced frames (the policy's round(linspace)) from a
// long video: sparse (seek to the keyframe before each frame, decode forward, convert only the targets)
// vs decoding every frame from the start, vs PyAV doing either on the same file when `import av` works
// (Fixtures/generate/bench_torch.py, case "video"). Each case opens the file (packet pass included) in its
// own process, so peak RSS is the case's own.
//
// The video is made at bench time with the `ffmpeg` command (H.264, 64×48, 24 fps, keyframe every 48
// frames, --minutes long; default 30) in a temporary folder and reused across runs; it is never committed.
import ArgumentParser
import Eaglet
import Foundation

struct VideoBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Frame sampling from a long video: sparse seeks vs decoding everything (vs PyAV).")

    @Option(help: "Comma-separated frame counts to take.")
    var sizes: String = "64,512"
    @Option(help: "Length of the generated video in minutes.")
    var minutes: Int = 30
    @Option(help: "Folder for the generated video (default: the system temporary folder).")
    var workdir: String?
    @OptionGroup var common: CommonOptions

    func run() throws {
        let dir = workdir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("eaglet-bench-video")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = (dir as NSString).appendingPathComponent("long-\(minutes)min-64x48.mp4")
        if !FileManager.default.fileExists(atPath: path) {
            FileHandle.standardError.write(Data("generating \(minutes)-minute test video at \(path)…\n".utf8))
            let args = [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=24",
                "-t", String(minutes * 60), "-c:v", "libx264", "-preset", "veryfast", "-g", "48", "-keyint_min", "48",
                "-sc_threshold", "0", "-pix_fmt", "yuv420p", path + ".part.mp4"
            ]
            guard runProcess("/usr/bin/env", ["ffmpeg"] + args) != nil else {
                throw ValidationError("could not run `ffmpeg` to make the test video (apt-get install ffmpeg)")
            }
            try FileManager.default.moveItem(atPath: path + ".part.mp4", toPath: path)
        }
        setenv("EAGLET_BENCH_VIDEO", path, 1) // the child cases inherit it
        let counts = sizes.split(separator: ",").compactMap { Int($0) }
        var results = [BenchResult]()
        let pyav =
            !common.noTorch
            && runTorch(["video", "--variant", "sparse", "--size", "2", "--repeats", "1", "--path", path], threads: 1)
                != nil
        if !pyav {
            FileHandle.standardError.write(Data("PyAV not available (pip install av); skipping its cases\n".utf8))
        }
        for n in counts {
            for variant in ["sparse", "all"] {
                FileHandle.standardError.write(Data("video \(variant) \(n) frames…\n".utf8))
                if let r = runCase(
                    ["video", "--variant", variant, "--size", String(n), "--repeats", variant == "all" ? "1" : "3"],
                    threads: 1)
                {
                    results.append(r)
                }
                if pyav,
                    let r = runTorch(
                        [
                            "video", "--variant", variant, "--size", String(n), "--repeats",
                            variant == "all" ? "1" : "3", "--path", path
                        ], threads: 1)
                {
                    results.append(r)
                }
            }
        }
        printTable(results)
        print("")
        for n in counts {
            let row = results.filter { $0.size.hasPrefix("\(n) of") }
            func time(_ v: String) -> Double { row.first { $0.variant == v }?.medianSeconds ?? .nan }
            print(
                String(
                    format:
                        "%4d frames: sparse %.2f s, decode-all %.2f s → sparse %.1f× faster; PyAV sparse %.2f s, PyAV all %.2f s",
                    n, time("sparse"), time("all"), time("all") / time("sparse"), time("pyav-sparse"), time("pyav-all"))
            )
        }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
        }
    }
}

/// The child-process side: open the video (packet pass), take `count` uniform frames as RGB.
func videoCase(variant: String, count: Int, repeats: Int) throws -> BenchResult {
    guard let path = ProcessInfo.processInfo.environment["EAGLET_BENCH_VIDEO"] else {
        throw ValidationError("EAGLET_BENCH_VIDEO is not set (run `eaglet-bench video`)")
    }
    var total = 0, decoded = 0
    var failure: Error? = nil
    let t = medianTime(repeats: repeats, warmup: 0) {
        do {
            let video = try VideoFile(path: path)
            total = video.info.frameCount
            let indices = uniformFrameIndices(totalFrames: total, count: count)
            let frames = variant == "all" ? try video.framesNaive(at: indices) : try video.frames(at: indices)
            precondition(frames.count == count)
            decoded = video.framesDecoded
        } catch { failure = error }
    }
    if let failure { throw failure }
    FileHandle.standardError.write(Data("  \(variant): decoded \(decoded) of \(total) frames\n".utf8))
    return BenchResult(
        name: "video", variant: variant, size: "\(count) of \(total)", threads: 1, medianSeconds: t,
        rate: Double(count) / t, unit: "frames/s", peakRSSBytes: peakRSSBytes())
}
