"""The app's pages, listed once: ``main.py`` builds the navigation from it, the Lesson
links to it and the tests walk it. Each page is a thin script in ``pages/`` (not a
top-level ``pages/``: Streamlit would auto-discover that folder, and a first visit
straight to a page's URL would then skip the entry script and its ``st.navigation``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

PAGES_DIR = Path(__file__).resolve().parent / "pages"


class Page(NamedTuple):
    """One page: its key (the script's stem, which is also its URL path), title and icon."""

    key: str
    title: str
    icon: str
    default: bool = False

    @property
    def path(self) -> Path:
        """The page script, inside the installed package."""
        return PAGES_DIR / f"{self.key}.py"

    @property
    def label(self) -> str:
        """The title without its number, as a link's text reads it."""
        head, _, rest = self.title.partition(" ")
        return rest if head.isdigit() else self.title


PAGES: tuple[Page, ...] = (
    Page("lesson", "Lesson", ":material/school:"),
    Page("zoom_compare", "1 Zoom compare", ":material/zoom_in:", default=True),
    Page("receptive_fields", "2 Receptive fields", ":material/filter_center_focus:"),
    Page("attributions", "3 Attributions per stage", ":material/highlight:"),
    Page("integration", "4 Integration layer", ":material/merge:"),
    Page("feature_maps", "5 Feature maps", ":material/grid_on:"),
    Page("scale_robustness", "6 Scale robustness", ":material/show_chart:"),
    Page("architecture", "7 Architecture", ":material/account_tree:"),
)
BY_KEY = {p.key: p for p in PAGES}
