// Shared test helpers: fixture paths, tensor comparison that prints max |Δ|, max rel and the worst
// index (never just a boolean), temporary folders, environment variables set for a scope.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "mmx/placement.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/tensor.hpp"

namespace mmx::test {

// The placement the suite loads its models at: the CPU in F32, or MMX_TEST_DEVICE (and MMX_TEST_DTYPE)
// when set, so that scripts/gpu-check.sh runs every golden test against the same references on a GPU.
inline Placement placement() {
  Placement p;
  if (const char* device = std::getenv("MMX_TEST_DEVICE")) p.device = Device::parse(device);
  if (const char* dtype = std::getenv("MMX_TEST_DTYPE")) p.dtype = dtype_from_name(dtype);
  return p;
}

// The first CUDA device, when this build has the backend and the machine a GPU (tests of it skip otherwise).
inline std::optional<Device> cuda_device() {
  const Device d = Device::parse("cuda");
  return device_available(d) ? std::optional<Device>(d) : std::nullopt;
}

// N(0, scale²) values from a seeded mt19937: the ops tests' inputs.
inline Tensor random_tensor(Shape shape, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// MMX_TEST_DATA_DIR overrides the source tree's tests/data (a suite built on one machine, run on another).
inline std::string data(const std::string& relative) {
  const char* dir = std::getenv("MMX_TEST_DATA_DIR");
  return std::string(dir && *dir ? dir : MMX_TEST_DATA) + "/" + relative;
}

struct Diff {
  double max_abs = 0, max_rel = 0;
  int64_t worst = -1;
};

inline Diff diff(const Tensor& got, const Tensor& expected) {
  Diff d;
  const Tensor a = got.to(DType::F32), b = expected.to(DType::F32);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    const double abs = std::isnan(x) != std::isnan(y) ? INFINITY : std::fabs(x - y);
    if (abs > d.max_abs || d.worst < 0) {
      d.max_abs = abs;
      d.worst = i;
    }
    d.max_rel = std::max(d.max_rel, abs / std::max(std::fabs(y), 1e-6));
  }
  return d;
}

// Asserts shapes equal and max |got − expected| ≤ atol, printing the comparison either way.
inline void expect_close(const std::string& name, const Tensor& got, const Tensor& expected, double atol) {
  ASSERT_EQ(shape_str(got.shape()), shape_str(expected.shape())) << name;
  const Diff d = diff(got, expected);
  const bool pass = d.max_abs <= atol;
  std::printf("  %-40s max|d| %.3e  max rel %.3e  worst index %lld  bound %.1e  %s\n", name.c_str(), d.max_abs,
              d.max_rel, static_cast<long long>(d.worst), atol, pass ? "PASS" : "FAIL");
  EXPECT_LE(d.max_abs, atol) << name << " differs most at flat index " << d.worst;
}

inline void expect_equal_i64(const std::string& name, const Tensor& got, const Tensor& expected) {
  ASSERT_EQ(shape_str(got.shape()), shape_str(expected.shape())) << name;
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_EQ(got.data<int64_t>()[i], expected.data<int64_t>()[i]) << name << " at flat index " << i;
}

// A fresh folder under the system temp dir, removed at scope exit.
// Sets (or unsets) an environment variable for the life of the guard, then restores it.
class EnvVar {
 public:
  EnvVar(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value->c_str(), 1);
    else unsetenv(name);
  }
  ~EnvVar() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mmx-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace mmx::test
