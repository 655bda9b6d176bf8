// JPEG through libjpeg(-turbo), with the library's error_exit (which would call exit) replaced by a
// longjmp back into this shim (see image_codecs.h).
#include "image_codecs.h"

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int truncated;
    char text[JMSG_LENGTH_MAX];
} jpeg_error_state;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_error_state *e = (jpeg_error_state *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->text);
    longjmp(e->jump, 1);
}

// Warnings: libjpeg reports running out of data as a warning (JWRN_JPEG_EOF) and pads with an EOI;
// PIL refuses such files ("image file is truncated"), so remember it and fail afterwards. Other
// warnings (corrupt-but-decodable data) are ignored, as PIL ignores them.
static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_error_state *e = (jpeg_error_state *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

// A CPU-time bomb: a small progressive JPEG can hold thousands of scans, each costing a pass over the image
// (5000 empty scans in 645 KB took 63 s). Real encoders write at most a few dozen; more than EAGLET_JPEG_MAX_SCANS
// is refused through the progress monitor, libjpeg-turbo's own recommended guard.
static void on_progress(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > EAGLET_JPEG_MAX_SCANS) {
        jpeg_error_state *e = (jpeg_error_state *)cinfo->err;
        snprintf(e->text, sizeof(e->text), "more than %d scans", EAGLET_JPEG_MAX_SCANS);
        longjmp(e->jump, 1);
    }
}

static void set_message(char *message, size_t message_size, const char *text) {
    if (message && message_size > 0) snprintf(message, message_size, "%s", text);
}

int eaglet_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                       eaglet_raw_image *out, char *message, size_t message_size) {
    memset(out, 0, sizeof(*out));
    struct jpeg_decompress_struct cinfo;
    jpeg_error_state err;
    memset(&err, 0, sizeof(err));
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = on_error_exit;
    err.base.emit_message = on_emit_message;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile exif = NULL;
    volatile int status = EAGLET_CODEC_CORRUPT;
    if (setjmp(err.jump)) {
        if (err.text[0]) set_message(message, message_size, err.text);
        free(pixels);
        free(exif);
        jpeg_destroy_decompress(&cinfo);
        return err.truncated ? EAGLET_CODEC_TRUNCATED : status;
    }
    jpeg_create_decompress(&cinfo);
    struct jpeg_progress_mgr progress;
    memset(&progress, 0, sizeof(progress));
    progress.progress_monitor = on_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    if (err.truncated) { set_message(message, message_size, "data ends inside the header"); longjmp(err.jump, 1); }
    if (cinfo.image_width == 0 || cinfo.image_height == 0) {
        set_message(message, message_size, "zero width or height");
        status = EAGLET_CODEC_ZERO_SIZE;
        longjmp(err.jump, 1);
    }
    if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
        set_message(message, message_size, "too many pixels");
        status = EAGLET_CODEC_TOO_LARGE;
        longjmp(err.jump, 1);
    }
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            exif = (uint8_t *)malloc(m->data_length - 6);
            if (exif) { memcpy(exif, m->data + 6, m->data_length - 6); out->exif_size = m->data_length - 6; }
            break;
        }
    }
    // What PIL asks of libjpeg: grey stays grey, YCbCr becomes RGB, CMYK/YCCK come out as CMYK;
    // the default (ISLOW) DCT and fancy upsampling.
    int in_space = cinfo.jpeg_color_space;
    switch (in_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK: case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; break;
    default: cinfo.out_color_space = JCS_RGB; break;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    int channels = cinfo.output_components;
    size_t rowbytes = (size_t)cinfo.output_width * (size_t)channels;
    pixels = (uint8_t *)malloc(rowbytes * cinfo.output_height);
    if (!pixels) {
        set_message(message, message_size, "out of memory");
        status = EAGLET_CODEC_NO_MEMORY;
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * rowbytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (err.truncated) { set_message(message, message_size, "data ends inside the image"); longjmp(err.jump, 1); }
    }
    jpeg_finish_decompress(&cinfo);
    if (err.truncated) { set_message(message, message_size, "data ends before the end-of-image marker"); longjmp(err.jump, 1); }

    out->width = cinfo.output_width;
    out->height = cinfo.output_height;
    out->channels = channels;
    out->bit_depth = 8;
    out->color_type = in_space;
    out->adobe_inverted = cinfo.saw_Adobe_marker ? 1 : 0;
    out->pixels = pixels;
    out->exif = exif;
    jpeg_destroy_decompress(&cinfo);
    return EAGLET_CODEC_OK;
}
