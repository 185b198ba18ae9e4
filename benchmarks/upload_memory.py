"""What one hostile upload costs the server: `python benchmarks/upload_memory.py`.

For each case it writes the file once (into a temporary folder), then starts a fresh
Python process that imports the app's decoder (``wsms_viz.app.images.decode_image``,
the function the upload widget's bytes go through), holds the file's bytes as the
server does, and decodes them (two threads at once for the ``x2`` cases, as two
visitors uploading together). It prints:

* the extra peak resident memory over that process just before decoding (``VmHWM``
  minus ``VmRSS``, with the high-water mark reset first through ``/proc/self/clear_refs``):
  what the decode adds to a server, Pillow's own buffers included;
* the CPU seconds the decode took (all threads of the process);
* what came back: the working copy's shape or the message.

``--server`` measures the real app instead: it starts ``streamlit run app.py`` (through
``scripts/appserver.py``), opens the page in headless Chromium (Debian's, driven by
Playwright), and for each case uploads the file through the real file input (two
browser sessions at once for ``x2``), waits until the server's CPU goes quiet (the page
decoded the upload and ran the models on it), and prints the server's extra peak RSS over
its resident memory just before the upload, and the server's CPU seconds. ``small-png``
(a 64x48 photo) is the floor any upload costs: the predictions and figures for it.

``--src DIR`` uses another checkout instead (its ``wsms_viz``, and with ``--server`` its
``app.py``), e.g. one of ``main`` made with ``git archive main | tar -x -C /tmp/main_src``,
to compare before and after on the same machine. Linux only (``/proc``). Figures only,
no pass/fail.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SIDE = 7000  # 49 MP: just under the app's 50-million-pixel limit


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _float_tiff() -> bytes:  # the probe's file
    return _save(Image.fromarray(np.zeros((SIDE, SIDE), np.float32), "F"), "TIFF", compression="tiff_adobe_deflate")


def _png16() -> bytes:
    a = np.zeros((SIDE, SIDE), np.uint16)
    a[::7] = 60000
    return _save(Image.fromarray(a), "PNG")


def _int32_tiff() -> bytes:
    a = np.zeros((SIDE, SIDE), np.int32)
    a[::5] = -70000
    return _save(Image.fromarray(a, "I"), "TIFF", compression="tiff_adobe_deflate")


def _rgba_png() -> bytes:
    im = Image.new("RGBA", (SIDE, SIDE), (200, 100, 50, 128))
    im.paste((0, 0, 255, 255), (0, 0, SIDE // 2, SIDE))
    return _save(im, "PNG")


def _palette_png() -> bytes:
    im = Image.new("P", (SIDE, SIDE), 0)
    im.putpalette([255, 0, 0] + [0, 255, 0] * 255)
    im.paste(1, (0, 0, SIDE // 2, SIDE))
    return _save(im, "PNG", transparency=1)


def _cmyk_tiff() -> bytes:
    return _save(Image.new("CMYK", (SIDE, SIDE), (0, 255, 255, 0)), "TIFF", compression="tiff_adobe_deflate")


def _rgb_png() -> bytes:
    return _save(Image.new("RGB", (SIDE, SIDE), (10, 200, 30)), "PNG")


def _line_png() -> bytes:  # 49,000,000 x 1: no more pixels than the limit, but one row
    return _save(Image.new("RGB", (49_000_000, 1), (9, 9, 9)), "PNG")


def _small_png() -> bytes:
    return _save(Image.new("RGB", (64, 48), (200, 30, 30)), "PNG")


# name -> (file maker, how many decodes at once)
CASES = {
    "small-png": (_small_png, 1),
    "float-tiff-7000": (_float_tiff, 1),
    "png16-7000": (_png16, 1),
    "int32-tiff-7000": (_int32_tiff, 1),
    "rgba-png-7000": (_rgba_png, 1),
    "palette-alpha-png-7000": (_palette_png, 1),
    "cmyk-tiff-7000": (_cmyk_tiff, 1),
    "rgb-png-7000": (_rgb_png, 1),
    "line-49000000x1": (_line_png, 1),
    "float-tiff-7000 x2": (_float_tiff, 2),
    "png16-7000 x2": (_png16, 2),
}

# Run in the child: bytes in memory first (the server holds the upload), then the decode.
CHILD = r"""
import gc, json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from wsms_viz.app.images import ImageError, decode_image

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

data = Path(sys.argv[2]).read_bytes()
copies = int(sys.argv[3])
gc.collect()
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to the current RSS
cpu = time.process_time()
out = []

