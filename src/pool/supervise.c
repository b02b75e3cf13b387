/* supervise.c — the supervisor thread: starts workers, sees deaths at once (pidfd), enforces deadlines. */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/pool.h"
#include "base/fdset.h"
#include "base/lockorder.h"
#include "base/sync.h"

/* Says how a worker ended, e.g. "killed by signal 9 (Killed)". */
static void describe_exit(const siginfo_t *si, char *buf, size_t n)
{
    if (si->si_code == CLD_EXITED)
        snprintf(buf, n, "exited with status %d", si->si_status);
    else
        snprintf(buf, n, "was killed by signal %d (%s)", si->si_status, strsignal(si->si_status));
}

void crew__kill_worker(crew__wslot *ws)
{
    crew__signal_worker(ws, SIGKILL);
}

void crew__signal_worker(crew__wslot *ws, int sig)
{
    if (ws->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, ws->pidfd, sig, NULL, 0);
}

/* Fails every pending task: the workers die as they start, nothing runs. */
static void fail_pending(crew_pool *p, int i, crew__fifo *done)
{
    crew_future *f;
    while ((f = crew__fifo_pop(&p->pending))) {
        crew__pool_msg_free(p, &f->req);
        f->req.flags &= ~(uint32_t)CREW__MSG_ARENA;
        if (p->w[i].pid > 0)
            crew__future_set_errmsg(f, "the pool's workers die as they start: worker %d "
                                    "(pid %d) %s before answering anything; crew keeps "
                                    "retrying, with a growing pause",
                                    i, (int)p->w[i].pid, p->w[i].errbuf);
        else
            crew__future_set_errmsg(f, "the pool's workers die as they start: worker %d %s; "
                                    "crew keeps retrying, with a growing pause",
                                    i, p->w[i].errbuf);
        crew__fail_locked(p, f, CREW_ECRASHED, done);
    }
}

/* Whether slot ws's early deaths say its workers cannot start: three in a
 * row that were not SIGKILLs (an exit, a crash, a failed start), or six in a
 * row whatever they were. A SIGKILL is what an operator or the OOM killer
 * sends: a few of them to workers still starting are no start loop, and
 * fail no queued task (they only slow restarts down). */
static bool start_loop(const crew__wslot *ws)
{
    return ws->early_deaths - ws->early_kills >= 3 || ws->early_deaths >= 6;
}

/* Puts slot i on its restart pause after a death (or a failed start) that
 * answered nothing; once every slot is there, queued tasks fail. mu held. */
static void start_backoff(crew_pool *p, int i, crew__fifo *done)
{
    crew__wslot *ws = &p->w[i];
    bool all = true;
    for (int k = 0; k < p->nworkers; k++)
        if (p->w[k].state == CREW__SLOT_LIVE || p->w[k].state == CREW__SLOT_STARTING ||
            !start_loop(&p->w[k]))
            all = false;
    if (all)
        fail_pending(p, i, done);
    unsigned shift = ws->early_deaths - 3 < 6 ? ws->early_deaths - 3 : 6;
    ws->retry_at_ns = crew__now_ns() + (100000000ull << shift); /* 0.1 s .. 6.4 s */
}

/* Starts slot i again; a start that fails counts as a death that answered
 * nothing (a dead fork server, no memory, no pids left). mu held, released
 * while a process launches (crew__start_worker_locked). */
static void relaunch(crew_pool *p, int i, crew__fifo *done)
{
    crew__wslot *ws = &p->w[i];
    ws->restarts++;
    int rc = crew__start_worker_locked(p, i);
    if (rc == 0) {
        crew__dispatch_locked(p);
        return;
    }
    snprintf(ws->errbuf, sizeof ws->errbuf, "could not be started (%s)", crew_strerror(rc));
    if (++ws->early_deaths >= 3)
        start_backoff(p, i, done);
}

