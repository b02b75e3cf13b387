/* crew.h — the one public header of libcrew: thread or process worker pools behind one API. */
#ifndef CREW_H
#define CREW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conventions
 * -----------
 * Every function that can fail returns 0 (or a non-negative count) on
 * success and a negative errno-style code on failure: -EINVAL, -ENOMEM, ...
 * or one of crew's own codes below. crew_strerror() names any of them.
 *
 * Ownership
 * ---------
 * - A pool is owned by its creator; crew_pool_free() releases it.
 * - A future is owned by the caller of crew_submit(); crew_future_release()
 *   releases it. A future keeps the memory of its pool alive, so results stay
 *   readable after the pool is freed, until the future is released.
 * - Argument bytes are copied at submit: the caller may reuse its buffer as
 *   soon as crew_submit() returns.
 * - Result bytes are owned by the future: the pointer from
 *   crew_future_result() is valid until crew_future_release().
 * - Task functions are owned by the program; registration copies the name.
 */

/* crew's own error codes (errno values are used as they are, negated). */
#define CREW_ECRASHED  (-1001) /* the worker died while running the task       */
#define CREW_ETASK     (-1002) /* the task function reported an error          */
#define CREW_ENOTASK   (-1003) /* no task is registered under that name        */
#define CREW_ECLOSED   (-1004) /* the pool is closed or terminated             */
#define CREW_EINIT     (-1005) /* the worker initializer failed                */
#define CREW_ETOOBIG   (-1006) /* payload larger than the pool's shared arena   */
#define CREW_ENOMAIN   (-1007) /* spawn/forkserver need crew_main() in main()   */
/* Other codes a caller meets: -ETIMEDOUT (the task passed its deadline),
 * -ECANCELED (cancelled before it started, or the pool was terminated),
 * -EAGAIN (a wait's own timeout passed; the future is still pending),
 * -EINPROGRESS (crew_future_status() of a future not done yet). */

/* Returns a static English description of err (never NULL). */
const char *crew_strerror(int err);

/* ---------------------------------------------------------------- tasks -- */

/* Where a running task puts its result. Owned by crew, valid during the call. */
typedef struct crew_out crew_out;

/*
 * A task: reads len bytes at arg (read-only, valid for the call only) and
 * writes its result through out. Returns 0 on success; any other value fails
 * the task: crew_out_error() sets a message and returns CREW_ETASK for that.
 * udata is the pointer given at registration. In a process worker the
 * function runs in the worker process: it must not rely on the parent's
 * state beyond what the start method gives it.
 */
typedef int (*crew_task_fn)(const void *arg, size_t len, crew_out *out, void *udata);

/*
 * Registers fn under name (at most 127 bytes) in this process's registry.
 * Tasks travel by name, so a worker started by a fresh exec finds the same
 * function when the program registers it the same way before crew_main()
 * (the C form of "a task must be a top-level function").
 * Fails with -EINVAL (bad name, NULL fn), -EEXIST (name already registered
 * with another function), -ENOMEM (registry full: 1024 tasks).
 */
int crew_register(const char *name, crew_task_fn fn, void *udata);

/* Registers a task before main() runs: CREW_TASK(name, fn) at file scope. */
#define CREW_TASK(name, fn)                                                   \
    __attribute__((constructor)) static void crew__reg_##fn(void)            \
    { (void)crew_register(name, fn, NULL); }

/* Gives the task a writable result buffer of len bytes in shared memory (no
 * copy on the way back). Returns NULL when the arena is full. Calling it
 * again replaces the earlier buffer. */
void *crew_out_alloc(crew_out *out, size_t len);

/* Copies len bytes at data as the result. Returns 0, CREW_ETOOBIG. */
int crew_out_set(crew_out *out, const void *data, size_t len);

/*
 * The argument of a task lives in shared memory that crew reuses once the
 * task returns. A task that must keep it longer (say it cached a view of it)
 * calls crew_out_keep_arg(): the bytes then stay where they are, owned by
 * the caller of crew_out_keep_arg, who frees them with crew_kept_arg_free()
 * (in the same process, before the pool is freed). Fails with -EINVAL when
 * the argument is small enough to travel inside the ring message (at most
 * 88 bytes): copy those instead.
 */
