#include "bench/bench.hpp"
#include "bench/fma_peak.hpp"


#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <cstdio>

#include "backend/ops.hpp"
#include "mmx/files.hpp"
#include "models/bert.hpp"
#include "models/clip.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/unet2d_condition.hpp"
#include "models/vit.hpp"
#include "mmx/image_processor.hpp"
#include "mmx/runtime.hpp"
#include "mmx/placement.hpp"
#include "mmx/tokenizer.hpp"

namespace mmx {

namespace {

// The lab's eight texts: four captions, four lines of dialogue.
const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};

// flops 0: the warm-up counts them op by op (the UNet and the VAE, whose FLOPs have no formula here).
BenchResult time_runs(const std::string& name, int runs, double flops, const Placement& where,
                      const std::function<void()>& run) {
  const bool device = !where.device.is_cpu();
  if (flops == 0) ops::count_flops(true);
  if (device) reset_peak_memory(where.device);
  run();  // warm-up: first-touch of weights and buffers, packing, thread start, cuBLASLt plans
  if (device) synchronize(where.device);
  if (flops == 0) {
    flops = ops::counted_flops();
    ops::count_flops(false);
  }
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    if (device) synchronize(where.device);  // the device's queue drained: its work is in the time
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  BenchResult r;
  r.workload = name;
  r.runs = runs;
  r.min_ms = ms.front();
  r.median_ms = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  r.threads = num_threads();
  r.gflops = flops / (r.median_ms * 1e6);
  // Against the unit the placement multiplies on (fp32 FMA, or the bf16 / int8 units).
  r.peak_gflops = device ? 0.0 : cpu_peak_gflops_for(where.dtype, r.threads, r.gflops, &r.unit);
  r.peak_fraction = device ? 0.0 : r.gflops / r.peak_gflops;
  r.peak_rss_mb = peak_rss_mb();
  if (device) {
    r.device = str(where.str(), " (", device_description(where.device), ")");
    r.peak_device_mb = peak_memory_mb(where.device);
  }
  return r;
}

BenchResult with_items(BenchResult r, int64_t items) {
  r.items = items;
  r.items_per_s = items / (r.median_ms / 1000.0);
  return r;
}

double bert_flops(const BertConfig& c, int64_t batch, int64_t seq) {
  const double tokens = double(batch) * seq, h = double(c.hidden_size), i = double(c.intermediate_size);
  const double per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * double(batch) * seq * seq * h;
  return per_layer * double(c.num_hidden_layers) + 2 * double(batch) * h * h;  // + pooler
}

BenchResult bench_bert(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights, bool lab,
                       int64_t batch = 32, int64_t seq = 128, const std::string& config_folder = "bert-base-uncased") {
  const std::string config_path = join_path(data_dir, "real-configs/" + config_folder + "/config.json");
  const BertConfig config = BertConfig::from_json(JsonObject::load(config_path));
  auto loader = WeightLoader::random(42, where, weights);
  const BertModel model(config, *loader);
  Tensor input_ids, mask;
  if (lab) {  // the lab's batch, tokenised with the real vocabulary: [8, 7]
    const auto tokenizer = Tokenizer::load(join_path(data_dir, "tokenizers/bert-base-uncased"));
    const BatchEncoding batch = tokenizer->encode_batch(kLabTexts, Padding::Longest);
    input_ids = batch.input_ids();
    mask = batch.attention_mask();
  } else {  // `batch` sequences of `seq` random ids, no padding
    std::mt19937 rng(7);
    std::vector<int64_t> ids(size_t(batch * seq));
    for (auto& id : ids) id = 1000 + static_cast<int64_t>(rng() % 20000);
    input_ids = Tensor::from_vector(ids, {batch, seq});
    mask = Tensor::from_vector(std::vector<int64_t>(ids.size(), 1), {batch, seq});
  }
  BenchResult r = time_runs(name, runs, bert_flops(config, input_ids.dim(0), input_ids.dim(1)), where,
                            [&] { model.forward(input_ids, Tensor(), mask); });
  r.detail = str(config_folder, " (random weights), batch ", shape_str(input_ids.shape()));
  return with_items(r, input_ids.dim(0));
}

double vit_flops(const ViTConfig& c, int64_t batch) {
  const double t = double(c.num_patches() + 1), h = double(c.hidden_size), i = double(c.intermediate_size);
  const double per_layer = 2 * t * (4 * h * h + 2 * h * i) + 2 * 2 * t * t * h;
  const double patch = 2 * double(c.num_patches()) * double(c.num_channels * c.patch_height * c.patch_width) * h;
  return double(batch) * (per_layer * double(c.num_hidden_layers) + patch + 2 * h * h);
}

BenchResult bench_vit(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights, int64_t batch) {
  const ViTConfig config =
      ViTConfig::from_json(JsonObject::load(join_path(data_dir, "real-configs/vit-base-patch16-224/config.json")));
  auto loader = WeightLoader::random(42, where, weights);
  const ViTModel model(config, *loader);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  Tensor pixels = Tensor::empty({batch, config.num_channels, config.image_height, config.image_width});
  for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = normal(rng);
  BenchResult r = time_runs(name, runs, vit_flops(config, batch), where, [&] { model.forward(pixels); });
  r.detail = str("vit-base-patch16-224 (random weights), pixel_values ", shape_str(pixels.shape()));
  return with_items(r, batch);
}

// Decode + ViTImageProcessor for the lab's four photos (PNG and JPEG), per image.
BenchResult bench_vit_preprocess(const std::string& name, int runs, const std::string& data_dir) {
  const auto config = ImageProcessorConfig::load(join_path(data_dir, "preprocess/vit/preprocessor_config.json"));
  std::vector<std::string> bytes;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"})
    bytes.push_back(read_file(join_path(data_dir, std::string("images/") + f)));
  BenchResult r = time_runs(name, runs, 0, Placement(), [&] {
    for (const auto& b : bytes) preprocess_image(decode_image(b, "bench"), config);
  });
  r.min_ms /= 4;
  r.median_ms /= 4;
  r.detail = "decode + resize 224×224 BILINEAR + rescale + normalise, per image (mean of the lab's 4 photos)";
  return r;
}

double clip_layer_flops(double tokens, double h, double i) { return 2 * tokens * (4 * h * h + 2 * h * i) + 4 * tokens * tokens * h; }

BenchResult bench_clip(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights, bool text, int64_t batch) {
  const CLIPConfig config =
      CLIPConfig::from_json(JsonObject::load(join_path(data_dir, "real-configs/clip-vit-base-patch32/config.json")));
  auto loader = WeightLoader::random(42, where, weights);
  const CLIPModel model(config, *loader);
  if (text) {  // `batch` texts, the lab's 8 in turn, with the real CLIP vocabulary: [batch, 7]
    const auto tokenizer = Tokenizer::load(join_path(data_dir, "tokenizers/clip"));
    std::vector<std::string> texts;
    for (int64_t i = 0; i < batch; ++i) texts.push_back(kLabTexts[size_t(i) % kLabTexts.size()]);
    const BatchEncoding b = tokenizer->encode_batch(texts, Padding::Longest);
    const Tensor ids = b.input_ids(), mask = b.attention_mask();
    const auto& c = *config.text_config;
    const double t = double(ids.dim(1));
    const double flops = double(ids.dim(0)) * (clip_layer_flops(t, double(c.hidden_size), double(c.intermediate_size)) *
                                                   double(c.num_hidden_layers) + 2.0 * c.hidden_size * config.projection_dim);
    BenchResult r = time_runs(name, runs, flops, where, [&] { model.get_text_features(ids, mask); });
    r.detail = str("clip-vit-base-patch32 text tower (random weights), input_ids ", shape_str(ids.shape()));
    return with_items(r, batch);
  }
  const auto& c = *config.vision_config;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  Tensor pixels = Tensor::empty({batch, 3, c.image_size, c.image_size});
  for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = normal(rng);
  const double t = double(c.num_patches() + 1);
  const double flops = double(batch) * (clip_layer_flops(t, double(c.hidden_size), double(c.intermediate_size)) *
                                            double(c.num_hidden_layers) +
                                        2.0 * c.num_patches() * 3 * c.patch_size * c.patch_size * c.hidden_size);
  BenchResult r = time_runs(name, runs, flops, where, [&] { model.get_image_features(pixels); });
  r.detail = str("clip-vit-base-patch32 vision tower (random weights), pixel_values ", shape_str(pixels.shape()));
  return with_items(r, batch);
}

Tensor random_normal(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// One denoising step of SDXL base: the UNet on the CFG batch of 2 at `size`² pixels (latents size/8).
BenchResult bench_sdxl_unet(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights, int64_t size) {
  const auto config = UNet2DConditionConfig::from_json(
      JsonObject::load(join_path(data_dir, "real-configs/stable-diffusion-xl-base-1.0/unet/config.json")));
  auto loader = WeightLoader::random(42, where, weights);
  const UNet2DConditionModel unet(config, *loader);
  const Tensor sample = random_normal({2, config.in_channels, size / 8, size / 8}, 1);
  const Tensor context = random_normal({2, 77, config.cross_attention_dim.front()}, 2);
  const Tensor text_embeds = random_normal({2, 1280}, 3);
  const Tensor time_ids = Tensor::from_vector(std::vector<float>{float(size), float(size), 0, 0, float(size), float(size),
                                                                 float(size), float(size), 0, 0, float(size), float(size)},
                                              {2, 6});
  BenchResult r = time_runs(name, runs, 0, where, [&] { unet.forward(sample, 500.0f, context, text_embeds, time_ids); });
  r.detail = str("SDXL base UNet (random ", dtype_name(weights), " weights from the real config), CFG batch 2, latents ", shape_str(sample.shape()),
                 ": one denoising step");
  return r;
}

BenchResult bench_sdxl_vae(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights, int64_t size) {
  const auto config = AutoencoderKLConfig::from_json(
      JsonObject::load(join_path(data_dir, "real-configs/stable-diffusion-xl-base-1.0/vae/config.json")));
  auto loader = WeightLoader::random(42, where, weights);
  const AutoencoderKL vae(config, *loader);
  const Tensor z = random_normal({1, config.latent_channels, size / 8, size / 8}, 4);
  BenchResult r = time_runs(name, runs, 0, where, [&] { vae.decode(z); });
  r.detail = str("SDXL VAE decoder (random ", dtype_name(weights), " weights from the real config), latents ", shape_str(z.shape()), " → ", size, "²");
  return r;
}

// SDXL's prompt encoding: the prompt and the negative prompt, each [1, 77] through both text
// encoders with every hidden state kept, and text_encoder_2's projection (as encode_prompt runs them).
BenchResult bench_sdxl_text_encoders(const Placement& where, const std::string& name, int runs, const std::string& data_dir, DType weights) {
  const std::string root = join_path(data_dir, "real-configs/stable-diffusion-xl-base-1.0");
  auto loader = WeightLoader::random(42, where, weights);
  WeightLoader& l = *loader;
  const CLIPModel one(CLIPConfig::from_json(JsonObject::load(join_path(root, "text_encoder/config.json"))), l);
  const CLIPModel two(CLIPConfig::from_json(JsonObject::load(join_path(root, "text_encoder_2/config.json"))), l);
  std::vector<int64_t> ids(77, 49407);
  ids[0] = 49406;
  for (int i = 1; i < 12; ++i) ids[i] = 320 + 37 * i;  // a dozen word ids, then end-of-text padding
  const Tensor input_ids = Tensor::from_vector(ids, {1, 77});
  double flops = 0;
  for (const CLIPModel* m : {&one, &two}) {
    const auto& c = m->text_model().config();
    flops += 2 * (clip_layer_flops(77, double(c.hidden_size), double(c.intermediate_size)) * double(c.num_hidden_layers));
  }
  BenchResult r = time_runs(name, runs, flops, where, [&] {
    for (int text = 0; text < 2; ++text) {
      one.text_model().forward(input_ids, Tensor(), true);
      const CLIPTextOutputs o = two.text_model().forward(input_ids, Tensor(), true);
      two.project_text(o.pooler_output);
    }
  });
  r.detail = str("SDXL text_encoder + text_encoder_2 (random ", dtype_name(weights),
                 " weights from the real configs): prompt and negative prompt, [1, 77] each");
  return r;
}

BenchResult bench_gemm(const Placement& where, const std::string& name, int runs, int64_t m, int64_t n, int64_t k, DType weights) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor x = Tensor::empty({m, k}), w = Tensor::empty({n, k});
  for (Tensor* t : {&x, &w})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = dist(rng);
  // As the models hold it: on the CPU an F32 weight packed once at load, a half-precision one as
  // stored; on other devices both operands in the placement's activation dtype.
  if (!where.device.is_cpu()) {
    x = where.in(x);
    w = where.in(w);
    weights = where.activation_dtype();
  }
  // At --dtype bf16 | int8 the CPU multiplies in that precision, from a weight packed for its unit.
  const DType compute = where.device.is_cpu() && (where.dtype == DType::BF16 || where.dtype == DType::I8) ? where.dtype : DType::F32;
  if (compute == DType::BF16) weights = DType::BF16;
  const Tensor stored = !where.device.is_cpu() ? w : w.to(weights);
  const ops::PackedWeight packed =
      weights == DType::F32 || compute != DType::F32 ? ops::pack_linear_weight(stored, compute) : ops::PackedWeight();
  BenchResult r = time_runs(name, runs, 2.0 * m * n * k, where,
                            [&] { ops::linear(x, stored, packed, Tensor(), ops::LinearFusion()); });
  r.detail = str("x[", m, ", ", k, "] · w[", n, ", ", k, "]ᵀ (nn.Linear layout, ", dtype_name(weights), " weight",
                 packed.defined() ? ", packed at load" : ", as stored",
                 packed.compute != DType::F32 ? str(" for ", dtype_name(packed.compute), " products)") : std::string(")"));
  return r;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> bench_workloads() {
  return {{"bert-lab", "bert-base-uncased forward on the lab's 8 texts (batch [8, 7])"},
          {"bert-32x128", "bert-base-uncased forward on 32 × 128 tokens"},
          {"bert-NxT", "bert-base-uncased forward on N sequences of T tokens, e.g. bert-256x128"},
          {"minilm-l6-32x128", "all-MiniLM-L6-v2's BERT (6 layers, hidden 384) on 32 × 128 tokens"},
          {"bge-small-32x128", "bge-small-en-v1.5's BERT (12 layers, hidden 384) on 32 × 128 tokens"},
          {"vit-4", "vit-base-patch16-224 forward on 4 images"},
          {"vit-32", "vit-base-patch16-224 forward on 32 images (vit-N: any N)"},
          {"vit-preprocess", "decode + ViT preprocessing, ms per image"},
          {"clip-text-8", "clip-vit-base-patch32 text features of the lab's 8 texts"},
          {"clip-image-4", "clip-vit-base-patch32 image features of 4 images"},
          {"clip-image-32", "clip-vit-base-patch32 image features of 32 images (clip-image-N: any N)"},
          {"clip-text-N", "clip-vit-base-patch32 text features of N texts (the lab's 8 in turn)"},
          {"sdxl-unet-512", "SDXL base UNet, one CFG step (batch 2) at 512×512"},
          {"sdxl-unet-1024", "SDXL base UNet, one CFG step (batch 2) at 1024×1024"},
          {"sdxl-text-encoders", "SDXL's two text encoders on a prompt and a negative prompt"},
          {"sdxl-vae-512", "SDXL VAE decode to 512×512 (also: vae-decode-512)"},
          {"sdxl-vae-1024", "SDXL VAE decode to 1024×1024"},
          {"gemm-MxNxK", "one GEMM, e.g. gemm-4096x3072x768 (x[M,K]·w[N,K]^T)"},
          {"search-exact-N", "a collection's exact top-10 over N 512-wide vectors (clustered), ms per query"},
          {"search-hnsw-N", "the same through an HNSW graph: its build time and recall@10 in the detail"},
          {"search-hnsw-uniform-N", "HNSW over uniform random vectors (the graph's worst case)"}};
}

BenchResult run_benchmark(const std::string& workload, int runs, const std::string& data_dir,
                          std::optional<DType> weights, const Placement& where) {
  where.check();
  if (runs < 1) usage_error("--runs must be at least 1");
  const bool sdxl = workload.rfind("sdxl-", 0) == 0 || workload == "vae-decode-512";
  const DType w = weights.value_or(sdxl ? DType::F16 : DType::F32);
  if (sdxl && where.dtype == DType::I8)  // as SDXLPipeline::load: no int8 bound measured for the UNet
    usage_error("--dtype int8 is for the text and image encoders; time SDXL with --dtype bf16 or f32");
  if (workload == "bert-lab") return bench_bert(where, workload, runs, data_dir, w, true);
  if (workload == "bert-32x128") return bench_bert(where, workload, runs, data_dir, w, false);
  if (workload == "minilm-l6-32x128") return bench_bert(where, workload, runs, data_dir, w, false, 32, 128, "all-MiniLM-L6-v2");
  if (workload == "bge-small-32x128") return bench_bert(where, workload, runs, data_dir, w, false, 32, 128, "bge-small-en-v1.5");
  if (workload == "vit-4") return bench_vit(where, workload, runs, data_dir, w, 4);
  if (workload == "vit-32") return bench_vit(where, workload, runs, data_dir, w, 32);
  if (workload == "vit-preprocess") return bench_vit_preprocess(workload, runs, data_dir);
  if (workload == "clip-text-8") return bench_clip(where, workload, runs, data_dir, w, true, 8);
  if (workload == "clip-image-4") return bench_clip(where, workload, runs, data_dir, w, false, 4);
  if (workload == "clip-image-32") return bench_clip(where, workload, runs, data_dir, w, false, 32);
  if (workload == "sdxl-unet-512") return bench_sdxl_unet(where, workload, runs, data_dir, w, 512);
  if (workload == "sdxl-unet-1024") return bench_sdxl_unet(where, workload, runs, data_dir, w, 1024);
  if (workload == "sdxl-text-encoders") return bench_sdxl_text_encoders(where, workload, runs, data_dir, w);
  if (workload == "sdxl-vae-512" || workload == "vae-decode-512") return bench_sdxl_vae(where, workload, runs, data_dir, w, 512);
  if (workload == "sdxl-vae-1024") return bench_sdxl_vae(where, workload, runs, data_dir, w, 1024);
  long long m = 0, n = 0, k = 0;
  int used = 0;
  const auto whole = [&](int count) { return count >= 1 && used == static_cast<int>(workload.size()) && m > 0 && (count < 2 || n > 0); };
  if (std::sscanf(workload.c_str(), "bert-%lldx%lld%n", &m, &n, &used) == 2 && whole(2))
    return bench_bert(where, workload, runs, data_dir, w, false, m, n);
  if (std::sscanf(workload.c_str(), "vit-%lld%n", &m, &used) == 1 && whole(1)) return bench_vit(where, workload, runs, data_dir, w, m);
  if (std::sscanf(workload.c_str(), "clip-image-%lld%n", &m, &used) == 1 && whole(1))
    return bench_clip(where, workload, runs, data_dir, w, false, m);
  if (std::sscanf(workload.c_str(), "clip-text-%lld%n", &m, &used) == 1 && whole(1))
    return bench_clip(where, workload, runs, data_dir, w, true, m);
  used = 0;
  if (std::sscanf(workload.c_str(), "search-exact-%lld%n", &m, &used) == 1 && whole(1))
    return bench_search(workload, runs, m, false, true);
  used = 0;
  if (std::sscanf(workload.c_str(), "search-hnsw-uniform-%lld%n", &m, &used) == 1 && whole(1))
    return bench_search(workload, runs, m, true, false);
  used = 0;
  if (std::sscanf(workload.c_str(), "search-hnsw-%lld%n", &m, &used) == 1 && whole(1))
    return bench_search(workload, runs, m, true, true);
  used = 0;
  if (std::sscanf(workload.c_str(), "gemm-%lldx%lldx%lld%n", &m, &n, &k, &used) == 3 &&
      used == static_cast<int>(workload.size()) && m > 0 && n > 0 && k > 0)
    return bench_gemm(where, workload, runs, m, n, k, w);
  usage_error("unknown workload '", workload, "' (see mmx bench --help)");
}

}  // namespace mmx
