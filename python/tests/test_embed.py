"""mmx's Python module against the CLI (bit for bit, same batches) and the transformers / sentence-transformers
fixtures (tests/README.md's bounds)."""
import json
import os
import pathlib
import unittest

import numpy as np

import mmx
from common import F32_BOUND, LAB_TEXTS, PHOTOS, expected, max_abs, model, run_mmx, tempdir


def cli_embed(test, *args):
    out = os.path.join(tempdir(test), "out.npz")
    run_mmx("embed", *args, "--output", out)
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


def text_args(texts):
    return [a for t in texts for a in ("--text", t)]


def image_args(paths):
    return [a for p in paths for a in ("--image", p)]


class TextEmbedderTest(unittest.TestCase):
    def test_bert_equals_the_cli_bit_for_bit_and_transformers(self):
        bert = mmx.TextEmbedder(model("bert-tiny"))
        for pooling, key in (("lab", "seed_avg_embeds"), ("mean-no-cls", "masked_mean_no_cls"), ("cls", "cls")):
            got = bert.encode(LAB_TEXTS, pooling=pooling)
            self.assertEqual(got.shape, (8, 32))
            self.assertEqual(got.dtype, np.float32)
            cli = cli_embed(self, "--model", model("bert-tiny"), *text_args(LAB_TEXTS), "--pooling", pooling,
                            "--batch-size", "32")["embeddings"]
            np.testing.assert_array_equal(got, cli, err_msg=pooling)
            self.assertLessEqual(max_abs(got, expected("bert-tiny.safetensors")[key]), F32_BOUND, pooling)
        # Passes of 3 texts (batch_size) are the CLI's --batch-size 3.
        got = bert.encode(LAB_TEXTS, batch_size=3, normalize=True)
        cli = cli_embed(self, "--model", model("bert-tiny"), *text_args(LAB_TEXTS), "--batch-size", "3",
                        "--normalize")["embeddings"]
        np.testing.assert_array_equal(got, cli)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)

    def test_bf16_and_int8_equal_the_cli_at_the_same_dtype(self):
        # The CPU's bf16 / int8 units (README "--dtype"): the same numbers as `mmx embed --dtype`.
        for dtype in ("bf16", "int8"):
            got = mmx.TextEmbedder(model("bert-tiny"), dtype=dtype).encode(LAB_TEXTS, pooling="lab")
            cli = cli_embed(self, "--model", model("bert-tiny"), *text_args(LAB_TEXTS), "--pooling", "lab",
                            "--batch-size", "32", "--dtype", dtype)["embeddings"]
            np.testing.assert_array_equal(got, cli, err_msg=dtype)

    def test_one_text_gives_one_vector_and_token_embeddings_are_trimmed(self):
        bert = mmx.TextEmbedder(model("bert-tiny"))
        one = bert.encode("rock statue")
        self.assertEqual(one.shape, (32,))
        np.testing.assert_array_equal(one, bert.encode(["rock statue"])[0])
        tokens = bert.encode(LAB_TEXTS, output_value="token_embeddings")
        ref = expected("bert-tiny.safetensors")
        for i, t in enumerate(tokens):
            n = int(ref["attention_mask"][i].sum())
            self.assertEqual(t.shape, (n, 32))
            self.assertLessEqual(max_abs(t, ref["last_hidden_state"][i, :n]), F32_BOUND)

    def test_tokenize_is_the_tokenizers_padded_batch(self):
        ids = mmx.TextEmbedder(model("bert-tiny")).tokenize(LAB_TEXTS)
        ref = expected("bert-tiny.safetensors")
        self.assertEqual(sorted(ids), ["attention_mask", "input_ids", "token_type_ids"])
        for k in ids:
            self.assertEqual(ids[k].dtype, np.int64)
            np.testing.assert_array_equal(ids[k], ref[k], err_msg=k)
        clip = mmx.TextEmbedder(model("clip-tiny")).tokenize(LAB_TEXTS)
        self.assertEqual(sorted(clip), ["attention_mask", "input_ids"])  # CLIP takes no token types
        np.testing.assert_array_equal(clip["input_ids"], expected("clip-tiny.safetensors")["input_ids"])

    def test_sentence_transformers_calls_give_its_numbers(self):
        st = mmx.TextEmbedder(model("st-bert-tiny"))
        ref = expected("st-bert-tiny.safetensors")
        # SentenceTransformer(folder).encode(texts): its modules (mean pooling, Normalize), no flags.
        self.assertLessEqual(max_abs(st.encode(LAB_TEXTS), ref["st_bert_tiny"]), F32_BOUND)
        dense = mmx.TextEmbedder(model("st-bert-tiny-dense"))
        self.assertLessEqual(max_abs(dense.encode(LAB_TEXTS, batch_size=2), ref["st_bert_tiny_dense"]), F32_BOUND)
        # encode(prompt_name="query") is the texts with the folder's query prompt in front.
        np.testing.assert_array_equal(st.encode(LAB_TEXTS, prompt_name="query"),
                                      st.encode(["query: " + t for t in LAB_TEXTS]))
        self.assertEqual(st.max_seq_length, 128)
        self.assertEqual(st.get_sentence_embedding_dimension(), 32)
        # model.similarity: the folder's cosine.
        e = st.encode(LAB_TEXTS[:3])
        np.testing.assert_allclose(st.similarity(e, e), e @ e.T, atol=1e-6)

    def test_results_are_numpy_views_of_the_engines_memory(self):
        e = mmx.TextEmbedder(model("bert-tiny")).encode(LAB_TEXTS)
        self.assertFalse(e.flags["OWNDATA"])  # the array wraps the engine's tensor: no copy was made
        self.assertTrue(e.flags["C_CONTIGUOUS"])
        e[0, 0] = 7  # and it is the caller's to change
        self.assertEqual(e[0, 0], 7)


