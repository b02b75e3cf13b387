/* errors.c — crew_strerror(): names every code crew returns. */
#include <string.h>

#include "crew.h"

const char *crew_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case CREW_ECRASHED: return "the worker died while running the task";
    case CREW_ETASK: return "the task reported an error";
    case CREW_ENOTASK: return "no task is registered under that name";
    case CREW_ECLOSED: return "the pool is closed";
    case CREW_EINIT: return "the worker initializer failed";
    case CREW_ETOOBIG: return "the payload is larger than the pool's shared arena";
    case CREW_ENOMAIN:
        return "the spawn and forkserver start methods run this program again: call "
               "crew_main(argc, argv) at the top of main(), or use CREW_START_FORK";
    case CREW_EOWNERDEAD:
        return "the lock's holder died holding it; the caller holds it now";
    case CREW_EBROKEN: return "the barrier is broken";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown crew error";
}
