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
    char *const *spawn_argv;   /* spawn: program + args to exec; NULL: this program */
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
 * Runs task `name` over n inputs (args[i], lens[i]), grouping them into
 * chunks of `chunk` items per message (0: automatic, about 4 chunks per
 * worker), and waits for all. Returns 0 and *out, or a submit error; per-item
 * failures are read with crew_batch_get().
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
 * a spawned worker it runs the worker loop and exits, never returning.
 */
int crew_main(int argc, char **argv);

/*
 * Runs the worker loop of slot `slot` of the pool whose shared memory is
 * shm_fd, in this process, until the pool tells it to quit; then returns 0.
 * For custom launchers (crew_options.launch). Sets PR_SET_PDEATHSIG so the
 * worker dies with its parent. Fails with -EINVAL (not a crew pool, bad
 * slot) or a mapping error.
 */
int crew_worker_run(int shm_fd, int slot);

#ifdef __cplusplus
}
#endif
#endif /* CREW_H */
