"""Time per-stage attributions of one image (target: all stages within 2 s).

    python benchmarks/attribution_speed.py [--model wsms_resnet20] [--threads 1] [--repeats 5]

Prints the median and best wall time of :func:`wsms_viz.analysis.attribution.attribute_stages`
for every method on a random-init model (speed does not depend on the weights), after one
warm-up call. On a CPU shared with other jobs, ``--threads 1`` is usually faster than two
threads that wait on each other; the script reports the load average so numbers can be
read against it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsms_viz.analysis.attribution import attribute_stages  # noqa: E402
from wsms_viz.models import create_model  # noqa: E402

CASES = [
    ("integrated_gradients", {"n_steps": 32}),
    ("saliency", {}),
    ("grad_cam", {}),
    ("integrated_gradients", {"n_steps": 32, "smoothgrad_samples": 4}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wsms_resnet20")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    x = torch.randn(3, 32, 32)
    print(f"{args.model}, torch {torch.__version__}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'method':<52} {'median s':>9} {'best s':>8}")
    for method, kwargs in CASES:
        attribute_stages(model, x, method=method, **kwargs)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            attribute_stages(model, x, method=method, **kwargs)
            times.append(time.perf_counter() - t)
        label = method + "".join(f" {k}={v}" for k, v in kwargs.items())
        print(f"{label:<52} {statistics.median(times):9.3f} {min(times):8.3f}")


if __name__ == "__main__":
    main()
