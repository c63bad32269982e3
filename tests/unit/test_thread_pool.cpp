// The process's thread pool: every index of a parallel_for runs exactly once for any size, grain and
// thread count; small loops stay on the caller; nested loops run serially; an exception reaches the
// caller and leaves the pool usable; concurrent callers (a server's requests) all finish, correctly,
// without the pool growing; and a descheduled thread's share is taken by the others.
#include <dirent.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.hpp"
#include "mmx/runtime.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
// Restores the thread count the suite runs with.
struct PoolThreads {
  explicit PoolThreads(int n) : saved(num_threads()) { set_num_threads(n); }
  ~PoolThreads() { set_num_threads(saved); }
  int saved;
};

int threads_of_this_process() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) count += e->d_name[0] != '.';
    closedir(dir);
  }
  return count;
}

// A joined thread can stay listed for a moment while the kernel reaps it: the count once it settles.
int settled_thread_count(int expected) {
  int count = threads_of_this_process();
  for (int i = 0; i < 200 && count != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    count = threads_of_this_process();
  }
  return count;
}
}  // namespace

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    PoolThreads pool(threads);
    EXPECT_EQ(num_threads(), threads);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(7), int64_t(100), int64_t(4097), int64_t(100003)})
      for (int64_t grain : {int64_t(1), int64_t(3), int64_t(1000), int64_t(1) << 20}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int64_t> calls{0};
        parallel_for(n, grain, [&](int64_t begin, int64_t end) {
          ASSERT_LT(begin, end);
          ASSERT_GE(begin, 0);
          ASSERT_LE(end, n);
          ASSERT_GE(end - begin, std::min(grain, n)) << "a chunk smaller than the grain";
          calls.fetch_add(1);
          for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "n=" << n << " grain=" << grain << " i=" << i;
        EXPECT_LE(calls.load(), std::max<int64_t>(1, parallel_chunks_wanted()));
        if (n > 0 && grain > n) {
          EXPECT_EQ(calls.load(), 1) << "a loop smaller than its grain runs whole";
        }
      }
  }
}

TEST(ThreadPool, SmallLoopsStayOnTheCallerAndNestedLoopsRunSerially) {
  PoolThreads pool(4);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0};
  parallel_for(kParallelGrainItems, kParallelGrainItems, [&](int64_t, int64_t) {
    if (std::this_thread::get_id() != caller) elsewhere.fetch_add(1);
  });
  EXPECT_EQ(elsewhere.load(), 0);
  EXPECT_FALSE(in_parallel_chunk());

  std::vector<std::atomic<int>> hits(64 * 64);
  parallel_for(64, 1, [&](int64_t a0, int64_t a1) {
    EXPECT_TRUE(in_parallel_chunk());
    EXPECT_EQ(parallel_chunks_wanted(), 1);
    for (int64_t a = a0; a < a1; ++a) {
      const auto outer = std::this_thread::get_id();
      parallel_for(64, 1, [&](int64_t b0, int64_t b1) {
        EXPECT_EQ(std::this_thread::get_id(), outer) << "a nested loop must not wait on the busy pool";
        EXPECT_EQ(b0, 0);
        EXPECT_EQ(b1, 64);
        for (int64_t b = b0; b < b1; ++b) hits[size_t(a * 64 + b)].fetch_add(1);
      });
    }
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_FALSE(in_parallel_chunk());
}

TEST(ThreadPool, AnExceptionReachesTheCallerAndThePoolGoesOn) {
  PoolThreads pool(3);
  for (int round = 0; round < 20; ++round) {
    EXPECT_THROW(parallel_for(1000, 1, [&](int64_t begin, int64_t end) {
                   if (begin <= 500 && 500 < end) throw std::runtime_error("chunk failed");
                 }),
                 std::runtime_error);
    EXPECT_FALSE(in_parallel_chunk());
    std::atomic<int64_t> sum{0};
    parallel_for(1000, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i);
    });
    ASSERT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

TEST(ThreadPool, ConcurrentCallersShareOnePoolAndAllFinish) {
  PoolThreads pool(4);
  parallel_for(64, 1, [](int64_t, int64_t) {});  // the workers exist
  const int before = threads_of_this_process();
  constexpr int kCallers = 6, kRounds = 300;
  std::atomic<int> wrong{0}, most_threads{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        const int64_t n = 1000 + 37 * c + round;
        std::atomic<int64_t> sum{0};
        parallel_for(n, 1, [&](int64_t begin, int64_t end) {
          int64_t local = 0;
          for (int64_t i = begin; i < end; ++i) local += i;
          sum.fetch_add(local);
        });
        if (sum.load() != n * (n - 1) / 2) wrong.fetch_add(1);
        if (round % 50 == 0) most_threads.store(std::max(most_threads.load(), threads_of_this_process()));
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // The callers' own threads and nothing else: the pool did not grow with them.
  EXPECT_LE(most_threads.load(), before + kCallers);
}

TEST(ThreadPool, ADescheduledThreadsShareIsTakenByTheOthers) {
  // One chunk sleeps as a preempted thread would; the others' chunks must not wait behind it.
  PoolThreads pool(2);
  std::atomic<int> done_while_stalled{0};
  std::atomic<bool> stalled{false};
  const auto start = std::chrono::steady_clock::now();
  parallel_for(int64_t(parallel_chunks_wanted()), 1, [&](int64_t begin, int64_t) {
    if (begin == 0) {
      stalled = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      stalled = false;
    } else {
      // Chunk 1 starts once chunk 0 has stalled (or gives up after a second: then the count below is short).
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (begin == 1 && !stalled && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
      if (stalled) done_while_stalled.fetch_add(1);
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(seconds, 0.2);
  // Every other chunk (the pool wants several per thread) ran while chunk 0 was stalled.
  EXPECT_EQ(done_while_stalled.load(), parallel_chunks_wanted() - 1);
}

TEST(ThreadPool, ResizingJoinsAndRestartsTheWorkers) {
  const int base = [] {
    PoolThreads one(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // earlier tests' threads are reaped
    return threads_of_this_process();
  }();
  for (int threads : {5, 2, 7, 1}) {
    PoolThreads pool(threads);
    std::atomic<int64_t> sum{0};
    parallel_for(10000, 1, [&](int64_t begin, int64_t end) { sum.fetch_add(end - begin); });
    EXPECT_EQ(sum.load(), 10000);
    EXPECT_EQ(settled_thread_count(base + threads - 1), base + threads - 1) << threads << " threads";
  }
}
