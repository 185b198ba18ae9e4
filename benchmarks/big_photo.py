"""How fast the app answers for a big photo: `python benchmarks/big_photo.py`.

Makes real camera-sized JPEGs (50 MP: 8640x5760, and 24 MP: 6000x4000; a photo of a cat
scaled up with sensor-like noise, quality 90, so they stay under the 25 MB upload
limit), uploads each through the real app in Streamlit's AppTest (the upload widget,
the decoder, the zoom, every default model, the top-5 tables and the zoom animation) and
prints:

1. upload -> first top-5: the first whole-script run after the upload [target < 1 s];
2. per centre move: a run after moving the zoom centre (the photo is already decoded)
   [target < 0.3 s];
3. of that centre move, the part that depends on the photo, timed alone: the square
   crop, the 26 zoom steps and the thumbnail (the rest, every model's sweep and the
   zoom animation, costs the same for a 32x32 image);
4. the app process's peak resident memory (the JPEGs are made in a child process, so
   making them does not count).

It uses the checkpoints in --checkpoints (the repository's by default). Figures only,
no pass/fail; other jobs on the machine slow every figure down.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = {"50 MP": (8640, 5760), "24 MP": (6000, 4000)}


def make_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A photo-like JPEG: the app's sample cat scaled to ``width x height``, plus noise."""
    import numpy as np
    from PIL import Image

    from wsms_viz.app.images import load_sample

    cat = Image.fromarray(load_sample("chelsea (a cat)").pixels).resize((width, height), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    a = np.asarray(cat, dtype=np.int16)
    a = np.clip(a + rng.normal(0, 4, a.shape[:2] + (1,)).astype(np.int16), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def time_upload(data: bytes, name: str, moves: int) -> tuple[float, list[float]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    assert not at.exception, at.exception
    at.sidebar.radio(key="source").set_value("Upload your own").run()
    at.sidebar.file_uploader(key="upload").upload(name, data, "image/jpeg")
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception and not at.sidebar.error, (at.exception, [e.value for e in at.sidebar.error])
    assert any(h.proto.body.startswith('<div class="wsms-top5">') for h in at.get("html")), "no top-5 on the page"
    per_move = []
    for i in range(moves):
        at.sidebar.slider(key="cx").set_value(round(0.1 + 0.8 * ((i * 0.37 + 0.2) % 1), 2))
        t = time.perf_counter()
        at.run()
        per_move.append(time.perf_counter() - t)
        assert not at.exception, at.exception
    return first, per_move


def photo_work(data: bytes, moves: int) -> float:
    """Median time of the photo-dependent part of one centre move (see the docstring)."""
    from wsms_viz.app import predict
    from wsms_viz.app.framing import frame, network_inputs
    from wsms_viz.app.images import decode_image, encode

    pixels = decode_image(data, "photo.jpg").pixels
    times = []
    for i in range(moves):
        t = time.perf_counter()
        center = (0.5, round(0.1 + 0.8 * i / max(moves - 1, 1), 2))
        network_inputs(pixels, frame(pixels.shape, center), predict.ZOOMS)
        encode(pixels, 360, "JPEG")
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints")
    ap.add_argument("--moves", type=int, default=5, help="centre moves timed per photo")
    ap.add_argument("--make", nargs=3, metavar=("PATH", "W", "H"), help=argparse.SUPPRESS)  # the child's job
    args = ap.parse_args()
    if args.make:
        Path(args.make[0]).write_bytes(make_jpeg(int(args.make[1]), int(args.make[2])))
        return
    os.environ["WSMS_CHECKPOINTS"] = str(args.checkpoints)
    print(f"checkpoints: {args.checkpoints.name}/; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (other jobs slow every figure down)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (w, h) in SIZES.items():
            path = Path(tmp) / f"big_{w}x{h}.jpg"
            subprocess.run([sys.executable, __file__, "--make", str(path), str(w), str(h)], check=True)
            data = path.read_bytes()
            first, moves = time_upload(data, path.name, args.moves)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{label} JPEG ({w}x{h}, {len(data) / 2**20:.1f} MB): upload -> first top-5 {first:.2f} s "
                  f"[target < 1 s]; per centre move: median {statistics.median(moves):.2f} s, "
                  f"max {max(moves):.2f} s [target < 0.3 s], of which the photo's part "
                  f"{photo_work(data, args.moves):.3f} s; peak memory so far {peak:.0f} MB")


if __name__ == "__main__":
    main()
