/* cpu.c — crew_cpu_count(): the CPUs this process may really use (affinity mask, cgroup quota). */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/procfs.h"
#include "crew.h"

/* CPUs allowed by the cgroup quota, or 0 when unlimited or unknown. */
static int cgroup_cpus(void)
{
    char path[512] = "/sys/fs/cgroup/cpu.max", buf[512];
    /* cgroup v2: the process's own cgroup, from /proc/self/cgroup ("0::/path") */
    if (crew__read_small("/proc/self/cgroup", buf, sizeof buf) > 0) {
        for (char *line = buf; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            if (!strncmp(line, "0::", 3))
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max",
                         strcmp(line + 3, "/") ? line + 3 : "");
            line = nl ? nl + 1 : NULL;
        }
    }
    long long quota = -1, period = 0;
    if (crew__read_small(path, buf, sizeof buf) > 0 ||
        crew__read_small("/sys/fs/cgroup/cpu.max", buf, sizeof buf) > 0) {
        char q[32] = "";
        if (sscanf(buf, "%31s %lld", q, &period) == 2 && strcmp(q, "max"))
            sscanf(q, "%lld", &quota);
    } else { /* cgroup v1 */
        if (crew__read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", buf, sizeof buf) <= 0 ||
            sscanf(buf, "%lld", &quota) != 1)
            quota = -1;
        if (crew__read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", buf, sizeof buf) <= 0 ||
            sscanf(buf, "%lld", &period) != 1)
            period = 0;
    }
    if (quota <= 0 || period <= 0)
        return 0;
    long long n = (quota + period - 1) / period;
    return n < 1 ? 1 : (int)n;
}

int crew_cpu_count(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n < 1 ? 1 : n;
}
