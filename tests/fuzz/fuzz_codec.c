/* fuzz_codec.c — libFuzzer target: a forged frame (python/crew/_frame.h), parsed as crew's Python extensions parse every object they read from shared memory. */
/*
 * A queue item, a shared dict entry, a task's argument or result is a frame
 * written by another process: untrusted. crew__frame_parse must return 0,
 * -ENODATA or -EINVAL for any bytes, and on 0 name only ranges inside the
 * frame; the ranges are read here so that ASan sees any that is not. The
 * input is copied into a buffer of exactly its size first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../python/crew/_frame.h"

static volatile unsigned sink;

static void touch(const char *p, size_t off, size_t len, size_t size)
{
    if (off > size || len > size - off)
        abort();
    unsigned s = 0;
    for (size_t i = 0; i < len; i++)
        s += (unsigned char)p[off + i];
    sink += s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        abort();
    memcpy(p, data, size);
    crew__frame f;
    int rc = crew__frame_parse(p, size, &f);
    if (rc == 0) {
        if (f.nbufs > CREW_FRAME_MAX_OOB)
            abort();
        if (f.kind == 'P') {
            touch(p, f.pickle, f.pickle_len, size);
            for (uint32_t i = 0; i < f.nbufs; i++)
                touch(p, (size_t)f.buf[i][0], (size_t)f.buf[i][1], size);
        } else {
            if ((f.kind == 'I' || f.kind == 'F') && f.body_len != 8)
                abort();
            touch(p, f.body, f.body_len, size);
        }
    } else if (rc != -EINVAL && rc != -ENODATA) {
        abort();
    }
    free(p);
    return 0;
}
