#include "cli/args.hpp"

#include "core/cpu_budget.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "mmx/embedding_space.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/placement.hpp"
#include "mmx/runtime.hpp"

namespace mmx::cli {

std::vector<std::string> pooling_names() {
  std::vector<std::string> names;
  for (Pooling p : {Pooling::Cls, Pooling::Pooler, Pooling::Mean, Pooling::MeanNoCls, Pooling::Lab, Pooling::Projection,
                    Pooling::Pooled, Pooling::Max, Pooling::MeanSqrtLen, Pooling::WeightedMean, Pooling::LastToken,
                    Pooling::Modules})
    names.push_back(pooling_name(p));
  return names;
}

const std::vector<Option>& common_options() {
  static const std::vector<Option> options = {
      {"threads", "N", "CPU threads for every kernel (default: the CPUs this process may use, affinity and cgroup quota; MMX_THREADS)"},
      {"device", "cpu|cuda[:N]", "where models run (default cpu; cuda: the first visible NVIDIA GPU, cuda:N another)"},
      {"dtype", "f32|f16|bf16|int8",
       "the precision (default f32, exact); a GPU computes in f16/bf16 too. CPU: f16 keeps weights at half\n"
       "                          the memory and computes in f32; bf16 multiplies on AMX/AVX512_BF16 (f32 sums,\n"
       "                          cosine to f32 >= 0.999); int8 quantizes the encoders' linear layers for\n"
       "                          AMX/VNNI (cosine >= 0.995); without those units they compute in f32"},
      {"verbose", "", "log what is loaded and why (also: MMX_LOG=debug)"},
      {"quiet", "", "only errors on stderr"},
      {"help", "", "show this help"},
  };
  return options;
}

std::vector<Option> with_options(std::vector<Option> own, const std::vector<Option>& shared) {
  own.insert(own.end(), shared.begin(), shared.end());
  return own;
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::optional<int64_t> Args::get_int(const std::string& name, int64_t min_value) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(*v, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != v->size()) usage_error("--", name, " expects an integer, got '", *v, "'");
  if (n < min_value) usage_error("--", name, " must be at least ", min_value, ", got ", n);
  return n;
}

std::optional<double> Args::get_double(const std::string& name, double min_value) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(*v, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != v->size() || !std::isfinite(d)) usage_error("--", name, " expects a number, got '", *v, "'");
  if (d < min_value) usage_error("--", name, " must be at least ", min_value, ", got ", *v);
  return d;
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  // Optimal string alignment distance: edits, and a swap of two neighbours, count one each.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
      for (size_t j = 1; j <= b.size(); ++j) {
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[a.size()][b.size()];
  };
  std::string best;
  size_t best_distance = std::max<size_t>(1, std::min<size_t>(2, word.size() / 3));  // at most 2 edits, 1 for short words
  for (const auto& c : candidates) {
    const size_t d = distance(word, c);
    if (d <= best_distance && (best.empty() || d < distance(word, best))) best = c;
    if (!word.empty() && c.size() > word.size() && c.compare(0, word.size(), word) == 0 && best.empty()) best = c;
  }
  return best;
}

Args parse_args(const Command& command, const std::vector<std::string>& argv) {
  std::vector<const Option*> options;
  for (const auto& o : command.options) options.push_back(&o);
  for (const auto& o : common_options()) options.push_back(&o);
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-h") {  // the one short option, as every command line has it
      args.values_["help"].push_back("");
      continue;
    }
    if (a.size() < 2 || a.compare(0, 2, "--") != 0 || a == "--") {
      if (a.size() > 1 && a[0] == '-' && a != "-") usage_error("unknown option '", a, "' (options start with --)");
      if (!command.positionals) usage_error("unexpected argument '", a, "' (see mmx ", command.name, " --help)");
      args.positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const Option* option = nullptr;
    for (const Option* o : options)
      if (o->name == name) option = o;
    if (!option) {
      std::vector<std::string> names;
      for (const Option* o : options) names.push_back(o->name);
      const std::string guess = closest(name, names);
      usage_error("unknown option '--", name, "' for mmx ", command.name,
                  guess.empty() ? std::string() : str("; did you mean --", guess, "?"));
    }
    if (option->metavar.empty()) {
      if (inline_value) usage_error("--", name, " takes no value");
    } else if (!inline_value) {
      if (i + 1 >= argv.size()) usage_error("--", name, " needs a value (", option->metavar, ")");
      value = argv[++i];
    }
    auto& slot = args.values_[name];
    if (!slot.empty() && !option->repeatable && !option->metavar.empty())
      usage_error("--", name, " given more than once");
    if (const size_t bad = option->text ? find_invalid_utf8(value) : std::string::npos; bad != std::string::npos)
      usage_error("--", name, option->repeatable ? str(" number ", slot.size() + 1) : std::string(),
                  " is not valid UTF-8 (byte ", bad + 1, ")");
    slot.push_back(value);
  }
  return args;
}

std::string help_text(const Command& command) {
  std::ostringstream out;
  out << "usage: " << command.usage << "\n\n" << command.summary << "\n";
  auto list = [&](const char* title, const std::vector<Option>& options) {
    out << "\n" << title << ":\n";
    for (const auto& o : options) {
      std::string left = "  --" + o.name + (o.metavar.empty() ? "" : " " + o.metavar);
      if (left.size() < 26) left.resize(26, ' ');
      else left += "\n" + std::string(26, ' ');
      out << left << o.help << (o.repeatable ? " (repeatable)" : "") << "\n";
    }
  };
  if (!command.options.empty()) list("options", command.options);
  list("common options", common_options());
  if (!command.details.empty()) out << "\n" << command.details;
  return out.str();
}

Placement placement_of(const Args& args) {
  Placement p;
  if (const auto device = args.get("device")) p.device = Device::parse(*device);
  if (const auto dtype = args.get("dtype")) p.dtype = dtype_from_name(*dtype);
  return p;
}

void apply_common_options(const Args& args) {
  const int64_t threads = args.get_int("threads", 1).value_or(0);
  if (threads > kMaxThreads) usage_error("--threads ", threads, ": at most ", kMaxThreads);  // before narrowing to int
  set_num_threads(static_cast<int>(threads));
  if (args.has("verbose")) set_log_level(LogLevel::Debug);
  if (args.has("quiet")) set_log_level(LogLevel::Error);
  if (args.has("device") || args.has("dtype")) placement_of(args).check();  // before any work: a device that is not there
  const Placement placement = placement_of(args);
  if (log_level() >= LogLevel::Info)
    std::fprintf(stderr, "mmx: info: running on %s: %s; %d CPU threads (%s)\n", placement.str().c_str(),
                 device_description(placement.device).c_str(), num_threads(),
                 args.has("threads") ? "--threads" : threads_reason().c_str());
}

}  // namespace mmx::cli
