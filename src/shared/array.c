/* shared_array.c — crew_array: a block of shared bytes with a short description, passed by reference. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/region.h"

#define META_MAX 256

typedef struct array_body {
    uint64_t bytes;
    char meta[META_MAX];
    _Alignas(64) unsigned char data[];
} array_body;

struct crew_array {
    crew__sh sh;
};

static array_body *body(const crew_array *a)
{
    return crew__sh_body(&a->sh);
}

int crew_array_create(crew_array **out, size_t bytes, const char *meta)
{
    if (!out || bytes == 0 || bytes > ((size_t)1 << 46) || (meta && strlen(meta) >= META_MAX))
        return -EINVAL;
    crew_array *a;
    int rc = CREW__SH_NEW(crew_array, CREW_SHARED_ARRAY, sizeof(array_body) + bytes, &a);
    if (rc)
        return rc;
    body(a)->bytes = bytes;
    if (meta)
        strcpy(body(a)->meta, meta);
    *out = a;
    return 0;
}

void *crew_array_data(const crew_array *a)
{
    return a ? body(a)->data : NULL;
}

size_t crew_array_size(const crew_array *a)
{
    return a ? body(a)->bytes : 0;
}

const char *crew_array_meta(const crew_array *a)
{
    return a ? body(a)->meta : "";
}

CREW__SH_BOILERPLATE(array, crew_array, CREW_SHARED_ARRAY)
