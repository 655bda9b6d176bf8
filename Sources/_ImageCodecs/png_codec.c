// PNG through libpng, with libpng's longjmp error path caught here (see image_codecs.h).
#include "image_codecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    int truncated;
    char *message;
    size_t message_size;
} png_reader;

static void set_message(char *message, size_t message_size, const char *text) {
    if (message && message_size > 0) snprintf(message, message_size, "%s", text);
}

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    png_reader *r = (png_reader *)png_get_io_ptr(png);
    if (r->size - r->offset < length) {
        r->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, r->data + r->offset, length);
    r->offset += length;
}

static void on_error(png_structp png, png_const_charp text) {
    png_reader *r = (png_reader *)png_get_error_ptr(png);
    if (r) set_message(r->message, r->message_size, text);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

void eaglet_raw_image_free(eaglet_raw_image *image) {
    if (!image) return;
    free(image->pixels);
    free(image->exif);
    image->pixels = NULL;
    image->exif = NULL;
}

void eaglet_buffer_free(void *buffer) { free(buffer); }

int eaglet_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                      eaglet_raw_image *out, char *message, size_t message_size) {
    memset(out, 0, sizeof(*out));
    png_reader reader = {data, size, 0, 0, message, message_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_error, on_warning);
    if (!png) { set_message(message, message_size, "cannot create libpng reader"); return EAGLET_CODEC_NO_MEMORY; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_size, "cannot create libpng info");
        return EAGLET_CODEC_NO_MEMORY;
    }
    // Locals changed after setjmp and read after a longjmp must be volatile.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = EAGLET_CODEC_CORRUPT;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return reader.truncated ? EAGLET_CODEC_TRUNCATED : status;
    }
    png_set_read_fn(png, &reader, read_from_memory);
    // PIL keeps going past ancillary-chunk CRC errors only in some cases; libpng's defaults (critical
    // chunk CRC errors are fatal) are what we use. Allow huge dimensions through libpng's own limit so
    // that our limit (below) is the one that speaks.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    // Decompression bombs in ancillary chunks: text chunks (tEXt, zTXt, iTXt) are never read (Eaglet has no use
    // for them) and skipped unparsed; at most EAGLET_PNG_MAX_CHUNKS ancillary chunks are kept, and no ancillary
    // chunk may decompress to more than EAGLET_PNG_MAX_CHUNK_BYTES (a 7.7 MB file of 1000 zTXt chunks once
    // inflated to 7.8 GB).
    static const png_byte text_chunks[] = {'t', 'E', 'X', 't', 0, 'z', 'T', 'X', 't', 0, 'i', 'T', 'X', 't', 0};
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, text_chunks, 3);
    png_set_chunk_cache_max(png, EAGLET_PNG_MAX_CHUNKS);
    png_set_chunk_malloc_max(png, EAGLET_PNG_MAX_CHUNK_BYTES);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if (width == 0 || height == 0) {
        set_message(message, message_size, "zero width or height");
        status = EAGLET_CODEC_ZERO_SIZE;
        png_longjmp(png, 1);
    }
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        set_message(message, message_size, "too many pixels");
        status = EAGLET_CODEC_TOO_LARGE;
        png_longjmp(png, 1);
    }
    // Transformations: palette → RGB(A), grey 1/2/4 bits → 8 bits (scaled: 1 bit ×255, 2 bits ×85,
    // 4 bits ×17, as PIL's "1", "L;2", "L;4" unpackers do). 16-bit samples stay 16-bit (Swift decides
    // how PIL would narrow them). Gamma, sRGB and ICC chunks are ignored, as PIL ignores them.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)width * (size_t)channels * (size_t)(depth / 8)) {
        set_message(message, message_size, "unexpected row layout after libpng transformations");
        png_longjmp(png, 1);
    }
    pixels = (uint8_t *)malloc(rowbytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) {
        set_message(message, message_size, "out of memory");
        status = EAGLET_CODEC_NO_MEMORY;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, info);

    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = depth;
    out->color_type = color_type;
    out->adobe_inverted = 0;
    out->pixels = pixels;
#ifdef PNG_eXIf_SUPPORTED
    png_bytep exif = NULL;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif && exif_size > 0) {
        out->exif = (uint8_t *)malloc(exif_size);
        if (out->exif) { memcpy(out->exif, exif, exif_size); out->exif_size = exif_size; }
    }
#endif
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return EAGLET_CODEC_OK;
}

// ---- writing ----

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
    char *message;
    size_t message_size;
} png_writer;

static void write_to_memory(png_structp png, png_bytep bytes, size_t length) {
    png_writer *w = (png_writer *)png_get_io_ptr(png);
    if (w->size + length > w->capacity) {
        size_t capacity = w->capacity ? w->capacity : 4096;
        while (capacity < w->size + length) capacity *= 2;
        uint8_t *grown = (uint8_t *)realloc(w->data, capacity);
        if (!grown) { w->failed = 1; png_error(png, "out of memory"); }
        w->data = grown;
        w->capacity = capacity;
    }
    memcpy(w->data + w->size, bytes, length);
    w->size += length;
}

static void flush_memory(png_structp png) { (void)png; }

static void on_write_error(png_structp png, png_const_charp text) {
    png_writer *w = (png_writer *)png_get_error_ptr(png);
    if (w) set_message(w->message, w->message_size, text);
    png_longjmp(png, 1);
}

int eaglet_png_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height,
                           uint8_t **png_out, size_t *png_size, char *message, size_t message_size) {
    *png_out = NULL;
    *png_size = 0;
    if (width == 0 || height == 0) { set_message(message, message_size, "zero width or height"); return EAGLET_CODEC_ZERO_SIZE; }
    png_writer writer = {NULL, 0, 0, 0, message, message_size};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &writer, on_write_error, on_warning);
    if (!png) { set_message(message, message_size, "cannot create libpng writer"); return EAGLET_CODEC_NO_MEMORY; }
    png_infop info = png_create_info_struct(png);
    if (!info) { png_destroy_write_struct(&png, NULL); return EAGLET_CODEC_NO_MEMORY; }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(writer.data);
        png_destroy_write_struct(&png, &info);
        return writer.failed ? EAGLET_CODEC_NO_MEMORY : EAGLET_CODEC_CORRUPT;
    }
    png_set_write_fn(png, &writer, write_to_memory, flush_memory);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 9);
    png_write_info(png, info);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) { writer.failed = 1; png_error(png, "out of memory"); }
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(rgb + (size_t)y * width * 3);
    png_write_image(png, rows);
    png_write_end(png, info);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *png_out = writer.data;
    *png_size = writer.size;
    return EAGLET_CODEC_OK;
}
