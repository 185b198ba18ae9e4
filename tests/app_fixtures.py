"""What the app tests run on: random-init checkpoints and a tiny generated dataset, so
the suite passes on a fresh clone without ../shared or trained weights."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wsms_viz.app.catalog import CIFAR10_CLASSES
from wsms_viz.checkpoint import save_checkpoint
from wsms_viz.models import create_model


def make_checkpoint(directory: Path, name: str, seed: int, full_card: bool) -> None:
    """A random-init checkpoint through the one card writer. Both cards record one
    epoch or more, so the app shows them as trained; only ``full_card`` has the
    evaluator's curve and a three-epoch log."""
    torch.manual_seed(seed)
    model = create_model(name).eval()
    with torch.no_grad():
        model.fc.weight.mul_(10)  # peaky softmax, so the zoom visibly changes the answer
    card = {"classes": CIFAR10_CLASSES, "normalization": {"mean": [0.4914, 0.4822, 0.4465],
                                                          "std": [0.2470, 0.2435, 0.2616]},
            "input_size": [32, 32], "log": [{"epoch": 1}]}
    if full_card:
        card |= {
            "metrics": {"train_acc": 0.5, "val_acc": 0.4},
            "scale_robustness": {
                "zooms": [0.5, 1.0, 1.5, 2.0], "val_acc": [0.2, 0.4, 0.3, 0.25],
                "val_acc_ci": [[0.18, 0.22], [0.38, 0.42], [0.28, 0.32], [0.23, 0.27]],
                "tta": {"val_acc": [0.25, 0.41, 0.33, 0.3]},
                "vs_baseline": {"baseline": "resnet20",  # as python -m wsms_viz.evaluation.evaluate writes it
                                "at_zoom_1": {"diff": 0.012, "ci": [0.004, 0.02], "seed_aware_ci": [0.002, 0.022],
                                              "resolved": "yes"},
                                "mean": {"diff": -0.003, "ci": [-0.006, -0.001], "seed_aware_ci": [-0.008, 0.002],
                                         "resolved": "one seed only"}}},
            "log": [{"epoch": e, "lr": 0.1, "train_loss": 2 - e / 3, "train_acc": 0.2 * e, "val_loss": 2.1 - e / 3,
                     "val_acc": 0.18 * e, "images_per_s": 900.0, "time_s": 50.0 * e} for e in (1, 2, 3)],
        }
    save_checkpoint(directory / name, model, card)


def make_checkpoints(directory: Path, names=("resnet20", "wsms_resnet20", "ms_resnet20")) -> Path:
    """One random-init checkpoint per name in ``directory``; only wsms_resnet20's card is
    full (the evaluator's curve, so Scale robustness draws its chart). Returns ``directory``."""
    for i, name in enumerate(names):
        make_checkpoint(directory, name, i, full_card=name == "wsms_resnet20")
    return directory


def make_dataset(root: Path) -> Path:
    """The cifar10-jpeg layout in miniature: 20 files a class, of which the last 10%
    (4508.jpg, 4509.jpg) are the val split the gallery shows."""
    rng = np.random.default_rng(0)
    for cls in CIFAR10_CLASSES[:3]:
        (root / "train" / cls).mkdir(parents=True)
        for n in range(4490, 4510):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "train" / cls / f"{n:04d}.jpg")
    return root


# ---------------------------------------------------------------- the zoom page's HTML
# The zoom page draws its top-5 cards, top guesses and the network's input as HTML
# elements (one each), not markdown: these read them back for the AppTests.

def _html(at) -> list[str]:
    return [h.proto.body for h in at.get("html")]


def _text(fragment: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def top5(at) -> list[str]:
    """Each model's top-5 table (its HTML) on the zoom page, in the cards' order."""
    return [card.split("<table>", 1)[1].split("</table>", 1)[0]
            for body in _html(at) if body.startswith('<div class="wsms-top5">')
            for card in body.split('<div class="wsms-card">')[1:]]


def top5_heads(at) -> list[str]:
    """Each top-5 card's header as plain text: "wsms_resnet20 (stage 2 off) at 2.5x"."""
    return [_text(card.split("</p>", 1)[0])
            for body in _html(at) if body.startswith('<div class="wsms-top5">')
            for card in body.split('<div class="wsms-card">')[1:]]


def top1_lines(at) -> list[str]:
    """The first screen's top-guess lines (HTML), one per model."""
    return ['<div class="wsms-top1"' + line for body in _html(at) if body.startswith('<div class="wsms-top1"')
            for line in body.split('<div class="wsms-top1"')[1:]]


def input_captions(at) -> list[str]:
    """The caption under the network's input on the zoom page (plain text), once drawn."""
    return [_text(body.split("<figcaption>", 1)[1].split("</figcaption>", 1)[0])
            for body in _html(at) if body.startswith('<figure class="wsms-input">')]
