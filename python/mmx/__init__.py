"""mmx in Python: Hugging Face text and image embeddings, CLIP, the lab's similarity study and SDXL
image generation, computed by mmx's C++ engine in this process (numpy arrays in and out).

    import mmx
    model = mmx.TextEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    embeddings = model.encode(["A cat on a mat", "A dog in the fog"])   # (2, 384) float32

Models are folders written by ``save_pretrained`` or Hub ids found in the Hugging Face cache. The GIL is
released while the engine works, so Python threads overlap; errors are ``mmx.Error`` with the engine's
message and hint (``mmx.UsageError`` for a call that cannot be done as asked, ``mmx.RuntimeError`` for
work that failed on its input).
"""
from __future__ import annotations

import json
import os
import secrets
import sys
from collections import namedtuple

import numpy as np

from ._errors import Error, RuntimeError, UsageError  # noqa: A004 (mmx.RuntimeError is an mmx.Error)
from . import _native

__version__ = "0.1.0"
__all__ = [
    "CLIP", "Error", "Hit", "ImageEmbedder", "Index", "SDXLPipeline", "TextEmbedder", "UsageError", "lab",
    "load_image", "num_threads", "set_num_threads", "similarity", "zero_shot",
]

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def set_num_threads(threads: int) -> None:
    """Threads the engine's kernels use in this process (0: every CPU this process may use)."""
    _native.set_num_threads(int(threads))


def num_threads() -> int:
    """Threads the engine's kernels use in this process."""
    return _native.num_threads()


def load_image(path) -> np.ndarray:
    """An image file decoded as Pillow's ``Image.open(path).convert("RGB")``: (height, width, 3) uint8."""
    return _native.load_image(os.fspath(path))


