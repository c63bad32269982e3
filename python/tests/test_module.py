"""The rest of the module: errors, threads (the GIL released), SDXL, the lab and collections, each against
what the CLI makes of the same inputs."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

import numpy as np

import mmx
from common import DATA, LAB_TEXTS, PHOTOS, SOURCE, model, read_safetensors, run_mmx, tempdir


class ErrorTest(unittest.TestCase):
    def test_errors_are_exceptions_with_the_engines_message_and_hint(self):
        with self.assertRaises(mmx.RuntimeError) as e:
            mmx.TextEmbedder(os.path.join(DATA, "images"))  # a folder with no config.json
        self.assertIn("no config.json", str(e.exception))
        self.assertIn("save_pretrained", e.exception.hint)
        self.assertIsInstance(e.exception, mmx.Error)
        self.assertIsInstance(e.exception, RuntimeError)  # the builtin too: `except RuntimeError` catches it
        bert = mmx.TextEmbedder(model("bert-tiny"))
        with self.assertRaises(mmx.UsageError) as e:
            bert.encode([])
        self.assertEqual(str(e.exception), "no texts to embed")
        self.assertIsInstance(e.exception, ValueError)
        with self.assertRaisesRegex(mmx.UsageError, "pooling 'sideways'"):
            bert.encode(["a"], pooling="sideways")
        with self.assertRaisesRegex(TypeError, r"texts\[1\] is bytes, not str"):
            bert.encode(["a", b"b"])
        with self.assertRaisesRegex(mmx.UsageError, "embeds texts, not images"):
            mmx.ImageEmbedder(model("bert-tiny"))
        with self.assertRaisesRegex(mmx.UsageError, "does not put texts and images in one space"):
            mmx.CLIP(model("bert-tiny"))
        vit = mmx.ImageEmbedder(model("vit-tiny"))
        with self.assertRaisesRegex(mmx.RuntimeError, "truncated"):
            vit.encode([PHOTOS[0], os.path.join(DATA, "images", "truncated.jpg")])
        with self.assertRaisesRegex(mmx.UsageError, "image 1: an image array holds uint8"):
            vit.encode(np.zeros((8, 8, 3), np.float32))
        with self.assertRaisesRegex(mmx.UsageError, r"got shape \[8, 8, 2\]"):
            vit.encode(np.zeros((8, 8, 2), np.uint8))
        with self.assertRaisesRegex(TypeError, "image 1: expected a path"):
            vit.encode([3.5])
        with self.assertRaisesRegex(mmx.UsageError, "a: expected a 2-D array"):
            mmx.similarity(np.zeros(3), np.zeros((2, 3)))
        with self.assertRaisesRegex(mmx.UsageError, "dimension"):
            mmx.similarity(np.zeros((2, 3)), np.zeros((2, 4)))
        # The interpreter is fine afterwards.
        self.assertEqual(bert.encode(["a"]).shape, (1, 32))

    def test_an_exception_in_a_progress_callback_stops_the_work_and_comes_back(self):
        bert = mmx.TextEmbedder(model("bert-tiny"))
        calls = []

        def progress(done, total):
            calls.append(done)
            raise KeyError("stop here")
        pipe = mmx.SDXLPipeline(model("sdxl-tiny"))
        with self.assertRaises(KeyError):
            pipe("a red fox", steps=5, seed=1, callback=lambda step, steps, s: progress(step, steps))
        self.assertEqual(calls, [1])
        self.assertEqual(bert.encode(["still", "works"]).shape, (2, 32))


class ThreadTest(unittest.TestCase):
    def test_the_gil_is_released_while_the_engine_works(self):
        bert = mmx.TextEmbedder(model("bert-tiny"))
        texts = [f"text number {i} " * 20 for i in range(4000)]
        ticks, done = [0], threading.Event()

        def count():
            while not done.is_set():
                ticks[0] += 1
        counter = threading.Thread(target=count)
        counter.start()
        start = time.perf_counter()
        bert.encode(texts, batch_size=64)
        seconds = time.perf_counter() - start
        done.set()
        counter.join()
        # A call that kept the GIL would stop the counter for all of `seconds` (C++ never hands the GIL over
        # by itself); released, the counter runs alone on it: millions of increments per second here.
        self.assertGreater(ticks[0], 200 * seconds * 1000, f"{ticks[0]} ticks in {seconds:.3f} s")

    def test_threads_sharing_one_model_get_the_sequential_results(self):
        bert = mmx.TextEmbedder(model("bert-tiny"))
        batches = [[f"{t} {i}" for t in LAB_TEXTS] for i in range(8)]
        sequential = [bert.encode(b) for b in batches]
        results = [None] * 8

        def work(i):
            for _ in range(5):
                results[i] = bert.encode(batches[i])
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got, want in zip(results, sequential):
            np.testing.assert_array_equal(got, want)


class SDXLTest(unittest.TestCase):
    def test_latents_and_image_equal_the_clis(self):
        d = tempdir(self)
        png, latents = os.path.join(d, "fox.png"), os.path.join(d, "fox.safetensors")
        run_mmx("generate", "--model", model("sdxl-tiny"), "--prompt", "a red fox", "--negative-prompt", "fog",
                "--steps", "3", "--seed", "7", "--scheduler", "DPM++ 2M", "--output", png, "--save-latents", latents)
        pipe = mmx.SDXLPipeline(model("sdxl-tiny"))
        steps = []
        image = pipe("a red fox", "fog", steps=3, seed=7, scheduler="DPM++ 2M",
                     callback=lambda step, total, seconds: steps.append((step, total)))
        self.assertEqual(steps, [(1, 3), (2, 3), (3, 3)])
        self.assertEqual(image.dtype, np.uint8)
        self.assertEqual(image.shape, (64, 64, 3))
        np.testing.assert_array_equal(image, mmx.load_image(png))
        got = pipe("a red fox", "fog", steps=3, seed=7, scheduler="DPM++ 2M", output_type="latent")
        np.testing.assert_array_equal(got, read_safetensors(latents)["step_latents"][-1])
        self.assertEqual(pipe.last_seed, 7)
        try:
            import PIL  # noqa: F401
        except ImportError:
            return
        pil = pipe("a red fox", "fog", steps=3, seed=7, scheduler="DPM++ 2M", output_type="pil")
        np.testing.assert_array_equal(np.asarray(pil), image)

    def test_loras_as_cli_strings_or_pairs(self):
        pipe = mmx.SDXLPipeline(model("sdxl-tiny"))
        lora = os.path.join(DATA, "lora", "sdxl-tiny-kohya-sgm.safetensors")
        base = pipe("a castle", steps=2, seed=4)
        as_string = pipe("a castle", steps=2, seed=4, loras=[f"{lora}:0.7"])
        np.testing.assert_array_equal(pipe("a castle", steps=2, seed=4, loras=[(lora, 0.7)]), as_string)
        self.assertFalse(np.array_equal(as_string, base))
        d = tempdir(self)
        out = os.path.join(d, "castle.png")
        run_mmx("generate", "--model", model("sdxl-tiny"), "--prompt", "a castle", "--steps", "2", "--seed", "4",
                "--lora", f"{lora}:0.7", "--output", out)
        np.testing.assert_array_equal(as_string, mmx.load_image(out))
        with self.assertRaises(mmx.Error):
            pipe("a castle", steps=2, seed=4, loras=[os.path.join(d, "missing.safetensors")])

    def test_img2img_from_an_array(self):
        pipe = mmx.SDXLPipeline(model("sdxl-tiny"))
        start = mmx.load_image(os.path.join(DATA, "images", "inpaint_crop_image.png"))
        d = tempdir(self)
        png = os.path.join(d, "start.png")
        with open(png, "wb") as f:
            f.write(mmx._native.encode_png(start, []))
        out = os.path.join(d, "out.png")
        run_mmx("generate", "--model", model("sdxl-tiny"), "--prompt", "snow", "--image", png, "--strength", "0.5",
                "--steps", "4", "--seed", "2", "--output", out)
        np.testing.assert_array_equal(pipe("snow", image=start, strength=0.5, steps=4, seed=2), mmx.load_image(out))


class LabTest(unittest.TestCase):
    def test_matrices_and_figures_equal_mmx_labs(self):
        d = tempdir(self)
        models = dict(text_model=model("bert-tiny"), image_model=model("vit-tiny"), clip_model=model("clip-tiny"))
        steps = []
        got = mmx.lab(PHOTOS, out=os.path.join(d, "py"), progress=steps.append, **models)
        self.assertTrue(steps)
        run_mmx("lab", *[a for p in PHOTOS for a in ("--image", p)], "--text-model", models["text_model"],
                "--image-model", models["image_model"], "--clip-model", models["clip_model"], "--out", os.path.join(d, "cli"))
        with open(os.path.join(d, "cli", "matrices.json")) as f:
            cli = json.load(f)
        with open(os.path.join(d, "py", "matrices.json")) as f:
            written = json.load(f)
        for name in ("image_image", "captions_image", "dialogue_captions", "dialogue_image", "clip_captions_image",
                     "clip_dialogue_image"):
            np.testing.assert_array_equal(got[name], np.asarray(cli[name], np.float32), err_msg=name)
            np.testing.assert_array_equal(got[name], np.asarray(written[name], np.float32), err_msg=name)
            np.testing.assert_allclose(got[name].sum(axis=0), 1, atol=1e-5)  # softmax over dim 0
        self.assertEqual(written["images"], ["astronaut", "chelsea", "coffee", "rocket"])
        for figure in ("lab_bert_vit.png", "lab_clip.png"):
            with open(os.path.join(d, "py", figure), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertEqual(mmx.load_image(os.path.join(d, "py", figure)).shape,
                             mmx.load_image(os.path.join(d, "cli", figure)).shape)


class IndexTest(unittest.TestCase):
    def test_add_and_search_as_mmx_index_and_search(self):
        d = tempdir(self)
        photos = os.path.join(d, "photos")
        os.makedirs(photos)
        for p in PHOTOS:
            shutil.copy(p, photos)
        index = mmx.Index(os.path.join(d, "py.db"), model=model("clip-tiny"))
        summary = index.add(photos)
        self.assertEqual((summary["files"], summary["embedded"], summary["vectors"]), (4, 4, 4))
        self.assertEqual(index.add(photos)["unchanged"], 4)  # incremental: nothing read again
        self.assertEqual(len(index), 4)
        run_mmx("index", photos, "--model", model("clip-tiny"), "--db", os.path.join(d, "cli.db"))
        for query in ("a cat", "an astronaut in space"):
            hits = index.search(text=query, top_k=3)
            cli = json.loads(run_mmx("search", "--db", os.path.join(d, "cli.db"), query, "--top-k", "3", "--json"))
            self.assertEqual([h.path for h in hits], [c["path"] for c in cli])
            np.testing.assert_array_equal(np.float32([h.score for h in hits]), np.float32([c["score"] for c in cli]))
        # An image query finds itself first, by path or as an array.
        chelsea = os.path.join(photos, "chelsea.png")
        self.assertEqual(index.search(image=chelsea, top_k=1)[0].path, chelsea)
        self.assertEqual(index.search(image=mmx.load_image(chelsea), top_k=1)[0].path, chelsea)
        self.assertGreater(index.search(image=chelsea, top_k=1)[0].score, 0.999)
        with self.assertRaisesRegex(mmx.UsageError, "text=, image= or both"):
            index.search()


# The real models the README names, and the test models that stand in for them (as the C++ README test's Hub).
STAND_INS = {"openai/clip-vit-base-patch32": "tests/data/models/clip-tiny",
             "sentence-transformers/all-MiniLM-L6-v2": "tests/data/models/st-bert-tiny"}


class DocsTest(unittest.TestCase):
    def run_python_blocks(self, document, stand_ins=None):
        with open(os.path.join(SOURCE, document), encoding="utf-8") as f:
            blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)
        self.assertTrue(blocks, f"no python blocks in {document}")
        sandbox = tempdir(self)
        os.symlink(os.path.join(SOURCE, "tests"), os.path.join(sandbox, "tests"))
        for i, code in enumerate(blocks):
            for real, stand_in in (stand_ins or {}).items():
                code = code.replace(real, stand_in)
            script = os.path.join(sandbox, f"block{i}.py")
            with open(script, "w", encoding="utf-8") as f:
                f.write(code)
            r = subprocess.run([sys.executable, script], cwd=sandbox, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, f"{document}, python block {i + 1}:\n{code}\n{r.stderr}")
        return sandbox

    def test_the_readmes_python_example_runs(self):
        self.run_python_blocks("README.md", STAND_INS)

    def test_every_python_block_of_docs_python_md_runs_as_written(self):
        sandbox = self.run_python_blocks("docs/python.md")
        self.assertTrue(os.path.exists(os.path.join(sandbox, "lab-out", "lab_clip.png")))
        self.assertEqual(np.load(os.path.join(sandbox, "clip-vectors", "embeddings.npy")).shape[1], 16)


if __name__ == "__main__":
    unittest.main()
