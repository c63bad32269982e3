// mmx lab and mmx similarity --plot end to end on the fixture models: every matrix of matrices.json
// against the fixtures, both figures written and decodable, the diagonal lines, and bad input.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/run_mmx.hpp"
#include "mmx/image.hpp"
#include "test_util.hpp"

using namespace mmx;
using nlohmann::json;
using test::Result;
using test::run;

namespace {

const char* const kImages[] = {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"};

std::vector<std::string> lab_args(const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {"lab",
                                "--text-model", test::data("models/bert-tiny"),
                                "--image-model", test::data("models/vit-tiny"),
                                "--clip-model", test::data("models/clip-tiny"),
                                "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  if (std::find(extra.begin(), extra.end(), "--caption") == extra.end() &&
      std::find(extra.begin(), extra.end(), "--captions-file") == extra.end())
    a.push_back("--lab-texts");  // the fixtures' texts
  return a;
}

std::vector<std::string> lab_images() {
  std::vector<std::string> a;
  for (const char* f : kImages) {
    a.push_back("--image");
    a.push_back(test::data(std::string("images/") + f));
  }
  return a;
}

Tensor matrix_of(const json& rows) {
  Tensor t = Tensor::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) t.data<float>()[i * rows[i].size() + j] = rows[i][j].get<float>();
  return t;
}

// Caption i's best image in a captions × images matrix (the highest entry of row i).
std::string diagonal_summary(const Tensor& m) {
  int matched = 0;
  for (int64_t i = 0; i < m.dim(0); ++i) {
    const float* row = m.data<float>() + i * m.dim(1);
    matched += std::max_element(row, row + m.dim(1)) - row == i;
  }
  return std::to_string(matched) + " of 4 captions rank their own image first";
}

size_t files_in(const std::string& dir) {
  return std::filesystem::exists(dir) ? static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {})) : 0;
}

}  // namespace

