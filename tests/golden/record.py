"""Record golden wire packets with the sender as it is (run once, before a refactor).

For each scikit-image photo and mode, the tiny sender's model outputs (caption, latent, key
mask, structured prompt) and the wire bytes it produced from them are saved; the golden test
feeds the same model outputs to the current sender and expects the same bytes. Model outputs
are recorded rather than recomputed so that the test checks the packet assembly only and does
not depend on a CPU's floating-point rounding.

    python tests/golden/record.py tests/golden
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
CASES = [(m, None) for m in ("text", "latent", "text+latent", "key+text", "paper", "classic")]
CASES += [("auto", 5.0), ("auto", 10.0)]


def main(out: str) -> None:
    from gensc.app.demo import sample_images
    from gensc.common.models import resolve_profile
    from gensc.common.packet import to_wire
    from gensc.sender.pipeline import SenderPipeline

    sender = SenderPipeline(resolve_profile("tiny"), device="cpu")
    rec: dict = {}
    cap, enc, seg, prm = sender.captioner, sender.encoder, sender.segmenter, sender.prompts

    class Rec:
        pass

    def captioner(image):
        rec["caption"] = cap(image)
        return rec["caption"]

    def encoder(image):
        z = enc(image)
        rec["latent"] = base64.b64encode(z.astype("<f4").tobytes()).decode()
        rec["latent_shape"] = list(z.shape)
        return z

    def segmenter(image, hw, fraction):
        m = seg(image, hw, fraction)
        rec["mask"] = m.astype(int).tolist()
        return m

    def prompts(image, region=None):
        p = prm(image, region=region)
        rec["prompt"] = p.render()
        rec["prompt_notes"] = list(p.notes)
        return p

    sender.captioner, sender.encoder, sender.segmenter, sender.prompts = (
        captioner,
        encoder,
        segmenter,
        prompts,
    )
    cases = []
    for name, data in sample_images(PHOTOS):
        for mode, snr in CASES:
            rec.clear()
            e = sender.encode(data, mode=mode, link=None if snr is None else {"snr_db": snr})
            header, body = to_wire(e.packet)
            cases.append(
                {
                    "photo": name,
                    "mode": mode,
                    "snr_db": snr,
                    "models": dict(rec),
                    "sent_mode": e.packet.mode,
                    "header": header.hex(),
                    "body": base64.b64encode(body).decode(),
                    "sizes": e.payload,
                    "notes": e.notes,
                }
            )
    path = Path(out) / "wire_v2.json"
    path.write_text(json.dumps({"profile": "tiny", "image_size": 128, "cases": cases}, indent=1) + "\n")
    print(f"{len(cases)} cases -> {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")
