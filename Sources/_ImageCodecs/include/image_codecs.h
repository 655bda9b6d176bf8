// _ImageCodecs: a small C shim over libpng and libjpeg(-turbo) for the Imaging module.
//
// What it is: decoding of a whole PNG or JPEG held in memory into a packed buffer of samples, and
// encoding of 8-bit RGB into PNG. Both libraries report errors by longjmp (libjpeg's default handler even
// calls exit); here every error path is caught with setjmp inside the shim and comes back as a status
// code plus a message, so Swift never sees a longjmp.
//
// What it is not: a colour-conversion layer. The shim hands back the samples as the file stores them
// (palette and low-bit grey expanded to 8 bits, 16-bit samples kept big-endian as 16 bits, JPEG YCbCr
// converted to RGB by libjpeg); the PIL-compatible conversion to RGB8 lives in Swift (Imaging/Decode.swift).
#ifndef EAGLET_IMAGE_CODECS_H
#define EAGLET_IMAGE_CODECS_H

/// Bounds on what a decoder will do for one file (docs/robustness.md): scans of a progressive JPEG, ancillary PNG
/// chunks kept, and the bytes one compressed ancillary PNG chunk may inflate to.
#define EAGLET_JPEG_MAX_SCANS 500
#define EAGLET_PNG_MAX_CHUNKS 1000
#define EAGLET_PNG_MAX_CHUNK_BYTES (8 * 1024 * 1024)

#include <stddef.h>
#include <stdint.h>

/// Status codes of the shim.
enum {
    EAGLET_CODEC_OK = 0,
    EAGLET_CODEC_TRUNCATED = 1,   ///< the data ended before the image did
    EAGLET_CODEC_CORRUPT = 2,     ///< the library rejected the data (message says why)
    EAGLET_CODEC_TOO_LARGE = 3,   ///< width·height exceeds the caller's pixel limit
    EAGLET_CODEC_NO_MEMORY = 4,
    EAGLET_CODEC_ZERO_SIZE = 5,
};

/// A decoded image: `height` rows of `width · channels` samples of `bit_depth` bits (8, or 16 stored
/// big-endian), rows packed without padding. `pixels` and `exif` are malloc'd; free with
/// `eaglet_raw_image_free`.
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;       ///< 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (PNG) or CMYK (JPEG)
    int bit_depth;      ///< 8 or 16
    int color_type;     ///< PNG: the IHDR colour type; JPEG: the libjpeg colour space of the file
    int adobe_inverted; ///< JPEG CMYK/YCCK from an Adobe APP14 file: samples are stored inverted
    uint8_t *pixels;
    uint8_t *exif;      ///< the raw TIFF-format EXIF block (PNG eXIf chunk, JPEG APP1 after "Exif\0\0"), or NULL
    size_t exif_size;
} eaglet_raw_image;

void eaglet_raw_image_free(eaglet_raw_image *image);

/// Decodes a PNG. Refuses (EAGLET_CODEC_TOO_LARGE) before allocating when width·height > max_pixels.
/// On failure writes a NUL-terminated message of at most message_size bytes.
int eaglet_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                      eaglet_raw_image *out, char *message, size_t message_size);

/// Decodes a JPEG (baseline or progressive; grey, YCbCr, RGB, CMYK, YCCK). Same contract as above.
int eaglet_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                       eaglet_raw_image *out, char *message, size_t message_size);

/// Encodes 8-bit RGB (rows packed, width·3 bytes each) as a PNG. On success *png / *png_size hold a
/// malloc'd buffer the caller frees with eaglet_buffer_free.
int eaglet_png_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height,
                           uint8_t **png, size_t *png_size, char *message, size_t message_size);

void eaglet_buffer_free(void *buffer);

#endif
