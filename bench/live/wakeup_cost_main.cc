// What it costs the machine to wake a sleeping thread: two threads pass one byte back and forth
// through two pipes (the way librdkafka wakes its threads: a write to a wake-up fd), 100,000 round
// trips, each round trip two wake-ups. Measured three ways: the scheduler's choice, both threads
// pinned to CPU 0 (a wake-up is a context switch on one CPU), and pinned to CPUs 0 and 1 (a
// wake-up crosses to the other CPU; on a VM an idle vCPU must be woken by the hypervisor).
// bench/README.md uses it to explain why handoffd's threads cost more here than their work.
// Usage: wakeup_cost [ROUND_TRIPS]; prints one JSON line.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

void Pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

double ProcessCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Cost {
  double wall_us = -1;  // per round trip
  double cpu_us = -1;   // CPU time of both threads per round trip
};

// Per round trip; wall_us -1 on a pipe error.
Cost RoundTrip(long trips, int cpu_a, int cpu_b) {
  int ping[2];
  int pong[2];
  if (pipe(ping) != 0 || pipe(pong) != 0) return {};
  std::thread echo([&] {
    Pin(cpu_b);
    char c;
    for (long i = 0; i < trips; ++i) {
      if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) return;
    }
  });
  Pin(cpu_a);
  char c = 1;
  bool ok = true;
  const double cpu0 = ProcessCpuUs();
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < trips && ok; ++i) {
    ok = write(ping[1], &c, 1) == 1 && read(pong[0], &c, 1) == 1;
  }
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  echo.join();
  const double cpu = ProcessCpuUs() - cpu0;
  for (int fd : {ping[0], ping[1], pong[0], pong[1]}) close(fd);
  if (!ok) return {};
  return {us / static_cast<double>(trips), cpu / static_cast<double>(trips)};
}

}  // namespace

int main(int argc, char** argv) {
  const long trips = argc > 1 ? std::atol(argv[1]) : 100000;
  const Cost any = RoundTrip(trips, -1, -1);  // first: the calls below pin this thread
  const Cost same = RoundTrip(trips, 0, 0);
  const Cost cross = std::thread::hardware_concurrency() > 1 ? RoundTrip(trips, 0, 1) : Cost{};
  std::printf(
      "{\"round_trips\":%ld,\"wall_us_per_round_trip\":{\"unpinned\":%.2f,\"same_cpu\":%.2f,"
      "\"cpu0_to_cpu1\":%.2f},\"cpu_us_per_round_trip\":{\"unpinned\":%.2f,\"same_cpu\":%.2f,"
      "\"cpu0_to_cpu1\":%.2f}}\n",
      trips, any.wall_us, same.wall_us, cross.wall_us, any.cpu_us, same.cpu_us, cross.cpu_us);
  return any.wall_us < 0 || same.wall_us < 0 ? 1 : 0;
}
