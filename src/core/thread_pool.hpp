// The one CPU thread pool of the process: every kernel, model and request shares it, so N models or
// N concurrent requests never mean N × cores threads.
//
// Why not OpenMP's team: on a machine where another process holds a core, a static slice per thread
// and libgomp's barriers make every parallel region wait for a descheduled thread (the busy-machine
// cliff of docs/performance.md), and libgomp's wait policy is read before main, out of mmx's reach.
// Here a region is cut into more chunks than threads, claimed one at a time, so a late thread's share
// is taken by the others; the caller works too; idle workers spin briefly, then sleep on a futex.
#pragma once

#include <cstdint>
#include <type_traits>

namespace mmx {

namespace detail {
// A chunk body without std::function's allocation: calls (*call)(object, begin, end).
struct ChunkBody {
  void (*call)(const void* object, int64_t begin, int64_t end);
  const void* object;
};
// Runs [0, n) as `chunks` contiguous chunks on the pool and the calling thread; rethrows the first
// exception a chunk threw. Serial on the caller when the pool is in use by another thread.
void run_chunks(int64_t n, int64_t chunks, ChunkBody body);
// How many chunks [0, n) becomes with at least `grain` items each: 1 (serial) when there is one thread,
// when called from inside a chunk, or when the work is too small to be worth a handoff.
int64_t plan_chunks(int64_t n, int64_t grain);
}  // namespace detail

// The least work worth handing to another thread, in floats touched (a few microseconds): smaller loops,
// such as the lab's 7-token batch's norms and adds, run on the caller without waking anyone.
inline constexpr int64_t kParallelGrainItems = int64_t(1) << 14;
// The grain, in rows, of a loop over rows of `row_items` floats each.
inline int64_t grain_rows(int64_t row_items) {
  return row_items >= kParallelGrainItems ? 1 : kParallelGrainItems / (row_items < 1 ? 1 : row_items);
}

// Calls f(begin, end) over disjoint ranges covering [0, n), in parallel when n / grain allows. f must not
// depend on which thread runs a range (use thread_local scratch); a parallel_for inside f runs serially.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  const int64_t chunks = detail::plan_chunks(n, grain);
  if (chunks <= 1) {
    f(int64_t(0), n);
    return;
  }
  detail::run_chunks(n, chunks, {[](const void* o, int64_t b, int64_t e) { (*static_cast<const F*>(o))(b, e); }, &f});
}

// How many chunks a parallel_for cuts a large loop into here (1 inside a chunk or with one thread): for
// kernels that shape their tasks to it (the GEMM's panels and row bands).
int64_t parallel_chunks_wanted();
// Threads that run chunks, the caller included (the value of --threads).
int pool_threads();
// Resizes the pool (joins and restarts its workers); not while a parallel_for runs.
void set_pool_threads(int threads);
// What a pool starts with when nobody set a count: MMX_THREADS, OMP_NUM_THREADS or the CPU budget
// (defined in runtime.cpp, beside set_num_threads).
int default_threads();
// True inside a chunk of a parallel_for (nested parallelism runs serially).
bool in_parallel_chunk();

}  // namespace mmx
