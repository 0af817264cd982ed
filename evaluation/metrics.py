"""Image quality metrics, each through a library. Inputs are uint8 RGB ``[H, W, 3]`` arrays.

PSNR and SSIM have one definition each (gensc.client.metrics ``psnr`` and ``ssim``, on the CPU),
used by the client's report.json (``psnr_ssim``) and by ``gensc eval`` (``MetricSuite``), so both
give the same number for the same pair. ``MetricSuite``'s set, the others batched on the CPU or a GPU:

============  =========================================================  ===================
result key    library call                                               needs
============  =========================================================  ===================
psnr_db       ``psnr``: scikit-image ``peak_signal_noise_ratio`` (255)   -
ssim          ``ssim``: scikit-image ``structural_similarity``, Wang     -
              et al. 2004 (Gaussian 11x11, sigma 1.5, K = 0.01 / 0.03)
ms_ssim       torchmetrics ``multiscale_structural_similarity_index_     images >= 176 px for
              measure`` (5 scales; fewer on small images, noted)         all 5 scales
vsi           piq ``vsi``                                                piq (needs torchvision)
lpips         torchmetrics ``LearnedPerceptualImagePatchSimilarity``     torchvision + the
              (AlexNet by default, as Img2Img-SC's ``lpips.LPIPS(net=     backbone's weights in
              'alex')``)                                                 the torch hub cache
clip_score    torchmetrics ``CLIPScore`` (image vs the sender's caption) CLIP weights (dir/id)
fid           torchmetrics ``FrechetInceptionDistance`` (per set)        torch-fidelity + its
                                                                         Inception weights
============  =========================================================  ===================

Nothing is ever downloaded: a metric whose library or weights are missing is skipped, and
``MetricSuite.notes`` says why (the harness copies the notes into results.json).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gensc.client.metrics import SSIM_SIGMA, check_pair, psnr, ssim
from gensc.common.config import Config, setting

ENV_CLIP = "GENSC_CLIP_MODEL"
ENV_FID_WEIGHTS = "GENSC_FID_WEIGHTS"

# name on the command line -> key in result rows
METRICS: dict[str, str] = {
    "psnr": "psnr_db",
    "ssim": "ssim",
    "ms_ssim": "ms_ssim",
    "vsi": "vsi",
    "lpips": "lpips",
    "clip": "clip_score",
    "fid": "fid",
}
HIGHER_IS_BETTER = {
    "psnr_db": True,
    "ssim": True,
    "ms_ssim": True,
    "vsi": True,
    "lpips": False,
    "clip_score": True,
    "fid": False,
}
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, 5 scales
MS_SSIM_KERNEL = 11
# torchvision's file names for the LPIPS backbones, looked up in ``torch.hub.get_dir()/checkpoints``.
LPIPS_BACKBONES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
FID_DEFAULT_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's cache name


def parse_metric_names(text: str) -> tuple[str, ...]:
    """``"psnr,ssim"`` -> ("psnr", "ssim"); ``"all"`` -> every metric. Unknown names raise ValueError."""
    names = (
        tuple(METRICS) if text.strip() == "all" else tuple(n.strip() for n in text.split(",") if n.strip())
    )
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(
            f"unknown metric {unknown[0] if unknown else text!r}; known: all, {', '.join(METRICS)}"
        )
    return names


def ms_ssim_scales(side: int, kernel: int = MS_SSIM_KERNEL) -> int:
    """How many MS-SSIM scales (at most 5) an image whose smaller side is ``side`` px allows.

    torchmetrics needs ``side >= (kernel - 1) * max(1, scales - 1) ** 2`` and every scale at
    least ``kernel`` px: 5 scales from 176 px, 4 from 90 px, 3 from 44 px. Below 2 scales the
    metric is plain SSIM, so 0 is returned ("too small").
    """
    for scales in range(len(MS_SSIM_BETAS), 1, -1):
        if side >= (kernel - 1) * max(1, scales - 1) ** 2 and side // 2 ** (scales - 1) >= kernel:
            return scales
    return 0


def _flag_value(parse: Any, text: str) -> Any:
    """``parse(text)`` for argparse: its ValueError becomes the flag's error message."""
    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@dataclass(frozen=True)