class ImageEmbedderTest(unittest.TestCase):
    def test_vit_equals_the_cli_bit_for_bit_and_transformers(self):
        vit = mmx.ImageEmbedder(model("vit-tiny"))
        got = vit.encode(PHOTOS)
        cli = cli_embed(self, "--model", model("vit-tiny"), *image_args(PHOTOS), "--batch-size", "32")["embeddings"]
        np.testing.assert_array_equal(got, cli)
        self.assertLessEqual(max_abs(got, expected("vit-tiny.safetensors")["image_avg_embeds"]), F32_BOUND)

    def test_paths_arrays_bytes_and_pil_images_are_the_same_images(self):
        vit = mmx.ImageEmbedder(model("vit-tiny"))
        by_path = vit.encode(PHOTOS)
        arrays = [mmx.load_image(p) for p in PHOTOS]
        self.assertEqual(arrays[1].shape[2], 3)
        self.assertEqual(arrays[1].dtype, np.uint8)
        np.testing.assert_array_equal(vit.encode(arrays), by_path)
        np.testing.assert_array_equal(vit.encode([pathlib.Path(p).read_bytes() for p in PHOTOS]), by_path)
        np.testing.assert_array_equal(vit.encode(np.stack([arrays[1], arrays[1]])), by_path[[1, 1]])
        np.testing.assert_array_equal(vit.encode(PHOTOS[2]), by_path[2])
        # Grey (H, W) and RGBA (H, W, 4) arrays: replicated, alpha dropped, as Pillow's convert("RGB").
        grey = arrays[0][:, :, 1]
        np.testing.assert_array_equal(vit.encode(grey), vit.encode(np.repeat(grey[:, :, None], 3, axis=2)))
        rgba = np.concatenate([arrays[0], np.full(grey.shape + (1,), 9, np.uint8)], axis=2)
        np.testing.assert_array_equal(vit.encode(rgba), by_path[0])
        try:
            from PIL import Image
        except ImportError:
            self.skipTest("no Pillow: PIL images not tried")
        np.testing.assert_array_equal(vit.encode([Image.open(p) for p in PHOTOS]), by_path)


