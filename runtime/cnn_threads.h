/* cnn_threads.h: the thread pool that shares a layer's loop among threads.
 *
 * cnn_parallel(flag, n, fn, ctx) runs fn(ctx, begin, end, slot) over [0, n) in ranges. The
 * calling thread takes part; the pool's workers claim ranges while they are running, so a
 * worker that has lost its core to another process is simply not waited for: the loop waits
 * only for ranges already claimed. A range's size shrinks as the loop nears its end
 * ("guided" scheduling), so few claims are made and a late range is short. Idle threads spin
 * for a while (the next loop usually follows within microseconds), then sleep; a thread
 * waiting for a claimed range to finish spins briefly, then sleeps, freeing its core for
 * the thread that computes the range. (pthreadpool and ONNX Runtime's pool spin, then block,
 * in the same way; libgomp's barriers instead wait for every thread of the team, so one
 * descheduled thread stalled every loop.)
 *
 * Threads are compiled in with -DCNN_THREADS (or -fopenmp, for builds made before the pool),
 * POSIX threads (-pthread) and C11 (atomics, thread-local storage); without them every loop
 * runs on the calling thread and nothing here needs more than C99. One pool per model library, started at the first
 * parallel loop, its size the most threads any caller has asked for; each caller's own count
 * (cnn_set_threads) is the team size of the loops it starts, as OpenMP's
 * omp_set_num_threads is per thread. A loop started from inside another (a batch's samples
 * spread over the threads, each running its layers) or while another caller uses the pool
 * runs on the calling thread alone. A child process forked from a process with a pool starts
 * with none.
 */
#ifndef CNN_THREADS_H
#define CNN_THREADS_H

#include <stdint.h>

/* Tells the compiler that cond holds (a task's range lies inside its loop), so that it
 * derives what it would from constant loop bounds; a no-op where it cannot be said. */
#if defined(__GNUC__)
#define CNN_ASSUME(cond) ((cond) ? (void)0 : __builtin_unreachable())
#else
#define CNN_ASSUME(cond) ((void)0)
#endif

/* fn computes iterations [begin, end) of a loop; slot: the index, below the team size, of
 * the thread running it (for per-thread scratch). */
typedef void (*cnn_task)(void *ctx, int begin, int end, int slot);

#if defined(CNN_THREADS) || defined(_OPENMP)
#define CNN_HAVE_THREADS 1
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define CNN_POOL_MAX 64 /* threads per pool, the caller included */

/* pause between polls of a shared word: lets the sibling hyperthread run, saves power */
#if defined(__x86_64__) || defined(__i386__)
#define CNN_SPIN_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define CNN_SPIN_PAUSE() __asm__ __volatile__("yield")
#else
#define CNN_SPIN_PAUSE() ((void)0)
#endif

/* Polls before sleeping: an idle worker about 25 us (a model's next loop usually starts
 * within a few), a caller waiting for claimed ranges as long. Not longer: on a core shared
 * with another process, a worker that slept is woken ahead of that process's thread, where
 * one that kept polling is queued behind it (benchmarks/RESULTS.md, CNN_IDLE_SPINS). */
#ifndef CNN_IDLE_SPINS
#define CNN_IDLE_SPINS 1000
#endif
#ifndef CNN_WAIT_SPINS
#define CNN_WAIT_SPINS 1000
#endif

typedef struct {
    /* the loop in flight: generation << 32 | next iteration to claim */
    _Atomic unsigned long long state;
    _Atomic int done;         /* iterations finished */
    _Atomic int idle_sleepers; /* workers asleep on `wake` */
    _Atomic int caller_asleep; /* the caller sleeps on `finished` */
    _Atomic int in_use;       /* a caller owns the pool */
    cnn_task fn;              /* read by a worker only once it holds a range */
    void *ctx;
    _Atomic int n, team;      /* read before a claim, so atomic */
    int workers;              /* started */
    pthread_mutex_t mu;
    pthread_cond_t wake, finished;
    pthread_t tid[CNN_POOL_MAX];
} cnn_pool_t;