class MetricConfig(Config):
    """Which metrics to compute and where their weights are (gensc.common.config.Config; the
    ``gensc eval`` metric flags come from its fields). Serialised into results.json."""

    names: tuple[str, ...] = setting(
        tuple(METRICS),
        flag="--metrics",
        parse=lambda text: _flag_value(parse_metric_names, text),
        help="comma list or 'all': psnr,ssim,ms_ssim,vsi,lpips,clip,fid (default all)",
    )
    device: str = setting("cpu", flag="--metric-device", help="device for metrics (default: --device)")
    batch_size: int = setting(16, help="images per metric batch")
    lpips_net: str = setting(
        "alex", choices=tuple(LPIPS_BACKBONES), help="LPIPS backbone (torchmetrics; default alex)"
    )
    clip_model: str = setting(  # local dir or hub id in the local cache; "" -> $GENSC_CLIP_MODEL or none
        "", help=f"CLIP folder for CLIP score (env {ENV_CLIP})"
    )
    fid_weights: str = setting(  # Inception weights file; "" -> $GENSC_FID_WEIGHTS or torch-fidelity's cache
        "", help=f"torch-fidelity Inception weights (env {ENV_FID_WEIGHTS})"
    )


def _clip_tensor(out: Any):
    return out if hasattr(out, "norm") else out.pooler_output


class ClipFeatureTensors:
    """A CLIPModel whose ``get_image_features`` / ``get_text_features`` return tensors.

    transformers 5 returns a ModelOutput there (the projected embedding is its
    ``pooler_output``); torchmetrics 1.9's CLIPScore expects the tensor itself and fails with
    ``'BaseModelOutputWithPooling' object has no attribute 'norm'``. Scores are unchanged.
    """

    def __init__(self, model: Any) -> None:
        self.model, self.config = model, model.config

    def to(self, device: Any) -> ClipFeatureTensors:
        self.model = self.model.to(device)
        return self

    def get_image_features(self, *args: Any, **kwargs: Any):
        return _clip_tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any):
        return _clip_tensor(self.model.get_text_features(*args, **kwargs))


def _to_tensor(images: Sequence[np.ndarray], device: str):
    """uint8 ``[H, W, 3]`` list -> float32 ``[N, 3, H, W]`` in 0..255 on ``device``."""
    import torch  # heavy: the CLI imports this module

    x = torch.from_numpy(np.stack([np.asarray(i, dtype=np.uint8) for i in images]))
    return x.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32)


