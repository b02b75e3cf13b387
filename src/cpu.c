/* cpu.c — crew_cpu_count(): the CPUs this process may really use (affinity mask, cgroup quota). */

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crew.h"

/* CPUs allowed by the cgroup quota, or 0 when unlimited or unknown. */
static int cgroup_cpus(void)
{
    char path[512] = "/sys/fs/cgroup/cpu.max", line[256];
    /* cgroup v2: the process's own cgroup, from /proc/self/cgroup ("0::/path") */
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "0::", 3)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max",
                         strcmp(line + 3, "/") ? line + 3 : "");
            }
        }
        fclose(f);
    }
    long long quota = -1, period = 0;
    f = fopen(path, "r");
    if (!f)
        f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char q[32] = "";
        if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max"))
            sscanf(q, "%lld", &quota);
        fclose(f);
    } else { /* cgroup v1 */
        f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
        if (f) {
            if (fscanf(f, "%lld", &quota) != 1)
                quota = -1;
            fclose(f);
        }
        f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
        if (f) {
            if (fscanf(f, "%lld", &period) != 1)
                period = 0;
            fclose(f);
        }
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
