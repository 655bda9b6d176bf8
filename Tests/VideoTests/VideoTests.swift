// Video against files made by the `ffmpeg` command (Fixtures/test-videos, Fixtures/generate/test_videos.py):
// every frame draws its own index, so a test reads back which frame the decoder produced. The sampling
// policy against a Python reference written from the spec (Fixtures/frame-sampling).
import Foundation
import Testing
import Imaging
import SafeTensors
import Tensor
import Video
import _TestSupport

extension SafeTensorsFile {
    /// An F64 tensor's values (the fixtures store timestamps in float64).
    func doubles(_ name: String) throws -> [Double] {
        guard info(name)?.dtype == .f64 else {
            throw SafeTensorsError.missingTensor(file: path, tensor: name + " (as F64)")
        }
        return try withRawBytes(name) { raw in
            (0..<raw.count / 8).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
        }
    }
}

/// The index a test video's frame draws: bit b is the block at x = 8b … 8b+7 of the top band.
func drawnIndex(_ image: RGBImage) -> Int {
    (0..<10).reduce(0) { acc, b in
        let v =
            (Int(image[x: 8 * b + 4, y: 8, c: 0]) + Int(image[x: 8 * b + 4, y: 8, c: 1])
                + Int(image[x: 8 * b + 4, y: 8, c: 2])) / 3
        return acc | (v > 128 ? 1 << b : 0)
    }
}

let videoFiles = ["h264.mp4", "mpeg4.mkv", "vp9.webm", "vfr.mkv", "long_gop.mp4"]

@Suite struct VideoDecodesTheRequestedFrames {
    let fixture: Fixture
    init() throws { fixture = try Fixture.load("test-videos") }

    @Test(arguments: videoFiles)
    func packetPassMatchesEncodingParameters(file: String) throws {
        let stem = String(file.split(separator: ".")[0])
        let video = try VideoFile(path: fixture.path(file))
        let expected = try fixture.file.doubles("\(stem).timestamps")
        let keys = try fixture.file.integers("\(stem).keyframes").values.map { Int($0) }
        #expect(video.info.frameCount == expected.count)
        #expect(video.info.timestamps.count == expected.count)
        let worst = zip(video.info.timestamps, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-3, "timestamps off by \(worst) s")
        #expect(video.info.keyframes == keys)
        #expect(video.info.width == 80 && video.info.height == 48)
        // MP4 stores a frame count, Matroska does not; the packet pass counts either way.
        #expect((video.info.declaredFrameCount != nil) == file.hasSuffix(".mp4"))
        // The last frame starts at 4.9 s; its length is what the container records for it (≤ 100 ms).
        if file == "vfr.mkv" { #expect(video.info.duration > 4.9 && video.info.duration <= 5.0 + 1e-9) }
        if file == "h264.mp4" {
            #expect(abs(video.info.averageFrameRate - 25) < 1e-9 && abs(video.info.duration - 4) < 1e-3)
        }
        #expect(video.framesDecoded == 0, "the packet pass decodes nothing")
    }

    @Test(arguments: videoFiles)
    func sparseFramesAreTheRequestedOnes(file: String) throws {
        let video = try VideoFile(path: fixture.path(file))
        let n = video.info.frameCount
        // Out of order, repeated, first, last, inside and across GOPs (keyframe interval 12), backwards.
        let requested = [0, n - 1, 13, 11, 12, 23, 24, 25, 47, 5, 5, n / 2, n - 2, 1, 36, 71 % n]
        let frames = try video.frames(at: requested)
        #expect(frames.map(\.index) == requested)
        #expect(frames.map { drawnIndex($0.image) } == requested)
        #expect(frames.map(\.timestamp) == requested.map { video.info.timestamps[$0] })
        // Streaming: each distinct frame once, ascending.
        var streamed = [Int]()
        try VideoFile(path: fixture.path(file)).forEachFrame(at: [9, 2, 9, 30]) {
            streamed.append(drawnIndex($0.image))
        }
        #expect(streamed == [2, 9, 30])
        // Every single frame, one request each, in a fresh reader: seek-and-decode-forward each time.
        let fresh = try VideoFile(path: fixture.path(file))
        for i in stride(from: n - 1, through: 0, by: -7) {
            let f = try fresh.frames(at: [i])
            #expect(drawnIndex(f[0].image) == i, "frame \(i) of \(file)")
        }
    }

    @Test(arguments: videoFiles)
    func sparseMatchesDecodingEverything(file: String) throws {
        let video = try VideoFile(path: fixture.path(file))
        let all = Array(0..<video.info.frameCount)
        let naive = try video.framesNaive(at: all)
        #expect(naive.map { drawnIndex($0.image) } == all)
        let picks = [3, 17, 30, 58, video.info.frameCount - 1]
        let sparseReader = try VideoFile(path: fixture.path(file))
        let sparse = try sparseReader.frames(at: picks)
        #expect(sparse == picks.map { naive[$0] }, "sparse frames are pixel-identical to the sequential decode")
        let threaded = try VideoFile(path: fixture.path(file), threads: 3).frames(at: picks.reversed())
        #expect(threaded == picks.reversed().map { naive[$0] }, "frame threading gives the same frames")
        if file != "long_gop.mp4" {
            #expect(
                sparseReader.framesDecoded < video.info.frameCount,
                "sparse decoded \(sparseReader.framesDecoded) frames")
        }
    }

