// The generation queue of mmx serve (see image_jobs.hpp).
#include "serve/image_jobs.hpp"

#include <ctime>

#include "core/log.hpp"
#include "mmx/error.hpp"
#include "mmx/generation_parameters.hpp"
#include "mmx/image.hpp"
#include "mmx/scheduler.hpp"
#include "serve/service.hpp"

namespace mmx::serve {
namespace {

using Clock = ImageJob::Clock;

// Thrown from the step callback of a job asked to stop: generate() unwinds at that step.
struct Cancelled {};

bool ended(JobState s) { return s != JobState::Queued && s != JobState::Running; }

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
double unix_now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

}  // namespace

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "unknown";
}

ImageQueue::ImageQueue(std::string model_name, std::string model_path, std::unique_ptr<SDXLPipeline> pipeline,
                       ImageQueueOptions options, Metrics& metrics)
    : name_(std::move(model_name)), path_(std::move(model_path)), pipeline_(std::move(pipeline)), options_(std::move(options)),
      metrics_(metrics) {
  const Labels model{{"model", name_}};
  metrics_.gauge_callback("mmx_image_queue_length", model, [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return double(queue_.size());
  });
  for (const JobState s : {JobState::Queued, JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled})
    metrics_.gauge_callback("mmx_image_jobs", {{"model", name_}, {"state", job_state_name(s)}}, [this, s] {
      std::lock_guard<std::mutex> lock(mutex_);
      double n = 0;
      for (const auto& [id, job] : jobs_) n += job->state == s;
      return n;
    });
  metrics_.gauge_callback("mmx_images_per_hour", model, [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto hour_ago = Clock::now() - std::chrono::hours(1);
    while (!done_times_.empty() && done_times_.front() < hour_ago) done_times_.pop_front();
    return double(done_times_.size());
  });
  thread_ = std::thread([this] { run(); });
}

ImageQueue::~ImageQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (running_) running_->cancel = true;
  }
  changed_.notify_all();
  thread_.join();
}

bool ImageQueue::submit(const std::shared_ptr<ImageJob>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prune();
    if (queue_.size() + (running_ ? 1 : 0) >= options_.capacity) {
      metrics_.add("mmx_rejected_requests_total", {{"reason", "image_queue_full"}});
      return false;
    }
    job->id = str("img-", std::hex, std::time(nullptr), "-", std::dec, next_id_++);
    job->created = Clock::now();
    job->created_unix = static_cast<int64_t>(std::time(nullptr));
    jobs_[job->id] = job;
    queue_.push_back(job);
  }
  changed_.notify_all();
  return true;
}

std::shared_ptr<ImageJob> ImageQueue::find(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  prune();
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void ImageQueue::cancel(const std::shared_ptr<ImageJob>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job->cancel = true;
    if (job->state == JobState::Queued) {
      for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (*it == job) {
          queue_.erase(it);
          break;
        }
      finish(job, JobState::Cancelled);
    }
  }
  changed_.notify_all();
}

void ImageQueue::forget(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it != jobs_.end() && ended(it->second->state)) jobs_.erase(it);
}

bool ImageQueue::finished(const std::shared_ptr<ImageJob>& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ended(job->state);
}

uint64_t ImageQueue::wait_change(const std::shared_ptr<ImageJob>& job, uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return job->version != seen || stopping_; });
  return job->version;
}

int64_t ImageQueue::position(const ImageJob& job) const {
  if (job.state == JobState::Running) return 0;
  for (size_t i = 0; i < queue_.size(); ++i)
    if (queue_[i].get() == &job) return int64_t(i) + (running_ ? 1 : 0);  // the jobs ahead of it
  return -1;
}

