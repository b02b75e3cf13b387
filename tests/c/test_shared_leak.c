/* test_shared_leak.c — 1,000 create/use/free cycles of every shared kind leave /dev/shm, fds and memory flat. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <dirent.h>

static int dev_shm_entries(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int one_cycle(int i)
{
    crew_queue *q;
    crew_dict *d;
    crew_pipe *a, *b;
    crew_array *arr;
    crew_lock *l;
    crew_semaphore *s;
    crew_event *e;
    crew_condition *c;
    crew_barrier *br;
    if (crew_queue_create(&q, 0, 1 << 16) || crew_dict_create(&d, 1024, 1 << 16) ||
        crew_pipe_create(&a, &b, 1 << 16) || crew_array_create(&arr, 1 << 16, "x") ||
        crew_lock_create(&l, i & 1) || crew_semaphore_create(&s, 1, 0) ||
        crew_event_create(&e) || crew_condition_create(&c) || crew_barrier_create(&br, 1))
        return -1;
    char buf[256];
    size_t len;
    memset(buf, i, sizeof buf);
    crew_queue_put(q, buf, sizeof buf, 0);
    crew_queue_get(q, buf, sizeof buf, &len, 0);
    crew_dict_set(d, &i, sizeof i, buf, sizeof buf);
    crew_dict_get(d, &i, sizeof i, buf, sizeof buf, &len);
    crew_pipe_send(a, buf, 100, 0);
    crew_pipe_recv(b, buf, sizeof buf, &len, 0);
    memset(crew_array_data(arr), 1, 1 << 16);
    crew_lock_acquire(l, 0);
    crew_lock_release(l);
    crew_semaphore_acquire(s, 0);
    crew_semaphore_release(s, 1);
    crew_event_set(e);
    crew_condition_notify_all(c);
    crew_barrier_wait(br, 0);
    crew_shared_ref ref;
    crew_queue_ref(q, &ref);
    crew_queue *q2;
    if (crew_queue_open(&q2, &ref))
        return -2;
    crew_queue_free(q2);
    crew_queue_free(q);
    crew_dict_free(d);
    crew_pipe_free(a);
    crew_pipe_free(b);
    crew_array_free(arr);
    crew_lock_free(l);
    crew_semaphore_free(s);
    crew_event_free(e);
    crew_condition_free(c);
    crew_barrier_free(br);
    return 0;
}

TEST(thousand_cycles_leave_nothing)
{
    int n = (int)test_scale(1000, 200);
    for (int i = 0; i < 20; i++) /* warm up allocator caches */
        CHECK_OK(one_cycle(i));
    int shm0 = dev_shm_entries(), fd0 = test_fd_count();
    long rss0 = test_rss_kb();
    for (int i = 0; i < n; i++)
        CHECK_OK(one_cycle(i));
    int shm1 = dev_shm_entries(), fd1 = test_fd_count();
    long rss1 = test_rss_kb();
    printf("  /dev/shm %d -> %d, fds %d -> %d, rss %ld -> %ld KiB\n", shm0, shm1, fd0, fd1, rss0,
           rss1);
    CHECK_EQ_INT(shm1, shm0);
    CHECK_EQ_INT(fd1, fd0);
    CHECK(rss1 - rss0 < 4096);
}

TEST_MAIN()
