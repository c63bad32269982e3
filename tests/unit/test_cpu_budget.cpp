// The default thread count is what the process may use: its affinity mask, capped by a cgroup CPU quota
// (v2 cpu.max, v1 cpu.cfs_quota_us / period, the smallest along its path), checked on fake cgroup trees
// (MMX_CGROUP_ROOT) laid out as a container runtime lays them out; MMX_THREADS and --threads override it.
#include <filesystem>

#include "cli/run_mmx.hpp"
#include "core/cpu_budget.hpp"
#include "mmx/files.hpp"
#include "mmx/runtime.hpp"
#include "test_util.hpp"

using namespace mmx;
namespace fs = std::filesystem;

namespace {
void put(const test::TempDir& dir, const std::string& relative, const std::string& text) {
  fs::create_directories(fs::path(dir.file(relative)).parent_path());
  write_file_atomically(dir.file(relative), text);
}
int affinity_cpus() {
  test::EnvVar none("MMX_CGROUP_ROOT", "/nonexistent-cgroup-root");
  return cpu_budget().threads;
}
}  // namespace

TEST(CpuBudget, ACgroupV2QuotaCapsTheThreadsAlongItsPath) {
  test::TempDir dir;
  put(dir, "self.cgroup", "0::/kubepods/pod1/ctr\n");
  put(dir, "cpu.max", "max 100000\n");
  put(dir, "kubepods/cpu.max", "max 100000\n");
  put(dir, "kubepods/pod1/cpu.max", "100000 100000\n");  // the pod: 1 CPU
  put(dir, "kubepods/pod1/ctr/cpu.max", "250000 100000\n");  // the container asks for 2.5, its pod allows 1
  test::EnvVar root("MMX_CGROUP_ROOT", dir.path.string());
  const CpuBudget b = cpu_budget();
  EXPECT_EQ(b.threads, 1) << b.why;
  EXPECT_NE(b.why.find("cgroup quota of 1 CPU "), std::string::npos) << b.why;
  put(dir, "kubepods/pod1/cpu.max", "max 100000\n");
  put(dir, "kubepods/pod1/ctr/cpu.max", "150000 100000\n");  // 1.5 CPUs: two threads, one of them part-time
  EXPECT_EQ(cpu_budget().threads, std::min(2, affinity_cpus()));
  put(dir, "kubepods/pod1/ctr/cpu.max", "max 100000\n");  // no limit: the affinity mask
  EXPECT_EQ(cpu_budget().threads, affinity_cpus());
  EXPECT_NE(cpu_budget().why.find("affinity mask"), std::string::npos);
}

TEST(CpuBudget, ACgroupV1QuotaCapsTheThreads) {
  test::TempDir dir;
  put(dir, "self.cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
  put(dir, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n");  // docker --cpus 0.5
  put(dir, "cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  test::EnvVar root("MMX_CGROUP_ROOT", dir.path.string());
  EXPECT_EQ(cpu_budget().threads, 1) << cpu_budget().why;
  put(dir, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");  // none
  EXPECT_EQ(cpu_budget().threads, affinity_cpus());
}

TEST(CpuBudget, TheCommandLineSaysWhatItChoseAndWhy) {
  test::TempDir dir;
  put(dir, "self.cgroup", "0::/\n");
  put(dir, "cpu.max", "100000 100000\n");
  {
    test::EnvVar root("MMX_CGROUP_ROOT", dir.path.string());
    const test::Result r = test::run({"--version"});
    EXPECT_NE(r.out.find("threads: 1 by default (the cgroup quota of 1 CPU "), std::string::npos) << r.out;
    test::EnvVar threads("MMX_THREADS", "3");
    const test::Result e = test::run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hi", "--verbose"});
    EXPECT_NE(e.err.find("3 CPU threads (MMX_THREADS)"), std::string::npos) << e.err;
    const test::Result t = test::run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hi", "--verbose", "--threads", "2"});
    EXPECT_NE(t.err.find("2 CPU threads (--threads)"), std::string::npos) << t.err;
    test::EnvVar bad("MMX_THREADS", "lots");
    EXPECT_EQ(test::run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hi"}).code, 2);
  }
  if (std::system("command -v taskset > /dev/null") == 0) {  // util-linux: one CPU in the affinity mask
    test::TempDir out;
    const int rc = std::system(("taskset -c 0 " + test::quote(MMX_BINARY) + " --version > " + out.file("v")).c_str());
    ASSERT_EQ(rc, 0);
    EXPECT_NE(read_file(out.file("v")).find("threads: 1 by default (1 CPU in the affinity mask"), std::string::npos)
        << read_file(out.file("v"));
  }
}
