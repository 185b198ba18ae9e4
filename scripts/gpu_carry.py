"""Carry training runs from one device session to the next.

A device session gets the repository's tracked files plus up to 8 carried ignored paths
(64 MiB in all) and returns at most 8 files of 16 MiB each (64 MiB in all) from $OUT;
nothing else survives it. So the state travels in the ignored folder ``.carry/``:

* ``.carry/cifar10-jpeg.tar.xz``: the data (``make-data``: 46 MB of JPEGs are 15 MiB
  as one xz stream, every file's identical JPEG header compressed away);
* ``.carry/runs.tar``: what the last session returned, for each run either its
  ``resume.pt`` (unfinished) or its checkpoint (finished), and ``log.tsv``. Not
  compressed: float32 weights and momentum shrink by 10% under xz, which is not worth
  the seconds at the end of a session (a ResNet-110 state is 13.5 MiB).

On the device (scripts/gpu_session.sh): ``unpack-data`` and ``unpack`` before training,
``pack`` after, which writes ``carry.json`` and ``runs.tar.NN`` parts into $OUT. Back
here: ``collect FILES_AT`` checks the parts against ``carry.json``, joins them into
``.carry/runs.tar`` and unpacks a copy into ``runs/gpu`` to look at. ``budget``
says whether the next session's carry fits.

    python3 scripts/gpu_carry.py make-data            # once: .carry/cifar10-jpeg.tar.xz
    python3 scripts/gpu_carry.py budget               # before each session
    python3 scripts/gpu_carry.py collect /path/to/files_at   # after each session
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 2**20
CARRY_LIMIT = 64 * MIB  # tracked files + carried paths
OUT_LIMIT = 64 * MIB  # everything returned from $OUT
OUT_FILE_LIMIT = 16 * MIB
OUT_MAX_FILES = 8
PART = 15 * MIB  # under OUT_FILE_LIMIT with room to spare
MANIFEST = "carry.json"
SESSION_LOG = "session.log"  # gpu_session.sh's own output, the other file it returns
RUNS_ARCHIVE = "runs.tar"
DATA_ARCHIVE = "cifar10-jpeg.tar.xz"
FIXED_MTIME = 1_577_836_800  # 2020-01-01: the same archive bytes from the same files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def _extract(archive: Path, dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        names = tar.getnames()
        if hasattr(tarfile, "data_filter"):  # refuses absolute paths, "..", links out, devices
            tar.extractall(dest, filter="data")
        else:
            if any(n.startswith("/") or ".." in Path(n).parts for n in names):
                raise SystemExit(f"{archive}: a member outside its folder; not extracted")
            tar.extractall(dest)
    return names


# --- what a session returns ---------------------------------------------------------------

def run_files(runs: Path) -> list[tuple[int, str]]:
    """The files of ``runs`` worth carrying, as (priority, path relative to ``runs``);
    a lower priority is kept first when space runs out. A finished run (its card is
    there) needs its checkpoint, not its resume state; proof runs are redone anyway."""
    keep = []
    for d in sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(("proof", "."))):
        if (d / "card.json").is_file() and (d / "model.safetensors").is_file():
            keep += [(0, f"{d.name}/model.safetensors"), (0, f"{d.name}/card.json")]
        elif (d / "resume.pt").is_file():
            keep.append((1, f"{d.name}/resume.pt"))
        if (d / "log.tsv").is_file():
            keep.append((2, f"{d.name}/log.tsv"))
    keep += [(3, p.name) for p in sorted(runs.glob("*.log"))]
    return keep


def _epochs(runs: Path, name: str) -> int:
    log = runs / name / "log.tsv"
    return max(0, len(log.read_text().splitlines()) - 1) if log.is_file() else 0


def pack(runs: Path, out: Path, part: int = PART, max_files: int = OUT_MAX_FILES,
         limit: int = OUT_LIMIT) -> dict:
    """Packs the runs into ``out``: ``runs.tar.00``, ``.01`` ... (each at most
    ``part`` bytes) and ``carry.json``, leaving room for ``session.log``; returns the
    manifest. Files that would not fit are left out, lowest priority first
    (:func:`run_files`), and named in the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    budget = min(limit - 2 * MIB, (max_files - 2) * part)  # two files: the manifest and the session log
    chosen, left_out, total = [], [], 0
    for _, rel in sorted(run_files(runs), key=lambda t: t[0]):
        size = (runs / rel).stat().st_size
        size += 1024  # its tar header and padding
        if total + size > budget:
            left_out.append(rel)
            continue
        chosen.append(rel)
        total += size
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in sorted(chosen):
            info = tar.gettarinfo(runs / rel, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(runs / rel, "rb") as f:
                tar.addfile(info, f)
    data = buf.getvalue()
    parts = []
    for i in range(0, max(1, len(data)), part):
        name = f"{RUNS_ARCHIVE}.{i // part:02d}"
        (out / name).write_bytes(data[i:i + part])
        parts.append({"name": name, "bytes": len(data[i:i + part]),
                      "sha256": hashlib.sha256(data[i:i + part]).hexdigest()})
    names = sorted({rel.split("/")[0] for rel in chosen if "/" in rel})
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parts": parts,
        "runs": {n: {"finished": f"{n}/card.json" in chosen, "epochs": _epochs(runs, n)} for n in names},
        "files": sorted(chosen),
        "left_out": left_out,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def unpack(carry: Path, runs: Path) -> list[str]:
    """Unpacks ``carry/runs.tar`` (what the last session returned) into ``runs``."""
    archive = carry / RUNS_ARCHIVE
    if not archive.is_file():
        return []
    return _extract(archive, runs)


def collect(files_at: Path, carry: Path, runs: Path | None = None) -> dict:
    """After a session: checks the returned parts against ``carry.json``, joins them into
    ``carry/runs.tar`` (the next session's carry) and, if ``runs`` is given, unpacks
    a copy there. Raises SystemExit naming a missing or changed part."""
    manifest = json.loads((files_at / MANIFEST).read_text())
    data = bytearray()
    for p in manifest["parts"]:
        path = files_at / p["name"]
        if not path.is_file():
            raise SystemExit(f"{path}: missing (the session returned {len(manifest['parts'])} parts)")
        chunk = path.read_bytes()
        if hashlib.sha256(chunk).hexdigest() != p["sha256"]:
            raise SystemExit(f"{path}: its sha256 does not match {MANIFEST}")
        data += chunk
    carry.mkdir(parents=True, exist_ok=True)
    tmp = carry / f".{RUNS_ARCHIVE}.tmp"
    tmp.write_bytes(bytes(data))
    os.replace(tmp, carry / RUNS_ARCHIVE)
    (carry / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if runs is not None:
        _extract(carry / RUNS_ARCHIVE, runs)
        if (files_at / SESSION_LOG).is_file():
            (runs / SESSION_LOG).write_bytes((files_at / SESSION_LOG).read_bytes())
    return manifest


# --- the data -----------------------------------------------------------------------------

def make_data(src: Path, carry: Path) -> Path:
    """``carry/cifar10-jpeg.tar.xz`` from the folder ``src``, the same bytes every time."""
    carry.mkdir(parents=True, exist_ok=True)
    dest = carry / DATA_ARCHIVE
    tmp = carry / f".{DATA_ARCHIVE}.tmp"
    files = sorted(p for p in src.rglob("*") if p.is_file())
    with lzma.open(tmp, "wb", preset=6) as xz, tarfile.open(fileobj=xz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in files:
            info = tarfile.TarInfo(f"{src.name}/{p.relative_to(src).as_posix()}")
            info.size, info.mtime, info.mode = p.stat().st_size, FIXED_MTIME, 0o644
            with open(p, "rb") as f:
                tar.addfile(info, f)
    os.replace(tmp, dest)
    return dest


def unpack_data(carry: Path, source: str) -> str:
    """Makes the folder of ``source`` (``imagefolder:PATH``) exist: a folder that is
    there already is used as it is, else the carried archive is unpacked into PATH's
    parent (its top folder must be PATH's name). Returns what happened."""
    kind, _, path = source.partition(":")
    if kind != "imagefolder":
        raise SystemExit(f"the carried data is an imagefolder: source, not {source!r}")
    folder = Path(path)
    if folder.is_dir():
        return f"{folder}: there already"
    archive = carry / DATA_ARCHIVE
    if not archive.is_file():
        raise SystemExit(f"{folder}: not here, and no {archive} to unpack it from (make-data)")
    with tarfile.open(archive, "r:xz") as tar:
        top = {n.split("/")[0] for n in tar.getnames()}
    if top != {folder.name}:
        raise SystemExit(f"{archive} holds {sorted(top)}, not {folder.name}/")
    try:
        _extract(archive, folder.parent)
    except OSError as e:
        raise SystemExit(f"cannot unpack the data into {folder.parent} ({e.strerror or e}); "
                         "point DATA at a writable place (the runs' identity includes it)") from None
    return f"{folder}: unpacked from {archive}"


# --- the budget ---------------------------------------------------------------------------

def tracked_bytes(repo: Path = REPO) -> int:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return sum((repo / n).stat().st_size for n in out.decode().split("\0") if n and (repo / n).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def budget(carry: Path, repo: Path = REPO, limit: int = CARRY_LIMIT) -> tuple[bool, str]:
    tracked, carried = tracked_bytes(repo), folder_bytes(carry)
    lines = [f"tracked files {tracked / MIB:6.1f} MiB"]
    lines += [f"{p.relative_to(carry.parent)!s:<28}{p.stat().st_size / MIB:6.1f} MiB"
              for p in sorted(carry.rglob("*")) if p.is_file()] if carry.is_dir() else []
    total = tracked + carried
    ok = total <= limit
    lines.append(f"total {total / MIB:.1f} MiB of {limit / MIB:.0f} MiB: "
                 + ("fits" if ok else f"{(total - limit) / MIB:.1f} MiB too much"))
    return ok, "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--carry", type=Path, default=REPO / ".carry", help="the carried folder (default: .carry)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("make-data", help="pack the data folder into the carry")
    s.add_argument("--src", type=Path, default=REPO.parent / "shared" / "datasets" / "cifar10-jpeg")
    s = sub.add_parser("unpack-data", help="(device) make the data folder exist")
    s.add_argument("--data", default="imagefolder:../shared/datasets/cifar10-jpeg")
    s = sub.add_parser("unpack", help="(device) unpack the carried runs")
    s.add_argument("--runs", type=Path, default=Path("runs/gpu"))
    s = sub.add_parser("pack", help="(device) pack the runs into OUT")
    s.add_argument("--runs", type=Path, default=Path("runs/gpu"))
    s.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    s = sub.add_parser("collect", help="turn what a session returned into the next carry")
    s.add_argument("files_at", type=Path)
    s.add_argument("--runs", type=Path, default=REPO / "runs" / "gpu", help="where to unpack a copy to look at")
    sub.add_parser("budget", help="does the next session's carry fit?")
    args = p.parse_args(argv)
    if args.cmd == "make-data":
        dest = make_data(args.src, args.carry)
        print(f"{dest}: {dest.stat().st_size / MIB:.1f} MiB")
    elif args.cmd == "unpack-data":
        print(unpack_data(args.carry, args.data))
    elif args.cmd == "unpack":
        names = unpack(args.carry, args.runs)
        print(f"unpacked {len(names)} file(s) into {args.runs}" if names else "no carried runs")
    elif args.cmd == "pack":
        m = pack(args.runs, args.out)
        size = sum(x["bytes"] for x in m["parts"])
        print(f"packed {len(m['files'])} file(s) of {len(m['runs'])} run(s) into {len(m['parts'])} part(s), "
              f"{size / MIB:.1f} MiB" + (f"; LEFT OUT (no room): {', '.join(m['left_out'])}" if m["left_out"] else ""))
        for name, r in m["runs"].items():
            print(f"  {name}: {'finished' if r['finished'] else 'unfinished'}, {r['epochs']} epoch(s)")
    elif args.cmd == "collect":
        m = collect(args.files_at, args.carry, args.runs)
        print(f"{args.carry / RUNS_ARCHIVE}: {len(m['files'])} file(s) of {len(m['runs'])} run(s); "
              f"a copy in {args.runs}")
        for name, r in m["runs"].items():
            print(f"  {name}: {'finished' if r['finished'] else 'unfinished'}, {r['epochs']} epoch(s)")
        ok, text = budget(args.carry)
        print(text)
    elif args.cmd == "budget":
        ok, text = budget(args.carry)
        print(text)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
