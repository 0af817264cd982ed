"""Metric functions agree with direct library calls on the same image pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gensc.client.metrics import psnr_ssim
from gensc.evaluation.metrics import (
    METRICS,
    MS_SSIM_BETAS,
    MetricConfig,
    MetricSuite,
    ms_ssim_scales,
    parse_metric_names,
)


def _pair(size: int, seed: int = 0, noise: int = 25) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data
    from skimage.transform import resize

    ref = (resize(data.astronaut(), (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    test = np.clip(ref.astype(int) + rng.integers(-noise, noise + 1, ref.shape), 0, 255).astype(np.uint8)
    return ref, test


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float()


@pytest.fixture(scope="module")
def suite() -> MetricSuite:
    return MetricSuite(MetricConfig(names=("psnr", "ssim", "ms_ssim"), device="cpu"))


def test_pixel_metrics_match_direct_library_calls(suite):
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure,
        structural_similarity_index_measure,
    )
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio as tm_psnr,
    )

    ref, test = _pair(64)
    (got,) = suite.pairwise([ref], [test])
    x, y = _t(test), _t(ref)
    assert got["psnr_db"] == pytest.approx(float(tm_psnr(x, y, data_range=255.0)), abs=1e-4)
    # SSIM as Wang et al. 2004 define it: scikit-image with the settings its documentation gives
    # for matching them, and, from a second library, torchmetrics' map (same Gaussian window) over
    # the window positions inside the image (torchmetrics 1.9 also averages the reflected border)
    wang = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    wang = structural_similarity(ref, test, channel_axis=2, data_range=255, **wang)
    assert got["ssim"] == pytest.approx(wang, abs=1e-12)
    _, full = structural_similarity_index_measure(
        x.double(), y.double(), data_range=255.0, return_full_image=True
    )
    assert got["ssim"] == pytest.approx(float(full[..., 5:-5, 5:-5].mean()), abs=1e-6)
    # 64 px allows 3 MS-SSIM scales, with the first three standard weights renormalised
    betas = tuple(b / sum(MS_SSIM_BETAS[:3]) for b in MS_SSIM_BETAS[:3])
    direct = multiscale_structural_similarity_index_measure(x, y, data_range=255.0, betas=betas)
    assert got["ms_ssim"] == pytest.approx(float(direct), abs=1e-5)
    assert "3 of 5 scales" in suite.notes["ms_ssim"]


def test_report_json_and_gensc_eval_give_the_same_numbers_for_the_same_pair(suite, make_png):
    """One definition: the client's record (report.json) and the evaluation suite (results.json)."""
    from skimage.metrics import structural_similarity

    from gensc.client.send import _add_metrics

    ref, test = _pair(64, seed=3)
    rec = {"_png": make_png(test), "notes": [], "metrics": None}
    _add_metrics(rec, make_png(ref))
    (evaluated,) = suite.pairwise([ref], [test])
    assert rec["metrics"] == {"psnr_db": evaluated["psnr_db"], "ssim": evaluated["ssim"]}
    assert rec["metrics"] == psnr_ssim(ref, test)
    # not the 7x7 uniform window report.json used before
    uniform_7x7 = structural_similarity(ref, test, channel_axis=2, data_range=255)
    assert abs(rec["metrics"]["ssim"] - uniform_7x7) > 0.01


def test_five_scale_ms_ssim_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim

    s = MetricSuite(MetricConfig(names=("ms_ssim",)))
    ref, test = _pair(192, seed=1)
    (got,) = s.pairwise([ref], [test])
    assert got["ms_ssim"] == pytest.approx(float(ms_ssim(_t(test), _t(ref), data_range=255)), abs=2e-3)
    assert "ms_ssim" not in s.notes


def test_batches_give_the_same_numbers_as_single_pairs():
    s = MetricSuite(MetricConfig(names=("psnr", "ssim", "ms_ssim"), batch_size=2))
    pairs = [_pair(64, seed=i, noise=10 + 10 * i) for i in range(3)]
    batched = s.pairwise([p[0] for p in pairs], [p[1] for p in pairs])
    for (ref, test), b in zip(pairs, batched, strict=True):
        (one,) = s.pairwise([ref], [test])
        assert one == pytest.approx(b, abs=1e-5)


