// mmx._native: the engine's public API for Python (pybind11). Thin on purpose: conversions between numpy
// arrays and mmx's tensors and images, the GIL released around every call into the engine, mmx::Error
// raised as mmx.Error. The Python-facing names, defaults and docstrings live in python/mmx/__init__.py.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <mutex>

#include "lab/lab.hpp"
#include "mmx/classify.hpp"
#include "mmx/collection.hpp"
#include "mmx/embed.hpp"
#include "mmx/image.hpp"
#include "mmx/plot/heatmap_layout.hpp"
#include "mmx/plot/render.hpp"
#include "mmx/runtime.hpp"
#include "mmx/similarity.hpp"
#include "mmx/text_to_image.hpp"

namespace py = pybind11;
using namespace mmx;

namespace {

// ---- numpy ↔ mmx

// A host tensor as a numpy array over the same memory: the capsule holds a Tensor, which holds the storage.
py::array to_numpy(const Tensor& tensor) {
  if (!tensor.defined()) return py::none();
  const Tensor t = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
  py::dtype dtype;
  switch (t.dtype()) {
    case DType::F32: dtype = py::dtype::of<float>(); break;
    case DType::F64: dtype = py::dtype::of<double>(); break;
    case DType::I64: dtype = py::dtype::of<int64_t>(); break;
    case DType::I32: dtype = py::dtype::of<int32_t>(); break;
    case DType::U8: dtype = py::dtype::of<uint8_t>(); break;
    default: return to_numpy(t.to(DType::F32));
  }
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(dtype_size(t.dtype()));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  auto* keep = new Tensor(t);
  py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(dtype, shape, strides, t.raw(), owner);
}

// A float32 matrix from any array-like of numbers (a copy only where numpy must convert or compact it).
Tensor matrix_from_numpy(const py::handle& object, const char* what) {
  const auto array = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(object);
  if (!array) throw py::type_error(std::string(what) + ": expected a 2-D array of numbers");
  if (array.ndim() != 2)
    usage_error(what, ": expected a 2-D array [rows, dimension], got ", array.ndim(), " dimension",
                array.ndim() == 1 ? "" : "s");
  auto owner = std::make_shared<py::object>(array);  // released with the GIL held: see release_object
  std::shared_ptr<const void> keep(owner.get(), [owner](const void*) mutable {
    py::gil_scoped_acquire gil;
    owner.reset();
  });
  return Tensor::from_external(array.data(), {array.shape(0), array.shape(1)}, DType::F32, keep);
}

// An image for the engine: a path, encoded bytes, an HWC (or HW) uint8 array, or a PIL image. Called with
// the GIL held; `index` names the image in errors.
Image image_from_object(const py::handle& object, size_t index) {
  const std::string which = "image " + std::to_string(index + 1);
  if (py::isinstance<py::str>(object) || py::hasattr(object, "__fspath__")) {
    const std::string path = py::str(py::module_::import("os").attr("fspath")(object));
    py::gil_scoped_release nogil;
    return load_image(path);
  }
  if (py::isinstance<py::bytes>(object)) {
    const std::string bytes = object.cast<std::string>();
    py::gil_scoped_release nogil;
    return decode_image(bytes, which);
  }
  py::object value = py::reinterpret_borrow<py::object>(object);
  // A PIL image without importing PIL: converted as Hugging Face's processors and mmx's decoder do.
  if (!py::isinstance<py::array>(value) && py::hasattr(value, "convert") && py::hasattr(value, "mode") &&
      py::hasattr(value, "size"))
    value = py::module_::import("numpy").attr("asarray")(value.attr("convert")("RGB"));
  if (!py::isinstance<py::array>(value))
    throw py::type_error(which + ": expected a path, encoded bytes, a numpy HWC uint8 array or a PIL image, got " +
                         std::string(py::str(py::type::of(object).attr("__name__"))));
  const py::array array = value.cast<py::array>();
  if (!array.dtype().is(py::dtype::of<uint8_t>()))
    usage_error(which, ": an image array holds uint8 values 0..255 (height, width, 3), got dtype ",
                std::string(py::str(array.dtype())), " (scale to 0..255 and use .astype(np.uint8))");
  const int ndim = static_cast<int>(array.ndim());
  const int64_t channels = ndim == 2 ? 1 : ndim == 3 ? array.shape(2) : 0;
  if (channels != 1 && channels != 3 && channels != 4)
    usage_error(which, ": an image array is (height, width), (height, width, 3) or (height, width, 4), got shape ",
                shape_str(Shape(array.shape(), array.shape() + ndim)));
  const auto pixels = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(array);
  Image image;
  image.height = array.shape(0);
  image.width = array.shape(1);
  if (image.width < 1 || image.height < 1) usage_error(which, ": an empty image (", image.width, "×", image.height, ")");
  const uint8_t* src = pixels.data();
  const size_t count = size_t(image.width * image.height);
  image.rgb.resize(count * 3);
  if (channels == 3) {
    std::memcpy(image.rgb.data(), src, count * 3);
  } else {  // grey replicated, alpha dropped: Pillow's convert("RGB")
    for (size_t i = 0; i < count; ++i)
      for (int c = 0; c < 3; ++c) image.rgb[i * 3 + c] = src[i * size_t(channels) + (channels == 1 ? 0 : size_t(c))];
  }
  return image;
}

std::vector<Image> images_from_objects(const py::sequence& objects) {
  std::vector<Image> images;
  images.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) images.push_back(image_from_object(objects[i], i));
  return images;
}