class ClipTest(unittest.TestCase):
    def test_features_and_logits_as_transformers_names_them(self):
        clip = mmx.CLIP(model("clip-tiny"))
        ref = expected("clip-tiny.safetensors")
        text, image = clip.get_text_features(LAB_TEXTS), clip.get_image_features(PHOTOS)
        self.assertLessEqual(max_abs(text, ref["text_embeds"]), F32_BOUND)
        self.assertLessEqual(max_abs(image, ref["image_embeds"]), F32_BOUND)
        cli = cli_embed(self, "--model", model("clip-tiny"), *text_args(LAB_TEXTS), *image_args(PHOTOS), "--batch-size", "32")
        np.testing.assert_array_equal(text, cli["text_embeddings"])
        np.testing.assert_array_equal(image, cli["image_embeddings"])
        out = clip(LAB_TEXTS, PHOTOS)
        self.assertLessEqual(max_abs(out["logits_per_image"], ref["logits_per_image"]), F32_BOUND)
        np.testing.assert_array_equal(out["logits_per_text"], out["logits_per_image"].T)
        self.assertAlmostEqual(clip.logit_scale, 2.6592, places=4)

    def test_zero_shot_is_the_model_cards_softmax_and_the_clis(self):
        labels = ["astronaut", "cat", "coffee", "rocket"]
        clip = mmx.CLIP(model("clip-tiny"))
        probs = mmx.zero_shot(PHOTOS, labels, clip)
        self.assertEqual(probs.shape, (4, 4))
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
        # The model card: logits_per_image.softmax(dim=1) over the prompts "a photo of a {label}.".
        logits = clip([f"a photo of a {l}." for l in labels], PHOTOS)["logits_per_image"].astype(np.float64)
        card = np.exp(logits - logits.max(axis=1, keepdims=True))
        card /= card.sum(axis=1, keepdims=True)
        self.assertLessEqual(max_abs(probs, card), 1e-6)
        np.testing.assert_array_equal(mmx.zero_shot(PHOTOS, labels, model("clip-tiny")), probs)
        printed = json.loads(run_mmx("classify", "--model", model("clip-tiny"), *image_args(PHOTOS),
                                     "--labels", ",".join(labels), "--top-k", "4", "--json"))
        for i, row in enumerate(printed):
            for p in row["predictions"]:
                self.assertEqual(probs[i, labels.index(p["label"])], np.float32(p["probability"]))  # printed exactly
        self.assertEqual(mmx.zero_shot(PHOTOS[1], labels, clip).shape, (4,))


class SimilarityTest(unittest.TestCase):
    def test_the_labs_matrix(self):
        rng = np.random.default_rng(5)
        a, b = rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal((3, 8)).astype(np.float32)
        got = mmx.similarity(a, b)  # (a @ b.T).softmax(dim=0)
        ref = a.astype(np.float64) @ b.T.astype(np.float64)
        ref = np.exp(ref - ref.max(axis=0))
        ref /= ref.sum(axis=0)
        self.assertLessEqual(max_abs(got, ref), 1e-6)
        np.testing.assert_allclose(got.sum(axis=0), 1, atol=1e-6)
        self.assertLessEqual(max_abs(mmx.similarity(a, b, softmax=None), a.astype(np.float64) @ b.T), 1e-5)
        cos = mmx.similarity(a, b, score="cosine", softmax="dim1")
        np.testing.assert_allclose(cos.sum(axis=1), 1, atol=1e-6)
        # Any array-like of numbers; float64 and lists are converted.
        np.testing.assert_array_equal(mmx.similarity(a.astype(np.float64), b.tolist()), got)


if __name__ == "__main__":
    unittest.main()
