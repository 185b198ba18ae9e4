"""Hostile cards, files and visitors: what one bad file or one busy visitor can do to
everybody else's app, and to the operator's command-line tools.

A card with a 5,001-digit integer (more than Python converts), a checkpoint that fails
with an error nobody foresaw, text from a card, an ``examples.json`` or an upload name
that is markdown, a card the evaluator cannot write, a negative ``--examples``, and a
visitor who clicks the heaviest analysis again and again. The browser side of the same
(what Chromium fetches, two visitors' sessions) is tests/test_e2e_hostile.py.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from app_fixtures import make_checkpoint, make_dataset
from streamlit.testing.v1 import AppTest
from tiny_data import make_imagefolder

from wsms_viz.app import catalog, navigation
from wsms_viz.cards import CheckpointError, loads_card
from wsms_viz.checkpoint import read_card, save_checkpoint
from wsms_viz.evaluation import evaluate as ev
from wsms_viz.models import create_model
from wsms_viz.zoom import CIFAR10_MEAN, CIFAR10_STD

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
PAGES = [str(p.path.relative_to(REPO)) for p in navigation.PAGES if p.key != "lesson"]
GOOD_CARD = REPO / "checkpoints" / "wsms_resnet20" / "card.json"


def huge_int_card(text: str) -> str:
    """The red team's card: a good one with a field holding a 5,001-digit integer."""
    return text.rstrip()[:-1] + ', "x": 1' + "0" * 5000 + "}"


# --- the card reader ----------------------------------------------------------------

def test_a_5001_digit_integer_is_a_checkpoint_error_naming_file_and_field():
    with pytest.raises(CheckpointError, match=r"^ckpt/card\.json: card field 'x' is an integer of 5,001 digits"):
        loads_card(huge_int_card(GOOD_CARD.read_text()), "ckpt/card.json")
    raw = json.loads(GOOD_CARD.read_text())
    nested = json.dumps(raw)[:-1] + ', "metrics2": {"a": [1, 1' + "0" * 5000 + "]}}"
    with pytest.raises(CheckpointError, match=r"card field 'metrics2\.a\[1\]'"):
        loads_card(nested)


@pytest.mark.parametrize("text", [
    b"\xff\xfe{\x00", b"\x80\x81", "{", '{"a": 1e999999}', "[" * 60 + "]" * 60, '{"model": "resnet20", "config": '
    '{"num_classes": 10}, "classes": [1, 2], "sha256": "' + "0" * 64 + '"}', "1" * 4301, 5, None, "null",
    '{"model": [], "config": {}, "classes": [], "sha256": ""}'],
    ids=["utf16-cut", "bad-utf8", "cut", "1e999999", "nested", "int-classes", "4301-digits", "int", "None", "null",
         "list-model"])
def test_every_parse_failure_is_a_checkpoint_error(text):
    with pytest.raises(CheckpointError, match=r"^where\.json: "):
        loads_card(text, "where.json")


