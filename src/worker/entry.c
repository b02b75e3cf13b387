/* entry.c — crew_worker_run(): a process started by any launcher maps its pool's region and becomes the worker of one slot. */

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "crew.h"
#include "transport/shm.h"
#include "worker/worker.h"

int crew_worker_run(int shm_fd, int slot)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    crew__shm *shm;
    int rc = crew__shm_map(shm_fd, &shm);
    if (rc < 0)
        return rc;
    if (slot < 0 || (uint32_t)slot >= shm->nslots) {
        crew__shm_unmap(shm);
        return -EINVAL;
    }
    close(shm_fd);
    atomic_store(&shm->slots[slot].pid, getpid());
    crew__worker_loop(shm, (uint32_t)slot);
    /* the mapping stays until the process exits: arguments a task kept
     * (crew_out_keep_arg) may still point into it */
    return 0;
}
