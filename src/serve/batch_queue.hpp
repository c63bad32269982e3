// One model's queue and its inference worker (src/serve/batch_queue.cpp). Request threads tokenize or
// decode their inputs and submit a Job; the worker takes the oldest job and every queued job of the same
// kind that still fits the batch (texts: padded cost longest × rows within max_batch_tokens, at most
// max_batch_requests requests; images: at most max_batch_images), runs them as one call to the embedder
// (which sorts texts by length so that passes pad little), and hands each job its rows. Requests of
// several clients share a batch; while one batch runs the next one gathers, so no timer delays anyone.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mmx/embed.hpp"
#include "mmx/image.hpp"
#include "mmx/tokenizer.hpp"
#include "serve/metrics.hpp"

namespace mmx::serve {

struct Job {
  enum class Kind { Texts, Images, Task };
  Kind kind = Kind::Texts;
  std::vector<Encoding> rows;   // Texts: tokenized, unpadded, within the model's length
  std::vector<Image> images;    // Images
  std::function<void()> task;   // Task: work that must run on the model's worker (similarity, classify)
  std::optional<Pooling> pooling;  // the model's default when unset; only jobs of one pooling share a batch
  // Texts: a sentence-transformers folder's prompt by name (TEI's prompt_name); unset, the folder's default.
  // Only jobs of one prompt share a batch, as the prompt's tokens are left out of some poolings.
  std::optional<std::string> prompt_name;
  std::chrono::steady_clock::time_point queued_at{};

  // Set by the worker: one embedding per input (row-major [inputs, dim]), or the error of its batch.
  std::vector<float> embeddings;
  int64_t dim = 0;
  std::exception_ptr error;
  // Set by the request thread when its client left or its time ran out: the worker skips it.
  std::atomic<bool> abandoned{false};

  // Waits until the worker has finished the job or `deadline` passed; true when finished.
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  void finish();

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

struct BatchLimits {
  int64_t max_batch_tokens = 16384;  // texts: padded tokens per batch
  int64_t max_batch_requests = 64;   // requests per batch
  int64_t max_batch_images = 32;     // images per batch
  // Called by the worker before each batch it runs (tests hold batches with it to fill queues).
  std::function<void()> before_batch;
};

class ModelWorker {
 public:
  ModelWorker(std::string name, std::unique_ptr<TextEmbedder> texts, std::unique_ptr<ImageEmbedder> images,
              BatchLimits limits, Metrics& metrics);
  ~ModelWorker();  // finishes the queued jobs, then joins the worker
  void submit(const std::shared_ptr<Job>& job);
  size_t queue_size() const;
  const std::string& name() const { return name_; }
  const TextEmbedder* texts() const { return texts_.get(); }
  const ImageEmbedder* images() const { return images_.get(); }
  const BatchLimits& limits() const { return limits_; }

 private:
  void run();
  std::vector<std::shared_ptr<Job>> next_batch(std::unique_lock<std::mutex>& lock);
  void execute(const std::vector<std::shared_ptr<Job>>& batch);

  std::string name_;
  std::unique_ptr<TextEmbedder> texts_;
  std::unique_ptr<ImageEmbedder> images_;
  BatchLimits limits_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mmx::serve
