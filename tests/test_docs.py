"""The documentation stays true: docs/validation.md is what the benchmarks' summaries generate, links resolve."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import make_validation  # noqa: E402


def test_validation_page_is_generated_from_the_results() -> None:
    """Regenerate and compare: after a benchmark rewrites its summary, run python -m benchmarks.make_validation."""
    page = ROOT / "docs" / "validation.md"
    assert page.read_text() == make_validation.render(), "stale: run python -m benchmarks.make_validation"


def test_every_result_summary_is_on_the_validation_page() -> None:
    text = (ROOT / "docs" / "validation.md").read_text()
    for md in (ROOT / "benchmarks" / "results").glob("*.md"):
        if make_validation.is_part(md.stem):  # a split run's pieces (ignored by git); their merge is listed
            continue
        assert f"benchmarks/results/{md.name}" in text, md.name


def test_readme_is_short_and_its_local_links_resolve() -> None:
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= 10_000
    for doc in (readme, *(ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"
