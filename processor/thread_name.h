// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb tell the worker's threads
// apart (librdkafka names its own: rdk:main, rdk:broker<id>).
#pragma once

#include <pthread.h>

#include <string>

namespace handoffd {

// Linux keeps at most 15 characters: a longer name is cut.
inline void NameThisThread(std::string name) {
  if (name.size() > 15) name.resize(15);
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace handoffd
