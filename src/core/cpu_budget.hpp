// How many CPU threads this process may use, for the default thread count: the CPUs of its affinity mask
// (taskset, a cpuset), capped by its cgroup's CPU quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / period,
// the smallest along the path: what `docker --cpus` and Kubernetes `resources.limits.cpu` set), rounded up.
// The host's core count is what neither says, and starting that many threads in a 1-CPU container makes
// every parallel region wait for threads that cannot run.
#pragma once
#include <string>

namespace mmx {

struct CpuBudget {
  int threads = 1;
  std::string why;  // "2 CPUs in the affinity mask", "cgroup cpu.max 100000/100000 of 64 CPUs", ...
};

// MMX_CGROUP_ROOT=DIR reads the cgroup tree from DIR instead of /sys/fs/cgroup and the process's cgroup
// paths from DIR/self.cgroup (the format of /proc/self/cgroup): a test's fake container.
CpuBudget cpu_budget();

// What set_num_threads chose last and why ("--threads", "MMX_THREADS", "OMP_NUM_THREADS", or the budget).
std::string threads_reason();

}  // namespace mmx