def test_randomly_damaged_cards_only_ever_raise_checkpoint_error():
    # Bytes of a good card flipped, cut and repeated at random: whatever comes out is a card or a
    # CheckpointError, never another exception (which would reach a page as a traceback).
    good = GOOD_CARD.read_bytes()
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        b = bytearray(good)
        for _ in range(int(torch.randint(1, 6, (1,), generator=gen))):
            i = int(torch.randint(0, len(b), (1,), generator=gen))
            b[i] = int(torch.randint(0, 256, (1,), generator=gen))
        cut = int(torch.randint(len(b) // 2, len(b) + 1, (1,), generator=gen))
        try:
            loads_card(bytes(b[:cut]), "card.json")
        except CheckpointError as e:
            assert str(e).startswith("card.json: ")


# --- the app: one bad checkpoint beside good ones -------------------------------------

@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory):
    """Two good checkpoints, one whose card holds a 5,001-digit integer, one that fails to load
    with an error nobody foresaw (a RuntimeError from ``catalog.load``), and a dataset."""
    base = tmp_path_factory.mktemp("hostile")
    ckpts = base / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    make_checkpoint(ckpts, "wsms_resnet20", 2, full_card=True)
    make_checkpoint(ckpts, "ms_resnet20", 3, full_card=False)
    shutil.copytree(ckpts / "resnet20", ckpts / "resnet20_jitter")
    card = ckpts / "ms_resnet20" / "card.json"
    card.write_text(huge_int_card(card.read_text()))
    data = make_dataset(base / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA_ROOTS", f"tiny={data}")
        real_load = catalog.load

        def load(key, seed=0):
            if Path(key).name == "resnet20_jitter":
                raise RuntimeError(f"something nobody foresaw in {key}")
            return real_load(key, seed)

        mp.setattr(catalog, "load", load)
        yield base


def _texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "exception", "text", "code"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    parts += [str(o) for m in at.get("multiselect") for o in m.options]
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_one_bad_card_and_one_failing_checkpoint_leave_every_page_working(hostile_env, page):
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, at.exception[0].value
    models = at.multiselect(key="models")
    labels = models.options  # as the visitor reads them
    assert "ms_resnet20 (cannot load)" in labels and "resnet20_jitter (cannot load)" in labels
    assert "resnet20" in labels and "wsms_resnet20" in labels
    assert set(models.value) == {str(hostile_env / "checkpoints" / n) for n in ("resnet20", "wsms_resnet20")}
    text = _texts(at)
    assert "card field 'x' is an integer of 5,001 digits" in text
    assert "resnet20_jitter: cannot be loaded (an unexpected RuntimeError" in text
    assert str(hostile_env) not in text and "Traceback" not in text and "site-packages" not in text


def test_a_picked_checkpoint_that_fails_unexpectedly_is_an_error_line_not_a_traceback(hostile_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.multiselect(key="models").set_value([str(hostile_env / "checkpoints" / n)
                                            for n in ("resnet20", "resnet20_jitter")]).run()
    assert not at.exception, at.exception[0].value
    assert any("resnet20_jitter: cannot be loaded" in e.value for e in at.sidebar.error)
    assert len(at.multiselect(key="models").value) == 2
    assert str(hostile_env) not in _texts(at)


def test_the_app_hides_error_details_wherever_it_is_started_from(hostile_env):
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")
    AppTest.from_file(APP, default_timeout=120).run()
    assert config.get_option("client.showErrorDetails") == "none"


def test_no_traceback_reaches_a_visitor():
    # The narrowest setting that still says something went wrong: Streamlit's generic notice.
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    import appserver

    assert "--client.showErrorDetails" in appserver.SERVER_FLAGS
    assert appserver.SERVER_FLAGS[appserver.SERVER_FLAGS.index("--client.showErrorDetails") + 1] == "none"


# --- the evaluator --------------------------------------------------------------------

def _constant_checkpoint(directory, name, favourite):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[favourite] = 5.0
    save_checkpoint(directory, model, {"name": directory.name, "classes": ["ant", "bee", "cow", "dog"],
                                       "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)}})
    return directory


@pytest.fixture
def eval_setup(tmp_path):
    data = tmp_path / "data"
    make_imagefolder(data, classes=["ant", "bee", "cow", "dog"], per_class={"ant": 10, "bee": 10, "cow": 10,
                                                                          "dog": 10})
    base = _constant_checkpoint(tmp_path / "ckpts" / "base", "resnet20", 0)
    common = ["--data", f"imagefolder:{data}", "--cache-dir", str(tmp_path / "cache"), "--threads", "1",
              "--zooms", "1", "--resamples", "20"]
    return base, common


@pytest.fixture
def unwritable(tmp_path):
    """Makes a directory unwritable even for root (``chattr +i``), undone afterwards."""
    locked = []

    def lock(d: Path) -> None:
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
            locked.append(d)
        elif os.geteuid() != 0:
            d.chmod(0o555)
            locked.append(d)
        else:
            pytest.skip("root without chattr +i on this filesystem: nothing makes a folder unwritable")

    yield lock
    for d in locked:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)
        d.chmod(0o755)


def test_evaluator_says_in_one_line_which_card_it_cannot_write_and_exits_4(eval_setup, unwritable, capsys):
    base, common = eval_setup
    before = (base / "card.json").read_bytes()
    unwritable(base)
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), *common])
    err = capsys.readouterr().err
    assert e.value.code == 4, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: cannot write ") and "card.json" in err
    assert (base / "card.json").read_bytes() == before


def test_evaluator_names_the_examples_file_it_cannot_write(eval_setup, tmp_path, unwritable, capsys):
    base, common = eval_setup
    wsms = _constant_checkpoint(tmp_path / "ckpts" / "wsms", "wsms_resnet20", 1)
    out = tmp_path / "out"
    out.mkdir()
    unwritable(out)
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), str(wsms), *common, "--no-card", "--examples-out", str(out / "examples.json")])
    err = capsys.readouterr().err
    assert e.value.code == 4 and err.count("\n") == 1 and "examples.json" in err