typedef struct crew_kept_arg {
    void *arena_;                /* private: the arena, as this process */
    uint64_t nwords_, data_off_; /* laid it out (never re-read from it) */
    int64_t off_;
    size_t len_;
} crew_kept_arg;
int crew_out_keep_arg(crew_out *out, crew_kept_arg *kept);
void crew_kept_arg_free(crew_kept_arg *kept);

/* Sets an error message (printf format) and returns CREW_ETASK, so a task
 * can `return crew_out_error(out, "bad input %d", x);`. */
int crew_out_error(crew_out *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- pools -- */

typedef struct crew_pool crew_pool;
typedef struct crew_future crew_future;

typedef enum crew_kind {
    CREW_THREADS = 1,   /* workers are threads of this process            */
    CREW_PROCESSES = 2  /* workers are child processes, supervised        */
} crew_kind;

typedef enum crew_start_method {
    CREW_START_DEFAULT = 0,    /* the process-wide default (see below)     */
    CREW_START_FORK = 1,       /* fork(): copies the parent's state         */
    CREW_START_SPAWN = 2,      /* fork()+exec of a fresh program            */
    CREW_START_FORKSERVER = 3  /* a clean server process forks the workers  */
} crew_start_method;

/*
 * A custom way to start one process worker (the launcher seam, open to
 * embedders such as the Python package). Called on crew's supervisor thread
 * with the pool's shared-memory fd and the worker's slot; it must start a
 * process that calls crew_worker_run(shm_fd, slot) (the fd must reach it)
 * and return its pid, or a negative errno. crew then supervises that pid.
 */
typedef pid_t (*crew_launch_fn)(int shm_fd, int slot, void *udata);

typedef struct crew_options {
    crew_kind kind;            /* CREW_THREADS or CREW_PROCESSES             */
    int workers;               /* 0: crew_cpu_count()                        */
    crew_start_method start;   /* processes only; DEFAULT: process default   */
    double task_timeout;       /* seconds a task may run; 0: no limit       */
    unsigned max_tasks_per_worker; /* replace a worker after N tasks; 0: never */
    size_t max_worker_rss;     /* replace a worker past this RSS (bytes); 0: never */
    const char *initializer;   /* registered task run once per new worker, or NULL */
    const void *init_arg;      /* its argument (copied), init_len bytes     */
    size_t init_len;
    size_t arena_size;         /* shared arena bytes (virtual); 0: 1 GiB     */
    char *const *spawn_argv;   /* spawn and fork server: program + args to exec;
                                  NULL: this program (which calls crew_main) */
    int prelude_fd;            /* spawn and fork server: a descriptor above 2
                                  the exec'd program inherits, its number in
                                  $CREW_PRELUDE (an interpreter's start-up
                                  state, e.g. a sealed memfd); -1: none */
    crew_launch_fn launch;     /* processes: start workers this way instead  */
    void *launch_udata;
} crew_options;

/* Fills o with the defaults: processes, crew_cpu_count() workers. */
void crew_options_init(crew_options *o);

/*
 * Creates a pool and starts its workers. Returns 0 and *out, or -EINVAL
 * (bad option), -ENOMEM, -EMFILE, or the error of a failed start (an errno).
 * The caller owns *out and frees it with crew_pool_free().
 */
int crew_pool_create(crew_pool **out, const crew_options *o);

/* Per-submit options; zero-initialise, then set what you need. */
typedef struct crew_submit_opts {
    double timeout;            /* seconds; 0: the pool's task_timeout; <0: none */
    int nowait;                /* 1: when the arena is full, fail with -EAGAIN
                                  at once instead of waiting for tasks in flight
                                  to free space */
} crew_submit_opts;

/*
 * Queues task `name` with a copy of len bytes at arg. Returns 0 and a future
 * in *out that the caller must release. Fails with CREW_ENOTASK (name not
 * registered here), CREW_ECLOSED, CREW_ETOOBIG, -ENOMEM, -EINVAL.
 * Thread-safe: any thread may submit to a pool at any time.
 */
int crew_submit(crew_pool *p, const char *name, const void *arg, size_t len,
                crew_future **out);
int crew_submit_ex(crew_pool *p, const char *name, const void *arg, size_t len,
                   const crew_submit_opts *so, crew_future **out);

/*
 * Like crew_submit_ex(), but the payload is the concatenation of iovcnt
 * buffers (scatter-gather): they are copied once, straight into the pool's
 * shared memory, so a caller with a header and large out-of-band buffers
 * (e.g. pickle protocol 5) pays one copy in all. so may be NULL. Same errors
 * as crew_submit_ex().
 */
struct iovec;
int crew_submitv(crew_pool *p, const char *name, const struct iovec *iov, int iovcnt,
                 const crew_submit_opts *so, crew_future **out);

/*
 * Stops accepting work, lets every queued and running task finish, then
 * stops the workers. Futures stay valid. Idempotent. Returns 0.
 */
int crew_pool_close(crew_pool *p);

/*
 * Stops now: queued tasks fail with -ECANCELED, running process tasks are
 * killed with their workers (-ECANCELED), running thread tasks are left to
 * finish but their futures fail at once with -ECANCELED. Idempotent.
 */
int crew_pool_terminate(crew_pool *p);

/*
 * crew_pool_terminate(), with sig sent to each live process worker instead
 * of SIGKILL (0: exactly crew_pool_terminate()). A running task then fails
 * as its worker's death does (CREW_ECRASHED, the message naming the signal);
 * queued tasks and tasks a worker had not started fail with -ECANCELED.
 * Returns once every process worker is gone: a worker that handles or
 * ignores sig keeps it waiting, until a later crew_pool_terminate() or
 * crew_pool_terminate_signal() (from another thread) sends the workers still
 * alive its own signal. Thread pools: as crew_pool_terminate().
 * -EINVAL for a bad sig.
 */
int crew_pool_terminate_signal(crew_pool *p, int sig);

/* Terminates the pool if still open and drops the caller's reference. The
 * memory lives on while unreleased futures need it. NULL is a no-op. */
void crew_pool_free(crew_pool *p);

/* The number of workers the pool keeps running. */
int crew_pool_workers(const crew_pool *p);

/* -------------------------------------------------------------- futures -- */

/* Waits until f is done, up to timeout seconds (<0: forever). Returns 0 when
 * done (whatever the outcome), -EAGAIN when the timeout passed first. */
int crew_future_wait(crew_future *f, double timeout);

/* The outcome without waiting: 0 success, a negative code for failure, or
 * -EINPROGRESS while not done. */
int crew_future_status(const crew_future *f);

/* Waits for f, then gives its result: 0 and *data, *len (owned by f, valid
 * until release), or the task's error code (data/len then hold the error
 * message, if any, as a NUL-terminated string). */
int crew_future_result(crew_future *f, const void **data, size_t *len);

/* The failure's message (a NUL-terminated string), or "" on success. */
const char *crew_future_error(const crew_future *f);

/* Cancels a task that has not started: returns 0 and the future fails with
 * -ECANCELED; -EBUSY when it already runs or is done. */
int crew_future_cancel(crew_future *f);

/* Calls cb(f, udata) once f is done: at once in this thread if it already
 * is, else in the thread that collects the answer: crew's collector thread,
 * or a thread waiting in crew_future_wait() (waiters help collect). Keep it
 * short; it may submit. One callback per future; -EBUSY if one is set. */
typedef void (*crew_callback)(crew_future *f, void *udata);
int crew_future_on_done(crew_future *f, crew_callback cb, void *udata);

/* Takes back the callback crew_future_on_done set: returns 1 when it had not
 * been called and now never will be (what its udata held is the caller's to
 * let go), 0 when it has been or is being called, or none was set. Lock-free;
 * any thread, e.g. the one that ran the task and has already told its
 * owner (what Python's thread pools do). */
int crew_future_take_callback(crew_future *f);

/* Releases the caller's reference; a running task is not stopped. */
void crew_future_release(crew_future *f);

/* Waits until one of n futures is done; returns its index (>= 0), or -EAGAIN
 * on timeout, -EINVAL when n is 0. */
int crew_wait_any(crew_future *const *fs, size_t n, double timeout);

/* Waits until all n futures are done; 0, or -EAGAIN on timeout. */
int crew_wait_all(crew_future *const *fs, size_t n, double timeout);

/* ------------------------------------------------------------------ map -- */

/* The results of crew_map(), in input order. Owned by the caller. */
typedef struct crew_batch crew_batch;

/*
 * The chunk plan of every crew map, C's crew_map() and Python's maps alike:
 * the items per chunk for n items over `workers` workers. `chunk` itself when
 * it is > 0; 0 asks for the automatic size, about 4 chunks per worker
 * (n / (4 * workers) rounded up, at least 1). n == 0 also stands for an input
 * of unknown length (a lazy map): 1 item per chunk. Chunk k holds items
 * [k * size, min(n, (k + 1) * size)), in input order. Cannot fail.
 */
size_t crew_map_chunksize(size_t n, int workers, size_t chunk);

/*
 * Runs task `name` over n inputs (args[i], lens[i]), grouping them into
 * chunks as crew_map_chunksize(n, crew_pool_workers(p), chunk) says, one
 * message per chunk (each item's bytes packed one after another; the worker
 * runs the task once per item and packs each item's status and result), and
 * waits for all. Returns 0 and *out, or a submit error; per-item failures are
 * read with crew_batch_get(): a failed item fails alone, a chunk that fails
 * whole (its worker crashed, its timeout) fails each of its items.
 */
int crew_map(crew_pool *p, const char *name, size_t n, const void *const *args,
             const size_t *lens, size_t chunk, crew_batch **out);

/* Item i's outcome: 0 and its result bytes (owned by the batch), or its
 * error code with the message in *data. -EINVAL when i is out of range. */
int crew_batch_get(const crew_batch *b, size_t i, const void **data, size_t *len);
size_t crew_batch_size(const crew_batch *b);
void crew_batch_release(crew_batch *b);

/* ---------------------------------------------------------------- stats -- */

typedef struct crew_worker_stats {
    pid_t pid;                 /* process id, or the thread's tid           */
    uint64_t tasks;            /* tasks this worker (slot) finished          */
    uint64_t busy_ns;          /* time spent running tasks                   */
    uint32_t restarts;         /* how many times the slot's worker was replaced */
} crew_worker_stats;

typedef struct crew_stats {
    crew_kind kind;
    int workers;
    /* submitted = done + failed + cancelled + those still running or queued;
     * crashed and timed_out are kinds of failed */
    uint64_t submitted, done, failed, crashed, timed_out, cancelled;
    crew_worker_stats worker[256]; /* the first `workers` entries are set    */
} crew_stats;

/* Fills st with a snapshot of the pool's counters. */
int crew_pool_stats(crew_pool *p, crew_stats *st);

/* ----------------------------------------------------------- processes -- */

/* The CPUs this process may use: its affinity mask, limited by the cgroup
 * CPU quota (v2 cpu.max or v1 cfs_quota), at least 1. */
int crew_cpu_count(void);

/* Sets the process-wide default start method (not CREW_START_DEFAULT).
 * Returns 0 or -EINVAL. The default default is CREW_START_FORKSERVER. */
int crew_set_start_method(crew_start_method m);
crew_start_method crew_get_start_method(void);
/* "fork", "spawn", "forkserver"; NULL for an unknown value. */
const char *crew_start_method_name(crew_start_method m);

/*
 * Call at the top of main(), after registering tasks. In a normal run it
 * returns 0 at once (and, for the forkserver default, starts the fork server
 * while the program still has one thread). When this process was started as
 * a spawned worker it runs the worker loop and exits, never returning; when
 * it was started as a fork server it serves, never returning.
 */
int crew_main(int argc, char **argv);

/*
 * For an embedder that runs an interpreter in its workers (the Python
 * package does): its own steps around crew's launchers, which stay crew's.
 * Any hook may be NULL (crew's own step). They run on crew's threads (or in
 * a new worker) holding none of crew's locks, so they may take the
 * interpreter's lock.
 *   before_fork        in the parent right before a fork launch's fork():
 *                      0, or a negative errno (no fork; the launch fails)
 *   after_fork_parent  in the parent right after it (whatever it returned)
 *   after_fork_child   first thing in a worker forked by this process: fork
 *                      launches and the children of the fork server this
 *                      process is
 *   run                a worker process's life in place of crew's: it must
 *                      call crew_worker_run(shm_fd, slot) and returns the
 *                      process's exit status; forked workers and a spawned
 *                      worker (crew_main) run it
 *   idle               on a worker's own thread (thread and process workers
 *                      alike), each time it finds no request waiting, before
 *                      it spins or sleeps, and before it leaves: a task
 *                      function that kept something across tasks while more
 *                      were queued (Python keeps the GIL) lets go of it here.
 *                      It must not block
 * Where spawned workers and fork servers of such a program come from:
 * crew_options.spawn_argv (the interpreter and its bootstrap) and
 * crew_options.prelude_fd; fork servers are shared by the pools whose
 * program and prelude bytes are equal.
 */
typedef struct crew_worker_hooks {
    int (*before_fork)(void);
    void (*after_fork_parent)(void);
    void (*after_fork_child)(void);
    int (*run)(int shm_fd, int slot);
    void (*idle)(void);
} crew_worker_hooks;

/* Sets this process's hooks (copied; NULL: none). Call it before the first
 * pool is created. */
void crew_set_worker_hooks(const crew_worker_hooks *h);

/*
 * Runs the worker loop of slot `slot` of the pool whose shared memory is
 * shm_fd, in this process, until the pool tells it to quit; then returns 0.
 * For custom launchers (crew_options.launch). Sets PR_SET_PDEATHSIG so the
 * worker dies with its parent. Fails with -EINVAL (not a crew pool, bad
 * slot) or a mapping error.
 */
int crew_worker_run(int shm_fd, int slot);

/* ======================================================================
 * Shared state across processes (src/shared_*.c; overview in docs/shared.md)
 * ======================================================================
 *
 * Queues, pipes, arrays, a dict and locks that every process of a pool (and
 * its parent) can use at memory speed. Each object lives in its own memfd
 * region (never a name in /dev/shm): the kernel frees it when the last
 * process holding it closes or dies, so nothing is left behind.
 *
 * Handles and refs. create() gives the caller a handle (crew_queue *, ...)
 * that it owns and releases with the kind's _free(). A handle belongs to one
 * process; threads of that process may share it (every call is thread-safe).
 * A child made by fork() may go on using the handles it inherited. To give
 * an object to another process (a task argument, a result, any byte
 * channel), copy its crew_shared_ref, a small plain struct made by _ref():
 * memcpy it into the task's argument; the receiver calls the kind's _open()
 * for its own handle and _free()s it when done. A ref stays openable while
 * the process that made it still holds the handle it came from; open() gets
 * the memfd from an inherited fd (fork), else from that process with
 * pidfd_getfd() or /proc/<pid>/fd, so it works whatever the start method.
 *
 * Timeouts are seconds: < 0 waits forever, 0 tries once, > 0 waits at most
 * that long. A wait that times out returns -EAGAIN.
 *
 * A process that dies while it holds a lock, or while it writes a queue or
 * the dict, never blocks the others: the next locker is told with
 * CREW_EOWNERDEAD, and queue and dict writes are whole or absent.
 */

#define CREW_EOWNERDEAD (-1010) /* the lock's holder died; the caller holds it now */
#define CREW_EBROKEN    (-1011) /* the barrier is broken (timeout, abort, reset)   */

/* The kinds of shared object (crew_shared_ref.kind). */
typedef enum crew_shared_kind {
    CREW_SHARED_ARRAY = 1,
    CREW_SHARED_QUEUE = 2,
    CREW_SHARED_PIPE = 3,
    CREW_SHARED_DICT = 4,
    CREW_SHARED_LOCK = 5,
    CREW_SHARED_SEMAPHORE = 6,
    CREW_SHARED_EVENT = 7,
    CREW_SHARED_CONDITION = 8,
    CREW_SHARED_BARRIER = 9
} crew_shared_kind;

/* A reference to a shared object that any process may copy and open. Plain
 * data (40 bytes): copy it by value; it owns nothing. */
typedef struct crew_shared_ref {
    uint32_t kind;       /* crew_shared_kind                               */
    uint32_t sub;        /* pipe: which end (0 or 1); else 0               */
    int32_t owner_pid;   /* the process that made the ref                  */
    int32_t fd;          /* its fd of the region                           */
    uint64_t size;       /* bytes of the region                            */
    uint64_t id;         /* the region's inode: tells a reused fd apart    */
    uint64_t dev;
} crew_shared_ref;

/*
 * Every kind below has the same three calls beside create():
 *   int  crew_X_ref(const crew_X *x, crew_shared_ref *ref);   0, -EINVAL
 *   int  crew_X_open(crew_X **out, const crew_shared_ref *ref);
 *        0 and a new handle the caller owns; -EINVAL (ref of another kind,
 *        not a crew region), -ESRCH / -EBADF (the ref's maker no longer holds
 *        it), -EPERM (not allowed to take the fd), -ENOMEM, -EMFILE.
 *   void crew_X_free(crew_X *x);   releases this handle (NULL: no-op).
 */

/* ------------------------------------------------------- locks (robust) -- */

/* Lock and RLock: a process-shared robust mutex. */
typedef struct crew_lock crew_lock;

/* Creates a lock; recursive != 0 makes an RLock (its holder may acquire it
 * again and must release it as often). -ENOMEM, -EMFILE. */
int crew_lock_create(crew_lock **out, int recursive);

/* Acquires: 0; CREW_EOWNERDEAD when the previous holder died holding it
 * (the caller holds it now and it is usable again, but what it guarded may
 * be half-written); -EAGAIN on timeout; -EDEADLK when a plain lock's holder
 * acquires it again. */
int crew_lock_acquire(crew_lock *l, double timeout);

/* Releases: 0, or -EPERM when the calling thread does not hold it. */
int crew_lock_release(crew_lock *l);

int crew_lock_ref(const crew_lock *l, crew_shared_ref *ref);
int crew_lock_open(crew_lock **out, const crew_shared_ref *ref);
void crew_lock_free(crew_lock *l);

/* ------------------------------------------------------------ semaphore -- */

typedef struct crew_semaphore crew_semaphore;

/* Creates a semaphore holding `value`; max > 0 makes it bounded (a release
 * past max fails with -EOVERFLOW). -EINVAL when value > max > 0. */
int crew_semaphore_create(crew_semaphore **out, unsigned value, unsigned max);
/* Takes one: 0, or -EAGAIN on timeout. A holder that dies does not give its
 * unit back (as with any semaphore). */
int crew_semaphore_acquire(crew_semaphore *s, double timeout);
/* Gives n back: 0, -EOVERFLOW (bounded and would pass max; nothing given). */
int crew_semaphore_release(crew_semaphore *s, unsigned n);
/* The current value. */
unsigned crew_semaphore_value(const crew_semaphore *s);
int crew_semaphore_ref(const crew_semaphore *s, crew_shared_ref *ref);
int crew_semaphore_open(crew_semaphore **out, const crew_shared_ref *ref);
void crew_semaphore_free(crew_semaphore *s);

/* ---------------------------------------------------------------- event -- */

typedef struct crew_event crew_event;

int crew_event_create(crew_event **out);
/* Sets the flag and wakes every waiter. */
int crew_event_set(crew_event *e);
int crew_event_clear(crew_event *e);
/* 1 when set, else 0. */
int crew_event_is_set(const crew_event *e);
/* Waits until set: 0, or -EAGAIN on timeout. */
int crew_event_wait(crew_event *e, double timeout);
int crew_event_ref(const crew_event *e, crew_shared_ref *ref);
int crew_event_open(crew_event **out, const crew_shared_ref *ref);
void crew_event_free(crew_event *e);

/* ------------------------------------------------------------ condition -- */

/* A condition variable used with any crew_lock (the caller's). */
typedef struct crew_condition crew_condition;

int crew_condition_create(crew_condition **out);
/* Releases l (held once by the caller), sleeps until notified or the
 * timeout, re-acquires l. 0 (notified; spurious wake-ups can happen, so
 * re-check the predicate), -EAGAIN (timed out; l is held again),
 * CREW_EOWNERDEAD (re-acquired l from a holder that died), -EPERM (l not
 * held by the caller). */
int crew_condition_wait(crew_condition *c, crew_lock *l, double timeout);
/* Wakes up to n waiters (notify) or all of them (notify_all). */
int crew_condition_notify(crew_condition *c, int n);
int crew_condition_notify_all(crew_condition *c);
int crew_condition_ref(const crew_condition *c, crew_shared_ref *ref);
int crew_condition_open(crew_condition **out, const crew_shared_ref *ref);
void crew_condition_free(crew_condition *c);

/* -------------------------------------------------------------- barrier -- */

typedef struct crew_barrier crew_barrier;

/* A barrier for `parties` (>= 1) waiters; it resets itself each round. */
int crew_barrier_create(crew_barrier **out, unsigned parties);
/* Waits until `parties` callers wait: returns this caller's arrival index
 * (0 .. parties-1, distinct in a round). A timeout breaks the barrier:
 * -EAGAIN for the caller, CREW_EBROKEN for the others and for every wait
 * until crew_barrier_reset(). A party that dies never arrives: give the
 * others a timeout. */
int crew_barrier_wait(crew_barrier *b, double timeout);
/* Breaks the barrier: waiters return CREW_EBROKEN. */
int crew_barrier_abort(crew_barrier *b);
/* Makes a broken barrier usable again (waiters now get CREW_EBROKEN). */
int crew_barrier_reset(crew_barrier *b);
unsigned crew_barrier_parties(const crew_barrier *b);
int crew_barrier_ref(const crew_barrier *b, crew_shared_ref *ref);
int crew_barrier_open(crew_barrier **out, const crew_shared_ref *ref);
void crew_barrier_free(crew_barrier *b);

/* ---------------------------------------------------------------- queue -- */

/* A bounded multi-producer/multi-consumer queue of byte messages. */
typedef struct crew_queue crew_queue;

/*
 * Creates a queue holding at most max_items messages (0: no count limit)
 * and `bytes` bytes of messages (0: 1 MiB; each message costs its length
 * rounded up to 8, plus 8). A message may be up to bytes/2 - 16 long.
 */
int crew_queue_create(crew_queue **out, size_t max_items, size_t bytes);

/*
 * Appends a copy of len bytes at data. 0; -EAGAIN (full until the
 * timeout); CREW_ETOOBIG (longer than bytes/2 - 16); CREW_ECLOSED (the queue was
 * closed); -EPIPE (full, and no other process holds the queue any more
 * although one did: nobody could make room).
 */
int crew_queue_put(crew_queue *q, const void *data, size_t len, double timeout);

/* Like put, one message made of iovcnt pieces (no concatenation needed). */
struct iovec;
int crew_queue_putv(crew_queue *q, const struct iovec *iov, int iovcnt, double timeout);

/* Puts n messages in order, taking the lock once while they fit. Returns how
 * many were put (n unless the timeout passed part way), or put's error when
 * none could be. */
int crew_queue_put_many(crew_queue *q, size_t n, const void *const *data, const size_t *lens,
                        double timeout);

/*
 * Removes the oldest message into buf (cap bytes): 0 and *len. -EMSGSIZE
 * when it is larger than cap (*len gets its size; it stays queued); -EAGAIN
 * (empty until the timeout); -EPIPE (empty, and closed, or no other process
 * holds the queue any more although one did: nothing more can come).
 */
int crew_queue_get(crew_queue *q, void *buf, size_t cap, size_t *len, double timeout);

/* Like get, into a malloc()ed buffer the caller frees (free()). -ENOMEM. */
int crew_queue_get_alloc(crew_queue *q, void **data, size_t *len, double timeout);

/*
 * Waits for one message like get, then takes up to max messages that fit
 * in buf, back to back (message i is lens[i] bytes). Returns how many (>= 1)
 * or get's error (-EMSGSIZE when the first alone is larger than cap).
 */
int crew_queue_get_many(crew_queue *q, size_t max, void *buf, size_t cap, size_t *lens,
                        double timeout);

/* Messages queued now. */
size_t crew_queue_size(const crew_queue *q);

/* Closes the queue for every holder: puts fail with CREW_ECLOSED, gets drain
 * what is left and then fail with -EPIPE; blocked callers wake. Idempotent. */
int crew_queue_close(crew_queue *q);

int crew_queue_ref(const crew_queue *q, crew_shared_ref *ref);
int crew_queue_open(crew_queue **out, const crew_shared_ref *ref);
void crew_queue_free(crew_queue *q);

/* ----------------------------------------------------------------- pipe -- */

/* One end of a duplex pipe: a pair of connected ends, like multiprocessing.Pipe(). */
typedef struct crew_pipe crew_pipe;

/* Creates both ends; each direction buffers `bytes` (0: 1 MiB). Give one
 * end to another process by its ref and free your handle of it once that
 * process has opened it: an end whose other end no longer has any holder
 * reads EOF (-EPIPE). */
int crew_pipe_create(crew_pipe **end0, crew_pipe **end1, size_t bytes);
/* Sends a copy of len bytes: 0, -EAGAIN (full until the timeout),
 * CREW_ETOOBIG (> bytes/2 - 16), -EPIPE (the other end has no holder left:
 * freed everywhere: seen at once; or its processes died: within 100 ms). */
int crew_pipe_send(crew_pipe *p, const void *data, size_t len, double timeout);
/* Receives the next message like crew_queue_get(); -EPIPE once the other
 * end has no holder left (freed, or its processes died: noticed within
 * about 100 ms) and nothing is left. */
int crew_pipe_recv(crew_pipe *p, void *buf, size_t cap, size_t *len, double timeout);
int crew_pipe_recv_alloc(crew_pipe *p, void **data, size_t *len, double timeout);
/* 1 when a message is ready, 0 when none came before the timeout, -EPIPE
 * when none can come (the other end is gone). */
int crew_pipe_poll(crew_pipe *p, double timeout);
int crew_pipe_ref(const crew_pipe *p, crew_shared_ref *ref);
int crew_pipe_open(crew_pipe **out, const crew_shared_ref *ref);
void crew_pipe_free(crew_pipe *p);

/* ---------------------------------------------------------------- array -- */

/* A block of shared bytes, with a short description (e.g. dtype and shape). */
typedef struct crew_array crew_array;

/* Creates `bytes` zeroed bytes (> 0) and copies meta (a string of at most
 * 255 bytes, or NULL) beside them. -EINVAL, -ENOMEM, -EMFILE. */
int crew_array_create(crew_array **out, size_t bytes, const char *meta);
/* The bytes (valid until crew_array_free of this handle), their length, the
 * description ("" when none). */
void *crew_array_data(const crew_array *a);
size_t crew_array_size(const crew_array *a);
const char *crew_array_meta(const crew_array *a);
int crew_array_ref(const crew_array *a, crew_shared_ref *ref);
int crew_array_open(crew_array **out, const crew_shared_ref *ref);
void crew_array_free(crew_array *a);

/* ----------------------------------------------------------------- dict -- */

/*
 * A hash map of byte keys to byte values. Every single call is atomic.
 * Readers take no lock: they read published entries optimistically and
 * retry when a rebuild moved them, so a writer that dies cannot stall them;
 * writers are serialised by a robust lock. A value is written out of place
 * and published by one atomic store, so a writer killed at any point leaves
 * either the old value or the new one.
 */
typedef struct crew_dict crew_dict;

/* Creates a dict for up to max_items keys (0: 65536) and max_bytes of keys
 * and values (0: 64 MiB; each entry costs klen + vlen + 16, rounded to 8).
 * Memory is reserved, not used, until written. */
int crew_dict_create(crew_dict **out, size_t max_items, size_t max_bytes);

/* Sets key to a copy of value. 0, -ENOSPC (full), -EINVAL (klen 0). */
int crew_dict_set(crew_dict *d, const void *key, size_t klen, const void *val, size_t vlen);

/* Copies key's value into buf (cap bytes): 0 and *vlen; -ENOENT; -EMSGSIZE
 * when larger than cap (*vlen gets its size). */
int crew_dict_get(crew_dict *d, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen);
/* Like get, into a malloc()ed buffer the caller frees. */
int crew_dict_get_alloc(crew_dict *d, const void *key, size_t klen, void **val, size_t *vlen);
/* 1 when key is present, 0 when not. */
int crew_dict_contains(crew_dict *d, const void *key, size_t klen);
/* Removes key: 0 or -ENOENT. */
int crew_dict_delete(crew_dict *d, const void *key, size_t klen);
/* Number of keys. */
size_t crew_dict_len(crew_dict *d);
/* Removes every key. */
int crew_dict_clear(crew_dict *d);

/*
 * Iterates: start with *cursor = 0; each call copies the next entry's key
 * and value and advances *cursor. 0; -ENOENT at the end; -EMSGSIZE when a
 * buffer is too small (*klen, *vlen get the sizes; the cursor stays). Keys
 * set or removed meanwhile may or may not be seen; hold crew_dict_lock()
 * for a stable view.
 */
int crew_dict_next(crew_dict *d, uint64_t *cursor, void *kbuf, size_t kcap, size_t *klen,
                   void *vbuf, size_t vcap, size_t *vlen);

/* Takes the dict's writer lock for a compound operation (this thread may
 * call every dict function meanwhile; other writers wait, readers do not).
 * 0, CREW_EOWNERDEAD (a writer died; the dict was repaired and is whole),
 * -EAGAIN on timeout. */
int crew_dict_lock(crew_dict *d, double timeout);
int crew_dict_unlock(crew_dict *d);

int crew_dict_ref(const crew_dict *d, crew_shared_ref *ref);
int crew_dict_open(crew_dict **out, const crew_shared_ref *ref);
void crew_dict_free(crew_dict *d);

/* ========================================== end of shared state section == */

#ifdef __cplusplus
}
#endif
#endif /* CREW_H */
