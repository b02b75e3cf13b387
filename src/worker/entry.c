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
    crew__region R;
    int rc = crew__region_map(shm_fd, &R);
    if (rc < 0)
        return rc;
    if (slot < 0 || (uint32_t)slot >= R.nslots) {
        crew__region_unmap(&R);
        return -EINVAL;
    }
    close(shm_fd);
    atomic_store(&R.shm->slots[slot].pid, getpid());
    crew__worker_loop(&R, (uint32_t)slot);
    /* the mapping stays until the process exits: arguments a task kept
     * (crew_out_keep_arg) may still point into it */
    return 0;
}
