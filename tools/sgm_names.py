"""diffusers' SDXL UNet names → SGM's (the original Stability code's input_blocks / middle_block /
output_blocks, the names kohya's SDXL LoRAs and single-file checkpoints use), from the UNet's config.
Shared by tools/make_lora_reference.py and tools/sdxl_folder_to_single_file.py."""

# A resnet's inner modules: diffusers' name → SGM's.
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def sgm_prefixes(config):
    """diffusers module prefix → SGM prefix for every block of the UNet the config describes."""
    n, layers = len(config["block_out_channels"]), config["layers_per_block"]
    layers = layers if isinstance(layers, list) else [layers] * n
    m = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
         "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0",
         "conv_out": "out.2", "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
         "mid_block.resnets.1": "middle_block.2"}
    at = 1
    for i in range(n):
        for j in range(layers[i]):
            m[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{at}.0"
            m[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{at}.1"
            at += 1
        if i + 1 < n:
            m[f"down_blocks.{i}.downsamplers.0"] = f"input_blocks.{at}.0"
            at += 1
    at = 0
    for i in range(n):
        cross = config["up_block_types"][i].startswith("CrossAttn")
        for j in range(layers[n - 1 - i] + 1):
            m[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{at}.0"
            m[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{at}.1"
            if j == layers[n - 1 - i] and i + 1 < n:
                m[f"up_blocks.{i}.upsamplers.0"] = f"output_blocks.{at}.{2 if cross else 1}"
            at += 1
    return m


def to_sgm(path, prefixes):
    """A module or tensor path of the diffusers UNet in SGM's names (without "model.diffusion_model.")."""
    for d in sorted(prefixes, key=len, reverse=True):
        if path == d or path.startswith(d + "."):
            head, _, tail = path[len(d) + 1:].partition(".")
            if ".resnets." in d:
                head = RESNET.get(head, head)
            if ".downsamplers." in d and head == "conv":
                head = "op"
            rest = ".".join(p for p in (head, tail) if p)
            return prefixes[d] + ("." + rest if rest else "")
    raise ValueError(f"no SGM name for {path}")
