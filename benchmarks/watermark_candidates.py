"""How the watermark engine was chosen: candidates measured on the same pictures and transforms.

    taskset -c 1 .venv/bin/python benchmarks/watermark_candidates.py [--size 1024] [--n 6]

Candidates: Tutela's tiled engine always; ``invisible-watermark``'s dwtDctSvd and rivaGan when
that package is installed (it is not a dependency: it pulls in torch, and rivaGan's ONNX
model ships inside its wheel). Each candidate embeds 32 bits (theirs) or the 64-bit
key+CRC word (ours); a read counts only when every bit is right. Results from this machine
are in docs/provenance.md.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from trace_bench import TRANSFORMS, natural_images

from tutela.provenance.tiled import TiledEngine

Embed = Callable[[np.ndarray], np.ndarray]
Read = Callable[[np.ndarray], bool]


def _ours() -> tuple[Embed, Read]:
    engine, key = TiledEngine(), 0x5A5A_1234_77

    return (lambda rgb: engine.embed(rgb, key)), (lambda rgb: engine.read(rgb).key == key)


def _imwatermark(method: str) -> tuple[Embed, Read] | None:
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    payload = bytes([0xA5, 0x3C, 0x5A, 0x96])
    if method == "rivaGan":
        WatermarkEncoder.loadModel()
        WatermarkDecoder.loadModel()

    def embed(rgb: np.ndarray) -> np.ndarray:
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", payload)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return np.ascontiguousarray(enc.encode(bgr, method)[..., ::-1])

    def read(rgb: np.ndarray) -> bool:
        try:
            out = WatermarkDecoder("bytes", 32).decode(np.ascontiguousarray(rgb[..., ::-1]),
                                                       method)
        except Exception:  # their decoder raises on sizes it cannot handle
            return False
        return out == payload

    return embed, read


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--n", type=int, default=6, help="how many pictures")
    args = parser.parse_args()
    pictures = list(natural_images().values())[: args.n]
    candidates = {"tutela tiled": _ours()}
    for method in ("dwtDctSvd", "rivaGan"):
        found = _imwatermark(method)
        if found is None:
            print(f"{method}: invisible-watermark not installed, skipped")
        else:
            candidates[method] = found
    for name, (embed, read) in candidates.items():
        ok = dict.fromkeys(TRANSFORMS, 0)
        t_embed: list[float] = []
        psnr: list[float] = []
        for pic in pictures:
            rgb = np.asarray(pic.resize((args.size, args.size)))
            t0 = time.process_time()
            marked = embed(rgb)
            t_embed.append(time.process_time() - t0)
            mse = np.mean((marked.astype(float) - rgb) ** 2)
            psnr.append(10 * np.log10(255**2 / max(mse, 1e-9)))
            img = Image.fromarray(marked)
            buf = io.BytesIO()
            img.save(buf, "PNG")
            for tname, transform in TRANSFORMS.items():
                data = transform(img, buf.getvalue())
                found = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                ok[tname] += read(found)
        print(f"\n{name}: PSNR {np.mean(psnr):.1f} dB, embed CPU {1000 * np.median(t_embed):.0f}"
              f" ms at {args.size}²")
        for tname, count in ok.items():
            print(f"  {tname:28s} {count}/{len(pictures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
