// Reading video files with FFmpeg's libraries: a packet-only pass for the frame table, then sparse
// decoding of just the frames asked for.
//
// Opening (`VideoFile(path:)`) reads every packet of the best video stream once without decoding it
// (libavformat's demuxer only): each packet is one frame, carrying its presentation timestamp (pts) and
// a keyframe flag. Sorting the pts gives the frames in presentation order, so frame count, every
// frame's timestamp, the duration and the keyframe positions are known even when the container stores
// no frame count (Matroska/WebM do not) or the frame rate varies.
//
// Sparse decoding (`frames(at:)`): for each requested frame, in ascending order, find the last keyframe
// at or before it; if that keyframe lies beyond what the decoder has already reached, seek there
// (av_seek_frame, backward) and flush the decoder; then decode forward, discarding frames until the
// decoded pts equals the target's. Only the requested frames are converted to RGB (swscale). A target
// that decodes past without appearing (an open GOP whose leading B-frames need the previous GOP) makes it
// retry from an earlier keyframe. `framesNaive(at:)` is the plain path: decode every frame from the start.
//
// Shapes: frames are RGBImage (H, W, 3) of the stream's coded display size.
// What it is not: audio, subtitles, rotation metadata, or a frame-accurate writer; and not the sampling
// policy (Sampling.swift).
import Foundation
import Imaging
import _CFFmpeg

/// Why a video could not be read. Every case names the file.
public enum VideoError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(file: String, reason: String)
    /// The file holds no bytes.
    case empty(file: String)
    /// FFmpeg recognises no container format in it (or it is cut before the container's index).
    case unrecognized(file: String, detail: String)
    /// The container holds no video stream (e.g. audio only).
    case noVideoStream(file: String)
    /// FFmpeg has no decoder for the stream's codec.
    case unsupportedCodec(file: String, codec: String)
    /// The video stream holds no frames.
    case noFrames(file: String)
    /// Reading or decoding failed part way.
    case corrupt(file: String, detail: String)
    case frameOutOfRange(file: String, index: Int, frameCount: Int)
    /// The packet pass counted more than `limit` frames (`VideoFile.defaultMaxFrames`).
    case tooManyFrames(file: String, limit: Int)
    /// A frame larger than the pixel limit (`RGBImage.defaultMaxPixels`, as for images).
    case tooManyPixels(file: String, width: Int, height: Int, limit: Int)
    /// Opening and probing took longer than `VideoFile.openSeconds`.
    case tooSlow(file: String, seconds: Double)

    public var description: String {
        switch self {
        case let .cannotOpen(f, r): return "\(f): cannot open video (\(r))"
        case let .empty(f): return "\(f): empty file, expected a video (MP4, MKV, WebM, …)"
        case let .unrecognized(f, d):
            return "\(f): not a video file FFmpeg can read (\(d)); expected MP4, MKV, WebM, AVI, …"
        case let .noVideoStream(f): return "\(f): the file has no video stream (audio only?)"
        case let .unsupportedCodec(f, c): return "\(f): no decoder for the video codec \(c) in this FFmpeg build"
        case let .tooSlow(f, s): return "\(f): opening the video took longer than \(Int(s)) s; refused"
        case let .noFrames(f): return "\(f): the video stream has no frames"
        case let .corrupt(f, d): return "\(f): corrupt video (\(d))"
        case let .frameOutOfRange(f, i, n): return "\(f): frame \(i) requested but the video has frames 0…\(n - 1)"
        case let .tooManyFrames(f, lim):
            return "\(f): the video stream has more than \(lim) frames (the limit; a corrupt file?)"
        case let .tooManyPixels(f, w, h, lim):
            return "\(f): frames of \(w)×\(h) exceed the limit of \(lim) pixels (raise --max-image-pixels to allow it)"
        }
    }
}

extension VideoError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}

/// What the packet pass found.
public struct VideoInfo: Equatable, Sendable {
    public let file: String
    /// Container (demuxer) name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm".
    public let container: String
    public let codec: String
    public let width: Int
    public let height: Int
    /// Frames counted by the packet pass.
    public let frameCount: Int
    /// What the container claims (nil when it stores none, as Matroska).
    public let declaredFrameCount: Int?
    /// The stream's average frame rate (frames per second), else frameCount / duration.
    public let averageFrameRate: Double
    /// Seconds from the first frame's start to the last frame's end.
    public let duration: Double
    /// Each frame's presentation time in seconds from the first frame, presentation order.
    public let timestamps: [Double]
    /// Presentation indices of the keyframes (always includes 0).
    public let keyframes: [Int]
}

