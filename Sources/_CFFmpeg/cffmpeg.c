// _CFFmpeg: macros as functions and the RGB conversion helper (see include/cffmpeg.h).
#include "cffmpeg.h"
#include <time.h>
#include <errno.h>
#include <string.h>

int eaglet_averror(int errnum) { return AVERROR(errnum); }
int eaglet_averror_eagain(void) { return AVERROR(EAGAIN); }
int eaglet_averror_eof(void) { return AVERROR_EOF; }
int64_t eaglet_nopts_value(void) { return AV_NOPTS_VALUE; }

void eaglet_error_string(int error, char *buffer, size_t size) {
    if (size == 0) return;
    if (av_strerror(error, buffer, size) < 0) snprintf(buffer, size, "FFmpeg error %d", error);
    buffer[size - 1] = 0;
}

void eaglet_ffmpeg_quiet(void) { av_log_set_level(AV_LOG_FATAL); }

void eaglet_rgb_converter_free(eaglet_rgb_converter *c) {
    if (c->sws) sws_freeContext(c->sws);
    if (c->scratch[0]) av_freep(&c->scratch[0]);
    memset(c, 0, sizeof *c);
}

int eaglet_rgb_convert(eaglet_rgb_converter *c, const AVFrame *f, uint8_t *out) {
    if (f->width <= 0 || f->height <= 0) return AVERROR(EINVAL);
    if (!c->sws || c->width != f->width || c->height != f->height || c->format != f->format) {
        eaglet_rgb_converter_free(c);
        // Same size, so only the colour conversion runs; accurate rounding for stable pixel values.
        c->sws = sws_getContext(f->width, f->height, (enum AVPixelFormat)f->format, f->width, f->height,
                                AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
        if (!c->sws) return AVERROR(EINVAL);
        int r = av_image_alloc(c->scratch, c->scratch_linesize, f->width, f->height, AV_PIX_FMT_RGB24, 64);
        if (r < 0) { eaglet_rgb_converter_free(c); return r; }
        c->width = f->width; c->height = f->height; c->format = f->format;
    }
    int r = sws_scale(c->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, c->scratch, c->scratch_linesize);
    if (r < 0) return r;
    size_t row = (size_t)f->width * 3;
    for (int y = 0; y < f->height; y++) memcpy(out + (size_t)y * row, c->scratch[0] + (size_t)y * c->scratch_linesize[0], row);
    return 0;
}

const char *const eaglet_video_demuxers = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi";

static double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int past_deadline(void *opaque) {
    const double *deadline = opaque;
    return *deadline > 0 && monotonic_seconds() > *deadline;
}

AVFormatContext *eaglet_format_with_deadline(double seconds, void **deadline) {
    double *d = av_malloc(sizeof(double));
    AVFormatContext *f = avformat_alloc_context();
    if (!d || !f) {
        av_free(d);
        avformat_free_context(f);
        return NULL;
    }
    *d = monotonic_seconds() + seconds;
    f->interrupt_callback.callback = past_deadline;
    f->interrupt_callback.opaque = d;
    *deadline = d;
    return f;
}

void eaglet_format_set_deadline(void *deadline, double seconds) {
    if (deadline) *(double *)deadline = seconds > 0 ? monotonic_seconds() + seconds : 0;
}

void eaglet_format_free_deadline(void *deadline) { av_free(deadline); }

int eaglet_averror_exit(void) { return AVERROR_EXIT; }