py::array image_to_numpy(const Image& image) {
  auto* keep = new std::vector<uint8_t>(image.rgb);
  py::capsule owner(keep, [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); });
  return py::array(py::dtype::of<uint8_t>(), {image.height, image.width, int64_t(3)},
                   {image.width * 3, int64_t(3), int64_t(1)}, keep->data(), owner);
}

// A Python progress callable called from an engine thread: with the GIL, and a pending Ctrl-C (or the
// callable's own exception) raised there, which unwinds the engine's call.
std::function<void(int64_t, int64_t)> progress_callback(const py::object& callback) {
  if (callback.is_none()) return [](int64_t, int64_t) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
  return [callback](int64_t done, int64_t total) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    callback(done, total);
  };
}

EmbedOptions embed_options(const std::optional<std::string>& pooling, bool normalize, int64_t batch_size,
                           const std::optional<std::string>& prompt, const std::optional<std::string>& prompt_name,
                           std::optional<int64_t> max_length, const py::object& progress) {
  EmbedOptions o;
  if (pooling) o.pooling = pooling_from_name(*pooling);
  o.normalize = normalize;
  if (batch_size < 1) usage_error("batch_size ", batch_size, " is not positive");
  o.max_batch_size = batch_size;
  o.prompt = prompt;
  o.prompt_name = prompt_name;
  if (max_length && *max_length < 2) usage_error("max_length ", *max_length, " is less than 2");
  o.max_length = max_length;
  o.progress = progress_callback(progress);
  return o;
}

Placement placement_from(const std::string& device, const std::optional<std::string>& dtype) {
  Placement p;
  p.device = Device::parse(device);
  if (dtype) p.dtype = dtype_from_name(*dtype);
  p.check();
  return p;
}

py::dict result_dict(const EmbedResult& r) {
  py::dict d;
  d["embeddings"] = to_numpy(r.embeddings);
  d["pooling"] = pooling_name(r.pooling);
  if (r.last_hidden_state.defined()) d["token_embeddings"] = to_numpy(r.last_hidden_state);
  if (r.input_ids.defined()) {
    d["input_ids"] = to_numpy(r.input_ids);
    d["attention_mask"] = to_numpy(r.attention_mask);
  }
  return d;
}

// ---- Wrapped engine objects

struct PyTextEmbedder {
  std::unique_ptr<TextEmbedder> embedder;

  py::dict encode(const std::vector<std::string>& texts, const std::optional<std::string>& pooling, bool normalize,
                  int64_t batch_size, const std::optional<std::string>& prompt,
                  const std::optional<std::string>& prompt_name, std::optional<int64_t> max_length,
                  bool token_embeddings, const py::object& progress) const {
    EmbedOptions o = embed_options(pooling, normalize, batch_size, prompt, prompt_name, max_length, progress);
    o.token_embeddings = token_embeddings;
    EmbedResult r;
    {
      py::gil_scoped_release nogil;
      r = embedder->embed(texts, o);
    }
    return result_dict(r);
  }