TEST(CliLab, OneCommandReproducesEveryMatrixAndDrawsBothFigures) {
  test::TempDir dir;
  const std::string out = dir.file("lab");  // created by the command
  std::vector<std::string> args = lab_args(out);
  const auto images = lab_images();
  args.insert(args.end(), images.begin(), images.end());
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json m = json::parse(read_file(out + "/matrices.json"));
  const auto part3 = SafetensorsFile::open(test::data("expected/seed-part3.safetensors"));
  const auto clip = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  for (const char* key : {"image_image", "captions_image", "dialogue_captions", "dialogue_image"})
    test::expect_close(std::string("lab ") + key, matrix_of(m[key]), part3.get(key), 1e-5);
  test::expect_close("lab clip_captions_image", matrix_of(m["clip_captions_image"]), clip.get("seed_captions_image"), 1e-5);
  test::expect_close("lab clip_dialogue_image", matrix_of(m["clip_dialogue_image"]), clip.get("seed_dialogue_image"), 1e-5);
  EXPECT_EQ(m["captions"], json({"Cat with paint", "rock statue", "frogs on leaf", "jellyfish"}));
  EXPECT_EQ(m["dialogue"].size(), 4u);

  const Image bert_vit = load_image(out + "/lab_bert_vit.png"), clip_png = load_image(out + "/lab_clip.png");
  EXPECT_EQ(bert_vit.width, 1200);
  EXPECT_EQ(bert_vit.height, 1200);
  EXPECT_EQ(clip_png.width, 1200);  // the lab's figsize=(12, 6) at 100 dpi
  EXPECT_EQ(clip_png.height, 600);
  EXPECT_EQ(files_in(out), 3u);

  // One line per figure, with the count read off the fixture matrices.
  const std::string bert_line = "BERT × ViT (" + out + "/lab_bert_vit.png): " +
                                diagonal_summary(part3.get("captions_image"));
  const std::string clip_line = "CLIP (" + out + "/lab_clip.png): " + diagonal_summary(clip.get("seed_captions_image"));
  EXPECT_NE(r.out.find(bert_line), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(clip_line), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Cat with paint → "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("8 texts in one batch"), std::string::npos) << r.err;
}

TEST(CliLab, OwnTextsSvgAndTheMaskedMeanPooling) {
  test::TempDir dir;
  std::vector<std::string> args =
      lab_args(dir.path.string(), {"--caption", "a cat", "--caption", "a rocket", "--dialogue", "it's lovely",
                                   "--pooling-text", "mean-no-cls", "--format", "svg", "--image",
                                   test::data("images/chelsea.png"), "--image", test::data("images/rocket.jpg")});
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json m = json::parse(read_file(dir.file("matrices.json")));
  EXPECT_EQ(m["captions_image"].size(), 2u);
  EXPECT_EQ(m["dialogue_captions"].size(), 1u);
  EXPECT_EQ(m["dialogue_captions"][0].size(), 2u);
  EXPECT_EQ(m["text_pooling"], "mean-no-cls");
  const json& image_image = m["image_image"];  // softmax over dim 0: every column sums to 1
  for (size_t j = 0; j < 2; ++j)
    EXPECT_NEAR(image_image[0][j].get<double>() + image_image[1][j].get<double>(), 1.0, 1e-6);
  const std::string svg = read_file(dir.file("lab_clip.svg"));
  EXPECT_NE(svg.find(">a rocket</text>"), std::string::npos);
  EXPECT_NE(svg.find(">it&apos;s lovely</text>"), std::string::npos);
  EXPECT_NE(svg.find(">chelsea</text>"), std::string::npos);
}

TEST(CliLab, BadInputIsAClearErrorWithNothingWritten) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const std::string image = test::data("images/chelsea.png");
  struct Case {
    std::vector<std::string> extra;
    int code;
    std::string message;
  };
  const std::string empty_file = dir.file("empty.txt");
  write_file_atomically(empty_file, "\n\n");
  const Case cases[] = {
      {{"--image", image}, 2, "at least two"},
      {{}, 2, "no images"},
      {{"--image", image, "--image", image, "--captions-file", empty_file}, 2, "no caption texts"},
      {{"--image", image, "--image", image, "--format", "bmp"}, 2, "choose png, svg or pdf"},
      {{"--image", image, "--image", image, "--pooling-text", "cls"}, 2, "--pooling-text 'cls'"},
      {{"--image", image, "--image", test::data("images/truncated.jpg")}, 1, "truncated.jpg"},
  };
  for (const auto& c : cases) {
    const Result r = run(lab_args(out, c.extra));
    EXPECT_EQ(r.code, c.code) << c.message << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.message << ": the output folder was created";
  }
  // An output folder that cannot be created (a file where a parent should be), and a model folder that is not one.
  write_file_atomically(dir.file("a-file"), "x");
  Result r = run(lab_args(dir.file("a-file/sub/dir"), {"--image", image, "--image", image}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot create the folder: '" + dir.file("a-file") + "' is a file"), std::string::npos) << r.err;
  r = run(lab_args(dir.file("a-file"), {"--image", image, "--image", image}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a file, not a folder"), std::string::npos) << r.err;
  std::vector<std::string> args = {"lab", "--out", out, "--image", image, "--image", image};
  // The default models are Hub ids; with an empty Hugging Face cache and offline they are not found.
  {
    test::EnvVar cache("HF_HUB_CACHE", dir.file("empty-cache")), offline("HF_HUB_OFFLINE", "1");
    r = run(args);
  }
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bert-base-uncased: neither a folder nor a model in the Hugging Face cache"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

// --out is "created if missing", with its missing parents (as mkdir -p), once the work is done.
TEST(CliLab, OutputFolderIsCreatedWithItsParents) {
  test::TempDir dir;
  const std::string out = dir.file("new/nested/out");
  const std::string image = test::data("images/chelsea.png");
  const Result r = run(lab_args(out, {"--image", image, "--image", test::data("images/rocket.jpg")}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out + "/matrices.json"));
}

TEST(CliLab, SimilarityPlotLabelsRowsAndColumnsWithTheirOwnSets) {
  test::TempDir dir;
  std::vector<std::string> args = {"similarity", "--model", test::data("models/clip-tiny"), "--text", "Cat with paint",
                                   "--text", "jellyfish", "--plot", dir.file("m.svg"), "--title", "My <matrix>"};
  const auto images = lab_images();
  args.insert(args.end(), images.begin(), images.end());
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string svg = read_file(dir.file("m.svg"));
  EXPECT_NE(svg.find(">My &lt;matrix&gt;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Text</text>"), std::string::npos);  // the rows' axis
  EXPECT_NE(svg.find(">Image</text>"), std::string::npos);
  for (const char* label : {"Cat with paint", "jellyfish", "astronaut", "rocket"})
    EXPECT_NE(svg.find(std::string(">") + label + "</text>"), std::string::npos) << label;
  // A wrong extension or size is refused before any work, and nothing is written.
  args[8] = dir.file("m.bmp");
  Result bad = run(args);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find(".png, .svg or .pdf"), std::string::npos) << bad.err;
  args[8] = dir.file("m.png");
  args.push_back("--plot-size");
  args.push_back("12");
  bad = run(args);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("WIDTHxHEIGHT"), std::string::npos) << bad.err;
  EXPECT_EQ(files_in(dir.path.string()), 1u);  // only m.svg
}

// A model that cannot play its part is named before any work, with its option; a CLIP half that fails
// after the BERT × ViT half keeps what the first half wrote, and says so.
TEST(CliLab, ModelsAreCheckedFirstAndTheFirstHalfIsKept) {
  test::TempDir dir;
  std::vector<std::string> args = {"lab", "--text-model", test::data("models/bert-tiny"), "--image-model",
                                   test::data("models/vit-tiny"), "--clip-model", test::data("models/bert-tiny"),
                                   "--out", dir.file("a")};
  const auto images = lab_images();
  args.insert(args.end(), images.begin(), images.end());
  Result r = run(args);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--clip-model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a BERT model does not embed texts and images in one space"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("loading"), std::string::npos) << r.err;  // nothing was loaded
  EXPECT_EQ(files_in(dir.file("a")), 0u);
  // A CLIP folder whose weights are cut short: its config passes, its load fails in the second half.
  const std::string broken = dir.file("clip-broken");
  std::filesystem::copy(test::data("models/clip-tiny"), broken, std::filesystem::copy_options::recursive);
  std::filesystem::resize_file(broken + "/model.safetensors", 1000);
  args[6] = broken;
  args[8] = dir.file("b");
  r = run(args);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("kept " + dir.file("b") + "/lab_bert_vit.png"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("b") + "/lab_bert_vit.png"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("b") + "/matrices.json"));
  EXPECT_FALSE(std::filesystem::exists(dir.file("b") + "/lab_clip.png"));
  EXPECT_NE(r.out.find("BERT × ViT ("), std::string::npos) << r.out;  // its line was printed
}

// --cmap, --fmt, --vmin/--vmax and axis names reach the figure; a bad one is refused before any work;
// a command with two outputs writes both or neither.
TEST(CliLab, SimilarityPlotStyleAndBothOutputsOrNeither) {
  test::TempDir dir;
  std::vector<std::string> args = {"similarity", "--model", test::data("models/clip-tiny"), "--text", "a cat",
                                   "--image", test::data("images/chelsea.png"), "--plot", dir.file("m.svg"),
                                   "--cmap", "gray", "--fmt", ".4f", "--vmin", "-1", "--vmax", "1",
                                   "--xlabel", "Photos", "--ylabel", "Captions", "--json"};
  Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const double value = json::parse(r.out)["matrix"][0][0].get<double>();
  char want[32];
  std::snprintf(want, sizeof want, ">%.4f</text>", value);
  const std::string svg = read_file(dir.file("m.svg"));
  EXPECT_NE(svg.find(want), std::string::npos) << want;
  EXPECT_NE(svg.find(">Photos</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Captions</text>"), std::string::npos);
  const int grey = std::min(255, static_cast<int>((value + 1) / 2 * 256));  // gray's entry floor(t·256), t on −1…1
  char fill[16];
  std::snprintf(fill, sizeof fill, "#%02x%02x%02x", grey, grey, grey);
  EXPECT_NE(svg.find(fill), std::string::npos) << fill;
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--cmap", "viridis"}, {"--fmt", "%.2f"},
                                              {"--vmin", "2", "--vmax", "1"}}) {
    std::vector<std::string> a = {"similarity", "--model", test::data("models/clip-tiny"), "--text", "a cat",
                                  "--plot", dir.file("bad.png")};
    a.insert(a.end(), bad.begin(), bad.end());
    r = run(a);
    EXPECT_EQ(r.code, 2) << bad[0] << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
  }
  // The figure cannot be written (/proc takes no new files): the matrix file is not left behind either.
  r = run({"similarity", "--model", test::data("models/clip-tiny"), "--text", "a cat", "--output",
           dir.file("m.safetensors"), "--plot", "/proc/mmx-cannot-write.png"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.safetensors")));
  EXPECT_EQ(files_in(dir.path.string()), 1u);  // m.svg only: no temporary left
}