class _ProgressLine:
    """show_progress_bar=True: one line on stderr, rewritten in place."""

    def __init__(self, what):
        self.what = what
        self.shown = False

    def __call__(self, done, total):
        sys.stderr.write(f"\r{self.what}: {done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def close(self):
        if self.shown:
            sys.stderr.write("\n")


def _progress(show, what):
    return _ProgressLine(what) if show else None


def _texts(texts, name="texts"):
    """A list of str (and whether one str was given), with a TypeError naming a wrong element."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"{name}: bytes, not str (decode them first: .decode('utf-8'))")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name}: expected a str or a list of str, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] is {type(t).__name__}, not str")
    return texts, False


def _is_single_image(image):
    if isinstance(image, (str, bytes, os.PathLike)):
        return True
    if isinstance(image, np.ndarray):
        return image.ndim in (2, 3)
    return hasattr(image, "convert") and hasattr(image, "mode")  # a PIL image


def _images(images):
    """A list of images (and whether one was given): paths, encoded bytes, HWC uint8 arrays, PIL images."""
    if _is_single_image(images):
        return [images], True
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise UsageError(f"images: an array of images is (count, height, width, channels), got shape {images.shape}")
        return list(images), False
    try:
        return list(images), False
    except TypeError:
        raise TypeError(f"images: expected an image or a list of images, got {type(images).__name__}") from None


def _placement(device, dtype):
    return str(device), (None if dtype is None else str(dtype))


class TextEmbedder:
    """Text embeddings as Hugging Face computes them (BERT, RoBERTa, XLM-R, MPNet, DistilBERT, CLIP's text
    tower), and sentence-transformers folders as ``SentenceTransformer(model).encode`` does.

    ``model``: a folder written by save_pretrained (or a sentence-transformers folder) or a Hub id in the
    cache. ``device``: "cpu" or "cuda[:N]"; ``dtype``: None (f32), "f16", "bf16" or "int8"
    (the CPU's bf16 / int8 units, README "--dtype").
    """

    def __init__(self, model, device="cpu", dtype=None):
        self._native = _native.TextEmbedder(os.fspath(model), *_placement(device, dtype))
        self._dimension = None

    def encode(self, texts, batch_size=32, pooling=None, normalize=False, prompt_name=None, prompt=None,
               show_progress_bar=False, max_length=None, output_value="sentence_embedding",
               normalize_embeddings=None, convert_to_numpy=True):
        """Embeddings of ``texts``: (len(texts), dimension) float32, or (dimension,) for one str.

        As sentence-transformers' ``encode``: texts go through in passes of at most ``batch_size``,
        ``normalize`` (or ``normalize_embeddings``) L2-normalises, ``prompt_name`` / ``prompt`` prefix each
        text; ``output_value="token_embeddings"`` gives each text's token states (a list of arrays).
        ``pooling``: None (the model's: a sentence-transformers folder's modules, mean-no-cls for BERT,
        mean for RoBERTa and the others, projection for CLIP) or cls, pooler, mean, mean-no-cls, lab, max,
        mean-sqrt-len, weightedmean, lasttoken, projection, pooled.
        """
        batch, single = _texts(texts)
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        if output_value not in ("sentence_embedding", "token_embeddings"):
            raise UsageError(f"output_value {output_value!r}: choose 'sentence_embedding' or 'token_embeddings'")
        if not convert_to_numpy:
            raise UsageError("convert_to_numpy=False: mmx returns numpy arrays (torch.from_numpy shares them)")
        tokens = output_value == "token_embeddings"
        progress = _progress(show_progress_bar, "Batches")
        try:
            r = self._native.encode(batch, pooling, bool(normalize), int(batch_size), prompt, prompt_name,
                                    max_length, tokens, progress)
        finally:
            if progress:
                progress.close()
        if tokens:  # each text's real tokens, as sentence-transformers trims them
            out = [h[m.astype(bool)] for h, m in zip(r["token_embeddings"], r["attention_mask"])]
            return out[0] if single else out
        return r["embeddings"][0] if single else r["embeddings"]

    def tokenize(self, texts, max_length=None):
        """``tokenizer(texts, padding=True, truncation=True)`` as numpy arrays: input_ids, attention_mask
        (and token_type_ids where the model takes them), int64 (len(texts), longest)."""
        batch, _ = _texts(texts)
        return self._native.tokenize(batch, max_length)

    def similarity(self, a, b):
        """The model's own comparison of two embedding sets (a sentence-transformers folder's
        similarity_fn_name, cosine when it names none): (len(a), len(b)) float32."""
        score = self._native.default_score
        return similarity(np.atleast_2d(a), np.atleast_2d(b), score=score, softmax=None,
                          logit_scale=self._native.logit_scale)

    def get_sentence_embedding_dimension(self) -> int:
        """The embeddings' size (found by embedding one word once)."""
        if self._dimension is None:
            self._dimension = int(self.encode("a").shape[0])
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        """The most tokens a text keeps (the tokenizer's model_max_length, a folder's max_seq_length)."""
        return self._native.max_length

    @property
    def description(self) -> str:
        return self._native.description

    def __repr__(self):
        return f"mmx.TextEmbedder({self._native.path!r}, {self._native.placement}: {self._native.description})"


class ImageEmbedder:
    """Image embeddings as Hugging Face computes them (ViT, CLIP's vision tower): each image preprocessed
    as the folder's image processor does. An image is a path, encoded bytes, a (height, width, 3) uint8
    array or a PIL image."""

    def __init__(self, model, device="cpu", dtype=None):
        self._native = _native.ImageEmbedder(os.fspath(model), *_placement(device, dtype))

    def encode(self, images, batch_size=32, pooling=None, normalize=False, show_progress_bar=False):
        """Embeddings of ``images``: (len(images), dimension) float32, or (dimension,) for one image.
        ``pooling``: None (mean-no-cls for ViT, projection for CLIP) or cls, pooler, mean, mean-no-cls,
        projection, pooled."""
        batch, single = _images(images)
        progress = _progress(show_progress_bar, "Images")
        # Decoded a chunk at a time (a whole multiple of batch_size, so the passes are the same): memory holds
        # a chunk of decoded photos, not a folder's worth.
        chunk = max(1, int(batch_size)) * max(1, 256 // max(1, int(batch_size)))
        parts = []
        try:
            for start in range(0, len(batch), chunk):
                told = None if progress is None else (lambda done, total, s=start: progress(s + done, len(batch)))
                parts.append(self._native.encode(batch[start:start + chunk], pooling, bool(normalize), int(batch_size),
                                                 False, told)["embeddings"])
        finally:
            if progress:
                progress.close()
        if not parts:  # no images: the engine's own error
            self._native.encode(batch, pooling, bool(normalize), int(batch_size), False, None)
        embeddings = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return embeddings[0] if single else embeddings

    @property
    def description(self) -> str:
        return self._native.description

    def __repr__(self):
        return f"mmx.ImageEmbedder({self._native.path!r}, {self._native.placement}: {self._native.description})"


class CLIP:
    """A model of texts and images in one space, named as transformers' CLIPModel names its methods."""

    def __init__(self, model=DEFAULT_CLIP, device="cpu", dtype=None):
        self.text = TextEmbedder(model, device, dtype)
        if self.text._native.logit_scale is None:
            raise UsageError(f"{os.fspath(model)}: {self.text.description} does not put texts and images in one space "
                             "(use mmx.TextEmbedder or mmx.ImageEmbedder)")
        self.vision = ImageEmbedder(model, device, dtype)  # the same loaded model
        self.path = self.text._native.path
        self._placement = _placement(device, dtype)

    @property
    def logit_scale(self) -> float:
        """The stored log-scale (CLIPModel.logit_scale); logits are exp(logit_scale) · cosine."""
        return self.text._native.logit_scale

    def get_text_features(self, texts, batch_size=32, normalize=False):
        """CLIPModel.get_text_features: the projected text embeddings (unnormalised unless asked)."""
        return self.text.encode(texts, batch_size=batch_size, pooling="projection", normalize=normalize)

    def get_image_features(self, images, batch_size=32, normalize=False):
        """CLIPModel.get_image_features: the projected image embeddings (unnormalised unless asked)."""
        return self.vision.encode(images, batch_size=batch_size, pooling="projection", normalize=normalize)

    def __call__(self, text, images):
        """CLIPModel(input_ids, pixel_values)'s outputs: logits_per_image (images × texts), logits_per_text,
        and the normalised text_embeds and image_embeds."""
        t = np.atleast_2d(self.get_text_features(text, normalize=True))
        i = np.atleast_2d(self.get_image_features(images, normalize=True))
        logits_per_text = similarity(t, i, score="clip-logits", softmax=None, logit_scale=self.logit_scale)
        return {"logits_per_image": np.ascontiguousarray(logits_per_text.T), "logits_per_text": logits_per_text,
                "text_embeds": t, "image_embeds": i}

    def __repr__(self):
        return f"mmx.CLIP({self.path!r}: {self.text.description})"


def similarity(a, b, score="dot", softmax="dim0", logit_scale=None) -> np.ndarray:
    """Rows of ``a`` against rows of ``b``: (len(a), len(b)) float32, as the lab computes it.

    ``score``: "dot" (a @ b.T, the lab's), "cosine", or "clip-logits" (cosine × exp(logit_scale)).
    ``softmax``: "dim0" (the lab's ``.softmax(dim=0)``: each column sums to 1), "dim1", or None.
    """
    return _native.similarity(a, b, score, "none" if softmax is None else str(softmax), logit_scale)


def zero_shot(images, labels, model=DEFAULT_CLIP, template="a photo of a {}.", device="cpu", dtype=None) -> np.ndarray:
    """Zero-shot classification as on CLIP's model card: probabilities (len(images), len(labels)), the
    softmax over the labels of logits_per_image, each label written into ``template`` at "{}".
    ``model`` is a CLIP folder, Hub id or an ``mmx.CLIP``."""
    batch, single = _images(images)
    labels, _ = _texts(labels, "labels")
    if isinstance(model, CLIP):
        device, dtype = model._placement
        model = model.path
    probs = _native.zero_shot(batch, labels, os.fspath(model), template, *_placement(device, dtype))
    return probs[0] if single else probs


def _image_labels(images):
    """Figure labels as the CLI makes them: file stems, else file names, else paths; arrays are numbered."""
    def label(i, image, part):
        if isinstance(image, (str, os.PathLike)):
            path = os.fspath(image)
            return {"stem": os.path.splitext(os.path.basename(path))[0], "name": os.path.basename(path)}.get(part, path)
        return f"image {i + 1}"
    for part in ("stem", "name", "path"):
        labels = [label(i, im, part) for i, im in enumerate(images)]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def lab(images, captions=None, dialogue=None, text_model="bert-base-uncased", image_model="google/vit-base-patch16-224",
        clip_model=DEFAULT_CLIP, pooling="lab", out=None, format="png", dpi=100, device="cpu", dtype=None,
        progress=None):
    """The lab's study: BERT × ViT embeddings (unaligned) against CLIP's joint space, as similarity
    matrices (A @ B.T, softmax over dim 0). Returns a dict of (rows, cols) float32 arrays: image_image,
    captions_image, dialogue_captions, dialogue_image, clip_captions_image, clip_dialogue_image.

    Caption i describes image i; without captions and dialogue, the CLI's defaults. With ``out`` (a folder),
    writes lab_bert_vit.FORMAT, lab_clip.FORMAT (png, svg or pdf) and matrices.json as ``mmx lab`` does.
    ``progress``: a callable told each step.
    """
    batch, _ = _images(images)
    captions = _native.lab_default_captions() if captions is None else _texts(captions, "captions")[0]
    dialogue = _native.lab_default_dialogue() if dialogue is None else _texts(dialogue, "dialogue")[0]
    if format not in ("png", "svg", "pdf"):
        raise UsageError(f"format {format!r}: choose png, svg or pdf")
    figures = (None, None)
    if out is not None:
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        figures = (os.path.join(out, f"lab_bert_vit.{format}"), os.path.join(out, f"lab_clip.{format}"))
    labels = _image_labels(batch)
    result = _native.lab(batch, labels, captions, dialogue, os.fspath(text_model), os.fspath(image_model),
                         os.fspath(clip_model), pooling, *_placement(device, dtype), figures[0], figures[1],
                         float(dpi), progress)
    if out is not None:
        doc = {name: matrix.tolist() for name, matrix in result.items()}
        doc.update(images=labels, captions=captions, dialogue=dialogue, text_pooling=pooling, softmax="dim0")
        _write_atomically(os.path.join(out, "matrices.json"), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return result


def _write_atomically(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class SDXLPipeline:
    """diffusers' Stable Diffusion XL pipelines (text to image, image to image, inpainting) from a
    pipeline folder (model_index.json and its components) or Hub id, loaded once."""

    def __init__(self, model, variant="", device="cpu", dtype=None):
        self._native = _native.SDXLPipeline(os.fspath(model), variant, *_placement(device, dtype))
        self.last_seed = None

    def __call__(self, prompt, negative_prompt=None, *, seed=None, steps=None, guidance=None, scheduler=None,
                 width=None, height=None, loras=(), image=None, mask=None, strength=None, latents=None,
                 turbo=None, lcm=False, callback=None, output_type="np"):
        """One image for ``prompt``: a (height, width, 3) uint8 array (``output_type="np"``), a PIL image
        ("pil"), or the final latents (1, 4, height/8, width/8) float32 ("latent").

        Defaults are diffusers': 50 steps, guidance 5 (7.5 with a mask), the folder's scheduler; an
        SDXL-Turbo folder (or ``turbo=True``): 1 step, guidance 0, 512²; ``lcm=True`` (with an LCM-LoRA in
        ``loras``): the LCM scheduler, 4 steps, guidance 1. ``seed``: torch.Generator().manual_seed(seed)'s
        noise (None: a random seed, kept in ``self.last_seed``). ``scheduler``: a diffusers class or A1111
        name ("DPM++ 2M Karras"). ``loras``: (path, weight) pairs or "path[:weight]" strings. ``image`` (and
        ``mask``: white repaints) for image to image and inpainting, ``strength`` the part of the schedule
        run. ``callback(step, steps, seconds)`` after each step; raising in it (or Ctrl-C) stops the run.
        """
        if output_type not in ("np", "pil", "latent"):
            raise UsageError(f"output_type {output_type!r}: choose 'np', 'pil' or 'latent'")
        if turbo and lcm:
            raise UsageError("turbo and lcm are two different few-step models; give one")
        if turbo is None:
            turbo = not lcm and self._native.is_turbo
        if seed is None:
            seed = secrets.randbits(63)
        self.last_seed = int(seed)
        specs = [os.fspath(x) if isinstance(x, (str, os.PathLike)) else (os.fspath(x[0]), float(x[1])) for x in loras]
        if turbo and image is None:
            width = 512 if width is None else width
            height = 512 if height is None else height
        kw = dict(prompt=prompt, negative_prompt=negative_prompt, seed=int(seed),
                  steps=int(steps if steps is not None else 1 if turbo else 4 if lcm else 50),
                  guidance=float(guidance if guidance is not None else 0.0 if turbo else 1.0 if lcm
                                 else 7.5 if mask is not None else 5.0),
                  scheduler=scheduler or ("LCM" if lcm else ""),
                  scheduler_settings='{"timestep_spacing": "trailing"}' if turbo else "",
                  width=width, height=height, loras=specs, image=image, mask=mask,
                  strength=strength if strength is not None or image is None else (0.9999 if mask is not None else 0.3),
                  latents=latents, keep_step_latents=False, callback=callback)
        if image is None and (mask is not None or strength is not None):
            raise UsageError("mask and strength apply to an image: give image=")
        r = self._native.generate(kw)
        if output_type == "latent":
            return r["latents"]
        if output_type == "pil":
            try:
                from PIL import Image
            except ImportError:
                raise UsageError("output_type='pil' needs Pillow (apt install python3-pil); 'np' gives the array") from None
            return Image.fromarray(r["image"], "RGB")
        return r["image"]

    def __repr__(self):
        return f"mmx.SDXLPipeline(default size {self._native.default_size}²)"


Hit = namedtuple("Hit", "path score")
Hit.__doc__ = "A search result: the image's path and its cosine similarity to the query."


class Index:
    """A photo collection's catalogue (SQLite, the one ``mmx index`` writes): images embedded once, then
    searched by text, by image, or both."""

    def __init__(self, db, model=None, device="cpu", dtype=None):
        """``db``: the catalogue file (created by the first ``add``). ``model``: the image encoder (a CLIP
        folder or Hub id) — needed to add; a search without it uses the one model the catalogue holds."""
        self._native = _native.Index(os.fspath(db), "" if model is None else os.fspath(model), *_placement(device, dtype))

    def add(self, folders, batch_size=32, include_hidden=False, show_progress_bar=False) -> dict:
        """Indexes every image under ``folders`` (a folder or a list), incrementally: unchanged files are
        not read again, moved ones not embedded again. Returns counts: files, unchanged, embedded, reused,
        removed, failed, vectors, seconds."""
        if isinstance(folders, (str, os.PathLike)):
            folders = [folders]
        folders = [os.fspath(f) for f in folders]
        progress = _progress(show_progress_bar, "Images")
        try:
            return self._native.add(folders, int(batch_size), bool(include_hidden), progress)
        finally:
            if progress:
                progress.close()

    def search(self, text=None, image=None, top_k=10, threshold=None):
        """The ``top_k`` images closest to the query, best first, as ``Hit(path, score)``. ``text`` (a str or
        a list) and ``image`` (a path, encoded bytes or an array; or a list) are embedded, normalised and
        summed into one query, as ``mmx search "text" + photo.jpg`` does."""
        terms = []
        if text is not None:
            terms += [("text", t, 1.0) for t in _texts(text, "text")[0]]
        if image is not None:
            for im in _images(image)[0]:
                if isinstance(im, (str, os.PathLike)):
                    terms.append(("path", os.fspath(im), 1.0))
                elif isinstance(im, bytes):
                    terms.append(("bytes", im, 1.0))
                else:
                    terms.append(("bytes", _native.encode_png(im, []), 1.0))
        if not terms:
            raise UsageError("search needs text=, image= or both")
        return [Hit(path, score) for path, score in self._native.search(terms, int(top_k), threshold)]

    def __len__(self):
        return len(self._native)