def test_ms_ssim_scales_and_too_small_images():
    assert [ms_ssim_scales(s) for s in (20, 44, 64, 90, 128, 176, 512)] == [0, 3, 3, 4, 4, 5, 5]
    s = MetricSuite(MetricConfig(names=("ms_ssim", "psnr")))
    ref, test = _pair(20)
    (got,) = s.pairwise([ref], [test])
    assert got["ms_ssim"] is None and got["psnr_db"] is not None
    assert "too small" in s.notes["ms_ssim"]


def test_unavailable_metrics_are_skipped_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no LPIPS backbone or Inception weights here
    monkeypatch.delenv("GENSC_CLIP_MODEL", raising=False)
    s = MetricSuite(MetricConfig(names=tuple(METRICS)))
    for key in ("lpips", "clip_score", "fid"):
        assert key not in s.available
        assert s.notes[key].startswith("skipped:")
    assert ("vsi" in s.available) != ("vsi" in s.notes)
    ref, test = _pair(64)
    (got,) = s.pairwise([ref], [test])
    assert set(got) == set(s.available)


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'psnrr'"):
        parse_metric_names("psnr,psnrr")
    assert parse_metric_names("all") == tuple(METRICS)
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        MetricSuite(MetricConfig(names=("lpips",), lpips_net="resnet"))
    with pytest.raises(ValueError, match="2 references but 1"):
        MetricSuite(MetricConfig(names=("psnr",))).pairwise([_pair(32)[0]] * 2, [_pair(32)[1]])


def test_clip_score_matches_torchmetrics_with_the_same_model(tiny_clip):
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    from gensc.evaluation.metrics import ClipFeatureTensors

    path = tiny_clip
    s = MetricSuite(MetricConfig(names=("clip",), clip_model=path))
    assert s.available == ("clip_score",), s.notes
    ref, test = _pair(64)
    got = s.pairwise([ref, ref], [test, test], ["a cat on a table", None])
    model, processor = CLIPModel.from_pretrained(path), CLIPProcessor.from_pretrained(path)
    direct = CLIPScore(model_name_or_path=lambda: (ClipFeatureTensors(model), processor))
    direct.update(torch.from_numpy(test).permute(2, 0, 1), "a cat on a table")
    assert got[0]["clip_score"] == pytest.approx(float(direct.compute()), abs=1e-4)
    assert got[1]["clip_score"] is None  # no caption, no score
    # the definition, by hand: 100 * max(cosine(image embedding, text embedding), 0)
    with torch.inference_mode():
        img = model.get_image_features(**processor(images=[test], return_tensors="pt")).pooler_output
        words = processor(text=["a cat on a table"], return_tensors="pt")
        txt = model.get_text_features(**words).pooler_output
    cos = float(torch.nn.functional.cosine_similarity(img, txt)[0])
    assert got[0]["clip_score"] == pytest.approx(100 * max(cos, 0.0), abs=1e-3)


def test_clip_model_that_is_not_on_disk_is_skipped(tmp_path):
    s = MetricSuite(MetricConfig(names=("clip",), clip_model=str(tmp_path / "nothing-here")))
    assert s.available == () and "could not be loaded from local files" in s.notes["clip_score"]


class _Features(torch.nn.Module):
    """A stand-in for Inception: per-channel means and spreads of a uint8 batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def test_fid_matches_torchmetrics_with_the_same_feature_network():
    from torchmetrics.image.fid import FrechetInceptionDistance

    s = MetricSuite(MetricConfig(names=("fid",)), fid_feature=_Features())
    pairs = [_pair(32, seed=i, noise=40) for i in range(12)]
    refs, tests = [p[0][::-1] if i % 2 else p[0] for i, p in enumerate(pairs)], [p[1] for p in pairs]
    got = s.fid(refs, tests)
    direct = FrechetInceptionDistance(feature=_Features())
    direct.update(torch.from_numpy(np.stack(refs)).permute(0, 3, 1, 2), real=True)
    direct.update(torch.from_numpy(np.stack(tests)).permute(0, 3, 1, 2), real=False)
    assert got == pytest.approx(float(direct.compute()), rel=1e-4, abs=1e-6)
    assert "not Inception" in s.notes["fid"]
