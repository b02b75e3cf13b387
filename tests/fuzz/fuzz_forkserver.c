/* fuzz_forkserver.c — libFuzzer target: forged datagrams, with or without descriptors, on the fork server's socket, read by its receive side. */
/*
 * Both ends of the fork-server protocol read with recv_msg (launch/
 * forkserver.c, included here for its static functions): the server reads
 * (slot, pool memfd) requests, the owner reads (pid) answers and expects no
 * descriptor. The input is one datagram: [u8 how][payload...], how's low two
 * bits the number of descriptors (/dev/null) sent with it, bit 2 the owner
 * side. After each read no descriptor may be left open that nobody owns
 * (the open descriptors are the same once the one handed back is
 * closed), and a read that succeeds hands back a whole message.
 */
#include "launch/forkserver.c"

#include <fcntl.h>

/* Which of the 32 descriptors from the lowest free one are open, as bits. */
static uint64_t open_fds(void)
{
    int lo = dup(0);
    uint64_t set = (uint64_t)(unsigned)lo << 32;
    if (lo >= 0)
        close(lo);
    for (int k = 0; k < 32; k++)
        if (fcntl(lo + k, F_GETFD) >= 0)
            set |= 1ull << k;
    return set;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned nfds = data[0] & 3;
    bool owner_side = data[0] & 4;
    data++;
    size--;
    if (size > 64)
        size = 64;
    uint64_t before = open_fds();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        abort();

    int fds[3];
    for (unsigned k = 0; k < nfds; k++)
        fds[k] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    if (sendmsg(sv[1], &mh, MSG_NOSIGNAL) < 0)
        abort();
    for (unsigned k = 0; k < nfds; k++)
        close(fds[k]);
    close(sv[1]); /* an empty read next is the peer gone */

    int value = 0, fd = -1;
    int rc = recv_msg(sv[0], &value, owner_side ? NULL : &fd);
    if (rc == 0 && size != sizeof value)
        abort(); /* a short or long datagram taken for a message */
    if (rc != 0 && fd >= 0)
        abort(); /* a failed read handing back a descriptor */
    if (fd >= 0)
        close(fd);
    close(sv[0]);
    if (open_fds() != before)
        abort(); /* a descriptor the peer sent is open and owned by nobody */
    return 0;
}
