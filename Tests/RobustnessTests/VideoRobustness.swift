// Bad videos and frame requests: empty and garbage files, no video stream, frame tables and frame sizes
// past their limits, and sampling requests whose counts would overflow.
import Foundation
import Testing
import Video
import _TestSupport

@Suite struct VideoRobustness {
    let dir = "\(repositoryRoot)/Fixtures/test-videos"
    func error(_ path: String, maxFrames: Int = VideoFile.defaultMaxFrames, maxPixels: Int = 89_478_485) -> VideoError?
    {
        thrown { _ = try VideoFile(path: path, maxFrames: maxFrames, maxPixels: maxPixels) } as? VideoError
    }

    @Test func emptyGarbageAndAudioOnly() {
        #expect(error(scratch("video/empty.mp4", [])) == .empty(file: "\(scratchDirectory)/video/empty.mp4"))
        let junk = scratch("video/junk.mkv", Array(repeating: 0x5A, count: 4096))
        guard case .unrecognized(junk, _)? = error(junk) else {
            Issue.record("junk: expected unrecognized, got \(String(describing: error(junk)))"); return
        }
        #expect(error("\(dir)/audio.mkv") == .noVideoStream(file: "\(dir)/audio.mkv"))
        guard case .unrecognized? = error("\(dir)/truncated.mp4") else {
            Issue.record("truncated.mp4: expected unrecognized"); return
        }
    }

    @Test func frameCountAndFrameSizeLimits() throws {
        let h264 = "\(dir)/h264.mp4"
        #expect(error(h264, maxFrames: 10) == .tooManyFrames(file: h264, limit: 10))
        let info = try VideoFile(path: h264).info
        #expect(
            error(h264, maxPixels: 100)
                == .tooManyPixels(file: h264, width: info.width, height: info.height, limit: 100))
    }

    @Test func absurdSamplingRequestsAreTypedErrors() {
        // Once: 2 · round(Int.max / 2) overflowed.
        #expect(
            throws: FrameSamplingError.invalid(
                field: "--num-frames", reason: "must be at most \(FrameSamplingPolicy.maxCount) (got \(Int.max))")
        ) {
            try sampleFrames(totalFrames: 100, videoFPS: 25, policy: FrameSamplingPolicy(numFrames: Int.max))
        }
        #expect(
            throws: FrameSamplingError.invalid(
                field: "--max-frames", reason: "must be at most \(FrameSamplingPolicy.maxCount) (got \(Int.max))")
        ) {
            try sampleFrames(totalFrames: 100, videoFPS: 25, policy: FrameSamplingPolicy(maxFrames: Int.max))
        }
        #expect(throws: FrameSamplingError.invalid(field: "video fps", reason: "must be a positive number (got nan)")) {
            try sampleFrames(totalFrames: 100, videoFPS: .nan)
        }
    }
}
