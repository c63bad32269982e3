// A small command-line parser: --name VALUE, --name=VALUE, repeated options, positionals, and
// --help text generated from the same table, so the two never disagree.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mmx/placement.hpp"

namespace mmx::cli {

struct Option {
  std::string name;     // without the leading "--"
  std::string metavar;  // empty: a flag without a value
  std::string help;
  bool repeatable = false;
  std::vector<std::string> choices = {};  // the values it takes, when they are few: shell completion offers them
  bool text = false;  // its value is text for a model or a figure: refused as a usage error unless UTF-8
};

// An option whose value is text (a prompt, a caption, a label), not a path: the parser refuses invalid
// UTF-8 in it before anything loads, as what the user typed (exit 2).
inline Option text_option(std::string name, std::string metavar, std::string help, bool repeatable = false) {
  return {std::move(name), std::move(metavar), std::move(help), repeatable, {}, true};
}

// The poolings an embedding command accepts, as mmx/embedding_space.hpp names them.
std::vector<std::string> pooling_names();

struct Command {
  std::string name, usage, summary;
  std::vector<Option> options;
  std::string details;
  bool positionals = false;
};

class Args {
 public:
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
  std::optional<int64_t> get_int(const std::string& name, int64_t min_value) const;  // usage error if not an int
  std::optional<double> get_double(const std::string& name, double min_value) const;  // finite, ≥ min_value
  const std::vector<std::string>& positionals() const { return positionals_; }

  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

// The candidate nearest to a mistyped word (at most two edits, or one it begins), or "" when none is near.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// A command's own options followed by a shared group (e.g. heatmap_options()).
std::vector<Option> with_options(std::vector<Option> own, const std::vector<Option>& shared);

// Options every command takes (--threads, --verbose, --quiet, --help).
const std::vector<Option>& common_options();
Args parse_args(const Command& command, const std::vector<std::string>& argv);  // usage errors on bad input
std::string help_text(const Command& command);
// Applies --threads / --verbose / --quiet, and checks --device / --dtype.
void apply_common_options(const Args& args);
// --device and --dtype as the placement every model of the command is loaded at.
Placement placement_of(const Args& args);

}  // namespace mmx::cli