  // tokenizer(texts, padding=True, truncation=True): the arrays the model takes, padded to the longest.
  py::dict tokenize(const std::vector<std::string>& texts, std::optional<int64_t> max_length) const {
    if (texts.empty()) usage_error("no texts to tokenize");
    BatchEncoding batch;
    {
      py::gil_scoped_release nogil;
      batch = embedder->tokenizer().encode_batch(texts, Padding::Longest, max_length.value_or(embedder->max_length()));
    }
    py::dict d;
    for (const std::string& name : embedder->tokenizer().model_input_names())
      d[py::str(name)] = to_numpy(name == "input_ids"        ? batch.input_ids()
                                  : name == "token_type_ids" ? batch.token_type_ids()
                                                             : batch.attention_mask());
    return d;
  }

  // The engine's own time for encode() of `texts`, median of `runs` calls with no Python in between: what
  // the module's overhead is measured against (bench/python_overhead.py).
  double median_engine_seconds(const std::vector<std::string>& texts, int runs) const {
    if (runs < 1) usage_error("runs must be at least 1");
    py::gil_scoped_release nogil;
    EmbedOptions o;
    o.max_batch_size = 32;
    std::vector<double> seconds;
    for (int i = 0; i < runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const EmbedResult r = embedder->embed(texts, o);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return seconds[seconds.size() / 2];
  }
};

struct PyImageEmbedder {
  std::unique_ptr<ImageEmbedder> embedder;

  py::dict encode(const py::sequence& images, const std::optional<std::string>& pooling, bool normalize,
                  int64_t batch_size, bool token_embeddings, const py::object& progress) const {
    EmbedOptions o = embed_options(pooling, normalize, batch_size, std::nullopt, std::nullopt, std::nullopt, progress);
    o.token_embeddings = token_embeddings;
    std::vector<Image> decoded = images_from_objects(images);
    EmbedResult r;
    {
      py::gil_scoped_release nogil;
      r = embedder->embed(decoded, o);
    }
    return result_dict(r);
  }
};

// One pipeline serves one generation at a time (its adapter cache is shared state).
struct PySDXLPipeline {
  std::string folder, variant;
  std::unique_ptr<SDXLPipeline> pipeline;
  bool turbo = false;  // SDXL-Turbo's layout, read once with the folder
  std::mutex busy;

  py::dict generate(const py::dict& kw) {
    GenerateOptions o;
    o.prompt = kw["prompt"].cast<std::string>();
    if (!kw["negative_prompt"].is_none()) o.negative_prompt = kw["negative_prompt"].cast<std::string>();
    o.seed = kw["seed"].cast<uint64_t>();
    o.steps = kw["steps"].cast<int64_t>();
    o.guidance_scale = kw["guidance"].cast<float>();
    o.scheduler = kw["scheduler"].cast<std::string>();
    o.scheduler_settings = kw["scheduler_settings"].cast<std::string>();
    if (!kw["width"].is_none()) o.width = kw["width"].cast<int64_t>();
    if (!kw["height"].is_none()) o.height = kw["height"].cast<int64_t>();
    // "FILE[:WEIGHT]" as --lora reads it, or a (path, weight) pair.
    for (const py::handle spec : kw["loras"])
      o.loras.push_back(py::isinstance<py::tuple>(spec)
                            ? LoraWeight{spec.cast<py::tuple>()[0].cast<std::string>(), spec.cast<py::tuple>()[1].cast<double>()}
                            : parse_lora_option(spec.cast<std::string>()));
    if (!kw["image"].is_none()) o.image = image_from_object(kw["image"], 0);
    if (!kw["mask"].is_none()) o.mask = image_from_object(kw["mask"], 1);
    if (!kw["strength"].is_none()) o.strength = kw["strength"].cast<double>();
    if (!kw["latents"].is_none()) {
      const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(kw["latents"]);
      if (!a || a.ndim() != 4) usage_error("latents: expected a float array [1, channels, height/8, width/8]");
      o.latents = Tensor::empty(Shape(a.shape(), a.shape() + 4));
      std::memcpy(o.latents.raw_mutable(), a.data(), o.latents.nbytes());
    }
    o.keep_step_latents = kw["keep_step_latents"].cast<bool>();
    const py::object callback = kw["callback"];
    o.on_step = [callback](int64_t step, int64_t steps, double seconds) {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!callback.is_none()) callback(step, steps, seconds);
    };
    GenerateResult r;
    {
      py::gil_scoped_release nogil;
      const std::lock_guard<std::mutex> lock(busy);
      r = pipeline->generate(o);
    }
    py::dict d;
    d["image"] = r.image.rgb.empty() ? py::object(py::none()) : py::object(image_to_numpy(r.image));
    d["latents"] = to_numpy(r.latents);
    d["init_latents"] = to_numpy(r.init_latents);
    d["step_latents"] = to_numpy(r.step_latents);
    d["scheduler"] = r.scheduler;
    return d;
  }
};

