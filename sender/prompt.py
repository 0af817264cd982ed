"""Structured text prompt for the non-key regions (seed paper 000).

The sender describes what it does not send as latents with a short structured prompt that the
receiver feeds to Stable Diffusion's CLIP text encoder:

    builder = PromptBuilder(blip_model, blip_processor, tokenizer_for_limit=clip_tokenizer)
    prompt = builder(image)            # StructuredPrompt
    text = prompt.render()             # "{subject}, {scene}, {colours}, {style}"

Fields and where they come from:

``subject``
    BLIP conditional caption after the prefix ``"a photography of"`` (BLIP's documented
    conditional-captioning prompt), echoed prefix removed.
``scene``
    BLIP after ``"the background is"``.
``colours``
    Image statistics, no model: every pixel is named after the nearest entry (CIE76 distance in
    CIELAB) of the fixed table :data:`COLOUR_NAMES`; the up to 3 names covering at least 10% of the
    pixels, most frequent first, become e.g. ``"red, white and blue colours"``.
``style``
    BLIP after ``"the lighting is"``, followed by brightness / contrast / saturation words from the
    image statistics (:func:`tone_words`), e.g. ``"soft light, dark, high contrast"``.

The rendered prompt fits the text encoder: with a CLIP tokenizer its token count, start and end
tokens included, is at most ``max_tokens`` (77); without one its length is at most ``max_chars``
characters (default ``3 * (max_tokens - 2)``, a heuristic: CLIP's BPE averages about 4 characters
a token on English words, so this rarely overflows, but it is not a guarantee). Fields are cut at
word boundaries, sharing the budget evenly (short fields keep all their text, long ones give way).

The render is never empty: the colour field always names at least one colour, and if the captioner
returns no text for the subject (random weights often emit the end token at once) the subject
falls back to ``"a photograph"``. Every fallback and every cut is recorded in
``StructuredPrompt.notes``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from gensc.common.images import check_rgb
from gensc.common.layout_text import COLOUR_NAMES

__all__ = [
    "COLOUR_NAMES",
    "DEFAULT_PREFIXES",
    "FIELDS",
    "PROMPT_TEMPLATE",
    "SUBJECT_FALLBACK",
    "PromptBuilder",
    "StructuredPrompt",
    "colour_indices",
    "colour_phrase",
    "dominant_colours",
    "fit_fields",
    "pixel_region",
    "srgb_to_lab",
    "tone_words",
]

FIELDS: tuple[str, ...] = ("subject", "scene", "colours", "style")
"""Field names in render order."""

PROMPT_TEMPLATE = "{subject}, {scene}, {colours}, {style}"
"""The render template. Empty fields are left out together with their ``", "`` separator."""

DEFAULT_PREFIXES: dict[str, str] = {
    "subject": "a photography of",
    "scene": "the background is",
    "style": "the lighting is",
}
"""Conditional-captioning prefixes given to BLIP for the captioned fields."""

SUBJECT_FALLBACK = "a photograph"
"""Subject used when the captioner returns no text."""


# --------------------------------------------------------------------------------------------
# The prompt
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StructuredPrompt:
    """A structured description of an image, rendered to one text prompt.

    Attributes:
        subject: main subject, e.g. ``"a woman in a space suit"``.
        scene: background / setting, e.g. ``"a white wall"``.
        colours: dominant colours, e.g. ``"red, white and blue colours"``.
        style: lighting and tone, e.g. ``"soft light, bright, high contrast"``.
        notes: how the fields were made where that was not the normal path (fallbacks, cuts).
            Not part of the render.
    """

    subject: str
    scene: str
    colours: str
    style: str
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in FIELDS:
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.notes, tuple) or not all(isinstance(n, str) for n in self.notes):
            raise TypeError("notes must be a tuple of str")

    def render(self) -> str:
        """The prompt text: :data:`PROMPT_TEMPLATE`, ``"{subject}, {scene}, {colours}, {style}"``.

        Each field is stripped; empty fields are left out with their separator, so the result
        never contains ``", ,"`` nor starts or ends with a comma.
        """
        return _render([getattr(self, name) for name in FIELDS])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the four fields, ``notes`` as a list, and ``text`` (the render)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        out["notes"] = list(self.notes)
        out["text"] = self.render()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StructuredPrompt:
        """Inverse of :meth:`to_dict` (``text`` is ignored; it is recomputed)."""
        missing = [name for name in FIELDS if name not in data]
        if missing:
            raise ValueError(f"prompt dict lacks fields {missing}")
        return cls(**{name: data[name] for name in FIELDS}, notes=tuple(data.get("notes", ())))


def _render(values: Sequence[str]) -> str:
    return ", ".join(v.strip() for v in values if v.strip())


# --------------------------------------------------------------------------------------------
# Colour statistics
# --------------------------------------------------------------------------------------------


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB to CIELAB (D65 white, 2 degree observer) by ``skimage.color.rgb2lab``.

    Args:
        rgb: ``uint8`` ``[..., 3]`` (0..255) or float ``[..., 3]`` in ``[0, 1]``.

    Returns:
        float64 ``[..., 3]``: ``L*`` in ``[0, 100]``, ``a*``, ``b*`` roughly in ``[-128, 127]``.
    """
    rgb = np.asarray(rgb)
    c = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return rgb2lab(c.reshape(-1, 1, 3)).reshape(c.shape)


