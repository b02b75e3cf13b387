/* test_shared_pipe.c — crew_pipe between processes: ping-pong, poll, EOF when the other end is gone. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <errno.h>

static crew_shared_ref g_ref;

static int echo_child(void *arg)
{
    (void)arg;
    crew_pipe *p;
    if (crew_pipe_open(&p, &g_ref))
        return 2;
    char buf[256];
    size_t len;
    int rc;
    while ((rc = crew_pipe_recv(p, buf, sizeof buf, &len, 10)) == 0)
        if (crew_pipe_send(p, buf, len, 10))
            return 3;
    crew_pipe_free(p);
    return rc == -EPIPE ? 0 : 4;
}

TEST(pipe_ping_pong_and_eof)
{
    crew_pipe *a, *b;
    CHECK_OK(crew_pipe_create(&a, &b, 4096));
    CHECK_OK(crew_pipe_ref(b, &g_ref));
    CHECK_EQ_INT(g_ref.sub, 1);
    pid_t c = sh_fork(echo_child, NULL);
    CHECK_EQ_INT(crew_pipe_poll(a, 0), 0);
    /* the child opens b from the ref; wait until it did before dropping ours */
    CHECK_OK(crew_pipe_send(a, "hi", 2, 1));
    char buf[256];
    size_t len;
    CHECK_OK(crew_pipe_recv(a, buf, sizeof buf, &len, 5));
    CHECK(len == 2 && !memcmp(buf, "hi", 2));
    crew_pipe_free(b);
    for (uint32_t i = 0; i < 1000; i++) {
        unsigned char m[200];
        sh_fill(m, 1 + i % 200, i);
        CHECK_OK(crew_pipe_send(a, m, 1 + i % 200, 5));
        CHECK_EQ_INT(crew_pipe_poll(a, 5), 1);
        CHECK_OK(crew_pipe_recv(a, buf, sizeof buf, &len, 5));
        CHECK(len == 1 + i % 200 && sh_check((unsigned char *)buf, len, i));
    }
    crew_pipe_free(a); /* the child's recv sees EOF */
    CHECK_EQ_INT(sh_join(c), 0);
}

static int open_b_and_die(void *arg)
{
    (void)arg;
    crew_pipe *p;
    if (crew_pipe_open(&p, &g_ref))
        return 2;
    crew_pipe_send(p, "x", 1, 1);
    raise(SIGKILL);
    return 0;
}

TEST(pipe_peer_killed_reads_eof_not_hang)
{
    crew_pipe *a, *b;
    CHECK_OK(crew_pipe_create(&a, &b, 0));
    CHECK_OK(crew_pipe_ref(b, &g_ref));
    pid_t c = sh_fork(open_b_and_die, NULL);
    char buf[8];
    size_t len;
    CHECK_OK(crew_pipe_recv(a, buf, sizeof buf, &len, 5));
    crew_pipe_free(b);
    CHECK_EQ_INT(sh_join(c), 128 + SIGKILL);
    uint64_t t0 = test_now_ns();
    CHECK_EQ_INT(crew_pipe_recv(a, buf, sizeof buf, &len, 5), -EPIPE);
    CHECK_EQ_INT(crew_pipe_poll(a, 5), -EPIPE);
    CHECK(test_now_ns() - t0 < 1000000000u);
    crew_pipe_free(a);
}

TEST_MAIN()
