// mmx download: a Hub model into the Hugging Face cache, once, as huggingface-cli download does.
#include <cstdio>

#include "cli/commands.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_download.hpp"

namespace mmx::cli {

const Command kDownloadCommand{
    "download",
    "mmx download MODEL [--revision R] [--variant fp16]",
    "Download a Hub model into the Hugging Face cache (what the other commands read offline).",
    {
        {"revision", "R", "branch, tag or commit (default main; MODEL@R says the same)"},
        {"variant", "NAME", "weights variant to fetch, e.g. fp16 (*.fp16.safetensors) for diffusers pipelines"},
    },
    R"(MODEL is `org/name` or `name`. Only what mmx loads is fetched: configs, tokenizer files and the weights
in one format (safetensors, else PyTorch .bin); for a diffusers pipeline, model_index.json and the
components it names. The cache is huggingface_hub's (HF_HUB_CACHE, else HF_HOME/hub, else
~/.cache/huggingface/hub) and Python reads what mmx writes there. HF_ENDPOINT picks another server,
HF_TOKEN (or `huggingface-cli login`'s token file) opens gated and private models, HF_HUB_OFFLINE=1
forbids the network. Prints the snapshot folder.

examples:
  mmx download bert-base-uncased
  mmx download stabilityai/stable-diffusion-xl-base-1.0 --variant fp16
)",
    true,
};

int run_download(const Args& args) {
  if (args.positionals().size() != 1) usage_error("name one model (org/name or name), e.g. mmx download bert-base-uncased");
  auto id = parse_hub_model_id(args.positionals()[0]);
  if (!id) usage_error("'", args.positionals()[0], "' is not a Hub model id (org/name or name, optionally @revision)");
  if (const auto r = args.get("revision")) {
    if (args.positionals()[0].find('@') != std::string::npos) usage_error("give the revision once: MODEL@R or --revision R");
    auto with = parse_hub_model_id(id->repo_id + "@" + *r);
    if (!with) usage_error("--revision '", *r, "' is not a branch, tag or commit");
    id = with;
  }
  const std::string variant = args.get("variant").value_or("");
  if (!variant.empty() && variant != "fp16") usage_error("unknown weight variant '", variant, "' (use fp16, or none)");
  std::printf("%s\n", download_model(*id, variant).c_str());
  return 0;
}

}  // namespace mmx::cli
