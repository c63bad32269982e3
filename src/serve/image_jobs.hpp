// Image generation in mmx serve (src/serve/image_jobs.cpp): one SDXL pipeline per served generator, loaded
// once, and a bounded FIFO of jobs run one at a time by its own thread (a generation uses every core; two
// at once would each take twice as long). Jobs are values the routes poll: queued → running (step, ETA) →
// done (the encoded images) / failed / cancelled. A job outlives the request that made it until fetched or
// expired; a cancelled running job stops at its next step.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmx/text_to_image.hpp"
#include "serve/metrics.hpp"

namespace mmx::serve {

enum class JobState { Queued, Running, Done, Failed, Cancelled };
const char* job_state_name(JobState state);

struct ImageJob {
  using Clock = std::chrono::steady_clock;
  // Set before submit, read-only after.
  std::string id;
  GenerateOptions options;          // the first image's; image i uses seed + i (A1111's batch count)
  std::string prompt_as_written;    // with its <lora:…> tags (the parameters keep them)
  std::string output_format = "png";  // png | jpeg | webp
  int quality = 100;                // jpeg/webp: OpenAI's output_compression
  int64_t n = 1;
  std::atomic<bool> cancel{false};

  // Guarded by the queue's mutex.
  JobState state = JobState::Queued;
  int64_t step = 0, steps = 0;     // UNet calls done / in all (n images)
  double seconds_per_step = 0;
  struct Result {
    std::string bytes;       // the encoded image
    uint64_t seed = 0;
    std::string parameters;  // A1111's text (also inside PNGs)
  };
  std::vector<Result> images;
  std::string error;
  int error_status = 500;
  Clock::time_point created = Clock::now(), finished;
  int64_t created_unix = 0;
  double started_unix = 0, finished_unix = 0;  // wall-clock seconds (0: not yet)
  std::optional<Clock::time_point> fetched;
  uint64_t version = 0;  // bumped on every change (server-sent events wait on it)
};

struct ImageQueueOptions {
  size_t capacity = 8;           // queued + running; beyond: 429
  double keep_seconds = 3600;    // a finished job is kept this long, or 60 s after its result was fetched
  std::string lora_dir;          // where requests' adapter names are found ("": none allowed)
  bool turbo = false;            // SDXL-Turbo: 1 step, guidance 0, trailing spacing, 512² unless asked
};

class ImageQueue {
 public:
  ImageQueue(std::string model_name, std::string model_path, std::unique_ptr<SDXLPipeline> pipeline,
             ImageQueueOptions options, Metrics& metrics);
  ~ImageQueue();  // cancels what is queued and running, joins the thread
  ImageQueue(const ImageQueue&) = delete;
  ImageQueue& operator=(const ImageQueue&) = delete;

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  const SDXLPipeline& pipeline() const { return *pipeline_; }
  const ImageQueueOptions& options() const { return options_; }

  // Queues the job (it gets its id here); false when the queue is full.
  bool submit(const std::shared_ptr<ImageJob>& job);
  std::shared_ptr<ImageJob> find(const std::string& id);
  // Asks a job to stop: a queued one leaves the queue now, a running one after its current step.
  void cancel(const std::shared_ptr<ImageJob>& job);
  void forget(const std::string& id);  // drops a finished job
  // The job as the API shows it: id, status, queue_position, progress, and when done the images
  // (base64) — `mark_fetched` starts its 60 s of grace.
  nlohmann::json describe(const std::shared_ptr<ImageJob>& job, bool with_images, bool mark_fetched = false);
  // Waits until the job changes past `seen` (or the timeout); returns its version.
  uint64_t wait_change(const std::shared_ptr<ImageJob>& job, uint64_t seen, std::chrono::milliseconds timeout);
  bool finished(const std::shared_ptr<ImageJob>& job);

 private:
  void run();
  void execute(const std::shared_ptr<ImageJob>& job);
  void finish(const std::shared_ptr<ImageJob>& job, JobState state);  // under the lock
  void prune();                                                     // under the lock: expired jobs
  int64_t position(const ImageJob& job) const;                      // under the lock: the jobs ahead (0: running or next)

  std::string name_, path_;
  std::unique_ptr<SDXLPipeline> pipeline_;
  ImageQueueOptions options_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<ImageJob>> queue_;
  std::shared_ptr<ImageJob> running_;
  std::map<std::string, std::shared_ptr<ImageJob>> jobs_;
  std::deque<ImageJob::Clock::time_point> done_times_;  // images finished in the last hour
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mmx::serve