void crew__worker_died(crew_pool *p, int i, bool sigkilled, crew__fifo *done)
{
    crew__wslot *ws = &p->w[i];
    crew__ring *req = crew__region_req(&p->reg, (uint32_t)i);
    crew__drain_slot_locked(p, i, done); /* answers it gave before dying count */
    /* how far it read its ring: the worker's own index, so only a hint of
     * which of its tasks started (a forged one misplaces only its tasks) */
    uint64_t head = atomic_load(&req->head);
    int reason = ws->kill_reason ? ws->kill_reason : CREW_ECRASHED;
    crew__fifo requeue = {0};
    crew_future *f;
    while ((f = crew__fifo_pop(&ws->inflight))) {
        atomic_fetch_sub(&p->inflight, 1);
        bool victim = reason == -ETIMEDOUT && f != ws->kill_tag && !p->terminated;
        if ((f->ring_idx < head && !victim) || p->terminated) {
            /* it was running (or the pool is stopping): it fails */
            crew__pool_msg_free(p, &f->req);
            f->req.flags &= ~(uint32_t)CREW__MSG_ARENA;
            if (atomic_load(&f->state) == CREW__F_DONE) {
                crew__future_unref(f);
                continue;
            }
            int why = reason;
            if (p->terminated && f->ring_idx >= head)
                why = -ECANCELED; /* the pool stops: a task that never started is cancelled */
            if (why == CREW_ECRASHED)
                crew__future_set_errmsg(f, "worker %d (pid %d) %s while running this task",
                                        i, (int)ws->pid, ws->errbuf);
            else if (why == -ETIMEDOUT)
                crew__future_set_errmsg(f, "task ran past its %.3f s deadline; its worker "
                                        "(pid %d) was killed and replaced",
                                        (double)f->deadline_ns / 1e9, (int)ws->pid);
            crew__fail_locked(p, f, why, done);
        } else {
            /* not started, or started just as its worker was killed for
             * the task before it: it runs again on the replacement */
            atomic_store(&f->state, CREW__F_QUEUED);
            crew__fifo_push(&requeue, f);
        }
    }
    /* unstarted work goes back to the front of the queue, in order */
    crew__fifo_prepend(&p->pending, &requeue);
    if (ws->init_req.flags & CREW__MSG_INIT && (ws->init_req.flags & CREW__MSG_ARENA))
        crew__pool_msg_free(p, &ws->init_req);
    memset(&ws->init_req, 0, sizeof ws->init_req);
    /* a worker that died before it was up (a bad spawn_argv, an exec or
     * mapping failure, a launcher's child exiting, an initializer that kills
     * its process) must not be restarted in a tight loop, nor hold queued
     * work forever. One that was up (said hello; its initializer answered)
     * had started fine: its death (a kill from outside, a crash in a task)
     * is no sign of a start loop, however early it came */
    bool early = !ws->ready && ws->kill_reason == 0;
    ws->early_deaths = early ? ws->early_deaths + 1 : 0;
    /* crew's own kill of a worker that broke the protocol is no kill from
     * outside: it counts as a failed start */
    ws->early_kills = early ? ws->early_kills + (sigkilled && !ws->broke_protocol ? 1 : 0) : 0;
    ws->state = CREW__SLOT_DEAD;
    /* a worker that died as it spun leaves its flag up: the others would
     * count it (worker/worker.c: spin_begin) until the slot restarts */
    atomic_store(&p->reg.shm->slots[i].worker_spinning, 0);
    ws->kill_reason = 0;
    ws->kill_tag = NULL;
    ws->killing = false;
    pthread_cond_broadcast(&p->cv);
    if (p->terminated || (p->quitting && !p->pending.head)) {
        ws->pid = 0;
        return;
    }
    ws->pid = 0;
    if (ws->early_deaths >= 3) {
        start_backoff(p, i, done);
        return; /* the supervisor starts it again once the pause is over */
    }
    relaunch(p, i, done);
}

/* Reaps slot i if its process has exited. mu held. */
static void reap(crew_pool *p, int i, crew__fifo *done)
{
    crew__wslot *ws = &p->w[i];
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PIDFD, (id_t)ws->pidfd, &si, WEXITED | WNOHANG);
    if (r == 0 && si.si_pid == 0)
        return; /* not gone yet */
    if (r < 0 && errno != ECHILD)
        return;
    crew__fd_close(ws->pidfd);
    ws->pidfd = -1;
    if (ws->broke_protocol) /* errbuf already says why it was killed */
        ;
    else if (r < 0) /* its pidfd says it exited, but someone else reaped it */
        snprintf(ws->errbuf, sizeof ws->errbuf,
                 "exited, status unknown (reaped elsewhere: SIGCHLD ignored or a "
                 "waitpid(-1) in the program)");
    else
        describe_exit(&si, ws->errbuf, sizeof ws->errbuf);
    crew__worker_died(p, i, r == 0 && si.si_code == CLD_KILLED && si.si_status == SIGKILL, done);
}

/* Kills (processes) or fails (threads) tasks past their deadline; returns
 * the ns until the next deadline (UINT64_MAX: none). mu held. */