struct PyIndex {
  std::string db, model, device;
  std::optional<std::string> dtype;
  std::unique_ptr<Collection> collection;  // opened on the first search, refreshed after add()

  py::dict add(const std::vector<std::string>& folders, int64_t batch_size, bool include_hidden,
               const py::object& progress) {
    if (model.empty()) usage_error("Index(db, model=...): adding images needs the model that embeds them");
    IndexOptions o;
    o.batch_size = batch_size;
    o.include_hidden = include_hidden;
    o.progress = progress_callback(progress);
    IndexSummary s;
    {
      py::gil_scoped_release nogil;
      s = index_folders(db, folders, model, placement_from(device, dtype), o);
      if (collection) collection->refresh();
    }
    py::dict d;
    d["files"] = s.files;
    d["unchanged"] = s.unchanged;
    d["embedded"] = s.embedded;
    d["reused"] = s.reused;
    d["removed"] = s.removed;
    d["failed"] = s.failed;
    d["vectors"] = s.vectors;
    d["seconds"] = s.seconds;
    return d;
  }

  std::vector<std::pair<std::string, float>> search(const std::vector<std::tuple<std::string, std::string, float>>& terms,
                                                    int64_t top_k, std::optional<float> threshold) {
    std::vector<QueryTerm> query;
    for (const auto& [kind, value, weight] : terms)
      query.push_back({kind == "text" ? QueryTerm::Kind::Text : kind == "bytes" ? QueryTerm::Kind::ImageBytes
                                                                                : QueryTerm::Kind::Image,
                       value, weight});
    SearchOptions o;
    o.top_k = top_k;
    o.threshold = threshold;
    std::vector<std::pair<std::string, float>> hits;
    py::gil_scoped_release nogil;
    if (!collection) collection = Collection::open(db, model, placement_from(device, dtype));
    for (const SearchHit& h : collection->search(query, o)) hits.emplace_back(h.path, h.score);
    return hits;
  }
};

// ---- mmx.Error

