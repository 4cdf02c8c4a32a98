// C11 threads on top of pthreads, linked into every program of a ThreadSanitizer build
// (HANDOFFD_TSAN=ON) and nowhere else.
//
// Debian's librdkafka starts its threads with C11 thrd_create and locks with mtx_lock /
// cnd_wait. glibc implements those with its internal pthread functions, which ThreadSanitizer
// does not intercept: a librdkafka thread would run handoffd's callbacks (rebalance, delivery
// reports, the log callback) without TSan's per-thread state and crash it, and every hand-off
// through librdkafka's queues would be invisible and reported as a race. An executable's
// definitions come before libc's in symbol lookup, so these replace glibc's for librdkafka too,
// and their pthread calls go through TSan's interceptors.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t func;
  void* arg;
};

void* RunC11Thread(void* p) {
  Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  // glibc's thrd_join reads an int result out of the pthread's void* result.
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

int FromErrno(int rc) {
  if (rc == 0) return thrd_success;
  if (rc == EBUSY) return thrd_busy;
  if (rc == ETIMEDOUT) return thrd_timedout;
  if (rc == ENOMEM) return thrd_nomem;
  return thrd_error;
}

pthread_mutex_t* AsPthread(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* AsPthread(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return thrd_nomem;
  pthread_t id;
  int rc = pthread_create(&id, nullptr, RunC11Thread, start);
  if (rc != 0) {
    delete start;
    return FromErrno(rc);
  }
  *thr = id;
  return thrd_success;
}

int thrd_join(thrd_t thr, int* res) {
  void* result = nullptr;
  int rc = pthread_join(thr, &result);
  if (rc == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(result));
  return FromErrno(rc);
}

int thrd_detach(thrd_t thr) { return FromErrno(pthread_detach(thr)); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = pthread_mutex_init(AsPthread(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return FromErrno(rc);
}

int mtx_lock(mtx_t* m) { return FromErrno(pthread_mutex_lock(AsPthread(m))); }
int mtx_trylock(mtx_t* m) { return FromErrno(pthread_mutex_trylock(AsPthread(m))); }
int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict t) {
  return FromErrno(pthread_mutex_timedlock(AsPthread(m), t));
}
int mtx_unlock(mtx_t* m) { return FromErrno(pthread_mutex_unlock(AsPthread(m))); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(AsPthread(m)); }

int cnd_init(cnd_t* c) { return FromErrno(pthread_cond_init(AsPthread(c), nullptr)); }
int cnd_signal(cnd_t* c) { return FromErrno(pthread_cond_signal(AsPthread(c))); }
int cnd_broadcast(cnd_t* c) { return FromErrno(pthread_cond_broadcast(AsPthread(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) {
  return FromErrno(pthread_cond_wait(AsPthread(c), AsPthread(m)));
}
int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m, const struct timespec* __restrict t) {
  return FromErrno(pthread_cond_timedwait(AsPthread(c), AsPthread(m), t));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy(AsPthread(c)); }

}  // extern "C"