/// One decoded frame.
public struct VideoFrame: Equatable, Sendable {
    /// Presentation index (0-based).
    public let index: Int
    /// Seconds from the first frame.
    public let timestamp: Double
    public let image: RGBImage
}

/// An open video: the frame table from the packet pass, and a decoder ready to seek.
public final class VideoFile {
    public let info: VideoInfo
    /// Frames the decoder has produced so far (decoded, whether converted or skipped).
    public private(set) var framesDecoded = 0
    /// Seeks performed so far.
    public private(set) var seeks = 0

    private var format: UnsafeMutablePointer<AVFormatContext>?
    /// The open deadline (`eaglet_format_with_deadline`), switched off after probing; the I/O context keeps a copy of
    /// the interrupt callback, so it lives as long as the format context.
    private var deadline: UnsafeMutableRawPointer?
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var converter = eaglet_rgb_converter()
    private let streamIndex: Int32
    /// Raw pts in presentation order (stream time base).
    private let pts: [Int64]
    private let timeBase: Double
    private var draining = false
    /// pts of the last frame the decoder produced since the last seek (nil right after one).
    private var lastPts: Int64?
    private let maxPixels: Int

    /// Opens `path` and runs the packet pass. `threads` decoding threads: 1 (the default) decodes on
    /// the calling thread; 0 lets FFmpeg choose; more than 1 uses frame and slice threading, which
    /// decodes faster but holds a few frames in flight (flushed at every seek).
    /// Most frames the packet pass accepts: 2²², about 19 hours at 60 fps (the frame table costs 16 bytes a frame).
    public static let defaultMaxFrames = 1 << 22
    /// Wall-clock seconds opening and probing a file may take.
    public static let openSeconds = 10.0

