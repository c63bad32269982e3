// The process's thread pool (see thread_pool.hpp for why). One job at a time: the caller publishes the
// job's body and chunk count, then a new generation; workers claim chunks with a compare-and-swap on one
// word that holds the generation and the chunks left, so a worker that wakes late can never run a chunk
// of a job that is not the one it read.
#include "core/thread_pool.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>


namespace mmx {

namespace {

// Chunks per thread: enough that a descheduled thread holds a small share of a region, few enough that
// claiming them costs nothing next to the work (docs/performance.md measures 2, 4 and 8).
int64_t chunks_per_thread() {
  static const int64_t value = [] {
    const char* env = std::getenv("MMX_CHUNKS_PER_THREAD");
    const long v = env ? std::strtol(env, nullptr, 10) : 0;
    return v >= 1 && v <= 64 ? int64_t(v) : int64_t(4);
  }();
  return value;
}

// How long an idle thread spins before it sleeps: long enough to bridge the gap between two ops of a
// forward on a quiet machine, short enough that on a busy one it does not hold a core another thread
// needs. MMX_SPIN_US overrides it for measurement.
std::chrono::nanoseconds spin_budget() {
  static const std::chrono::nanoseconds value = [] {
    const char* env = std::getenv("MMX_SPIN_US");
    const long v = env ? std::strtol(env, nullptr, 10) : -1;
    return std::chrono::microseconds(v >= 0 && v <= 100000 ? v : 50);
  }();
  return value;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or the spin budget is spent; true when pred() held.
template <class Pred>
bool spin_until(const Pred& pred) {
  if (pred()) return true;
  const auto budget = spin_budget();
  if (budget.count() == 0) return false;
  const auto until = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      cpu_relax();
      if (pred()) return true;
    }
    if (std::chrono::steady_clock::now() >= until) return false;
  }
}

thread_local bool t_in_chunk = false;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { start(threads); }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void resize(int threads) {
    std::lock_guard<std::mutex> lock(busy_);
    stop();
    start(threads);
  }

  // False when another thread holds the pool: the caller then runs the job alone.
  bool run(int64_t n, int64_t chunks, detail::ChunkBody body) {
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    const uint32_t gen = ++generation_;
    n_.store(n, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    call_.store(body.call, std::memory_order_relaxed);
    object_.store(body.object, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    next_.store(uint64_t(gen) << 32 | uint64_t(chunks), std::memory_order_release);
    wake_.store(gen, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) wake_.notify_all();

    t_in_chunk = true;
    work(gen);
    t_in_chunk = false;
    const uint32_t total = static_cast<uint32_t>(chunks);
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) >= total; })) {
      caller_waiting_.store(true, std::memory_order_seq_cst);
      for (uint32_t d = done_.load(std::memory_order_seq_cst); d < total; d = done_.load(std::memory_order_seq_cst))
        done_.wait(d, std::memory_order_seq_cst);
      caller_waiting_.store(false, std::memory_order_relaxed);
    }
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void start(int threads) {
    threads_.store(threads < 1 ? 1 : threads);
    quit_.store(false);
    // Each worker starts from the generation of now, read here: a worker that reads it itself could see a
    // stop() or a job that came before it ran, and then wait for a change that already happened.
    const uint32_t now = wake_.load(std::memory_order_acquire);
    for (int i = 1; i < threads_.load(); ++i) workers_.emplace_back([this, now] { worker(now); });
  }

  void stop() {
    quit_.store(true, std::memory_order_seq_cst);
    generation_ = wake_.fetch_add(1, std::memory_order_seq_cst) + 1;  // the next job's generation differs
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  // Claims and runs chunks of job `gen` until none is left.
  void work(uint32_t gen) {
    const int64_t n = n_.load(std::memory_order_acquire), chunks = chunks_.load(std::memory_order_acquire);
    const auto call = call_.load(std::memory_order_acquire);
    const void* object = object_.load(std::memory_order_acquire);
    uint64_t v = next_.load(std::memory_order_acquire);
    for (;;) {
      // The word counts the chunks left, so that "none left" needs none of the fields above: they may
      // already be the next job's when this one is done. A claim that succeeds proves the job was still
      // running, so the fields read before it are this job's.
      if (uint32_t(v >> 32) != gen || (v & 0xffffffffu) == 0) return;
      if (!next_.compare_exchange_weak(v, v - 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      const int64_t c = chunks - int64_t(v & 0xffffffffu);
      try {
        if (!failed_.load(std::memory_order_relaxed)) call(object, c * n / chunks, (c + 1) * n / chunks);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
      const uint32_t finished = done_.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (finished == uint32_t(chunks) && caller_waiting_.load(std::memory_order_seq_cst)) done_.notify_all();
      v = next_.load(std::memory_order_acquire);
    }
  }

  void worker(uint32_t seen) {
    t_in_chunk = true;  // a parallel_for from inside a chunk runs serially
    for (;;) {
      if (!spin_until([&] { return wake_.load(std::memory_order_acquire) != seen; })) {
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        while (wake_.load(std::memory_order_seq_cst) == seen) wake_.wait(seen, std::memory_order_seq_cst);
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (quit_.load(std::memory_order_acquire)) return;
      seen = wake_.load(std::memory_order_acquire);
      work(seen);
    }
  }

  std::atomic<int> threads_{1};
  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread whose job the pool runs
  uint32_t generation_ = 0;
  std::atomic<uint64_t> next_{0};  // generation << 32 | chunks not yet claimed
  std::atomic<int64_t> n_{0}, chunks_{0};
  std::atomic<void (*)(const void*, int64_t, int64_t)> call_{nullptr};
  std::atomic<const void*> object_{nullptr};
  std::atomic<uint32_t> done_{0}, wake_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> caller_waiting_{false}, quit_{false}, failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

std::mutex g_pool_mutex;
std::atomic<ThreadPool*> g_pool{nullptr};  // never destroyed: workers sleep through exit

ThreadPool& make_pool(int threads) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  ThreadPool* p = g_pool.load();
  if (!p) g_pool.store(p = new ThreadPool(threads));
  return *p;
}

ThreadPool& pool() {
  if (ThreadPool* p = g_pool.load(std::memory_order_acquire)) return *p;
  return make_pool(default_threads());
}

}  // namespace

namespace detail {

int64_t plan_chunks(int64_t n, int64_t grain) {
  const int64_t most = parallel_chunks_wanted();
  const int64_t by_grain = n / (grain < 1 ? 1 : grain);
  return by_grain < 1 ? 1 : (by_grain < most ? by_grain : most);
}

void run_chunks(int64_t n, int64_t chunks, ChunkBody body) {
  if (chunks > int64_t(0xffffffffu)) chunks = 0xffffffffu;
  if (pool().run(n, chunks, body)) return;
  // The pool runs another thread's job (a second model or request): this one runs here, alone.
  t_in_chunk = true;
  try {
    body.call(body.object, 0, n);
  } catch (...) {
    t_in_chunk = false;
    throw;
  }
  t_in_chunk = false;
}

}  // namespace detail

int64_t parallel_chunks_wanted() {
  if (t_in_chunk) return 1;
  const int threads = pool().threads();
  return threads <= 1 ? 1 : threads * chunks_per_thread();
}

int pool_threads() { return pool().threads(); }

void set_pool_threads(int threads) {
  ThreadPool& p = make_pool(threads);
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (p.threads() != threads) p.resize(threads);
}

bool in_parallel_chunk() { return t_in_chunk; }

}  // namespace mmx
