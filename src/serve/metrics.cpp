#include "serve/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include <unistd.h>

#include "mmx/error.hpp"

namespace mmx::serve {
namespace {

std::vector<double> powers_of_two(double from, double to) {
  std::vector<double> b;
  for (double v = from; v <= to; v *= 2) b.push_back(v);
  return b;
}

// Label values escaped as the exposition format asks: backslash, double quote and newline.
std::string escaped(const std::string& value) {
  std::string s;
  for (char c : value) {
    if (c == '\\') s += "\\\\";
    else if (c == '"') s += "\\\"";
    else if (c == '\n') s += "\\n";
    else s += c;
  }
  return s;
}

std::string label_text(const Labels& labels, const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string s;
  for (const auto& [k, v] : labels) s += (s.empty() ? "" : ",") + k + "=\"" + escaped(v) + "\"";
  if (!extra_name.empty()) s += (s.empty() ? "" : ",") + extra_name + "=\"" + extra_value + "\"";
  return s.empty() ? "" : "{" + s + "}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

Metrics::Metrics() {
  // Latencies from 1 ms to ~65 s; batch sizes and tokens by powers of two.
  const std::vector<double> seconds = powers_of_two(0.001, 65.6);
  declare("mmx_requests_total", "counter", "HTTP requests answered, by route and status code");
  declare("mmx_request_duration_seconds", "histogram", "time from a request's arrival to its answer, by route", seconds);
  declare("mmx_requests_in_flight", "gauge", "requests being answered now");
  declare("mmx_rejected_requests_total", "counter", "requests refused before any work, by reason (overloaded: 429)");
  declare("mmx_dropped_requests_total", "counter",
          "queued requests dropped before their batch ran, by model and reason (client_disconnected, timeout)");
  declare("mmx_queue_size", "gauge", "requests waiting in a model's queue");
  declare("mmx_queue_duration_seconds", "histogram", "time a request waited in its model's queue", seconds);
  declare("mmx_inference_duration_seconds", "histogram", "time one batch took in the model", seconds);
  declare("mmx_batch_size", "histogram", "inputs (texts or images) per batch", powers_of_two(1, 1024));
  declare("mmx_batch_tokens", "histogram", "padded tokens (longest × texts) per text batch", powers_of_two(16, 65536));
  declare("mmx_model_load_seconds", "gauge", "time a model took to load and warm up");
  declare("mmx_image_queue_length", "gauge", "image jobs waiting in a generator's queue (the running one not counted)");
  declare("mmx_image_jobs", "gauge", "image jobs the server holds, by model and state (queued, running, done, failed, cancelled)");
  declare("mmx_image_jobs_total", "counter", "image jobs ended, by model and state (done, failed, cancelled)");
  declare("mmx_images_total", "counter", "images generated, by model");
  declare("mmx_images_per_hour", "gauge", "images a generator finished in the last hour");
  declare("mmx_image_step_seconds", "histogram", "seconds one denoising step (UNet call) took, by model", powers_of_two(0.01, 164));
  declare("process_resident_memory_bytes", "gauge", "resident memory of the server process");
  gauge_callback("process_resident_memory_bytes", {}, resident_memory_bytes);
}

void Metrics::declare(const std::string& name, const std::string& type, const std::string& help, std::vector<double> buckets) {
  families_[name] = Family{type, help, std::move(buckets)};
}

void Metrics::add(const std::string& counter, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  values_[counter][labels] += value;
}

void Metrics::set(const std::string& gauge, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  values_[gauge][labels] = value;
}

void Metrics::observe(const std::string& histogram, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto family = families_.find(histogram);
  if (family == families_.end()) fail("metrics: no histogram ", histogram);
  const std::vector<double>& bounds = family->second.buckets;
  Histogram& h = histograms_[histogram][labels];
  if (h.counts.empty()) h.counts.assign(bounds.size() + 1, 0);
  size_t b = 0;
  while (b < bounds.size() && value > bounds[b]) ++b;
  ++h.counts[b];
  h.sum += value;
  ++h.count;
}

void Metrics::gauge_callback(const std::string& gauge, const Labels& labels, std::function<double()> read) {
  std::lock_guard<std::mutex> lock(mutex_);
  callbacks_[gauge][labels] = std::move(read);
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, family] : families_) {
    out << "# HELP " << name << ' ' << family.help << "\n# TYPE " << name << ' ' << family.type << '\n';
    if (const auto v = values_.find(name); v != values_.end())
      for (const auto& [labels, value] : v->second) out << name << label_text(labels) << ' ' << number(value) << '\n';
    if (const auto c = callbacks_.find(name); c != callbacks_.end())
      for (const auto& [labels, read] : c->second) out << name << label_text(labels) << ' ' << number(read()) << '\n';
    if (const auto h = histograms_.find(name); h != histograms_.end())
      for (const auto& [labels, hist] : h->second) {
        uint64_t cumulative = 0;
        for (size_t b = 0; b < hist.counts.size(); ++b) {
          cumulative += hist.counts[b];
          const std::string le = b < family.buckets.size() ? number(family.buckets[b]) : "+Inf";
          out << name << "_bucket" << label_text(labels, "le", le) << ' ' << cumulative << '\n';
        }
        out << name << "_sum" << label_text(labels) << ' ' << number(hist.sum) << '\n';
        out << name << "_count" << label_text(labels) << ' ' << hist.count << '\n';
      }
  }
  return out.str();
}

double resident_memory_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages_total = 0, pages_resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  return n == 2 ? double(pages_resident) * double(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace mmx::serve