@pytest.mark.parametrize("flag, value", [("--examples", "-5"), ("--resamples", "0"), ("--batch-size", "0"),
                                         ("--val-subset", "-1"), ("--threads", "0")])
def test_evaluator_refuses_a_negative_count_in_one_line(eval_setup, capsys, flag, value):
    base, common = eval_setup
    before = (base / "card.json").read_bytes()
    args = [str(base), *common]
    if flag in args:  # --threads is in common: replace it
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    with pytest.raises(SystemExit) as e:
        ev.main(args)
    err = capsys.readouterr().err
    lo = 0 if flag == "--examples" else 1
    assert e.value.code == 2 and err == f"error: {flag} must be {lo} or more, got {value}\n"
    assert (base / "card.json").read_bytes() == before


def test_evaluator_names_file_and_field_of_a_huge_integer(eval_setup, capsys):
    base, common = eval_setup
    card = base / "card.json"
    card.write_text(huge_int_card(card.read_text()))
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), *common])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "card.json: card field 'x' is an integer of 5,001 digits" in err
    with pytest.raises(CheckpointError):
        read_card(base)


# --- markdown from files and uploads --------------------------------------------------

EVIL = "evil.test"


def evil(what: str) -> str:
    """Markdown that makes a browser fetch ``http://evil.test/<what>.png`` when rendered."""
    return f"![{what}](http://{EVIL}/{what}.png)"


EVIL_DIR = "![d](http:\\\\evil.test\\dir.png)"  # no "/" in a folder name; a browser reads "\" as "/"


def hostile_tree(base: Path) -> tuple[Path, Path]:
    """Checkpoints whose folder name, card name, class names and baseline name are markdown
    images, an ``examples.json`` whose labels and file name are, and a dataset class folder."""
    ckpts = base / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    make_checkpoint(ckpts, "wsms_resnet20", 2, full_card=True)
    for name in ("resnet20", "wsms_resnet20"):
        card = json.loads((ckpts / name / "card.json").read_text())
        card["name"] = evil("cardname")
        card["classes"] = [evil(f"class{i}") for i in range(10)]
        if "scale_robustness" in card:
            card["scale_robustness"]["vs_baseline"]["baseline"] = evil("baseline")
        (ckpts / name / "card.json").write_text(json.dumps(card))
    shutil.copytree(ckpts / "resnet20", ckpts / EVIL_DIR)
    data = make_dataset(base / "data")
    shutil.copytree(data / "train" / "bird", data / "train" / "![f](http:\\\\evil.test\\folder.png)")
    (ckpts / "examples.json").write_text(json.dumps({
        "image_root": str(data / "train"), "baseline": evil("exbaseline"), "wsms": evil("exwsms"),
        "candidates": 2, "reverse_candidates": 0,
        "examples": [
            {"file": "bird/4500.jpg", "label": evil("exlabel"), "baseline": {"pred": evil("expred")},
             "wsms": {"pred": evil("exwsmspred")}},
            {"file": evil("exfile"), "label": "bird", "baseline": {"pred": "cat"}, "wsms": {"pred": "bird"}},
        ]}))
    return ckpts, data


