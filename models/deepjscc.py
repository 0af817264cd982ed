"""DeepJSCC: a learned joint source-channel code for images, SNR-adaptive (one model for a range
of SNRs), the baseline every analog scheme in the field is compared with.

Design: Bourtsoulatze, Burth Kurka & Gunduz, "Deep joint source-channel coding for wireless
image transmission" (IEEE TCCN 2019): a convolutional encoder whose last layer's outputs, power
normalised, *are* the channel symbols, and a mirrored decoder; PReLU activations. SNR adaptation
as in ADJSCC (Xu et al., IEEE TCSVT 2021): after each stage an attention-feature (AF) module
scales every channel by ``sigmoid(MLP([channel means, SNR dB]))``. Here the decoder also gets
the local SNR of each position after equalisation (one extra input plane), so it can discount
symbols a fade has buried.

Shapes: an image ``float [B, 3, H, W]`` in [0, 1] (H, W multiples of ``2 ** stages``) becomes
``float [B, C, H / 2**stages, W / 2**stages]``; those ``n = C H W / 4**stages`` reals are sent as
``n / 2`` complex symbols (gensc.channel.analog's pairing and unit-energy normalisation), so the
channel bandwidth ratio is ``CBR = C / (2 * 3 * 4**stages)``: with 3 stages (8x per side),
``C = 4, 8, 16`` give 1/96, 1/48, 1/24.

The decoder gets the equalised symbols ``s_hat`` and their noise variance ``no_eff`` (what
gensc.channel.analog delivers) and first takes the per-symbol LMMSE estimate
``s_hat / (1 + no_eff)`` (unit-energy symbols), so a symbol in a deep fade counts as ~0
instead of as a huge value.

Weights live in a folder: ``config.json`` (:class:`JSCCConfig`) and ``model.safetensors``
(fp16), with the training record ``training.json`` and ``training-log.txt``. The committed
models (``gensc train-jscc``, gensc.training.train_jscc) are under ``models/weights/deepjscc/``,
one folder per CBR (``cbr-1_48``: :func:`weights_dir`); :func:`from_pretrained` loads one by CBR
or by folder, from safetensors only.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CBRS",
    "cached",
    "for_code",
    "DeepJSCC",
    "JSCCConfig",
    "decode_values",
    "encode_image",
    "from_pretrained",
    "load",
    "save",
    "weights_dir",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_ROOT = Path(__file__).parent / "weights" / "deepjscc"
CBRS = ("1/96", "1/48", "1/24")  # the committed models
SNR_SCALE_DB = 20.0  # SNR inputs are divided by this (keeps them near [-0.25, 1])


@dataclass(frozen=True)
class JSCCConfig:
    """A DeepJSCC model's shape. ``channels``: reals per latent position (C); ``width``: feature
    channels; ``stages``: stride-2 stages (downsampling 2**stages per side); ``kernel``: conv size;
    ``af_hidden``: AF modules' hidden units (0: no SNR adaptation)."""

    channels: int = 8
    width: int = 64
    stages: int = 3
    extra_layers: int = 1  # stride-1 conv layers after the last stride-2 stage (each side)
    kernel: int = 5
    af_hidden: int = 16

    def __post_init__(self) -> None:
        checks = {
            "channels": (1, 256),
            "width": (4, 512),
            "stages": (1, 6),
            "extra_layers": (0, 8),
            "kernel": (1, 9),
            "af_hidden": (0, 256),
        }
        for name, (lo, hi) in checks.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"JSCCConfig.{name} must be an int in {lo}..{hi}, got {v!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"JSCCConfig.kernel must be odd, got {self.kernel}")

    @property
    def factor(self) -> int:
        """Downsampling per side."""
        return 2**self.stages

    @property
    def cbr(self) -> float:
        """Channel bandwidth ratio: complex channel uses per real source value, C / (2 * 3 * factor^2)."""
        return self.channels / (2 * 3 * self.factor**2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JSCCConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown JSCCConfig keys {unknown}; known: {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def for_cbr(cls, cbr: float, **kw: Any) -> JSCCConfig:
        """The config whose C gives exactly ``cbr`` (raises when no integer C does)."""
        stages = kw.get("stages", cls.stages)
        c = cbr * 2 * 3 * 4**stages
        if abs(c - round(c)) > 1e-9 or round(c) < 1:
            raise ValueError(
                f"CBR {cbr} needs C = {c:g} channels with {stages} stages; "
                f"CBRs on offer are k / {2 * 3 * 4**stages} for integer k"
            )
        return cls(channels=round(c), **kw)


class AFModule(nn.Module):
    """ADJSCC's attention feature module: ``x * sigmoid(W2 relu(W1 [mean_hw(x), snr]))``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width + 1, hidden), nn.ReLU(), nn.Linear(hidden, width), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        a = self.mlp(torch.cat([x.mean(dim=(2, 3)), snr[:, None]], dim=1))
        return x * a[:, :, None, None]


class _Stage(nn.Module):
    """conv (or transposed conv) -> PReLU -> AF."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, up: bool, af_hidden: int) -> None:
        super().__init__()
        if up and stride > 1:
            self.conv = nn.ConvTranspose2d(cin, cout, k, stride, k // 2, output_padding=stride - 1)
        else:
            self.conv = nn.Conv2d(cin, cout, k, stride, k // 2)
        self.act = nn.PReLU(cout)
        self.af = AFModule(cout, af_hidden) if af_hidden else None

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        return self.af(x, snr) if self.af is not None else x


class DeepJSCC(nn.Module):
    """``encode(x [B,3,H,W] in [0,1], snr_db [B]) -> z [B,C,h,w]`` (not yet power-normalised);
    ``decode(y [B,C,h,w], snr_map [B,1,h,w] dB, snr_db [B]) -> x_hat [B,3,H,W] in [0,1]``
    (``y``: the LMMSE symbol estimates as reals, see :meth:`receive`)."""

    def __init__(self, config: JSCCConfig = JSCCConfig()) -> None:
        super().__init__()
        self.config = c = config
        w, k, af = c.width, c.kernel, c.af_hidden
        enc = [_Stage(3, w, k, 2, False, af)]
        enc += [_Stage(w, w, k, 2, False, af) for _ in range(c.stages - 1)]
        enc += [_Stage(w, w, k, 1, False, af) for _ in range(c.extra_layers)]
        self.enc = nn.ModuleList(enc)
        self.enc_out = nn.Conv2d(w, c.channels, k, 1, k // 2)
        dec = [_Stage(c.channels + 1, w, k, 1, False, af)]
        dec += [_Stage(w, w, k, 1, False, af) for _ in range(c.extra_layers)]
        dec += [_Stage(w, w, k, 2, True, af) for _ in range(c.stages - 1)]
        self.dec = nn.ModuleList(dec)
        self.dec_out = nn.ConvTranspose2d(w, 3, k, 2, k // 2, output_padding=1)

    def check_image(self, x: torch.Tensor) -> None:
        f = self.config.factor
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"image must be [B, 3, H, W] with H, W multiples of {f}, got {list(x.shape)}")

    def encode(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        self.check_image(x)
        snr = snr_db.to(x.dtype) / SNR_SCALE_DB
        h = x * 2.0 - 1.0
        for stage in self.enc:
            h = stage(h, snr)
        return self.enc_out(h)

    def decode(self, y: torch.Tensor, snr_map: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        snr = snr_db.to(y.dtype) / SNR_SCALE_DB
        h = torch.cat([y, snr_map / SNR_SCALE_DB], dim=1)
        for stage in self.dec:
            h = stage(h, snr)
        return torch.sigmoid(self.dec_out(h))

    def receive(self, s_hat: torch.Tensor, no_eff: torch.Tensor, shape: tuple[int, ...]):
        """Equalised symbols ``complex [B, k]`` and their noise variance ``[B, k]`` -> the decoder's
        inputs ``(y [B, C, h, w], snr_map [B, 1, h, w] in dB)`` for latent ``shape`` (C, h, w)."""
        b = s_hat.shape[0]
        n = math.prod(shape)
        est = s_hat / (1.0 + no_eff)  # LMMSE estimate of a unit-energy symbol
        y = torch.view_as_real(est).reshape(b, -1)[:, :n].reshape(b, *shape)
        snr_sym = -10.0 * torch.log10(no_eff.clamp(1e-6, 1e6))
        snr_val = snr_sym.repeat_interleave(2, dim=1)[:, :n].reshape(b, *shape)
        return y, snr_val.mean(dim=1, keepdim=True)


def encode_image(
    model: DeepJSCC, image: np.ndarray, snr_db: float
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """uint8 [H, W, 3] -> (float32 [n] channel values with unit average energy per complex symbol
    (``sum v**2 = ceil(n / 2)``: gensc.channel.analog's normalisation), the code's shape (C, h, w)).
    ``snr_db``: the Es/N0 the encoder adapts to (the link's, as the sender knows it)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        z = model.encode(x, torch.tensor([float(snr_db)]))
    v = z[0].numpy().astype(np.float64).ravel()
    a = math.sqrt(float(np.dot(v, v)) / -(-v.size // 2))
    if not a > 0:
        raise ValueError("the encoder produced an all-zero code: nothing to send")
    return (v / a).astype(np.float32), tuple(int(d) for d in z.shape[1:])


def decode_values(
    model: DeepJSCC, values: np.ndarray, noise_var: np.ndarray, shape: tuple[int, int, int]
) -> np.ndarray:
    """The received values float32 [n] (n = C h w) and each symbol's complex noise variance after
    equalisation float32 [ceil(n / 2)] -> uint8 [8h, 8w, 3]. The decoder's SNR input is the mean
    of the symbols' SNRs in dB (the symbol-wise map goes in as well, see :meth:`DeepJSCC.receive`)."""
    n = math.prod(shape)
    if values.shape != (n,) or noise_var.shape != (-(-n // 2),):
        raise ValueError(
            f"a code of shape {list(shape)} needs {n} values and {-(-n // 2)} noise variances, "
            f"got {list(values.shape)} and {list(noise_var.shape)}"
        )
    pairs = np.zeros(2 * noise_var.size, np.float32)
    pairs[:n] = values
    s = torch.from_numpy(pairs.view(np.complex64).copy())[None]
    no = torch.from_numpy(np.asarray(noise_var, np.float32).copy())[None]
    with torch.no_grad():
        y, snr_map = model.receive(s, no, tuple(shape))
        snr = (-10.0 * torch.log10(no.clamp(1e-6, 1e6))).mean(dim=1)
        x = model.decode(y, snr_map, snr)
    return (x[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)


def save(model: DeepJSCC, folder: Path, *, dtype: torch.dtype = torch.float16) -> None:
    """``folder/config.json`` + ``folder/model.safetensors`` (weights stored as ``dtype``)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(model.config.to_dict(), indent=1) + "\n")
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME))


def load(folder: Path) -> DeepJSCC:
    """The model saved by :func:`save`, in float32 and eval mode."""
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"no {name} in {folder} (a DeepJSCC folder has {CONFIG_NAME}, {WEIGHTS_NAME})"
            )
    model = DeepJSCC(JSCCConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text())))
    state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS_NAME)).items()}
    model.load_state_dict(state)
    return model.eval()


def weights_dir(cbr: str | float | Fraction) -> Path:
    """The committed model folder for ``cbr`` (``"1/48"`` -> ``models/weights/deepjscc/cbr-1_48``);
    ValueError naming the CBRs on offer for any other."""
    try:
        frac = Fraction(cbr).limit_denominator(10_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"CBR must be a number or a fraction like 1/48, got {cbr!r}") from None
    name = f"{frac.numerator}/{frac.denominator}"
    if name not in CBRS:
        raise ValueError(f"no committed DeepJSCC model for CBR {name}; committed: {', '.join(CBRS)}")
    return WEIGHTS_ROOT / f"cbr-{frac.numerator}_{frac.denominator}"


@functools.lru_cache(maxsize=8)
def cached(cbr: str) -> DeepJSCC:
    """The committed model for ``cbr``, loaded once per process. Shared by the threads of a
    sender or receiver: in eval mode, under ``torch.no_grad`` (as :func:`encode_image` and
    :func:`decode_values` call it) a forward pass changes nothing on the module."""
    return from_pretrained(cbr)


def for_code(channels: int, stages: int = JSCCConfig.stages) -> DeepJSCC:
    """The committed model whose code has ``channels`` reals per position (CBR = C / (6 * 4**stages))."""
    frac = Fraction(channels, 2 * 3 * 4**stages)
    return cached(f"{frac.numerator}/{frac.denominator}")


def from_pretrained(source: str | float | Fraction | Path = "1/48") -> DeepJSCC:
    """A DeepJSCC model in eval mode: ``source`` is a committed CBR (``"1/48"``, see :data:`CBRS`)
    or a folder written by :func:`save` (its ``config.json`` gives the shape)."""
    if isinstance(source, Path) or (isinstance(source, str) and Path(source).is_dir()):
        return load(Path(source))
    return load(weights_dir(source))
