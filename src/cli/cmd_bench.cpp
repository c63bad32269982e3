// mmx bench: times whole workloads on full-size architectures (random weights from real configs).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/commands.hpp"
#include "bench/bench.hpp"
#include "bench/random_pipeline.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/runtime.hpp"

#ifndef MMX_SOURCE_DIR
#define MMX_SOURCE_DIR "."
#endif

namespace mmx::cli {

namespace {
// K processes that each keep a core busy (a browser, another replica, a test runner), for timing mmx on a
// busy machine; they end with the benchmark, or with this process however it ends.
class BackgroundLoad {
 public:
  explicit BackgroundLoad(int processes) {
    for (int i = 0; i < processes; ++i) {
      const pid_t pid = ::fork();
      if (pid < 0) fail("--background-load: cannot start a spinning process");
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) __asm__ volatile("");  // spin: a core's worth of work that is never done
      }
      children_.push_back(pid);
    }
  }
  ~BackgroundLoad() {
    for (const pid_t pid : children_) ::kill(pid, SIGKILL);
    for (const pid_t pid : children_) ::waitpid(pid, nullptr, 0);
  }

 private:
  std::vector<pid_t> children_;
};
}  // namespace

static std::string workload_help() {
  std::string s = "workloads:\n";
  for (const auto& [name, help] : bench_workloads()) {
    std::string left = "  " + name;
    left.resize(std::max<size_t>(left.size() + 1, 16), ' ');
    s += left + help + "\n";
  }
  return s +
         "\nEach workload runs once to warm up, then --runs times; median and min are reported with the\n"
         "threads used, GFLOP/s (model FLOPs / median: from the architecture for BERT, ViT and CLIP, counted\n"
         "op by op during the warm-up for SDXL's UNet and VAE) and the fraction of this CPU's peak, measured\n"
         "here with independent FMA chains on the same threads and vector width as the GEMM (measured again\n"
         "should a workload outrun it; MMX_PEAK_GFLOPS=<all cores> overrides it; --json gives peak_gflops).\n"
         "--dtype bf16|int8 on the CPU runs the linear layers on the bf16 / int8 units (AMX, AVX512_BF16,\n"
         "VNNI) and rates them against that unit's measured peak (GOP/s for int8), named in the report.\n"
         "On a GPU (--device cuda --dtype f16|bf16|f32) every workload runs there; timings include draining\n"
         "the GPU's queue, and the GPU memory column is the most the caching allocator held.\n"
         "examples:\n  mmx bench bert-lab clip-text-8 --threads 2 --runs 5\n"
         "  mmx bench bert-lab clip-text-8 --runs 3 --background-load 1   # one core taken by other work\n"
         "  mmx bench bert-32x128 vit-32 --dtype bf16 --threads 2 --runs 3   # the bf16 units\n"
         "  mmx bench bert-1x128 bert-256x128 vit-256 sdxl-unet-1024 --device cuda --dtype f16\n"
         "\n--write-random-sdxl DIR writes a StableDiffusionXLPipeline folder built from SDXL base 1.0's real\n"
         "configs with random weights (fp16 variant files unless --weights f32), so the whole pipeline can be\n"
         "run and timed without the Hub:\n"
         "  mmx bench --write-random-sdxl /tmp/sdxl-random\n"
         "  mmx generate --model /tmp/sdxl-random --variant fp16 --prompt \"a horse\" --steps 2 --seed 0\n";
}

const Command kBenchCommand{
    "bench",
    "mmx bench WORKLOAD... [--runs N] [--weights f32|f16|bf16] [--json] [--data DIR]\n"
    "       mmx bench --write-random-sdxl DIR [--weights f16|f32] [--data DIR]",
    "Benchmark workloads on full-size architectures with random weights.",
    {
        {"runs", "N", "timed runs per workload (default 5)"},
        {"weights", "DTYPE", "dtype of the random weight matrices (default: f16 for sdxl-*, f32 otherwise)",
         false, {"f32", "f16", "bf16"}},
        {"json", "", "print a JSON list instead of a table"},
        {"data", "DIR", "folder with real-configs/ and tokenizers/ (default: tests/data)"},
        {"write-random-sdxl", "DIR", "write SDXL base's pipeline folder, random weights (7 GB in f16), and exit"},
        {"write-random", "NAME=DIR", "write a full-size model folder with random weights and exit (bert-base-uncased, "
                                     "clip-vit-base-patch32, vit-base-patch16-224): to serve and load-test"},
        {"background-load", "K", "keep K cores busy with spinning processes while timing (a busy machine)"},
    },
    workload_help(),
    true,
};

