/* memfd.h — anonymous shared memory regions, for pools and shared objects alike. */
#ifndef CREW_MEMFD_H
#define CREW_MEMFD_H

#include <stddef.h>

/* Makes a memfd of size bytes named `name` (close-on-exec, no name in
 * /dev/shm, sealed at that size: nobody who holds it can truncate or grow
 * it) and maps it shared (MAP_NORESERVE: pages cost memory only once
 * touched). Returns 0, *fd_out and *map_out, or a negative errno (nothing
 * left open). */
int crew__memfd_map(const char *name, size_t size, int *fd_out, void **map_out);

#endif
