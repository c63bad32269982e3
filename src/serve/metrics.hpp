// The server's Prometheus metrics (src/serve/metrics.cpp): counters, gauges and histograms with labels,
// rendered in the text exposition format (version 0.0.4) that Prometheus, the Kubernetes metrics adapter
// and every scraper read. One mutex: updates are a few per request, never per token.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mmx::serve {

// label name → value, kept sorted so that one set of labels is one series.
using Labels = std::map<std::string, std::string>;

class Metrics {
 public:
  Metrics();
  void add(const std::string& counter, const Labels& labels, double value = 1);
  void set(const std::string& gauge, const Labels& labels, double value);
  void observe(const std::string& histogram, const Labels& labels, double value);
  // A gauge read when scraped (queue sizes, resident memory).
  void gauge_callback(const std::string& gauge, const Labels& labels, std::function<double()> read);
  std::string render() const;

 private:
  struct Family {
    std::string type, help;
    std::vector<double> buckets;  // histograms: upper bounds, ascending (+Inf implied)
  };
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  std::map<std::string, std::map<Labels, double>> values_;
  std::map<std::string, std::map<Labels, Histogram>> histograms_;
  std::map<std::string, std::map<Labels, std::function<double()>>> callbacks_;
  void declare(const std::string& name, const std::string& type, const std::string& help, std::vector<double> buckets = {});
};

// The resident set size of this process in bytes (/proc/self/statm), 0 where it cannot be read.
double resident_memory_bytes();

}  // namespace mmx::serve