int run_bench(const Args& args) {
  if (args.positionals().empty() && !args.has("write-random-sdxl") && !args.has("write-random"))
    usage_error("name at least one workload (see mmx bench --help)");
  const int runs = static_cast<int>(args.get_int("runs", 1).value_or(5));
  std::string data = args.get("data").value_or("tests/data");
  if (!args.has("data") && !dir_exists(data)) data = std::string(MMX_SOURCE_DIR) + "/tests/data";
  if (!dir_exists(data)) usage_error("--data '", data, "' is not a folder");
  std::optional<DType> weights;
  if (const auto w = args.get("weights")) {
    if (*w == "f32") weights = DType::F32;
    else if (*w == "f16") weights = DType::F16;
    else if (*w == "bf16") weights = DType::BF16;
    else usage_error("--weights must be f32, f16 or bf16, got '", *w, "'");
  }
  if (const auto out = args.get("write-random-sdxl")) {
    if (!args.positionals().empty()) usage_error("--write-random-sdxl writes a folder; run the workloads separately");
    const DType dtype = weights.value_or(DType::F16);
    if (dtype == DType::BF16) usage_error("--write-random-sdxl writes f16 (the fp16 variant) or f32 files");
    write_random_sdxl_pipeline(data + "/real-configs/stable-diffusion-xl-base-1.0", data + "/tokenizers/clip", *out, dtype);
    std::printf("wrote %s (random %s weights; mmx generate --model %s%s)\n", out->c_str(), dtype_name(dtype),
                out->c_str(), dtype == DType::F16 ? " --variant fp16" : "");
    return 0;
  }
  if (const auto spec = args.get("write-random")) {
    const size_t eq = spec->find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec->size()) usage_error("--write-random NAME=DIR, e.g. bert-base-uncased=/tmp/bert");
    const DType dtype = weights.value_or(DType::F32);
    write_random_model_folder(spec->substr(0, eq), data, spec->substr(eq + 1), dtype);
    std::printf("wrote %s (random %s weights)\n", spec->substr(eq + 1).c_str(), dtype_name(dtype));
    return 0;
  }
  const int load = static_cast<int>(args.get_int("background-load", 0).value_or(0));
  if (load > kMaxThreads) usage_error("--background-load ", load, ": at most ", kMaxThreads);
  const BackgroundLoad background(load);
  if (load > 0 && !args.has("json")) std::printf("background load: %d spinning process%s\n", load, load == 1 ? "" : "es");
  nlohmann::ordered_json list = nlohmann::json::array();
  for (const auto& workload : args.positionals()) {
    const BenchResult r = run_benchmark(workload, runs, data, weights, placement_of(args));
    if (args.has("json")) {
      list.push_back({{"workload", r.workload}, {"runs", r.runs}, {"min_ms", r.min_ms}, {"median_ms", r.median_ms},
                      {"gflops", r.gflops}, {"peak_gflops", r.peak_gflops}, {"peak_unit", r.unit}, {"peak_fraction", r.peak_fraction}, {"peak_rss_mb", r.peak_rss_mb},
                      {"threads", r.threads}, {"device", r.device}, {"items", r.items}, {"items_per_s", r.items_per_s},
                      {"peak_device_mb", r.peak_device_mb}, {"background_load", load}});
    } else {
      if (r.device == "cpu")
        std::printf("%-20s median %9.2f ms  min %9.2f ms  %7.1f GFLOP/s  %5.1f%% of %s peak  rss %7.1f MB  threads %d  runs %d\n",
                    r.workload.c_str(), r.median_ms, r.min_ms, r.gflops, 100 * r.peak_fraction, r.unit.c_str(), r.peak_rss_mb,
                    r.threads, r.runs);
      else
        std::printf("%-20s median %9.2f ms  min %9.2f ms  %8.1f GFLOP/s  gpu memory %8.1f MiB  runs %d  %s\n",
                    r.workload.c_str(), r.median_ms, r.min_ms, r.gflops, r.peak_device_mb, r.runs, r.device.c_str());
      if (r.items > 0) std::printf("%-20s %.1f items/s\n", "", r.items_per_s);
      std::printf("%-20s %s\n", "", r.detail.c_str());
      std::fflush(stdout);
    }
  }
  if (args.has("json")) std::puts(list.dump(2).c_str());
  return 0;
}

}  // namespace mmx::cli
