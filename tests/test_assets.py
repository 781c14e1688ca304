"""The asset registry: declared globs, discovery by content, and identity by hash."""

from __future__ import annotations

import os
from pathlib import Path

from guard.assets import AssetIndex, AssetInfo, GlobIndex
from guard.policy import AssetDecl
from guard.types import AssetKind
from tests.conftest import safetensors_bytes


def info(owner: str) -> AssetInfo:
    return AssetInfo(AssetKind.WEIGHTS, owner, "test")


def test_glob_semantics() -> None:
    """``*`` stays in one component, ``**`` spans any number, ``?`` and classes work."""
    g = GlobIndex()
    g.add("/r/hosts/*/data/agent_2_*", info("star"))
    g.add("/r/evals/agent-2/**", info("globstar"))
    g.add("/r/m/model-?.bin", info("qmark"))
    g.add("/r/c/[ab].yaml", info("class"))
    assert g.lookup("/r/hosts/h1/data/agent_2_w.st") == info("star")
    assert g.lookup("/r/hosts/h1/x/data/agent_2_w.st") is None
    assert g.lookup("/r/evals/agent-2/report.json") == info("globstar")
    assert g.lookup("/r/evals/agent-2/a/b/c.json") == info("globstar")
    assert g.lookup("/r/evals/agent-3/report.json") is None
    assert g.lookup("/r/m/model-1.bin") == info("qmark")
    assert g.lookup("/r/m/model-12.bin") is None
    assert g.lookup("/r/c/b.yaml") == info("class")
    assert g.lookup("/r/c/c.yaml") is None


def test_first_declared_glob_wins() -> None:
    """When two globs match, the one declared first decides kind and owner."""
    g = GlobIndex()
    g.add("/r/**/*.bin", info("first"))
    g.add("/r/models/x.bin", info("second"))
    assert g.lookup("/r/models/x.bin") == info("first")


def test_many_globs_still_match_exactly() -> None:
    """With 20,000 declarations, each path finds its own owner."""
    g = GlobIndex()
    for i in range(20000):
        g.add(f"/r/hosts/*/models/agent-{i}/**", info(f"a{i}"))
        g.add(f"/r/data/agent_{i}_*.st", info(f"b{i}"))
    assert g.lookup("/r/hosts/h/models/agent-12345/w.st") == info("a12345")
    assert g.lookup("/r/data/agent_777_x.st") == info("b777")
    assert g.lookup("/r/data/agent_777x.st") is None


def make_index(root: Path, **kw: object) -> AssetIndex:
    decl = [AssetDecl(glob="models/peer/**", kind=AssetKind.WEIGHTS, owner="peer")]
    return AssetIndex([str(root)], decl, base=str(root), **kw)  # type: ignore[arg-type]


def test_discovery_by_content_and_hash(tmp_path: Path) -> None:
    """Undeclared weights are found by header; a renamed copy of declared ones by hash."""
    (tmp_path / "models/peer").mkdir(parents=True)
    (tmp_path / "models/peer/w.safetensors").write_bytes(safetensors_bytes(3000))
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc/copy.txt").write_bytes(safetensors_bytes(3000))
    (tmp_path / "misc/other.bin").write_bytes(safetensors_bytes(2000, seed=1))
    (tmp_path / "misc/plain.txt").write_text("hello")
    idx = make_index(tmp_path)
    copy = idx.lookup(str(tmp_path / "misc/copy.txt"))
    assert copy is not None and copy.owner == "peer" and "same content" in copy.source
    other = idx.lookup(str(tmp_path / "misc/other.bin"))
    assert other is not None and other.owner is None and other.source == "content:safetensors"
    assert idx.lookup(str(tmp_path / "misc/plain.txt")) is None
    assert len(idx) == 3


def test_discovery_off(tmp_path: Path) -> None:
    """With discovery off, only declared files (and their copies) are protected."""
    (tmp_path / "w.bin").write_bytes(safetensors_bytes(2000))
    assert make_index(tmp_path, discover=False).lookup(str(tmp_path / "w.bin")) is None


def test_hard_link_is_the_same_asset(tmp_path: Path) -> None:
    """A hard link made after the scan is recognised as the protected inode."""
    (tmp_path / "models/peer").mkdir(parents=True)
    src = tmp_path / "models/peer/w.bin"
    src.write_bytes(os.urandom(5000))
    idx = make_index(tmp_path)
    link = tmp_path / "elsewhere.bin"
    os.link(src, link)
    found = idx.lookup(str(link))
    assert found is not None and found.owner == "peer" and "hard link" in found.source


def test_under_lists_assets_in_folder(tmp_path: Path) -> None:
    """``under`` finds every protected file inside a folder, and nothing beside it."""
    (tmp_path / "models/peer/sub").mkdir(parents=True)
    (tmp_path / "models/peer/a.bin").write_bytes(b"a")
    (tmp_path / "models/peer/sub/b.bin").write_bytes(b"b")
    (tmp_path / "models/peerx.bin").write_bytes(safetensors_bytes(1000))
    idx = make_index(tmp_path)
    assert [os.path.basename(p) for p, _ in idx.under(str(tmp_path / "models/peer"))] == [
        "a.bin",
        "b.bin",
    ]


def test_refresh_tracks_new_and_removed(tmp_path: Path) -> None:
    """After refresh, a new copy is known and a deleted file is gone from the index."""
    (tmp_path / "models/peer").mkdir(parents=True)
    src = tmp_path / "models/peer/w.bin"
    src.write_bytes(os.urandom(4000))
    idx = make_index(tmp_path)
    dst = tmp_path / "x/y.bin"
    dst.parent.mkdir()
    dst.write_bytes(src.read_bytes())
    idx.refresh([str(dst)])
    assert [p for p, _ in idx.under(str(tmp_path / "x"))] == [str(dst)]
    src.unlink()
    idx.refresh([str(src)])
    assert idx.under(str(tmp_path / "models/peer")) == []
