// _CFFmpeg: the few pieces of FFmpeg (libavformat, libavcodec, libswscale, libavutil from Debian) that
// Swift cannot call directly, for the Video module.
//
// What it is: the function-like and cast macros (AVERROR(e), AVERROR_EOF, AV_NOPTS_VALUE) as functions,
// av_strerror into a caller's buffer, a quiet log level, and one helper that converts a decoded frame of
// any pixel format to packed 8-bit RGB (swscale wants arrays of plane pointers, which read poorly from
// Swift). Everything else — opening, the packet pass, seeking, decoding — is plain FFmpeg API called
// from Swift (Sources/Video/VideoFile.swift).
//
// What it is not: a wrapper of FFmpeg. The headers below are re-exported so Swift sees the real API.
#ifndef EAGLET_CFFMPEG_H
#define EAGLET_CFFMPEG_H

#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <stdint.h>
#include <stddef.h>

/// AVERROR(e) for a POSIX errno value e (FFmpeg error codes are negative errnos).
int eaglet_averror(int errnum);
/// AVERROR(EAGAIN): the decoder wants more input, or has no frame ready.
int eaglet_averror_eagain(void);
/// AVERROR_EOF: end of file, or a drained decoder.
int eaglet_averror_eof(void);
/// AVERROR_EXIT: an interrupt callback stopped the call.
int eaglet_averror_exit(void);
/// AV_NOPTS_VALUE: "no timestamp".
int64_t eaglet_nopts_value(void);
/// av_strerror into `buffer` (always NUL-terminated).
void eaglet_error_string(int error, char *buffer, size_t size);
/// Only FFmpeg's fatal messages reach stderr (Eaglet reports errors itself).
void eaglet_ffmpeg_quiet(void);

/// The demuxers a video may be read with: each reads one self-contained file and never opens another (no
/// playlists, concat lists, manifests, image sequences or text-as-picture). Comma-separated, as
/// AVFormatContext.format_whitelist takes it.
extern const char *const eaglet_video_demuxers;

/// A format context whose opening and probing give up once `seconds` of wall-clock time have passed (an
/// interrupt callback on the monotonic clock; FFmpeg then fails with AVERROR_EXIT). NULL when out of memory.
/// The deadline lives in the context's `opaque`, freed by `eaglet_format_free_deadline` (call it after
/// avformat_close_input, or on the context avformat_open_input freed on failure — keep the returned pointer).
AVFormatContext *eaglet_format_with_deadline(double seconds, void **deadline);
void eaglet_format_free_deadline(void *deadline);
/// Moves the deadline `seconds` from now (0 switches it off, for decoding after opening).
void eaglet_format_set_deadline(void *deadline, double seconds);

/// Converts decoded frames to packed RGB24, keeping one swscale context and one aligned scratch image
/// between calls (re-made when the size or pixel format changes).
typedef struct {
    struct SwsContext *sws;
    uint8_t *scratch[4];
    int scratch_linesize[4];
    int width, height, format;
} eaglet_rgb_converter;

/// Writes `frame` as width·height·3 bytes (rows packed, no padding) to `out`. Returns 0 or a negative
/// AVERROR code.
int eaglet_rgb_convert(eaglet_rgb_converter *converter, const AVFrame *frame, uint8_t *out);
void eaglet_rgb_converter_free(eaglet_rgb_converter *converter);

#endif