static cnn_pool_t cnn_pool_ = {.mu = PTHREAD_MUTEX_INITIALIZER,
                               .wake = PTHREAD_COND_INITIALIZER,
                               .finished = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t cnn_pool_start_ = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int cnn_threads_wanted_; /* 0: the default */
static _Thread_local int cnn_in_loop_;        /* this thread is running a loop's range */

/* every online CPU, asked once: sysconf reads it from /sys each time */
static inline int cnn_default_threads(void)
{
    static _Atomic int cpus;
    int n = atomic_load_explicit(&cpus, memory_order_relaxed);
    if (!n) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online < 1 ? 1 : online > CNN_POOL_MAX ? CNN_POOL_MAX : (int)online;
        atomic_store_explicit(&cpus, n, memory_order_relaxed);
    }
    return n;
}

/* the threads this thread's parallel loops use from now on; 0 or less: the default */
static inline void cnn_set_threads(int n)
{
    cnn_threads_wanted_ = n > CNN_POOL_MAX ? CNN_POOL_MAX : n;
}

/* the team a loop started now would have */
static inline int cnn_team_size(void)
{
    if (cnn_in_loop_)
        return 1;
    return cnn_threads_wanted_ > 0 ? cnn_threads_wanted_ : cnn_default_threads();
}

