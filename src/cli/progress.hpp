// A progress line on stderr for long runs ("embedding images: 320/1000  32 %  41.3/s  16 s left"). On a
// terminal it redraws in place, after the first half second, at most ten times a second; into a file or
// pipe (with --progress) it writes a line every few seconds and the last one. --quiet silences it.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mmx::cli {

class ProgressLine {
 public:
  // forced: also when stderr is not a terminal (--progress); otherwise only on one.
  ProgressLine(std::string what, int64_t total, bool forced);
  ~ProgressLine();  // ends a line left open on the terminal
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(int64_t done);  // `done` of `total` so far
  void finish();              // the last line (with the total time), once

 private:
  void draw(bool last);
  using Clock = std::chrono::steady_clock;
  std::string what_;
  int64_t total_, done_ = 0, first_done_ = -1;
  bool enabled_, terminal_, open_ = false, drawn_ = false, finished_ = false;
  Clock::time_point start_, last_draw_, first_update_;
};

}  // namespace mmx::cli