class MetricSuite:
    """Full-reference image metrics through libraries, batched on ``config.device``.

    ``pairwise(refs, tests, captions) -> [ {key: float | None} ]`` per image pair (uint8
    ``[H, W, 3]``, equal shapes); ``fid(refs, tests) -> float | None`` for a set. ``available``
    lists the result keys that will be filled; ``notes`` maps every skipped or altered metric to
    a sentence saying why. ``fid_feature`` replaces the Inception network (tests only).
    """

    def __init__(self, config: MetricConfig = MetricConfig(), *, fid_feature: Any = None) -> None:
        for n in config.names:
            if n not in METRICS:
                raise ValueError(f"unknown metric {n!r}; known: {', '.join(METRICS)}")
        if config.lpips_net not in LPIPS_BACKBONES:
            raise ValueError(f"unknown LPIPS net {config.lpips_net!r}; known: {', '.join(LPIPS_BACKBONES)}")
        if config.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {config.batch_size}")
        self.config = config
        self.device = config.device
        self.notes: dict[str, str] = {}
        self._vsi = self._lpips = self._clip = None
        self._fid_feature = fid_feature
        self.fid_ready = False
        self._ms_ssim_scales: dict[int, int] = {}
        wanted = set(config.names)
        if "vsi" in wanted:
            self._vsi = self._load_vsi()
        if "lpips" in wanted:
            self._lpips = self._load_lpips()
        if "clip" in wanted:
            self._clip = self._load_clip()
        if "fid" in wanted:
            self.fid_ready = self._check_fid()
        ready = {"vsi": self._vsi, "lpips": self._lpips, "clip": self._clip, "fid": self.fid_ready}
        self.available = tuple(METRICS[n] for n in METRICS if n in wanted and ready.get(n, True))

    # ------------------------------------------------------------------ loading (never downloads)

    def _load_vsi(self):
        try:
            import piq
        except Exception as e:  # noqa: BLE001 - piq fails in several ways without torchvision
            self.notes["vsi"] = (
                f"skipped: piq is not importable ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                "VSI needs `pip install piq`, which needs torchvision"
            )
            return None
        return piq.vsi

    def _load_lpips(self):
        try:
            import torch
            import torchvision  # noqa: F401
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
        except Exception as e:  # noqa: BLE001
            self.notes["lpips"] = (
                f"skipped: torchmetrics LPIPS needs torchvision, which is not importable "
                f"({type(e).__name__}: {str(e).splitlines()[0][:120]})"
            )
            return None
        weights = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[self.config.lpips_net]
        if not weights.is_file():
            self.notes["lpips"] = (
                f"skipped: the {self.config.lpips_net} backbone weights are not at {weights} (nothing is "
                "downloaded); copy torchvision's file there or point TORCH_HOME at a folder holding "
                f"checkpoints/{weights.name}"
            )
            return None
        metric = LearnedPerceptualImagePatchSimilarity(
            net_type=self.config.lpips_net, reduction="none", normalize=True
        )
        return metric.to(self.device).eval()

    def _load_clip(self):
        source = self.config.clip_model or os.environ.get(ENV_CLIP, "")
        if not source:
            self.notes["clip_score"] = (
                f"skipped: no CLIP model given (--clip-model DIR or {ENV_CLIP}=DIR; the paper's "
                "figure is comparable with openai/clip-vit-large-patch14, torchmetrics' default)"
            )
            return None
        try:
            from torchmetrics.multimodal.clip_score import CLIPScore
            from transformers import CLIPModel, CLIPProcessor

            model = CLIPModel.from_pretrained(source, local_files_only=True)
            processor = CLIPProcessor.from_pretrained(source, local_files_only=True)
        except Exception as e:  # noqa: BLE001
            self.notes["clip_score"] = (
                f"skipped: CLIP model {source!r} could not be loaded from local files "
                f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"
            )
            return None
        wrapped = ClipFeatureTensors(model)
        return CLIPScore(model_name_or_path=lambda: (wrapped, processor)).to(self.device)

    def _check_fid(self) -> bool:
        if self._fid_feature is not None:
            self.notes["fid"] = "computed with a caller-supplied feature network, not Inception-v3"
            return True
        try:
            import torch
            import torch_fidelity  # noqa: F401
        except Exception as e:  # noqa: BLE001
            self.notes["fid"] = (
                f"skipped: torchmetrics FID needs torch-fidelity, which is not importable "
                f"({type(e).__name__}: {str(e).splitlines()[0][:120]})"
            )
            return False
        path = self.config.fid_weights or os.environ.get(ENV_FID_WEIGHTS, "")
        cached = Path(torch.hub.get_dir()) / "checkpoints" / FID_DEFAULT_WEIGHTS
        if path and not Path(path).is_file():
            self.notes["fid"] = f"skipped: FID Inception weights {path!r} not found"
            return False
        if not path and not cached.is_file():
            self.notes["fid"] = (
                f"skipped: torch-fidelity's Inception weights are not at {cached} (nothing is downloaded); "
                f"pass --fid-weights FILE or set {ENV_FID_WEIGHTS}"
            )
            return False
        self._fid_weights = path or None
        return True

    # ------------------------------------------------------------------ computing

    def pairwise(
        self,
        refs: Sequence[np.ndarray],
        tests: Sequence[np.ndarray],
        captions: Sequence[str | None] | None = None,
    ) -> list[dict[str, float | None]]:
        """One dict per pair with every pairwise key in ``available`` (None where not computed).

        ``captions[i]`` is the text CLIP score compares ``tests[i]`` with (None: not scored).
        """
        if len(refs) != len(tests):
            raise ValueError(f"{len(refs)} references but {len(tests)} test images")
        out: list[dict[str, float | None]] = []
        bs = self.config.batch_size
        for start in range(0, len(refs), bs):
            r, t = refs[start : start + bs], tests[start : start + bs]
            caps = list(captions[start : start + bs]) if captions is not None else [None] * len(r)
            out.extend(self._batch(r, t, caps))
        return out

    def _batch(self, refs, tests, captions) -> list[dict[str, float | None]]:
        import torch  # heavy: the CLI imports this module
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

        for a, b in zip(refs, tests, strict=True):
            check_pair(a, b)
        x, y = _to_tensor(tests, self.device), _to_tensor(refs, self.device)
        n = x.shape[0]
        cols: dict[str, list[float | None]] = {}
        with torch.inference_mode():
            if "psnr_db" in self.available:
                cols["psnr_db"] = [psnr(a, b) for a, b in zip(refs, tests, strict=True)]
            if "ssim" in self.available:
                cols["ssim"] = [ssim(a, b) for a, b in zip(refs, tests, strict=True)]
            if "ms_ssim" in self.available:
                cols["ms_ssim"] = self._ms_ssim(x, y, multiscale_structural_similarity_index_measure)
            if self._vsi is not None:
                v = self._vsi(x / 255.0, y / 255.0, data_range=1.0, reduction="none")
                cols["vsi"] = v.cpu().tolist()
            if self._lpips is not None:
                self._lpips.reset()
                v = self._lpips(x / 255.0, y / 255.0)
                cols["lpips"] = v.reshape(-1).cpu().tolist()
            if self._clip is not None:
                cols["clip_score"] = [self._clip_one(x[i], c) for i, c in enumerate(captions)]
        keys = [k for k in self.available if k != "fid"]
        return [{k: cols.get(k, [None] * n)[i] for k in keys} for i in range(n)]

    def _ms_ssim(self, x, y, fn) -> list[float | None]:
        side = min(x.shape[-2:])
        scales = self._ms_ssim_scales.setdefault(side, ms_ssim_scales(side))
        if scales == 0:
            self.notes["ms_ssim"] = f"skipped: image too small ({side} px) for MS-SSIM's 2+ scales"
            return [None] * x.shape[0]
        betas = MS_SSIM_BETAS[:scales]
        if scales < len(MS_SSIM_BETAS):
            total = sum(betas)
            betas = tuple(b / total for b in betas)
            self.notes["ms_ssim"] = (
                f"{scales} of 5 scales: {side} px images are below the 176 px that 5 scales need "
                "(weights renormalised); not comparable with standard 5-scale MS-SSIM"
            )
        v = fn(
            x,
            y,
            data_range=255.0,
            kernel_size=MS_SSIM_KERNEL,
            sigma=SSIM_SIGMA,
            betas=betas,
            reduction="none",
        )
        return v.cpu().tolist()

    def _clip_one(self, image, caption: str | None) -> float | None:
        import torch  # heavy: the CLI imports this module

        if not caption:
            return None
        self._clip.reset()
        self._clip.update(image.round().to(torch.uint8), caption)
        return float(self._clip.compute())

    def fid(self, refs: Sequence[np.ndarray], tests: Sequence[np.ndarray]) -> float | None:
        """FID between the set of references and the set of test images (None if unavailable)."""
        if not self.fid_ready:
            return None
        if len(refs) < 2 or len(tests) < 2:
            return None
        import torch  # heavy: the CLI imports this module
        from torchmetrics.image.fid import FrechetInceptionDistance

        if self._fid_feature is not None:
            metric = FrechetInceptionDistance(feature=self._fid_feature)
        else:
            metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=self._fid_weights)
        metric = metric.to(self.device)
        bs = self.config.batch_size
        with torch.inference_mode():
            for real, imgs in ((True, refs), (False, tests)):
                for s in range(0, len(imgs), bs):
                    metric.update(_to_tensor(imgs[s : s + bs], self.device).to(torch.uint8), real=real)
            return float(metric.compute())
