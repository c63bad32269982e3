#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "cli/input.hpp"

namespace mmx::cli {
namespace {

std::string duration_text(double seconds) {
  char text[32];
  if (seconds < 60) std::snprintf(text, sizeof text, "%.0f s", seconds);
  else if (seconds < 3600) std::snprintf(text, sizeof text, "%d min %02d s", int(seconds) / 60, int(seconds) % 60);
  else std::snprintf(text, sizeof text, "%d h %02d min", int(seconds) / 3600, int(seconds) % 3600 / 60);
  return text;
}

}  // namespace

ProgressLine::ProgressLine(std::string what, int64_t total, bool forced)
    : what_(std::move(what)), total_(total), enabled_(chatty() && total > 0), terminal_(isatty(STDERR_FILENO) != 0),
      start_(Clock::now()), last_draw_(start_) {
  enabled_ = enabled_ && (terminal_ || forced);
}

ProgressLine::~ProgressLine() {
  if (open_) std::fputc('\n', stderr);
}

void ProgressLine::update(int64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  const Clock::time_point now = Clock::now();
  if (first_done_ < 0) {  // the rate counts from the first update: loading a model is not the work's pace
    first_done_ = done;
    first_update_ = now;
  }
  const double since_start = std::chrono::duration<double>(now - start_).count();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  // A terminal line appears once the work has taken half a second and redraws ten times a second; a log
  // gets the first update and then a line every five seconds.
  if (terminal_ ? (since_start < 0.5 || since_draw < 0.1) : (drawn_ && since_draw < 5)) return;
  last_draw_ = now;
  draw(false);
}

void ProgressLine::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (terminal_ && !open_) return;  // too quick to have shown: nothing to close
  draw(true);
}

void ProgressLine::draw(bool last) {
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const double paced = std::chrono::duration<double>(Clock::now() - first_update_).count();
  const double rate = last ? (seconds > 0 ? done_ / seconds : 0)
                           : (paced > 0 && done_ > first_done_ ? (done_ - first_done_) / paced : 0);
  char line[256];
  int n = std::snprintf(line, sizeof line, "%s: %lld/%lld  %3.0f %%", what_.c_str(), static_cast<long long>(done_),
                        static_cast<long long>(total_), 100.0 * done_ / total_);
  if (rate > 0 && n > 0 && n < int(sizeof line))
    n += std::snprintf(line + n, sizeof line - n, "  %.1f/s  %s %s", rate,
                       last ? duration_text(seconds).c_str() : duration_text((total_ - done_) / rate).c_str(),
                       last ? "in all" : "left");
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s", line);  // back to the line's start, clear it, redraw
    open_ = !last;
    if (last) std::fputc('\n', stderr);
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

}  // namespace mmx::cli
