"""The README and docs/: every link resolves, the README's example prints what it says,
and the product carries no issue numbers."""

import contextlib
import io
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_resolves(doc):
    for target in links(doc):
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        assert dest.exists(), f"{doc.name}: {target} points at a missing file"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{doc.name}: {target}: no such heading in {dest.name}"


def test_the_link_check_sees_the_readme_links():
    assert {"docs/app.md", "docs/screenshots/zoom_compare.png", "CHANGELOG.md"} <= set(links(REPO / "README.md"))


def test_the_link_check_can_fail(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("# Title\n\nSee [x](missing.md) and [y](#nowhere).\n")
    assert links(bad) == ["missing.md", "#nowhere"]
    assert not (tmp_path / "missing.md").exists() and "nowhere" not in anchors(bad)
    assert slug("Checkpoints and their cards") == "checkpoints-and-their-cards"
    assert slug("Fig. 1, measured") == "fig-1-measured"


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    head = "\n".join(lines[:25])
    assert "streamlit run app.py" in head and "bash scripts/test.sh" in head
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()  # CI runs exactly the README's command


def test_no_issue_numbers_in_the_product():
    out = subprocess.run(["git", "grep", "-n", "-i", "-E", r"\bissues? [0-9]+\b", "--", "wsms_viz", "README.md", "docs",
                          "scripts", "benchmarks"], cwd=REPO, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    assert not out.stdout, out.stdout


@pytest.mark.skipif(not (REPO / "checkpoints" / "wsms_resnet20" / "card.json").is_file(),
                    reason="no shipped checkpoints")
def test_the_readme_example_prints_what_it_says(monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, flags=re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", text, flags=re.S).group(1)
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == shown