def one():
    try:
        out.append(list(decode_image(data, "upload").pixels.shape))
    except ImageError as e:
        out.append(str(e)[:90])

threads = [threading.Thread(target=one) for _ in range(copies)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"extra_mb": status("VmHWM") - before, "cpu_s": time.process_time() - cpu,
                  "idle_mb": before, "result": out[0]}))
"""


def measure(src: Path, path: Path, copies: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(src), str(path), str(copies)],
                         capture_output=True, text=True, timeout=900)
    if run.returncode:
        return {"extra_mb": float("nan"), "cpu_s": float("nan"), "idle_mb": float("nan"),
                "result": f"child failed: {run.stderr.strip().splitlines()[-1][:90]}"}
    return json.loads(run.stdout.strip().splitlines()[-1])


# --- the real server ------------------------------------------------------------------

def _proc_status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quiet(pid: int, settle: float = 3.0, timeout: float = 300.0) -> None:
    """Returns once the server has used no CPU to speak of for ``settle`` seconds."""
    start, last, since = time.time(), _cpu(pid), time.time()
    while time.time() - start < timeout:
        time.sleep(0.5)
        now = _cpu(pid)
        if now - last > 0.05:
            last, since = now, time.time()
        elif time.time() - since >= settle:
            return


def _open(browser, url: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600})
    pg = ctx.new_page()
    pg.goto(url, timeout=300_000)
    pg.get_by_text("Upload your own").click(timeout=300_000)
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').wait_for(state="attached", timeout=300_000)
    return ctx, pg


def measure_server(src: Path, cases: list[str], tmp: Path) -> None:
    sys.path.insert(0, str(src / "scripts"))
    import appserver  # the checkout's own scripts/appserver.py: it serves that checkout's app.py
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "WSMS_CHECKPOINTS": str(REPO / "checkpoints")}  # the same models for either checkout
    port = appserver.free_port()
    server = appserver.start_server(port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=appserver.chromium_path(), args=appserver.CHROMIUM_ARGS)
            for name in cases:
                make, copies = CASES[name]
                path = tmp / f"{make.__name__}{'.tif' if 'tiff' in name else '.png'}"
                if not path.exists():
                    path.write_bytes(make())
                sessions = [_open(browser, url) for _ in range(copies)]
                _quiet(server.pid)
                idle = _proc_status(server.pid, "VmRSS")
                Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
                cpu = _cpu(server.pid)
                for _, pg in sessions:
                    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
                time.sleep(2)
                _quiet(server.pid)
                extra, used = _proc_status(server.pid, "VmHWM") - idle, _cpu(server.pid) - cpu
                said = sessions[0][1].locator('[data-testid="stAlert"]').all_inner_texts()
                said = next((t for t in said if path.name in t or "worked on" in t or "MB" in t),
                            said[0] if said else "(no message)")
                print(f"{name:<24} {path.stat().st_size / 1e6:>8.2f} {idle:>8.0f} {extra:>14.0f} {used:>6.2f}  "
                      f"{' '.join(said.split())[:90]}", flush=True)
                for ctx, _ in sessions:
                    ctx.close()
            browser.close()
    finally:
        appserver.stop(server)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", type=Path, default=REPO, help="the checkout whose wsms_viz is measured")
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--repeat", type=int, default=1, help="runs per case (each a fresh process); the max is shown")
    p.add_argument("--server", action="store_true", help="upload through the real app in Chromium instead")
    args = p.parse_args(argv)
    print(f"wsms_viz from {args.src}; python {sys.version.split()[0]}; Pillow {Image.__version__}; "
          f"{'the app server (streamlit run app.py), uploads from Chromium' if args.server else 'the decoder alone'}")
    print(f"{'case':<24} {'file MB':>8} {'idle MB':>8} {'extra peak MB':>14} {'CPU s':>6}  result")
    with tempfile.TemporaryDirectory() as tmp:
        if args.server:
            measure_server(args.src.resolve(), args.cases, Path(tmp))
            return
        files: dict = {}
        for name in args.cases:
            make, copies = CASES[name]
            if make not in files:
                files[make] = Path(tmp) / f"{make.__name__}.bin"
                files[make].write_bytes(make())
            runs = [measure(args.src, files[make], copies) for _ in range(args.repeat)]
            r = max(runs, key=lambda r: r["extra_mb"])
            print(f"{name:<24} {files[make].stat().st_size / 1e6:>8.2f} {r['idle_mb']:>8.0f} {r['extra_mb']:>14.0f} "
                  f"{r['cpu_s']:>6.2f}  {r['result']}", flush=True)


if __name__ == "__main__":
    main()