// Raises the Python class of the error's kind (mmx.UsageError or mmx.RuntimeError, from python/mmx/_errors.py)
// with the message and the hint.
void raise_mmx_error(const Error& e) {
  const py::module_ errors = py::module_::import("mmx._errors");
  const py::object cls = errors.attr(e.kind() == ErrorKind::Usage ? "UsageError" : "RuntimeError");
  const py::object instance = cls(e.what(), py::arg("hint") = e.hint());
  PyErr_SetObject(cls.ptr(), instance.ptr());
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "mmx's engine (C++); use the mmx package, which wraps it.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_mmx_error(e);
    }
  });

  m.def("set_num_threads", &set_num_threads, py::arg("threads"));
  m.def("num_threads", &num_threads);
  m.def("load_image", [](const std::string& path) {
    Image image;
    {
      py::gil_scoped_release nogil;
      image = load_image(path);
    }
    return image_to_numpy(image);
  }, py::arg("path"));
  m.def("image_array", [](const py::handle& image) { return image_to_numpy(image_from_object(image, 0)); });
  m.def("encode_png", [](const py::handle& image, const std::vector<std::pair<std::string, std::string>>& text) {
    const Image decoded = image_from_object(image, 0);
    std::string bytes;
    {
      py::gil_scoped_release nogil;
      bytes = encode_png(decoded, text);
    }
    return py::bytes(bytes);
  });

  py::class_<PyTextEmbedder>(m, "TextEmbedder")
      .def(py::init([](const std::string& model, const std::string& device, const std::optional<std::string>& dtype) {
             py::gil_scoped_release nogil;
             return PyTextEmbedder{TextEmbedder::load(model, placement_from(device, dtype))};
           }),
           py::arg("model"), py::arg("device"), py::arg("dtype"))
      .def("encode", &PyTextEmbedder::encode, py::arg("texts"), py::arg("pooling"), py::arg("normalize"),
           py::arg("batch_size"), py::arg("prompt"), py::arg("prompt_name"), py::arg("max_length"),
           py::arg("token_embeddings"), py::arg("progress"))
      .def("tokenize", &PyTextEmbedder::tokenize, py::arg("texts"), py::arg("max_length"))
      .def("median_engine_seconds", &PyTextEmbedder::median_engine_seconds, py::arg("texts"), py::arg("runs"))
      .def("prepare", [](const PyTextEmbedder& self, const std::string& text, const std::optional<std::string>& prompt,
                         const std::optional<std::string>& prompt_name) {
        EmbedOptions o;
        o.prompt = prompt;
        o.prompt_name = prompt_name;
        return self.embedder->prepare(text, o);
      })
      .def_property_readonly("max_length", [](const PyTextEmbedder& self) { return self.embedder->max_length(); })
      .def_property_readonly("description", [](const PyTextEmbedder& self) { return self.embedder->description(); })
      .def_property_readonly("path", [](const PyTextEmbedder& self) { return self.embedder->model().path(); })
      .def_property_readonly("placement", [](const PyTextEmbedder& self) { return self.embedder->model().placement().str(); })
      .def_property_readonly("default_pooling", [](const PyTextEmbedder& self) {
        return std::string(pooling_name(self.embedder->model().default_text_pooling()));
      })
      .def_property_readonly("default_score", [](const PyTextEmbedder& self) {
        return std::string(score_name(self.embedder->model().default_score()));
      })
      .def_property_readonly("logit_scale", [](const PyTextEmbedder& self) { return self.embedder->logit_scale(); });

  py::class_<PyImageEmbedder>(m, "ImageEmbedder")
      .def(py::init([](const std::string& model, const std::string& device, const std::optional<std::string>& dtype) {
             py::gil_scoped_release nogil;
             return PyImageEmbedder{ImageEmbedder::load(model, placement_from(device, dtype))};
           }),
           py::arg("model"), py::arg("device"), py::arg("dtype"))
      .def("encode", &PyImageEmbedder::encode, py::arg("images"), py::arg("pooling"), py::arg("normalize"),
           py::arg("batch_size"), py::arg("token_embeddings"), py::arg("progress"))
      .def_property_readonly("description", [](const PyImageEmbedder& self) { return self.embedder->description(); })
      .def_property_readonly("path", [](const PyImageEmbedder& self) { return self.embedder->model().path(); })
      .def_property_readonly("placement", [](const PyImageEmbedder& self) { return self.embedder->model().placement().str(); })
      .def_property_readonly("default_pooling", [](const PyImageEmbedder& self) {
        return std::string(pooling_name(self.embedder->model().default_image_pooling()));
      })
      .def_property_readonly("logit_scale", [](const PyImageEmbedder& self) { return self.embedder->logit_scale(); });

  m.def("similarity", [](const py::handle& rows, const py::handle& cols, const std::string& score,
                         const std::string& softmax, std::optional<float> logit_scale) {
    const Tensor a = matrix_from_numpy(rows, "a"), b = matrix_from_numpy(cols, "b");
    const Score s = score_from_name(score);
    const SoftmaxDim dim = softmax_dim_from_name(softmax);
    Tensor matrix;
    {
      py::gil_scoped_release nogil;
      matrix = similarity_matrix(a, b, s, logit_scale);
      softmax_(matrix, dim);
    }
    return to_numpy(matrix);
  }, py::arg("a"), py::arg("b"), py::arg("score"), py::arg("softmax"), py::arg("logit_scale"));

  // Probabilities [images, labels] in the labels' order: softmax over the labels of logits_per_image.
  m.def("zero_shot", [](const py::sequence& images, const std::vector<std::string>& labels, const std::string& model,
                        const std::string& template_, const std::string& device, const std::optional<std::string>& dtype) {
    std::vector<Image> decoded = images_from_objects(images);
    std::vector<std::vector<Prediction>> predictions;
    {
      py::gil_scoped_release nogil;
      const auto loaded = Model::load(model, placement_from(device, dtype));
      predictions = zero_shot_classify(loaded, decoded, labels, template_, int64_t(labels.size()));
    }
    Tensor probs = Tensor::zeros({int64_t(decoded.size()), int64_t(labels.size())});
    for (size_t i = 0; i < predictions.size(); ++i)
      for (const Prediction& p : predictions[i]) probs.data<float>()[int64_t(i) * probs.dim(1) + p.id] = p.probability;
    return to_numpy(probs);
  }, py::arg("images"), py::arg("labels"), py::arg("model"), py::arg("template"), py::arg("device"), py::arg("dtype"));

  m.def("lab", [](const py::sequence& images, const std::vector<std::string>& image_labels,
                  const std::vector<std::string>& captions, const std::vector<std::string>& dialogue,
                  const std::string& text_model, const std::string& image_model, const std::string& clip_model,
                  const std::string& pooling, const std::string& device, const std::optional<std::string>& dtype,
                  const std::optional<std::string>& bert_vit_figure, const std::optional<std::string>& clip_figure,
                  double dpi, const py::object& progress) {
    LabInputs in;
    in.images = images_from_objects(images);
    in.image_labels = image_labels;
    in.captions = captions;
    in.dialogue = dialogue;
    in.text_model = text_model;
    in.image_model = image_model;
    in.clip_model = clip_model;
    in.text_pooling = pooling_from_name(pooling);
    in.placement = placement_from(device, dtype);
    // LabProgress is a plain function pointer: the callable (borrowed; alive for this call) by thread.
    static thread_local PyObject* step_callback = nullptr;
    step_callback = progress.ptr();
    LabProgress report = progress.is_none() ? nullptr : +[](const std::string& step) {
      py::gil_scoped_acquire gil;
      const py::handle callback(step_callback);
      callback(step);
    };
    LabResult r;
    {
      py::gil_scoped_release nogil;
      r = run_lab(in, report);
      if (bert_vit_figure) plot::save_scene(plot::layout_figure(lab_bert_vit_figure(in, r, dpi)), *bert_vit_figure);
      if (clip_figure) plot::save_scene(plot::layout_figure(lab_clip_figure(in, r, dpi)), *clip_figure);
    }
    py::dict d;
    d["image_image"] = to_numpy(r.image_image);
    d["captions_image"] = to_numpy(r.captions_image);
    d["dialogue_captions"] = to_numpy(r.dialogue_captions);
    d["dialogue_image"] = to_numpy(r.dialogue_image);
    d["clip_captions_image"] = to_numpy(r.clip_captions_image);
    d["clip_dialogue_image"] = to_numpy(r.clip_dialogue_image);
    return d;
  });
  m.def("lab_default_captions", &lab_default_captions);
  m.def("lab_default_dialogue", &lab_default_dialogue);

  py::class_<PySDXLPipeline>(m, "SDXLPipeline")
      .def(py::init([](const std::string& folder, const std::string& variant, const std::string& device,
                       const std::optional<std::string>& dtype) {
             py::gil_scoped_release nogil;
             auto p = std::make_unique<PySDXLPipeline>();
             p->folder = folder;
             p->variant = variant;
             p->pipeline = SDXLPipeline::load(folder, variant, placement_from(device, dtype));
             p->turbo = SDXLPipeline::is_turbo(folder, variant);
             return p;
           }),
           py::arg("model"), py::arg("variant"), py::arg("device"), py::arg("dtype"))
      .def("generate", &PySDXLPipeline::generate)
      .def_property_readonly("default_size", [](const PySDXLPipeline& self) { return self.pipeline->default_size(); })
      .def_readonly("is_turbo", &PySDXLPipeline::turbo);

  py::class_<PyIndex>(m, "Index")
      .def(py::init([](const std::string& db, const std::string& model, const std::string& device,
                       const std::optional<std::string>& dtype) {
             placement_from(device, dtype);
             return PyIndex{db, model, device, dtype, nullptr};
           }),
           py::arg("db"), py::arg("model"), py::arg("device"), py::arg("dtype"))
      .def("add", &PyIndex::add, py::arg("folders"), py::arg("batch_size"), py::arg("include_hidden"), py::arg("progress"))
      .def("search", &PyIndex::search, py::arg("terms"), py::arg("top_k"), py::arg("threshold"))
      .def("__len__", [](PyIndex& self) {
        py::gil_scoped_release nogil;
        if (!self.collection) self.collection = Collection::open(self.db, self.model, placement_from(self.device, self.dtype));
        return self.collection->size();
      });
}
