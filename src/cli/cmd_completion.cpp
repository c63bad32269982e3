// mmx completion SHELL and mmx manpage: shell completion (bash, zsh, fish) and the man page, generated
// from the same command and option tables as --help, so none of them can disagree with the parser.
#include <cstdint>
#include <cstdio>
#include <set>
#include <sstream>

#include "cli/build_info.hpp"
#include "cli/commands.hpp"
#include "mmx/error.hpp"

namespace mmx::cli {

const Command kCompletionCommand{
    "completion",
    "mmx completion bash|zsh|fish",
    "Print a shell completion script for mmx's commands, options and their values.",
    {},
    R"(Load it into the running shell, or install it where the shell looks:
  bash:  source <(mmx completion bash)      or  mmx completion bash > ~/.local/share/bash-completion/completions/mmx
  zsh:   mmx completion zsh > "${fpath[1]}/_mmx"   (then start a new shell)
  fish:  mmx completion fish > ~/.config/fish/completions/mmx.fish
`cmake --install` puts all three and the man page (mmx manpage) under the prefix's share/.

example:
  mmx completion bash
)",
    true,
};

const Command kManpageCommand{
    "manpage",
    "mmx manpage",
    "Print the man page (roff) of mmx and every command: man -l <(mmx manpage).",
    {},
    R"(example:
  mmx manpage
)",
};