    @Test func policyOnARealFile() throws {
        let sampled = try loadVideoFrames(fixture.path("h264.mp4"), showProgress: false)
        // 100 frames at 25 fps = 4 s; 2 fps → 8 frames: round(k · 99 / 7).
        #expect(sampled.sample.indices == [0, 14, 28, 42, 57, 71, 85, 99])
        #expect(sampled.frames.map(drawnIndex) == sampled.sample.indices)
        #expect(abs(sampled.sample.sampleFPS - 2) < 1e-12)
    }

    @Test func brokenFilesAreTypedErrors() throws {
        func error(_ file: String) -> VideoError? {
            do { _ = try VideoFile(path: fixture.path(file)); return nil } catch let e as VideoError { return e } catch
            { return nil }
        }
        #expect(error("empty.mp4") == .empty(file: fixture.path("empty.mp4")))
        #expect(error("audio.mkv") == .noVideoStream(file: fixture.path("audio.mkv")))
        #expect(
            error("no-such-file.mp4") == .cannotOpen(file: fixture.path("no-such-file.mp4"), reason: "no such file"))
        if case .unrecognized? = error("garbage.mp4") {
        } else {
            Issue.record("garbage.mp4: \(String(describing: error("garbage.mp4")))")
        }
        if case .unrecognized? = error("truncated.mp4") {
        } else {
            Issue.record("truncated.mp4: \(String(describing: error("truncated.mp4")))")
        }
        let video = try VideoFile(path: fixture.path("h264.mp4"))
        #expect(throws: VideoError.frameOutOfRange(file: fixture.path("h264.mp4"), index: 100, frameCount: 100)) {
            try video.frames(at: [3, 100])
        }
        #expect(error("garbage.mp4")?.description.contains("garbage.mp4") == true)
    }
}

@Suite struct FrameSamplingMatchesPythonReference {
    @Test func policyMatchesReferenceOnEveryCase() throws {
        let f = try Fixture.load("frame-sampling")
        let cases = try f.file.integers("cases").values.map { Int($0) }
        let fps = try f.file.doubles("fps"), rates = try f.file.doubles("video_fps")
        let indices = try f.file.integers("indices").values.map { Int($0) }
        let offsets = try f.file.integers("offsets").values.map { Int($0) }
        let stamps = try f.file.doubles("timestamps"), sampleFPS = try f.file.doubles("sample_fps")
        var misses = 0
        for i in 0..<fps.count {
            let c = Array(cases[6 * i..<6 * i + 6])
            let policy = FrameSamplingPolicy(
                fps: fps[i], minFrames: c[3], maxFrames: c[4] < 0 ? nil : c[4], numFrames: c[1] == 1 ? c[2] : nil)
            let want = Array(indices[offsets[i]..<offsets[i + 1]])
            do {
                let s = try sampleFrames(totalFrames: c[0], videoFPS: rates[i], policy: policy)
                let ok =
                    c[5] == 0 && s.indices == want && s.timestamps == Array(stamps[offsets[i]..<offsets[i + 1]])
                    && abs(s.sampleFPS - sampleFPS[i]) <= 1e-12 * sampleFPS[i]
                if !ok {
                    misses += 1;
                    if misses <= 5 {
                        Issue.record(
                            "case \(i) \(c) fps \(fps[i]) rate \(rates[i]): \(s.indices.prefix(8)) vs \(want.prefix(8))"
                        )
                    }
                }
            } catch is FrameSamplingError {
                if c[5] != 1 {
                    misses += 1; Issue.record("case \(i) \(c): Swift refused, reference chose \(want.count) frames")
                }
            }
        }
        #expect(misses == 0)
        #expect(fps.count >= 1000)
    }

    @Test func uniformIndicesRoundHalfToEven() {
        // 3 frames of 6: 0, 2.5, 5 → 0, 2, 5; of 8: 0, 3.5, 7 → 0, 4, 7.
        #expect(uniformFrameIndices(totalFrames: 6, count: 3) == [0, 2, 5])
        #expect(uniformFrameIndices(totalFrames: 8, count: 3) == [0, 4, 7])
        #expect(throws: FrameSamplingError.countOutOfRange(count: 0, totalFrames: 1)) {
            try sampleFrames(totalFrames: 1, videoFPS: 25)
        }
        // An odd count from ADS is kept: 5 of 100 → round(k · 99 / 4) = 0, 24.75, 49.5, 74.25, 99.
        let odd = try? sampleFrames(totalFrames: 100, videoFPS: 25, exactCount: 5)
        #expect(odd?.indices == [0, 25, 50, 74, 99] && odd?.timestamps == [0, 1, 2, 2.96, 3.96])
    }
}