nlohmann::json ImageQueue::describe(const std::shared_ptr<ImageJob>& job, bool with_images, bool mark_fetched) {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json j = {{"id", job->id},
                      {"object", "image.job"},
                      {"model", name_},
                      {"status", job_state_name(job->state)},
                      {"created", job->created_unix},
                      {"step", job->step},
                      {"steps", job->steps}};
  if (job->state == JobState::Queued || job->state == JobState::Running) j["queue_position"] = position(*job);
  if (job->started_unix > 0) j["started_at"] = job->started_unix;
  if (job->finished_unix > 0) j["finished_at"] = job->finished_unix;
  if (job->state == JobState::Running && job->seconds_per_step > 0) {
    j["seconds_per_step"] = job->seconds_per_step;
    j["eta_seconds"] = job->seconds_per_step * double(job->steps - job->step);
  }
  if (job->state == JobState::Failed) j["error"] = {{"message", job->error}, {"status", job->error_status}};
  if (job->state == JobState::Done) {
    j["seconds"] = seconds_between(job->created, job->finished);
    nlohmann::json data = nlohmann::json::array();
    for (const auto& image : job->images) {
      nlohmann::json item = {{"seed", image.seed}, {"parameters", image.parameters}};
      if (with_images) item["b64_json"] = base64_encode(image.bytes.data(), image.bytes.size());
      data.push_back(std::move(item));
    }
    j["data"] = std::move(data);
    j["output_format"] = job->output_format;
    if (mark_fetched && with_images && !job->fetched) job->fetched = Clock::now();
  }
  return j;
}

void ImageQueue::prune() {
  const auto now = Clock::now();
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    const ImageJob& j = *it->second;
    const bool over = ended(j.state) &&
                      ((j.fetched && seconds_between(*j.fetched, now) > 60) || seconds_between(j.finished, now) > options_.keep_seconds);
    it = over ? jobs_.erase(it) : std::next(it);
  }
}

void ImageQueue::finish(const std::shared_ptr<ImageJob>& job, JobState state) {
  job->state = state;
  job->finished = Clock::now();
  job->finished_unix = unix_now();
  ++job->version;
  metrics_.add("mmx_image_jobs_total", {{"model", name_}, {"state", job_state_name(state)}});
}

void ImageQueue::run() {
  for (;;) {
    std::shared_ptr<ImageJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        for (auto& queued : queue_) finish(queued, JobState::Cancelled);
        queue_.clear();
        changed_.notify_all();
        return;
      }
      job = queue_.front();
      queue_.pop_front();
      running_ = job;
      job->state = JobState::Running;
      job->started_unix = unix_now();
      ++job->version;
    }
    changed_.notify_all();
    execute(job);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.reset();
    }
    changed_.notify_all();
  }
}

void ImageQueue::execute(const std::shared_ptr<ImageJob>& job) {
  const auto started = Clock::now();
  double step_seconds = 0;
  int64_t steps_done = 0;
  try {
    for (int64_t i = 0; i < job->n; ++i) {
      GenerateOptions o = job->options;
      o.seed = job->options.seed + uint64_t(i);
      o.on_step = [&, i](int64_t step, int64_t calls, double seconds) {
        step_seconds += seconds;
        ++steps_done;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          job->steps = calls * job->n;
          job->step = i * calls + step;
          job->seconds_per_step = step_seconds / double(steps_done);
          ++job->version;
        }
        metrics_.observe("mmx_image_step_seconds", {{"model", name_}}, seconds);
        changed_.notify_all();
        if (job->cancel) throw Cancelled{};
      };
      if (job->cancel) throw Cancelled{};
      const GenerateResult r = pipeline_->generate(o);
      const GenerationParameters p = GenerationParameters::basic(
          job->prompt_as_written, o.negative_prompt, o.steps, Scheduler::display_name(o.scheduler, r.scheduler),
          o.guidance_scale, o.seed, r.image.width, r.image.height, name_);
      ImageJob::Result result{"", o.seed, p.to_text()};
      if (job->output_format == "jpeg") result.bytes = encode_jpeg(r.image, job->quality);
      else if (job->output_format == "webp") result.bytes = encode_webp(r.image, job->quality);
      else result.bytes = encode_png(r.image, {{"parameters", result.parameters}, {"software", "mmx serve"}});
      std::lock_guard<std::mutex> lock(mutex_);
      job->images.push_back(std::move(result));
      done_times_.push_back(Clock::now());
      ++job->version;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    finish(job, JobState::Done);
    metrics_.add("mmx_images_total", {{"model", name_}}, double(job->n));
  } catch (const Cancelled&) {
    std::lock_guard<std::mutex> lock(mutex_);
    finish(job, JobState::Cancelled);
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    job->error = e.what();
    job->error_status = e.kind() == ErrorKind::Usage ? 400 : 500;
    finish(job, JobState::Failed);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    job->error = e.what();
    finish(job, JobState::Failed);
  }
  log_info("serve: image job ", job->id, " ", job_state_name(job->state), " after ", seconds_between(started, Clock::now()), " s");
}

}  // namespace mmx::serve