namespace {

// The values an option takes: its choices, or those its metavar lists ("cpu|cuda[:N]" → cpu cuda).
std::vector<std::string> choices(const Option& o) {
  if (!o.choices.empty()) return o.choices;
  std::vector<std::string> out;
  if (o.metavar.find('|') == std::string::npos) return out;
  std::istringstream in(o.metavar);
  for (std::string word; std::getline(in, word, '|');) {
    const size_t cut = word.find_first_of("[.=");
    word = word.substr(0, cut);
    if (!word.empty()) out.push_back(word);
  }
  return out;
}

enum class Argument { None, Choice, File, Directory, Text };
Argument argument(const Option& o) {
  if (o.metavar.empty()) return Argument::None;
  if (!choices(o).empty()) return Argument::Choice;
  if (o.metavar == "FILE" || o.metavar == "PATH" || o.metavar.rfind("FILE", 0) == 0) return Argument::File;
  if (o.metavar == "DIR" || o.metavar == "MODEL") return Argument::Directory;  // a Hub id is typed, a folder completed
  return Argument::Text;
}

std::vector<Option> all_options(const Command& c) {
  std::vector<Option> options = c.options;
  options.insert(options.end(), common_options().begin(), common_options().end());
  return options;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string escaped(const std::string& s, const std::string& special, char escape = '\\') {
  std::string out;
  for (char ch : s) {
    if (special.find(ch) != std::string::npos) out += escape;
    out += ch;
  }
  return out;
}

std::string bash(const std::vector<Subcommand>& commands) {
  std::ostringstream out;
  out << "# bash completion for mmx (mmx completion bash)\n_mmx() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      << "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \"";
  for (const auto& s : commands) out << s.command->name << ' ';
  out << "help --help --version\" -- \"$cur\"))\n    return\n  fi\n  case \"${COMP_WORDS[1]}\" in\n";
  for (const auto& s : commands) {
    out << "    " << s.command->name << ")\n      case \"$prev\" in\n";
    std::string words;
    for (const Option& o : all_options(*s.command)) {
      words += "--" + o.name + " ";
      switch (argument(o)) {
        case Argument::Choice: {
          std::string list;
          for (const auto& c : choices(o)) list += c + " ";
          out << "        --" << o.name << ") COMPREPLY=($(compgen -W \"" << list << "\" -- \"$cur\")); return ;;\n";
          break;
        }
        case Argument::File: out << "        --" << o.name << ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"; break;
        case Argument::Directory: out << "        --" << o.name << ") COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"; break;
        case Argument::Text: out << "        --" << o.name << ") return ;;\n"; break;
        case Argument::None: break;
      }
    }
    out << "      esac\n      COMPREPLY=($(compgen -W \"" << words << "\" -- \"$cur\"))";
    if (s.command->positionals) out << "\n      [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- \"$cur\"))";
    out << "\n      ;;\n";
  }
  out << "  esac\n}\ncomplete -F _mmx mmx\n";
  return out.str();
}

std::string zsh(const std::vector<Subcommand>& commands) {
  std::ostringstream out;
  out << "#compdef mmx\n# zsh completion for mmx (mmx completion zsh)\n_mmx() {\n  local -a commands\n  commands=(\n";
  for (const auto& s : commands)
    out << "    '" << s.command->name << ":" << escaped(first_line(s.command->summary), "'", '\'') << "'\n";
  out << "  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' commands\n    return\n  fi\n  case $words[2] in\n";
  for (const auto& s : commands) {
    out << "    " << s.command->name << ")\n      _arguments";
    for (const Option& o : all_options(*s.command)) {
      const std::string help = escaped(escaped(first_line(o.help), "[]:\\"), "'", '\'');
      out << " \\\n        '" << (o.repeatable ? "*" : "") << "--" << o.name << "[" << help << "]";
      switch (argument(o)) {
        case Argument::Choice: {
          out << ":" << escaped(o.metavar, ":[]\\") << ":(";
          for (const auto& c : choices(o)) out << c << ' ';
          out << ")";
          break;
        }
        case Argument::File: out << ":" << o.metavar << ":_files"; break;
        case Argument::Directory: out << ":" << o.metavar << ":_files -/"; break;
        case Argument::Text: out << ":" << escaped(o.metavar, ":[]\\") << ": "; break;
        case Argument::None: break;
      }
      out << "'";
    }
    if (s.command->positionals) out << " \\\n        '*:argument:_files'";
    out << "\n      ;;\n";
  }
  out << "  esac\n}\n_mmx \"$@\"\n";
  return out.str();
}

std::string fish(const std::vector<Subcommand>& commands) {
  std::ostringstream out;
  out << "# fish completion for mmx (mmx completion fish)\ncomplete -c mmx -f\n";
  for (const auto& s : commands)
    out << "complete -c mmx -n __fish_use_subcommand -a " << s.command->name << " -d '"
        << escaped(first_line(s.command->summary), "'\\") << "'\n";
  for (const auto& s : commands)
    for (const Option& o : all_options(*s.command)) {
      out << "complete -c mmx -n '__fish_seen_subcommand_from " << s.command->name << "' -l " << o.name;
      switch (argument(o)) {
        case Argument::Choice: {
          out << " -x -a '";
          for (const auto& c : choices(o)) out << c << ' ';
          out << "'";
          break;
        }
        case Argument::File: out << " -r -F"; break;
        case Argument::Directory: out << " -x -a '(__fish_complete_directories)'"; break;
        case Argument::Text: out << " -x"; break;
        case Argument::None: break;
      }
      out << " -d '" << escaped(first_line(o.help), "'\\") << "'\n";
    }
  return out.str();
}

// roff: a backslash is \e, a hyphen of an option \-, a line may not start with . or ', and troff reads bytes,
// so a non-ASCII character (the help's arrows and dashes) goes in as its code point, \[uXXXX].
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto ch = static_cast<unsigned char>(text[i]);
    if (line_start && (ch == '.' || ch == '\'')) out += "\\&";
    line_start = ch == '\n';
    if (ch == '\\') out += "\\e";
    else if (ch == '-') out += "\\-";
    else if (ch < 0x80) out += static_cast<char>(ch);
    else {
      const int length = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;  // the help text is UTF-8 we wrote
      uint32_t code = ch & (0x7F >> length);
      for (int k = 1; k < length && i + 1 < text.size(); ++k) code = code << 6 | (text[++i] & 0x3F);
      char escape[16];
      std::snprintf(escape, sizeof escape, "\\[u%04X]", code);
      out += escape;
    }
  }
  return out;
}

