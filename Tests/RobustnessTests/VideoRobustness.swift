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

    /// Containers that would make FFmpeg open other files — an HLS playlist (named .mp4) naming a real video by
    /// absolute path, an ffconcat list naming a sibling, a live playlist naming itself, a DASH manifest, a text file
    /// (the "tty" demuxer) — are refused as unreadable, before any other file is opened (issue 23, items 1–2).
    @Test func containersThatOpenOtherFilesAreRefused() {
        let h264 = "\(dir)/h264.mp4"
        let cases: [(String, String)] = [
            ("video/hls.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n\(h264)\n#EXT-X-ENDLIST\n"),
            ("video/live.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nlive.m3u8\n"),
            ("video/concat.mp4", "ffconcat version 1.0\nfile \(h264)\n"),
            (
                "video/dash.mpd",
                "<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\"><BaseURL>\(dir)/</BaseURL><Period><AdaptationSet><Representation id=\"1\" bandwidth=\"1\"><BaseURL>h264.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>"
            ),
            ("video/notes.txt", "hello world\nthis is text, not pictures\n")
        ]
        for (name, text) in cases {
            let path = scratch(name, Array(text.utf8))
            let e = error(path)
            guard case .unrecognized? = e else {
                Issue.record("\(name): expected unrecognized, got \(String(describing: e))"); continue
            }
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