static uint64_t check_deadlines(crew_pool *p, crew_future **late, int *nlate)
{
    uint64_t now = crew__now_ns(), next = UINT64_MAX;
    for (int i = 0; i < p->nworkers; i++) {
        crew__wslot *ws = &p->w[i];
        crew__slot *sl = &p->reg.shm->slots[i];
        if (ws->state != CREW__SLOT_LIVE || ws->killing)
            continue;
        /* the running task is the oldest one not yet answered; one still
         * waiting cannot pass its deadline sooner than deadline_ns from now */
        bool oldest = true;
        for (crew_future *f = ws->inflight.head; f; f = f->next) {
            if (atomic_load(&f->state) == CREW__F_DONE)
                continue; /* a thread task that already timed out */
            bool running = oldest && atomic_load(&sl->cur_tag) == (uint64_t)(uintptr_t)f;
            oldest = false;
            if (!f->deadline_ns)
                continue;
            if (!running) {
                if (f->deadline_ns < next)
                    next = f->deadline_ns;
                continue;
            }
            uint64_t end = atomic_load(&sl->cur_start_ns) + f->deadline_ns;
            if (now < end) {
                if (end - now < next)
                    next = end - now;
                continue;
            }
            if (p->kind == CREW_PROCESSES) {
                ws->kill_reason = -ETIMEDOUT;
                ws->kill_tag = f;
                ws->killing = true;
                crew__kill_worker(ws);
            } else {
                crew__future_set_errmsg(f, "task ran past its %.3f s deadline; the thread "
                                        "running it goes on until it returns, and its result "
                                        "is dropped", (double)f->deadline_ns / 1e9);
                crew__future_finish(f, -ETIMEDOUT);
                atomic_fetch_add(&f->refs, 1); /* its callback runs unlocked */
                late[(*nlate)++] = f;
            }
            next = 0; /* look again at once for the tasks behind it */
            break;
        }
    }
    return next;
}

void *crew__supervisor_main(void *arg)
{
    crew__name_thread("crew:supervise");
    crew_pool *p = arg;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    int rc = 0;
    for (int i = 0; i < p->nworkers && rc == 0; i++)
        rc = crew__start_worker_locked(p, i);
    p->launch_rc = rc;
    p->launched = true;
    pthread_cond_broadcast(&p->cv);
    crew__unlock(&p->mu, CREW__LOCK_POOL);

    struct pollfd fds[CREW__MAX_WORKERS + 1];
    int idx[CREW__MAX_WORKERS + 1];
    while (!atomic_load(&p->stop_threads)) {
        crew__fifo done = {0};
        uint64_t reclaim_in = crew__reclaim_due(p); /* (no lock held) */
        crew__lock(&p->mu, CREW__LOCK_POOL);
        bool again = false;
        for (int i = 0; i < p->nworkers; i++) {
            /* (after a failed first start crew_pool_create tears the pool down) */
            if (p->w[i].state == CREW__SLOT_DEAD && p->w[i].pidfd < 0 && !p->quitting &&
                !p->terminated && p->launch_rc == 0) {
                again = true; /* a start failed earlier: try again, after its pause */
                if (crew__now_ns() >= p->w[i].retry_at_ns)
                    relaunch(p, i, &done); /* may release mu while it launches */
            }
        }
        int n = 0;
        fds[n].fd = p->evfd;
        fds[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; i < p->nworkers; i++) {
            if (p->w[i].pidfd >= 0) {
                fds[n].fd = p->w[i].pidfd;
                fds[n].events = POLLIN;
                idx[n++] = i;
            }
        }
        crew_future *late[CREW__MAX_WORKERS];
        int nlate = 0;
        uint64_t next = check_deadlines(p, late, &nlate);
        if (reclaim_in < next)
            next = reclaim_in;
        if (next > 1000000000ull) /* a big run freed meanwhile is seen within 1 s */
            next = 1000000000ull;
        /* when it wakes next at the latest: a sooner deadline sent meanwhile kicks evfd */
        p->sup_wake_ns = crew__now_ns() + next;
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        crew__run_done(&done); /* tasks failed by a failed restart */
        for (int k = 0; k < nlate; k++) {
            crew__future_run_callback(late[k]);
            crew__future_unref(late[k]);
        }
        int ms = (int)(next / 1000000) + 1;
        if (again && ms > 100)
            ms = 100;
        int r = poll(fds, (nfds_t)n, ms);
        if (r <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(p->evfd, &v, sizeof v);
            (void)rd;
        }
        crew__lock(&p->mu, CREW__LOCK_POOL);
        for (int k = 1; k < n; k++)
            if (fds[k].revents & (POLLIN | POLLHUP))
                reap(p, idx[k], &done);
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        crew__run_done(&done);
    }
    return NULL;
}