/* Claim ranges of the loop of generation gen and run them; slot: this thread's index. */
static void cnn_pool_work(cnn_pool_t *p, unsigned long long gen, int slot)
{
    for (;;) {
        unsigned long long s = atomic_load(&p->state);
        if (s >> 32 != gen || (s & 0xffffffffu) >= (unsigned)p->n)
            return; /* another loop, or this one all claimed (or closed) */
        const int next = (int)(s & 0xffffffffu), n = p->n;
        /* guided: a quarter of a thread's fair share of what is left, at least one */
        int size = (n - next) / (4 * p->team);
        size = size < 1 ? 1 : size;
        if (!atomic_compare_exchange_weak(&p->state, &s, s + (unsigned long long)size))
            continue;
        /* the claim succeeded, so this loop is not finished and fn/ctx are still its own */
        const int end = next + size < n ? next + size : n;
        cnn_in_loop_ = 1;
        p->fn(p->ctx, next, end, slot);
        cnn_in_loop_ = 0;
        if (atomic_fetch_add(&p->done, end - next) + (end - next) == n &&
            atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *cnn_pool_worker(void *arg)
{
    cnn_pool_t *p = &cnn_pool_;
    const int slot = (int)(intptr_t)arg;
    unsigned long long seen = atomic_load(&p->state) >> 32;
    for (;;) {
        unsigned long long gen = atomic_load(&p->state) >> 32;
        for (int spin = 0; gen == seen && spin < CNN_IDLE_SPINS; ++spin) {
            CNN_SPIN_PAUSE();
            gen = atomic_load(&p->state) >> 32;
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->idle_sleepers, 1);
            while ((gen = atomic_load(&p->state) >> 32) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->idle_sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = gen;
        if (slot < p->team)
            cnn_pool_work(p, gen, slot);
    }
    return NULL;
}

/* in a forked child: the workers were not copied, and a lock may have been held by one */
static void cnn_pool_forget(void)
{
    cnn_pool_t *p = &cnn_pool_;
    p->workers = 0;
    atomic_store(&p->idle_sleepers, 0);
    atomic_store(&p->caller_asleep, 0);
    atomic_store(&p->in_use, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    pthread_mutex_init(&cnn_pool_start_, NULL);
}

/* Start workers up to team - 1 of them; returns the team the pool can field. */
static int cnn_pool_grow(cnn_pool_t *p, int team)
{
    if (p->workers >= team - 1)
        return team;
    pthread_mutex_lock(&cnn_pool_start_);
    static int forget_on_fork = 0;
    if (!forget_on_fork)
        forget_on_fork = pthread_atfork(NULL, NULL, cnn_pool_forget) == 0;
    while (p->workers < team - 1) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&p->tid[p->workers], &attr, cnn_pool_worker,
                                      (void *)(intptr_t)(p->workers + 1)) == 0;
        pthread_attr_destroy(&attr);
        if (!ok)
            break;
        ++p->workers;
    }
    pthread_mutex_unlock(&cnn_pool_start_);
    return p->workers + 1 < team ? p->workers + 1 : team;
}

static void cnn_pool_run(int n, cnn_task fn, void *ctx, int team)
{
    cnn_pool_t *p = &cnn_pool_;
    int free_ = 0;
    if (!atomic_compare_exchange_strong(&p->in_use, &free_, 1)) {
        fn(ctx, 0, n, 0); /* another caller has the pool */
        return;
    }
    team = cnn_pool_grow(p, team);
    /* Close the last loop before its fields change: a worker that read its state but not
     * yet its n could otherwise claim past its end once n grows. A closed loop's next is
     * past any n; the new loop opens under the generation after. */
    const unsigned long long closed = (atomic_load(&p->state) >> 32) + 1, gen = closed + 1;
    atomic_store(&p->state, closed << 32 | 0xffffffffu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->team = team;
    atomic_store(&p->done, 0);
    atomic_store(&p->state, gen << 32);
    if (atomic_load(&p->idle_sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    cnn_pool_work(p, gen, 0);
    for (int spin = 0; atomic_load(&p->done) != n && spin < CNN_WAIT_SPINS; ++spin)
        CNN_SPIN_PAUSE();
    if (atomic_load(&p->done) != n) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_asleep, 1);
        while (atomic_load(&p->done) != n)
            pthread_cond_wait(&p->finished, &p->mu);
        atomic_store(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->in_use, 0);
}

/* Never inlined nor specialised for its fn: a task whose address reaches the pool is then
 * compiled once, not once more inlined into its layer. */
#if defined(__GNUC__) && !defined(__clang__)
#define CNN_OUT_OF_LINE __attribute__((noinline, noipa))
#elif defined(__GNUC__)
#define CNN_OUT_OF_LINE __attribute__((noinline))
#else
#define CNN_OUT_OF_LINE
#endif

/* a loop marked parallel: on the team, or on this thread alone when it has one thread */
static CNN_OUT_OF_LINE void cnn_parallel_run(int n, cnn_task fn, void *ctx)
{
    const int team = cnn_team_size();
    if (team > 1 && n > 1)
        cnn_pool_run(n, fn, ctx, team);
    else if (n > 0)
        fn(ctx, 0, n, 0);
}

/* fn over [0, n): shared by the team when flag (a literal 0 or 1 from cnncompile: 1 for
 * loops with enough work to repay waking threads) and the team has more than one thread;
 * with flag 0, one direct call, which the compiler inlines. */
static inline void cnn_parallel(int flag, int n, cnn_task fn, void *ctx)
{
    if (flag)
        cnn_parallel_run(n, fn, ctx);
    else if (n > 0)
        fn(ctx, 0, n, 0);
}

/* the team of a loop whose flag is `flag` */
static inline int cnn_team_if(int flag)
{
    return flag ? cnn_team_size() : 1;
}

/* the same with a team of at most `team` threads (their slots below `team`) */
static inline void cnn_parallel_upto(int team, int n, cnn_task fn, void *ctx)
{
    const int size = cnn_team_size();
    team = team < size ? team : size;
    if (team > 1 && n > 1)
        cnn_pool_run(n, fn, ctx, team);
    else if (n > 0)
        fn(ctx, 0, n, 0);
}

#else /* no threads */
#define CNN_HAVE_THREADS 0
static inline void cnn_set_threads(int n)
{
    (void)n;
}

static inline int cnn_team_size(void)
{
    return 1;
}

static inline void cnn_parallel(int flag, int n, cnn_task fn, void *ctx)
{
    (void)flag;
    if (n > 0)
        fn(ctx, 0, n, 0);
}

static inline int cnn_team_if(int flag)
{
    (void)flag;
    return 1;
}

static inline void cnn_parallel_upto(int team, int n, cnn_task fn, void *ctx)
{
    (void)team;
    if (n > 0)
        fn(ctx, 0, n, 0);
}
#endif

#endif