_PALETTE_NAMES = tuple(COLOUR_NAMES)
_PALETTE_LAB = srgb_to_lab(np.array([COLOUR_NAMES[n] for n in _PALETTE_NAMES], dtype=np.uint8))


def colour_indices(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` sRGB -> int ``[...]``: the index in :data:`COLOUR_NAMES` (table order) of
    each pixel's nearest entry in CIELAB (Euclidean, CIE76; ties: table order)."""
    lab = srgb_to_lab(np.asarray(pixels))
    return ((lab[..., None, :] - _PALETTE_LAB) ** 2).sum(axis=-1).argmin(axis=-1)


def pixel_region(region: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A ``bool`` region ``[h, w]`` whose shape divides ``shape`` (``[H, W]``) exactly, repeated to
    ``bool [H, W]`` (e.g. a latent grid to pixels); ValueError for anything else."""
    region = np.asarray(region)
    if region.dtype != np.bool_ or region.ndim != 2:
        raise ValueError(
            f"region must be a bool array [h, w], got dtype {region.dtype} shape {list(region.shape)}"
        )
    (H, W), (rh, rw) = shape, region.shape
    if rh < 1 or rw < 1 or H % rh or W % rw:
        raise ValueError(f"region shape {list(region.shape)} must divide the image size {[H, W]} exactly")
    return np.repeat(np.repeat(region, H // rh, axis=0), W // rw, axis=1)


def _region_pixels(image: np.ndarray, region: np.ndarray | None, max_side: int = 128) -> np.ndarray:
    """Pixels of ``image`` (strided so the longer side is at most ~``max_side``) inside ``region``.

    ``region`` is a ``bool`` mask ``[H, W]`` or a coarser ``[H // f, W // f]`` grid (an integer
    factor ``f`` on each axis, e.g. the latent grid). An all-False region means the whole image.

    Returns:
        ``uint8`` ``[N, 3]``.
    """
    check_rgb(image)
    H, W, _ = image.shape
    if region is not None:
        region = pixel_region(region, (H, W))
    step = max(1, max(H, W) // max_side)
    pixels = image[::step, ::step]
    if region is not None and region.any():
        return pixels[region[::step, ::step]]
    return pixels.reshape(-1, 3)


def dominant_colours(
    image: np.ndarray,
    region: np.ndarray | None = None,
    *,
    max_colours: int = 3,
    min_share: float = 0.1,
) -> list[tuple[str, float]]:
    """Most frequent colour names in the image (or in ``region``).

    Each pixel (on a stride of about 1/128 of the longer side) gets the :data:`COLOUR_NAMES`
    entry nearest in CIELAB (Euclidean, CIE76).

    Args:
        image: ``uint8`` ``[H, W, 3]`` RGB.
        region: optional ``bool`` mask, see :func:`_region_pixels`.
        max_colours: at most this many names.
        min_share: keep names covering at least this share of the pixels (the most frequent name
            is always kept).

    Returns:
        ``[(name, share), ...]``, at least one entry, shares in ``(0, 1]``, most frequent first
        (ties: table order).
    """
    if max_colours < 1:
        raise ValueError(f"max_colours must be >= 1, got {max_colours}")
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be in [0, 1], got {min_share}")
    counts = np.bincount(colour_indices(_region_pixels(image, region)), minlength=len(_PALETTE_NAMES))
    shares = counts / counts.sum()
    order = np.argsort(-shares, kind="stable")
    picked = [(_PALETTE_NAMES[i], float(shares[i])) for i in order[:max_colours]]
    return [picked[0]] + [(n, s) for n, s in picked[1:] if s >= min_share and s > 0]


def colour_phrase(names: Sequence[str]) -> str:
    """``["red"]`` -> ``"red colours"``; ``["red", "white", "blue"]`` ->
    ``"red, white and blue colours"``."""
    names = [n for n in names if n]
    if not names:
        raise ValueError("colour_phrase needs at least one name")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} colours"


def tone_words(image: np.ndarray, region: np.ndarray | None = None) -> list[str]:
    """Brightness, contrast and saturation words from CIELAB statistics.

    Over the pixels of ``image`` (or ``region``), with ``L*`` in ``[0, 100]`` and chroma
    ``C* = hypot(a*, b*)``:

    * mean ``L*`` < 35 -> ``"dark"``, > 70 -> ``"bright"``;
    * std ``L*`` < 8 -> ``"low contrast"``, > 28 -> ``"high contrast"``;
    * mean ``C*`` < 8 -> ``"muted"``, > 45 -> ``"vivid"``.

    Returns:
        Zero to three words, in that order.
    """
    lab = srgb_to_lab(_region_pixels(image, region))
    lum = lab[:, 0]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    words = []
    if lum.mean() < 35:
        words.append("dark")
    elif lum.mean() > 70:
        words.append("bright")
    if lum.std() < 8:
        words.append("low contrast")
    elif lum.std() > 28:
        words.append("high contrast")
    if chroma.mean() < 8:
        words.append("muted")
    elif chroma.mean() > 45:
        words.append("vivid")
    return words


# --------------------------------------------------------------------------------------------
# Length bound
# --------------------------------------------------------------------------------------------


def _cut(text: str, n: int) -> str:
    """The first ``n`` characters of ``text``, backed off to a word boundary when one exists."""
    if n >= len(text):
        return text
    head = text[:n]
    if not text[n].isspace() and " " in head.strip():
        head = head[: head.rstrip().rfind(" ")]
    return head.rstrip(" ,;:")


def fit_fields(
    values: Sequence[str], measure: Callable[[str], int], limit: int
) -> tuple[list[str], list[int]]:
    """Shorten fields so that ``measure(render(values)) <= limit``.

    ``render`` joins the non-empty fields with ``", "`` (:meth:`StructuredPrompt.render`).
    ``measure`` is a token count (special tokens included) or ``len``. The budget left after the
    fixed cost (``measure`` of the render minus the fields' own costs: separators, start/end
    tokens) is shared by water-filling: fields cheaper than an even share keep everything, the
    rest split what remains evenly. Each long field is cut to the longest prefix within its share,
    at a word boundary where possible; a final pass trims a word at a time from the costliest
    field until the whole render fits (token counts of parts need not add up exactly).

    Args:
        values: field texts, in render order.
        measure: cost of a rendered string.
        limit: maximum cost of the render.

    Returns:
        ``(new_values, cut_indices)``: the shortened fields and which of them were cut.

    Raises:
        ValueError: if ``limit`` is too small to keep any text (the render would be empty).
    """
    vals = [v.strip() for v in values]
    if measure(_render(vals)) <= limit:
        return vals, []
    if measure("") > limit:
        raise ValueError(f"limit {limit} is below the cost of an empty prompt")
    empty = measure("")
    costs = [measure(v) - empty if v else 0 for v in vals]
    fixed = measure(_render(vals)) - sum(costs)
    remaining = max(0, limit - fixed)
    budgets = [0] * len(vals)
    order = sorted(range(len(vals)), key=lambda i: costs[i])
    for rank, i in enumerate(order):
        share = remaining // (len(vals) - rank)
        budgets[i] = min(costs[i], max(share, 1 if remaining > 0 else 0))
        remaining -= budgets[i]
    cut: set[int] = set()
    for i, v in enumerate(vals):
        if costs[i] <= budgets[i]:
            continue
        lo, hi = 0, len(v)  # longest char prefix whose cost fits: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if measure(_cut(v, mid)) - empty <= budgets[i]:
                lo = mid
            else:
                hi = mid
        vals[i] = _cut(v, lo)
        cut.add(i)
    while measure(_render(vals)) > limit:
        costs = [measure(v) - empty if v else 0 for v in vals]
        i = max(range(len(vals)), key=lambda j: (costs[j], j))
        v = vals[i]
        shorter = v.rsplit(" ", 1)[0].rstrip(" ,;:") if " " in v else v[:-1]
        if not _render(vals[:i] + [shorter] + vals[i + 1 :]):
            raise ValueError(f"limit {limit} is too small to keep any text of the prompt")
        vals[i] = shorter
        cut.add(i)
    return vals, sorted(cut)


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


def _clean(text: str, prefix: str) -> str:
    """Collapse whitespace, drop an echoed ``prefix``, repeated words and trailing punctuation."""
    text = " ".join(text.split())
    norm_prefix = " ".join(prefix.lower().split())
    if norm_prefix and text.lower().startswith(norm_prefix):
        text = text[len(norm_prefix) :].strip()
    words: list[str] = []
    for word in text.split(" "):
        if not words or word.lower() != words[-1].lower():
            words.append(word)
    return re.sub(r"[\s,.;:!?]+$", "", " ".join(words)).strip()


class PromptBuilder:
    """Image -> :class:`StructuredPrompt` with a BLIP captioner and image statistics.

    Args:
        model: a BLIP-style captioner (``BlipForConditionalGeneration``): ``generate(**inputs)``
            returns, for a text prompt ``[CLS] p1..pn [SEP]``, the ids ``[BOS] p1..pn g1..gm``;
            the ``n + 1`` echoed ids are dropped. Put in eval mode here.
        processor: matching processor (``BlipProcessor``): ``processor(images=PIL, text=str,
            return_tensors="pt")`` and ``processor.decode(ids, skip_special_tokens=True)``.
        max_new_tokens: caption length limit per field, tokens.
        min_new_tokens: minimum caption length per field (tests with random weights use it).
        tokenizer_for_limit: the text encoder's tokenizer (CLIP); if given the render has at most
            ``max_tokens`` tokens, start/end included.
        max_tokens: token bound (77 for SD's CLIP text encoder), >= 16.
        max_chars: character bound used when no tokenizer is given; default
            ``3 * (max_tokens - 2)``.
        prefixes: field -> BLIP prefix, keys among ``subject``, ``scene``, ``style``; a field
            not listed is not captioned. Default :data:`DEFAULT_PREFIXES`.
        max_colours: at most this many colour names.
        min_colour_share: a colour name needs this share of the pixels (the top one is kept).
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        max_new_tokens: int = 20,
        min_new_tokens: int = 0,
        tokenizer_for_limit: Any = None,
        max_tokens: int = 77,
        max_chars: int | None = None,
        prefixes: Mapping[str, str] | None = None,
        max_colours: int = 3,
        min_colour_share: float = 0.1,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not 0 <= min_new_tokens <= max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in [0, max_new_tokens={max_new_tokens}], got {min_new_tokens}"
            )
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {max_tokens}")
        if max_chars is None:
            max_chars = 3 * (max_tokens - 2)
        if max_chars < 16:
            raise ValueError(f"max_chars must be >= 16, got {max_chars}")
        prefixes = dict(DEFAULT_PREFIXES if prefixes is None else prefixes)
        unknown = sorted(set(prefixes) - {"subject", "scene", "style"})
        if unknown:
            raise ValueError(f"prefixes for unknown fields {unknown}; known: subject, scene, style")
        for field, prefix in prefixes.items():
            if not isinstance(prefix, str) or not prefix.strip():
                raise ValueError(f"prefix for {field!r} must be a non-empty string")
        if max_colours < 1:
            raise ValueError(f"max_colours must be >= 1, got {max_colours}")
        if not 0.0 <= min_colour_share <= 1.0:
            raise ValueError(f"min_colour_share must be in [0, 1], got {min_colour_share}")
        self.model = model.eval()
        self.processor = processor
        self.max_new_tokens = int(max_new_tokens)
        self.min_new_tokens = int(min_new_tokens)
        self.tokenizer_for_limit = tokenizer_for_limit
        self.max_tokens = int(max_tokens)
        self.max_chars = int(max_chars)
        self.prefixes = prefixes
        self.max_colours = int(max_colours)
        self.min_colour_share = float(min_colour_share)

    # -- length ----------------------------------------------------------------------------

    def measure(self, text: str) -> int:
        """Cost of ``text`` under the bound in force: CLIP tokens (start/end included) or chars."""
        if self.tokenizer_for_limit is None:
            return len(text)
        ids = self.tokenizer_for_limit(text, truncation=False, verbose=False)["input_ids"]
        return len(ids)

    @property
    def limit(self) -> int:
        """``max_tokens`` with a tokenizer, else ``max_chars``."""
        return self.max_tokens if self.tokenizer_for_limit is not None else self.max_chars

    def bound(self, prompt: StructuredPrompt) -> StructuredPrompt:
        """Shorten ``prompt``'s fields so its render fits :attr:`limit` (see :func:`fit_fields`)."""
        values, cut = fit_fields([getattr(prompt, f) for f in FIELDS], self.measure, self.limit)
        if not cut:
            return prompt
        unit = "tokens" if self.tokenizer_for_limit is not None else "characters"
        notes = list(prompt.notes)
        notes += [
            f"{FIELDS[i]}: cut from {len(getattr(prompt, FIELDS[i]))} to {len(values[i])} "
            f"characters to fit {self.limit} {unit}"
            for i in cut
        ]
        return StructuredPrompt(*values, notes=tuple(notes))

    # -- captioning ------------------------------------------------------------------------

    def caption(self, image: np.ndarray, prefix: str) -> str:
        """BLIP's continuation of ``prefix`` for ``image``, cleaned; may be ``""``.

        Args:
            image: ``uint8`` ``[H, W, 3]`` RGB.
            prefix: conditional-captioning prompt, e.g. ``"the background is"``.
        """
        import torch  # heavy: the CLI imports this module

        check_rgb(image)
        inputs = self.processor(images=Image.fromarray(image, mode="RGB"), text=prefix, return_tensors="pt")
        device, dtype = self.model.device, self.model.dtype
        inputs = {
            k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items()
        }
        n_echo = inputs["input_ids"].shape[1] - 1  # [BOS] + prefix tokens; [SEP] is not echoed
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=self.min_new_tokens,
                do_sample=False,
                num_beams=1,
            )
        text = self.processor.decode(out[0, n_echo:], skip_special_tokens=True)
        return _clean(text, prefix)

    # -- the stage -------------------------------------------------------------------------

    def __call__(self, image: np.ndarray, *, region: np.ndarray | None = None) -> StructuredPrompt:
        """Describe ``image``.

        Args:
            image: ``uint8`` ``[H, W, 3]`` RGB.
            region: optional ``bool`` mask of the pixels the colour and tone statistics describe
                (e.g. the non-key cells, ``~key_mask`` on the latent grid): shape ``[H, W]`` or a
                grid dividing it exactly. The captioner always sees the whole image.

        Returns:
            A :class:`StructuredPrompt` whose render is non-empty and within the bound.
        """
        check_rgb(image)
        notes: list[str] = []
        if region is not None and not np.asarray(region).any():
            notes.append("region: empty mask; colour statistics use the whole image")
        colours = dominant_colours(
            image, region, max_colours=self.max_colours, min_share=self.min_colour_share
        )
        tones = tone_words(image, region)
        captions = {field: self.caption(image, p) for field, p in self.prefixes.items()}

        subject = captions.get("subject", "")
        if not subject:
            why = "not captioned" if "subject" not in captions else "captioner returned no text"
            notes.append(f"subject: {why}; used {SUBJECT_FALLBACK!r}")
            subject = SUBJECT_FALLBACK
        scene = captions.get("scene", "")
        if "scene" in captions and not scene:
            notes.append("scene: captioner returned no text; left empty")
        lighting = captions.get("style", "")
        if "style" in captions and not lighting:
            notes.append(
                "style: captioner returned no text; "
                + ("used image statistics only" if tones else "left empty")
            )
        style = ", ".join([lighting, *tones]) if lighting else ", ".join(tones)
        prompt = StructuredPrompt(
            subject=subject,
            scene=scene,
            colours=colour_phrase([name for name, _ in colours]),
            style=style,
            notes=tuple(notes),
        )
        return self.bound(prompt)
