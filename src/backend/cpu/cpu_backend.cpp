// The CPU backend: host memory, and the op table its op-family files fill (gemm.cpp, attention.cpp, ...).
// It computes in f32; linear and conv2d also take weights kept in F16/BF16, widened as they are packed.
#include "backend/cpu/cpu_backend.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_packed.hpp"

namespace mmx {
namespace {

bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

class CpuBackend final : public Backend {
 public:
  CpuBackend() : Backend(Device::cpu()) {
    cpu::add_gemm_ops(ops_);
    cpu::add_norm_ops(ops_);
    cpu::add_softmax_ops(ops_);
    cpu::add_attention_ops(ops_);
    cpu::add_elementwise_ops(ops_);
    cpu::add_conv_ops(ops_);
    cpu::add_layout_ops(ops_);
  }

  // Host memory: what core's tensors use on the CPU comes from its own block cache; these serve the
  // device-neutral callers.
  void* allocate(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) fail("out of memory allocating ", bytes, " bytes");
    return p;
  }
  void release(void* p, size_t) override { std::free(p); }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void convert(const void* src, DType from, void* dst, DType to, size_t n) override {
    Tensor in = Tensor::from_external(src, {static_cast<int64_t>(n)}, from, nullptr);
    const Tensor out = in.to(to);
    std::memcpy(dst, out.raw(), out.nbytes());
  }
  void synchronize() override {}  // ops run as they are called
  size_t peak_bytes() const override { return 0; }
  void reset_peak() override {}
  std::string description() const override {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, model = "CPU";
    while (std::getline(cpuinfo, line))
      if (line.rfind("model name", 0) == 0) {
        model = line.substr(line.find(':') + 2);
        break;
      }
    const cpu::GemmKernel* k = cpu::gemm_kernel();  // as this process runs it (MMX_GEMM can narrow it)
    return model + ", GEMM on " + (k ? std::string(k->name) + " micro-kernels" : std::string("oneDNN's sgemm"));
  }

  const std::vector<DType>& activation_dtypes() const override {
    static const std::vector<DType> dtypes = {DType::F32};
    return dtypes;
  }
  bool supports(Op op, std::initializer_list<DType> dtypes) const override {
    const DType* d = dtypes.begin();
    // Weights of linear layers and convolutions may stay in their stored half precision.
    if (op == Op::PackLinearWeight) return Backend::supports(op, {}) && dtypes.size() == 1 && is_float(d[0]);
    if ((op == Op::Linear || op == Op::Conv2d) && dtypes.size() == 2)
      return Backend::supports(op, {d[0]}) && is_float(d[1]);
    return Backend::supports(op, dtypes);
  }
};

}  // namespace

std::unique_ptr<Backend> create_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace mmx