    /// `maxFrames` bounds the frame table, `maxPixels` the size of one frame (checked on the stream's
    /// declared size at open and on every decoded frame).
    public init(
        path: String, threads: Int = 1, maxFrames: Int = VideoFile.defaultMaxFrames,
        maxPixels: Int = RGBImage.defaultMaxPixels
    ) throws {
        eaglet_ffmpeg_quiet()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            var st = stat()
            let loop = stat(path, &st) != 0 && errno == ELOOP
            throw VideoError.cannotOpen(file: path, reason: loop ? "is a loop of symbolic links" : "no such file")
        }
        guard !isDirectory.boolValue else { throw VideoError.cannotOpen(file: path, reason: "is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw VideoError.cannotOpen(file: path, reason: "permission denied")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if size == 0 { throw VideoError.empty(file: path) }

        // Everything is made into locals first and freed by the defer unless the whole pass succeeds.
        var fmt: UnsafeMutablePointer<AVFormatContext>? = nil
        var ctx: UnsafeMutablePointer<AVCodecContext>? = nil
        var pkt: UnsafeMutablePointer<AVPacket>? = av_packet_alloc()
        var frm: UnsafeMutablePointer<AVFrame>? = av_frame_alloc()
        var succeeded = false
        defer {
            if !succeeded {
                av_frame_free(&frm)
                av_packet_free(&pkt)
                avcodec_free_context(&ctx)
                avformat_close_input(&fmt)
            }
        }
        // Only the file protocol, and only demuxers that read one self-contained file
        // (`eaglet_video_demuxers`): an HLS playlist, an ffconcat list, a DASH manifest, an image2 pattern or a
        // text file "video" (all recognised by content, whatever the name) is refused before it can open
        // another file. Opening and probing give up after `openSeconds` (a live playlist or a pipe that never
        // ends cannot hang the caller).
        var options: OpaquePointer? = nil
        av_dict_set(&options, "protocol_whitelist", "file", 0)
        av_dict_set(&options, "format_whitelist", eaglet_video_demuxers, 0)
        defer { av_dict_free(&options) }
        var deadline: UnsafeMutableRawPointer? = nil
        fmt = eaglet_format_with_deadline(VideoFile.openSeconds, &deadline)
        defer { if !succeeded { avformat_close_input(&fmt); eaglet_format_free_deadline(deadline) } }
        guard fmt != nil else { throw VideoError.corrupt(file: path, detail: "out of memory") }
        var r = avformat_open_input(&fmt, path, nil, &options)
        guard r >= 0, let f = fmt else {
            if r == eaglet_averror_exit() { throw VideoError.tooSlow(file: path, seconds: VideoFile.openSeconds) }
            throw VideoError.unrecognized(file: path, detail: ffmpegMessage(r))
        }
        let demuxer = String(cString: f.pointee.iformat.pointee.name)
        guard
            demuxer.split(separator: ",").allSatisfy({
                String(cString: eaglet_video_demuxers).split(separator: ",").contains($0)
            })
        else {
            throw VideoError.unrecognized(
                file: path, detail: "the \(demuxer) format is not read (it can refer to other files)")
        }
        r = avformat_find_stream_info(f, nil)
        guard r >= 0 else {
            if r == eaglet_averror_exit() { throw VideoError.tooSlow(file: path, seconds: VideoFile.openSeconds) }
            throw VideoError.corrupt(file: path, detail: "stream info: \(ffmpegMessage(r))")
        }
        eaglet_format_set_deadline(deadline, 0) // opened and probed: reading and seeking are not timed

        var codec: UnsafePointer<AVCodec>? = nil
        let best = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)
        let streams = (0..<Int(f.pointee.nb_streams)).compactMap { f.pointee.streams[$0] }
        func isPicture(_ s: UnsafeMutablePointer<AVStream>) -> Bool {
            s.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
                && s.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0
        }
        guard best >= 0, let codec, isPicture(streams[Int(best)]) else {
            if let video = streams.first(where: isPicture) {
                throw VideoError.unsupportedCodec(
                    file: path, codec: String(cString: avcodec_get_name(video.pointee.codecpar.pointee.codec_id)))
            }
            throw VideoError.noVideoStream(file: path)
        }
        let stream = streams[Int(best)]
        let declaredWidth = Int(stream.pointee.codecpar.pointee.width),
            declaredHeight = Int(stream.pointee.codecpar.pointee.height)
        guard declaredWidth >= 0, declaredHeight >= 0,
            declaredWidth.multipliedReportingOverflow(by: declaredHeight).partialValue <= maxPixels,
            declaredWidth <= 1 << 20, declaredHeight <= 1 << 20
        else {
            throw VideoError.tooManyPixels(file: path, width: declaredWidth, height: declaredHeight, limit: maxPixels)
        }
        self.maxPixels = maxPixels
        let tb = stream.pointee.time_base
        let timeBase = tb.den == 0 ? 0 : Double(tb.num) / Double(tb.den)

        ctx = avcodec_alloc_context3(codec)
        guard let c = ctx, let packet = pkt, frm != nil else {
            throw VideoError.corrupt(file: path, detail: "out of memory")
        }
        c.pointee.thread_count = Int32(clamping: max(0, threads))
        if threads != 1 { c.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE }
        guard avcodec_parameters_to_context(c, stream.pointee.codecpar) >= 0 else {
            throw VideoError.corrupt(file: path, detail: "codec parameters rejected")
        }
        r = avcodec_open2(c, codec, nil)
        guard r >= 0 else { throw VideoError.unsupportedCodec(file: path, codec: String(cString: codec.pointee.name)) }

        // The packet pass: timestamps and keyframe flags, no decoding.
        let nopts = eaglet_nopts_value(), eof = eaglet_averror_eof()
        var stamps = [Int64](), keys = [Int64](), lastDuration: Int64 = 0
        while true {
            r = av_read_frame(f, packet)
            if r == eof { break }
            guard r >= 0 else {
                throw VideoError.corrupt(file: path, detail: "reading packet \(stamps.count): \(ffmpegMessage(r))")
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == best else { continue }
            guard stamps.count < maxFrames else { throw VideoError.tooManyFrames(file: path, limit: maxFrames) }
            var ts = packet.pointee.pts != nopts ? packet.pointee.pts : packet.pointee.dts
            if ts == nopts { // no timestamps: count on
                let (next, overflow) = (stamps.last ?? -1).addingReportingOverflow(max(lastDuration, 1))
                guard !overflow else {
                    throw VideoError.corrupt(file: path, detail: "timestamps overflow after packet \(stamps.count)")
                }
                ts = next
            }
            stamps.append(ts)
            lastDuration = packet.pointee.duration
            if packet.pointee.flags & AV_PKT_FLAG_KEY != 0 { keys.append(ts) }
        }
        guard !stamps.isEmpty else { throw VideoError.noFrames(file: path) }
        stamps.sort()
        for i in 1..<stamps.count where stamps[i] == stamps[i - 1] {
            throw VideoError.corrupt(file: path, detail: "two frames share the timestamp \(stamps[i])")
        }
        let keyIndices = Set(keys.compactMap { k in Self.search(stamps, k) } + [0]).sorted()

        let count = stamps.count
        let first = stamps[0]
        // pts are any 64-bit values a file stores: a span that overflows is a corrupt file, not a trap.
        guard !stamps[stamps.count - 1].subtractingReportingOverflow(first).overflow else {
            throw VideoError.corrupt(
                file: path, detail: "timestamps span more than 2⁶³ ticks (\(first) to \(stamps[stamps.count - 1]))")
        }
        let timestamps = stamps.map { Double($0 - first) * timeBase }
        func rate(_ q: AVRational) -> Double? { q.num > 0 && q.den > 0 ? Double(q.num) / Double(q.den) : nil }
        let declaredRate = rate(stream.pointee.avg_frame_rate) ?? rate(stream.pointee.r_frame_rate)
        let span = timestamps.last ?? 0
        let lastFrame =
            lastDuration > 0
            ? Double(lastDuration) * timeBase
            : (count > 1 ? span / Double(count - 1) : (declaredRate.map { 1 / $0 } ?? 0))
        let duration = span + lastFrame
        let averageRate = declaredRate ?? (duration > 0 ? Double(count) / duration : 1)
        let nb = Int(stream.pointee.nb_frames)
        info = VideoInfo(
            file: path, container: String(cString: f.pointee.iformat.pointee.name),
            codec: String(cString: avcodec_get_name(stream.pointee.codecpar.pointee.codec_id)),
            width: Int(stream.pointee.codecpar.pointee.width), height: Int(stream.pointee.codecpar.pointee.height),
            frameCount: count, declaredFrameCount: nb > 0 ? nb : nil, averageFrameRate: averageRate,
            duration: duration, timestamps: timestamps, keyframes: keyIndices)
        pts = stamps
        streamIndex = best
        self.timeBase = timeBase
        format = f
        self.deadline = deadline
        decoder = c
        self.packet = packet
        frame = frm
        succeeded = true
        try seek(toPts: first)
        seeks = 0
    }

    deinit {
        eaglet_rgb_converter_free(&converter)
        av_frame_free(&frame)
        av_packet_free(&packet)
        avcodec_free_context(&decoder)
        avformat_close_input(&format)
        eaglet_format_free_deadline(deadline)
    }

    /// Index of `value` in the sorted `array`, or nil.
    static func search(_ array: [Int64], _ value: Int64) -> Int? {
        var lo = 0, hi = array.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if array[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo < array.count && array[lo] == value ? lo : nil
    }

    private func seek(toPts target: Int64) throws {
        guard let format, let decoder else { return }
        var r = av_seek_frame(format, streamIndex, target, AVSEEK_FLAG_BACKWARD)
        if r < 0 { r = avformat_seek_file(format, streamIndex, Int64.min, target, target, 0) }
        if r < 0 { r = avformat_seek_file(format, -1, Int64.min, 0, 0, 0) } // last resort: the start, by bytes or time
        guard r >= 0 else { throw VideoError.corrupt(file: info.file, detail: "cannot seek: \(ffmpegMessage(r))") }
        avcodec_flush_buffers(decoder)
        draining = false
        lastPts = nil
        seeks += 1
    }

    /// Decodes the next frame into `frame`; returns its pts, or nil when the stream is exhausted.
    private func decodeNext() throws -> Int64? {
        guard let format, let decoder, let packet, let frame else { return nil }
        let eof = eaglet_averror_eof(), again = eaglet_averror_eagain(), nopts = eaglet_nopts_value()
        while true {
            let r = avcodec_receive_frame(decoder, frame)
            if r == 0 {
                framesDecoded += 1
                let ts =
                    frame.pointee.best_effort_timestamp != nopts
                    ? frame.pointee.best_effort_timestamp : frame.pointee.pts
                lastPts = ts
                return ts
            }
            if r == eof { return nil }
            guard r == again else { throw VideoError.corrupt(file: info.file, detail: "decoding: \(ffmpegMessage(r))") }
            if draining { return nil }
            // The decoder wants input: the next packet of our stream, or the end-of-stream signal.
            while true {
                let rr = av_read_frame(format, packet)
                if rr < 0 {
                    guard rr == eof else {
                        throw VideoError.corrupt(file: info.file, detail: "reading: \(ffmpegMessage(rr))")
                    }
                    avcodec_send_packet(decoder, nil)
                    draining = true
                    break
                }
                defer { av_packet_unref(packet) }
                if packet.pointee.stream_index == streamIndex {
                    _ = avcodec_send_packet(decoder, packet) // a damaged packet is skipped; its frame goes missing
                    break
                }
            }
        }
    }

    /// The current frame as RGB.
    private func convertCurrent() throws -> RGBImage {
        guard let frame else { throw VideoError.corrupt(file: info.file, detail: "no frame") }
        let w = Int(frame.pointee.width), h = Int(frame.pointee.height)
        guard w > 0, h > 0 else {
            throw VideoError.corrupt(file: info.file, detail: "decoded a frame of \(w)×\(h) pixels")
        }
        guard w.multipliedReportingOverflow(by: h).partialValue <= maxPixels, w <= 1 << 20, h <= 1 << 20 else {
            throw VideoError.tooManyPixels(file: info.file, width: w, height: h, limit: maxPixels)
        }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let r = out.withUnsafeMutableBufferPointer { eaglet_rgb_convert(&converter, frame, $0.baseAddress) }
        guard r >= 0 else { throw VideoError.corrupt(file: info.file, detail: "RGB conversion: \(ffmpegMessage(r))") }
        return RGBImage(width: w, height: h, pixels: out)
    }

    private func checkIndices(_ indices: [Int]) throws {
        for i in indices where i < 0 || i >= info.frameCount {
            throw VideoError.frameOutOfRange(file: info.file, index: i, frameCount: info.frameCount)
        }
    }

    /// The last keyframe position (into info.keyframes) at or before frame `index`.
    private func keyframePosition(atOrBefore index: Int) -> Int {
        var lo = 0, hi = info.keyframes.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if info.keyframes[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Frames `indices` (presentation order, any order, repeats allowed), decoded sparsely: seek to the
    /// keyframe before each target when that skips work, decode forward to it, convert only the targets.
    /// `progress(done, total)` is called after each distinct frame. Holds every frame in memory (512
    /// frames of 1080p are 3 GB); `forEachFrame` streams them instead.
    public func frames(at indices: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> [VideoFrame] {
        var decoded = [Int: VideoFrame]()
        try forEachFrame(at: indices, progress: progress) { decoded[$0.index] = $0 }
        return indices.map { decoded[$0]! } // forEachFrame delivered every distinct index
    }

    /// The sparse path, streaming: calls `body` once per distinct index, in ascending order, with the
    /// frame converted to RGB; nothing is kept after `body` returns.
    public func forEachFrame(
        at indices: [Int], progress: ((Int, Int) -> Void)? = nil,
        _ body: (VideoFrame) throws -> Void
    ) throws {
        try checkIndices(indices)
        let targets = Set(indices).sorted()
        for (done, t) in targets.enumerated() {
            let target = pts[t]
            var keyPos = keyframePosition(atOrBefore: t)
            if lastPts == nil || pts[info.keyframes[keyPos]] > lastPts! || lastPts! >= target {
                try seek(toPts: pts[info.keyframes[keyPos]])
            }
            var retries = 0
            while true {
                let got = try decodeNext()
                if got == target { break }
                if let got, got < target { continue }
                // Decoded past the target (or hit the end) without seeing it: start from an earlier keyframe.
                retries += 1
                guard retries <= 3 else {
                    throw VideoError.corrupt(file: info.file, detail: "frame \(t) (pts \(target)) could not be decoded")
                }
                keyPos = retries == 3 ? 0 : max(0, keyPos - 1)
                try seek(toPts: retries == 3 ? pts[0] : pts[info.keyframes[keyPos]])
            }
            try body(VideoFrame(index: t, timestamp: info.timestamps[t], image: try convertCurrent()))
            progress?(done + 1, targets.count)
        }
    }

    /// The plain path: decode every frame from the start and keep the requested ones.
    public func framesNaive(at indices: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> [VideoFrame] {
        try checkIndices(indices)
        let wanted = Set(indices)
        var decoded = [Int: VideoFrame]()
        try seek(toPts: pts[0])
        var count = 0
        while let got = try decodeNext() {
            count += 1
            if let i = Self.search(pts, got), wanted.contains(i), decoded[i] == nil {
                decoded[i] = VideoFrame(index: i, timestamp: info.timestamps[i], image: try convertCurrent())
            }
            if count % 64 == 0 { progress?(min(count, info.frameCount), info.frameCount) }
        }
        progress?(info.frameCount, info.frameCount)
        lastPts = nil // at the end; the next sparse request seeks
        guard decoded.count == wanted.count else {
            let missing = wanted.subtracting(decoded.keys).sorted()
            throw VideoError.corrupt(
                file: info.file, detail: "frames \(missing.prefix(10)) never came out of the decoder")
        }
        return indices.map { decoded[$0]! }
    }
}

/// FFmpeg's text for an error code.
func ffmpegMessage(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    eaglet_error_string(code, &buffer, buffer.count)
    return String(cString: buffer)
}