@pytest.fixture(scope="module")
def evil_env(tmp_path_factory):
    ckpts, data = hostile_tree(tmp_path_factory.mktemp("evil"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA_ROOTS", f"tiny={data}")
        yield ckpts


# Elements whose texts the browser shows as plain characters (options of a selectbox or a
# multiselect, a chart's JSON, a table's cells): a hostile name there is harmless.
PLAIN_ELEMENTS = {"selectbox", "multiselect", "plotly_chart", "arrow_data_frame", "arrow_table", "dataframe",
                  "json", "text", "code", "file_uploader", "image", "imgs"}


def _strings(msg) -> list[str]:
    out = []
    for _, value in msg.ListFields():
        one = isinstance(value, str | bytes) or hasattr(value, "ListFields") or not hasattr(value, "__iter__")
        values = [value] if one else value
        for v in values:
            if isinstance(v, str):
                out.append(v)
            elif hasattr(v, "ListFields"):
                out += _strings(v)
    return out


def rendered(at) -> list[str]:
    """Every string of every element on the page (sidebar and main) that Streamlit renders as
    markdown: every string field of the element's message, the element types of
    :data:`PLAIN_ELEMENTS` left out, and an image's caption kept."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        stack += list(getattr(node, "children", {}).values())
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        if getattr(node, "type", None) in PLAIN_ELEMENTS:
            out += [i.caption for i in getattr(proto, "imgs", [])]  # an image's caption is markdown
            continue
        out += _strings(proto)
    return out


def assert_plain(at, where: str) -> str:
    """No rendered text holds the hostile markdown unescaped: after each backslash-escaped
    character is taken out, no text naming evil.test has a bracket, an angle bracket or an
    autolink left. Returns every text, for what a test expects to see."""
    import re

    texts = rendered(at)
    for t in texts:
        if EVIL in t:
            bare = re.sub(r"\\.", "", t)
            # The app's own HTML (the zoom page's top guesses, top-5 cards and input image):
            # its tags go, what a file put inside them must be escaped.
            bare = re.sub(r"</?(?:div|span|p|strong|table|thead|tbody|tr|th|td|code|figure|figcaption|img)"
                          r"(?: [^<>]*)?>", "", bare)
            assert not re.search(r"[\[\]<>]|https?://", bare), f"{where}: markdown from a file rendered: {t!r}"
    return "\n".join(texts)


@pytest.mark.slow
def test_names_and_labels_from_files_are_shown_as_plain_text_on_every_page(evil_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.multiselect(key="models").set_value([str(evil_env / n) for n in ("resnet20", "wsms_resnet20", EVIL_DIR)])
    at.run()
    assert not at.exception, at.exception[0].value
    seen = assert_plain(at, "zoom")
    assert "class" in seen and "\\[class" in seen and "\\[d\\]" in seen  # shown, escaped
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception[0].value)
        assert_plain(at, page)
    at.switch_page(PAGES[0]).run()
    at.sidebar.selectbox(key="data_class").set_value(at.sidebar.selectbox(key="data_class").options[-1]).run()
    assert_plain(at, "a dataset class folder named as markdown")
    at.sidebar.radio(key="source").set_value("Baseline wrong, WSMS right").run()
    assert not at.exception
    seen = assert_plain(at, "examples")
    assert "\\[exlabel\\]" in seen and "\\[exbaseline\\]" in seen
    at.sidebar.selectbox(key="example").set_value(at.sidebar.selectbox(key="example").options[1]).run()
    assert "\\[exfile\\]" in assert_plain(at, "an example whose file is not found")


@pytest.mark.slow
def test_an_upload_named_as_markdown_is_shown_as_plain_text(evil_env):
    from test_app import _png

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.sidebar.radio(key="source").set_value("Upload your own").run()
    at.sidebar.file_uploader(key="upload").upload(evil("up") + ".png", _png(), "image/png")
    at.run()
    assert not at.exception
    assert "\\[up\\]" in assert_plain(at, "a good upload")
    at.sidebar.file_uploader(key="upload").upload(evil("bad") + ".png", b"not an image at all" * 3, "image/png")
    at.run()
    assert not at.exception and at.sidebar.error
    assert "\\[bad\\]" in assert_plain(at, "a bad upload")
    for page in PAGES[1:3]:
        at.switch_page(page).run()
        assert_plain(at, page)


def test_the_plain_text_helper_leaves_no_markdown():
    from wsms_viz.app.plain import html, md

    for text in (evil("x"), "<img src=http://e/x.png>", "[a]: http://e/x.png", ":red[x] :material/home:", "$x$",
                 "&lt;img&gt;", "a\n\n# b", "| a | b |", "`code`", "**b** _i_ ~~s~~", "1. x", "- x", "> x"):
        out = md(text)
        bare = __import__("re").sub(r"\\.", "", out)
        assert not set("[]<>`*$|&~") & set(bare), (text, out)
        assert "\n" not in out and not out.startswith(("#", "-", ">", "1."))
    assert md("wsms_resnet20") == "wsms_resnet20" and md("chelsea.png") == "chelsea.png"
    assert html("<b>\n\n![x](y)") == "&lt;b&gt; &#33;&#91;x&#93;&#40;y&#41;"


# --- heavy analyses: a few slots for every session together ---------------------------

def test_slots_let_n_jobs_run_and_tell_the_next_one_the_server_is_busy():
    import threading

    from wsms_viz.app import guard

    slots = guard.Slots(2)
    entered, release = threading.Barrier(3), threading.Event()

    def job():
        with slots.take():
            entered.wait()
            release.wait()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait()
    assert slots.running == 2 and slots.full
    with pytest.raises(guard.Busy, match="busy"), slots.take(wait_s=0.05):
        pass
    release.set()
    for t in threads:
        t.join()
    assert slots.running == 0 and slots.waiting == 0 and not slots.full
    with slots.take(wait_s=0.05):
        assert slots.running == 1


def test_one_session_holds_at_most_one_heavy_job():
    from wsms_viz.app import guard

    session: dict = {}
    with guard.session_slot(session):
        with pytest.raises(guard.Busy, match="previous request"), guard.session_slot(session):
            pass
        with guard.session_slot({}):  # another session is not held up
            pass
    with guard.session_slot(session):  # released
        pass


@pytest.mark.parametrize("raw, n", [(None, max(1, (os.cpu_count() or 2) // 2)), ("3", 3), ("0", None), ("x", None)])
def test_slot_count_comes_from_the_environment(monkeypatch, raw, n):
    from wsms_viz.app import guard

    if raw is None:
        monkeypatch.delenv("WSMS_HEAVY_SLOTS", raising=False)
    else:
        monkeypatch.setenv("WSMS_HEAVY_SLOTS", raw)
    if n is None:
        with pytest.raises(ValueError, match="WSMS_HEAVY_SLOTS"):
            guard.slots()
    else:
        assert guard.slots() == n


@pytest.mark.slow
def test_attributions_wait_for_a_slot_and_say_so_when_none_comes_free(hostile_env, monkeypatch):
    import threading

    from wsms_viz.app import guard

    monkeypatch.setattr(guard, "WAIT_S", 0.5)
    slots = guard.shared()
    taken, done = threading.Barrier(slots.n + 1), threading.Event()

    def hog():
        with slots.take():
            taken.wait()
            done.wait()

    hogs = [threading.Thread(target=hog) for _ in range(slots.n)]
    for t in hogs:
        t.start()
    taken.wait()
    try:  # every slot taken by other "visitors": the page says so, computes nothing, shows no error
        import streamlit as st

        st.cache_data.clear()  # nothing computed by another test: every analysis needs a slot
        at = AppTest.from_file(APP, default_timeout=120).run()
        at.switch_page("wsms_viz/app/pages/attributions.py").run()
        assert not at.exception
        assert any("server is busy" in i.value for i in at.info)
        assert not at.get("plotly_chart")
    finally:
        done.set()
        for t in hogs:
            t.join()
    at.run()  # a slot is free again: the same page computes
    assert not at.exception and not any("server is busy" in i.value for i in at.info)
    assert at.get("plotly_chart")


def test_report_names_file_and_field_of_a_huge_integer(eval_setup, capsys):
    from wsms_viz.evaluation import report

    base, _ = eval_setup
    card = base / "card.json"
    card.write_text(huge_int_card(card.read_text()))
    with pytest.raises(SystemExit) as e:
        report.main([str(base)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "card.json: card field 'x' is an integer of 5,001 digits" in err