std::string options_section(const std::vector<Option>& options) {
  std::ostringstream out;
  for (const Option& o : options)
    out << ".TP\n\\fB\\-\\-" << roff(o.name) << "\\fR" << (o.metavar.empty() ? "" : " \\fI" + roff(o.metavar) + "\\fR") << "\n"
        << roff(o.help) << (o.repeatable ? " (repeatable)" : "") << "\n";
  return out.str();
}

std::string manpage(const std::vector<Subcommand>& commands) {
  std::ostringstream out;
  out << ".TH MMX 1 \"\" \"mmx " << kVersion << "\" \"User Commands\"\n"
      << ".SH NAME\nmmx \\- Hugging Face multimodal models natively: embeddings, similarity, classification, Stable "
         "Diffusion XL\n"
      << ".SH SYNOPSIS\n\\fBmmx\\fR \\fIcommand\\fR [\\fIoptions\\fR]\n"
      << ".SH DESCRIPTION\nmmx loads Hugging Face checkpoints as they are published (config.json and safetensors, "
         "diffusers folders) and gives the numbers transformers and diffusers give, without Python. A model is a "
         "folder written by save_pretrained, or a Hub id (org/name[@revision]) read from the Hugging Face cache and "
         "downloaded into it once.\n"
      << ".SH COMMANDS\n";
  for (const auto& s : commands) {
    const Command& c = *s.command;
    out << ".SS " << roff(c.name) << "\n.nf\n" << roff(c.usage) << "\n.fi\n.PP\n" << roff(c.summary) << "\n"
        << options_section(c.options);
    if (!c.details.empty()) out << ".PP\n.nf\n" << roff(c.details) << "\n.fi\n";
  }
  out << ".SH COMMON OPTIONS\nEvery command takes these.\n" << options_section(common_options())
      << ".SH EXIT STATUS\n0 success; 1 a runtime failure (a bad model, a bad input file, no network); 2 a usage error "
         "(bad flags, an empty text list, an output in a missing folder). A failure leaves no output file.\n"
      << ".SH ENVIRONMENT\n"
      << ".TP\n\\fBHF_HOME\\fR, \\fBHF_HUB_CACHE\\fR\nthe Hugging Face cache, as huggingface_hub lays it out\n"
      << ".TP\n\\fBHF_HUB_OFFLINE\\fR\n1: never touch the network, use only the cache\n"
      << ".TP\n\\fBHF_ENDPOINT\\fR, \\fBHF_TOKEN\\fR\na Hub mirror; the token for gated models\n"
      << ".TP\n\\fBHF_HUB_DOWNLOAD_TIMEOUT\\fR\nseconds a download may go without a byte (default 30)\n"
      << ".TP\n\\fBMMX_THREADS\\fR, \\fBOMP_NUM_THREADS\\fR\nthe CPU threads when \\-\\-threads is not given (default: the "
         "CPUs of the affinity mask, capped by the cgroup CPU quota)\n"
      << ".TP\n\\fBMMX_LOG\\fR\ndebug, info, warn (default) or error\n"
      << ".TP\n\\fBMMX_GEMM\\fR\navx2 or dnnl: a narrower GEMM path than this CPU's best (comparisons)\n"
      << ".TP\n\\fBMMX_BACKEND_PATH\\fR\nfolders to find backend modules (libmmx\\-cuda.so) in\n"
      << ".SH SEE ALSO\nmmx \\fIcommand\\fR \\-\\-help; https://huggingface.co/docs\n";
  return out.str();
}

}  // namespace

int run_completion(const Args& args) {
  if (args.positionals().size() != 1) usage_error("name one shell: bash, zsh or fish");
  const std::string& shell = args.positionals()[0];
  if (shell == "bash") std::fputs(bash(subcommands()).c_str(), stdout);
  else if (shell == "zsh") std::fputs(zsh(subcommands()).c_str(), stdout);
  else if (shell == "fish") std::fputs(fish(subcommands()).c_str(), stdout);
  else usage_error("no completion for '", shell, "' (bash, zsh or fish)");
  return 0;
}

int run_manpage(const Args&) {
  std::fputs(manpage(subcommands()).c_str(), stdout);
  return 0;
}

}  // namespace mmx::cli
