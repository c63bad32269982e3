#include "core/cpu_budget.hpp"

#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "mmx/error.hpp"

namespace mmx {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Quota {
  double cpus = 0;  // 0: no limit found
  std::string where;
};

// The smallest quota on `relative` and its parents under `root`, by `read` of one folder.
template <class Read>
Quota smallest_along(const std::string& root, std::string relative, Read read) {
  Quota best;
  while (true) {
    const std::string folder = root + (relative == "/" ? "" : relative);
    const double cpus = read(folder);
    if (cpus > 0 && (best.cpus == 0 || cpus < best.cpus)) best = {cpus, folder};
    if (relative.empty() || relative == "/") break;
    const size_t slash = relative.find_last_of('/');
    relative = slash == 0 || slash == std::string::npos ? "/" : relative.substr(0, slash);
  }
  return best;
}

Quota cgroup_quota() {
  const char* fake = std::getenv("MMX_CGROUP_ROOT");
  const std::string root = fake && *fake ? fake : "/sys/fs/cgroup";
  const std::string self = read_text(fake && *fake ? root + "/self.cgroup" : "/proc/self/cgroup");
  Quota best;
  std::istringstream lines(self);
  for (std::string line; std::getline(lines, line);) {
    // "hierarchy-id:controllers:path": "0::/path" is cgroup v2; "N:cpu,cpuacct:/path" is v1's CPU controller.
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    Quota q;
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      q = smallest_along(root, path, [](const std::string& folder) {  // cpu.max: "max 100000" or "150000 100000"
        std::istringstream in(read_text(folder + "/cpu.max"));
        std::string quota;
        double period = 0;
        if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0.0;
        return std::atof(quota.c_str()) / period;
      });
    } else {
      std::istringstream names(controllers);
      for (std::string name; std::getline(names, name, ',');)
        if (name == "cpu") {
          const std::string dir = root + "/" + controllers;
          q = smallest_along(dir, path, [](const std::string& folder) {  // quota -1: none
            const double quota = std::atof(read_text(folder + "/cpu.cfs_quota_us").c_str());
            const double period = std::atof(read_text(folder + "/cpu.cfs_period_us").c_str());
            return quota > 0 && period > 0 ? quota / period : 0.0;
          });
        }
    }
    if (q.cpus > 0 && (best.cpus == 0 || q.cpus < best.cpus)) best = q;
  }
  return best;
}

}  // namespace

CpuBudget cpu_budget() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  auto cpus_text = [](double n) { return str(n, n == 1 ? " CPU" : " CPUs"); };
  std::string why = cpus_text(cpus) + " in the affinity mask";
  if (cpus <= 0) {
    cpus = static_cast<int>(std::thread::hardware_concurrency());
    why = str(cpus, " cores");
  }
  cpus = std::max(cpus, 1);
  const Quota quota = cgroup_quota();
  if (quota.cpus > 0 && std::ceil(quota.cpus - 1e-9) < cpus) {
    const int allowed = std::max(1, static_cast<int>(std::ceil(quota.cpus - 1e-9)));
    return {allowed, str("the cgroup quota of ", cpus_text(quota.cpus), " (", quota.where, ") of ", why)};
  }
  return {cpus, why};
}

}  // namespace mmx
