#include "serve/batch_queue.hpp"

#include <algorithm>
#include <cstring>

#include "core/log.hpp"

namespace mmx::serve {

using Clock = std::chrono::steady_clock;

bool Job::wait_until(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return done_cv_.wait_until(lock, deadline, [&] { return done_; });
}

void Job::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  done_cv_.notify_all();
}

ModelWorker::ModelWorker(std::string name, std::unique_ptr<TextEmbedder> texts, std::unique_ptr<ImageEmbedder> images,
                         BatchLimits limits, Metrics& metrics)
    : name_(std::move(name)), texts_(std::move(texts)), images_(std::move(images)), limits_(limits), metrics_(metrics) {
  metrics_.gauge_callback("mmx_queue_size", {{"model", name_}}, [this] { return double(queue_size()); });
  worker_ = std::thread([this] { run(); });
}

ModelWorker::~ModelWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  worker_.join();
  metrics_.gauge_callback("mmx_queue_size", {{"model", name_}}, [] { return 0.0; });
}

void ModelWorker::submit(const std::shared_ptr<Job>& job) {
  job->queued_at = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
  }
  work_cv_.notify_one();
}

size_t ModelWorker::queue_size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

// The oldest live job and the queued jobs of its kind that still fit, in arrival order.
std::vector<std::shared_ptr<Job>> ModelWorker::next_batch(std::unique_lock<std::mutex>&) {
  std::vector<std::shared_ptr<Job>> batch;
  const Job::Kind kind = queue_.front()->kind;
  const std::optional<Pooling> pooling = queue_.front()->pooling;
  const std::optional<std::string> prompt_name = queue_.front()->prompt_name;
  size_t longest = 0, rows = 0, images = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    Job& job = **it;
    if (job.abandoned) {  // its client left or its time ran out while it waited (counted by its request)
      job.finish();
      it = queue_.erase(it);
      continue;
    }
    if (job.kind != kind || job.pooling != pooling || job.prompt_name != prompt_name) { ++it; continue; }
    bool fits = true;
    if (!batch.empty()) {
      if (kind == Job::Kind::Task || int64_t(batch.size()) >= limits_.max_batch_requests) break;
      if (kind == Job::Kind::Texts) {
        size_t l = longest;
        for (const Encoding& e : job.rows) l = std::max(l, e.input_ids.size());
        fits = int64_t(l * (rows + job.rows.size())) <= limits_.max_batch_tokens;
      } else {
        fits = int64_t(images + job.images.size()) <= limits_.max_batch_images;
      }
    }
    if (!fits) break;  // the next batch starts with it: arrival order is kept
    for (const Encoding& e : job.rows) longest = std::max(longest, e.input_ids.size());
    rows += job.rows.size();
    images += job.images.size();
    batch.push_back(*it);
    it = queue_.erase(it);
  }
  return batch;
}

void ModelWorker::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and every queued job is done
    std::vector<std::shared_ptr<Job>> batch = next_batch(lock);
    if (batch.empty()) continue;
    lock.unlock();
    if (limits_.before_batch) limits_.before_batch();
    execute(batch);
    lock.lock();
  }
}

namespace {

// Runs one batch of jobs of one kind; each job gets its rows of the result.
void run_batch(const TextEmbedder* texts, const ImageEmbedder* images, const std::vector<std::shared_ptr<Job>>& jobs,
               int64_t max_batch_tokens) {
  const Job::Kind kind = jobs.front()->kind;
  if (kind == Job::Kind::Task) {
    jobs.front()->task();
    return;
  }
  EmbedOptions options;
  options.max_batch_tokens = max_batch_tokens;
  options.pooling = jobs.front()->pooling;
  EmbedResult result;
  if (kind == Job::Kind::Texts) {
    BatchEncoding batch;
    for (const auto& job : jobs) batch.rows.insert(batch.rows.end(), job->rows.begin(), job->rows.end());
    options.prompt_name = jobs.front()->prompt_name;
    options.prompt_tokens = texts->prompt_tokens(options);  // the prompt encode() added (named, or the default)
    result = texts->embed_encoded(batch, options);
  } else {
    std::vector<Image> all;
    for (const auto& job : jobs) all.insert(all.end(), job->images.begin(), job->images.end());
    result = images->embed(all, options);
  }
  const int64_t dim = result.embeddings.dim(1);
  const float* e = result.embeddings.data<float>();
  for (const auto& job : jobs) {
    const size_t n = kind == Job::Kind::Texts ? job->rows.size() : job->images.size();
    job->dim = dim;
    job->embeddings.assign(e, e + n * size_t(dim));
    e += n * size_t(dim);
  }
}

}  // namespace

void ModelWorker::execute(const std::vector<std::shared_ptr<Job>>& batch) {
  const auto started = Clock::now();
  const Labels model{{"model", name_}};
  size_t inputs = 0, longest = 0;
  for (const auto& job : batch) {
    metrics_.observe("mmx_queue_duration_seconds", model, std::chrono::duration<double>(started - job->queued_at).count());
    inputs += job->kind == Job::Kind::Images ? job->images.size() : job->rows.size();
    for (const Encoding& e : job->rows) longest = std::max(longest, e.input_ids.size());
  }
  try {
    run_batch(texts_.get(), images_.get(), batch, limits_.max_batch_tokens);
  } catch (...) {
    if (batch.size() == 1) {
      batch.front()->error = std::current_exception();
    } else {  // one request's input must not fail the others: each alone, so the error finds its owner
      for (const auto& job : batch) {
        try {
          run_batch(texts_.get(), images_.get(), {job}, limits_.max_batch_tokens);
        } catch (...) {
          job->error = std::current_exception();
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (batch.front()->kind != Job::Kind::Task) {
    metrics_.observe("mmx_inference_duration_seconds", model, seconds);
    metrics_.observe("mmx_batch_size", model, double(inputs));
    if (batch.front()->kind == Job::Kind::Texts) metrics_.observe("mmx_batch_tokens", model, double(longest * inputs));
  }
  log_debug("serve: ", name_, " batch of ", batch.size(), " requests, ", inputs, " inputs in ", seconds * 1e3, " ms");
  for (const auto& job : batch) job->finish();
}

}  // namespace mmx::serve
