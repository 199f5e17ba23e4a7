"""Corpus build on a tiny fake source set: cleaning, dedup, deterministic document split,
manifest. The real corpus is never built here (it downloads packages)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zett.data import build, clean, corpus
from zett.data.sources import SOURCES, Source
from zett.errors import ZettError

MAN = r""".\" a comment that must vanish
.TH LS 1 "2024" "GNU" "User Commands"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
List information about the \fBFILE\fRs (the current directory by default).
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries starting with \(aq.\(aq \(em really
.BR dir (1)
"""
HTML = """<html><head><title>T</title><script>var x = 1;</script></head><body>
<nav>Home | Next</nav><h1>Überschrift</h1><p>Ein <b>Absatz</b> mit &amp; Entität.</p>
<pre>code   kept
  indented</pre></body></html>"""
RST = """Title
=====

See :ref:`the guide <guide-label>` and ``literal`` text.

.. note::

   Kept body.
"""
LONG = "\n\n".join(f"Paragraph {i} " + "word " * 80 for i in range(40))


def test_clean_man_strips_groff() -> None:
    text = clean.clean_man(MAN)
    assert "ls - list directory contents" in text
    assert "FILEs (the current directory" in text
    assert "-a, --all" in text and "'.' — really" in text and "dir(1)" in text
    assert "\\f" not in text and ".TH" not in text and "comment" not in text
    assert "User Commands" not in text


def test_clean_html_and_rst() -> None:
    text = clean.clean_html(HTML)
    assert "Überschrift" in text and "Ein Absatz mit & Entität." in text
    assert "code   kept\n  indented" in text
    assert "var x" not in text and "Home" not in text and "<" not in text
    rst = clean.clean_rst(RST)
    assert "See the guide and literal text." in rst and "Kept body." in rst
    assert "=====" not in rst and ".. note" not in rst and ":ref:" not in rst


def test_clean_code_skips_minified() -> None:
    assert clean.clean_code("x = 1\r\ny = 2   \n") == "x = 1\ny = 2\n"
    assert clean.clean_code("var a=" + "1," * 2000) == ""


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="ab \n日", max_size=3000), st.integers(10, 500))
def test_chunks_concatenate_and_respect_limit(text: str, limit: int) -> None:
    chunks = build.chunk_text(text, limit)
    assert "".join(chunks) == text
    assert all(0 < len(c) <= limit for c in chunks)


def fake_sources(tmp: Path) -> list:
    a = tmp / "pkg-a"
    (a / "usr/share/man/man1").mkdir(parents=True)
    (a / "usr/share/man/man1/ls.1.gz").write_bytes(gzip.compress(MAN.encode() + LONG.encode()))
    (a / "usr/share/man/man1/dup.1.gz").write_bytes(gzip.compress(b"Same text " * 40))
    b = tmp / "pkg-b"
    for lang, dirname in (("de", "de-DE"), ("en", "en-US")):
        (b / dirname).mkdir(parents=True)
        for i in range(30):
            (b / dirname / f"p{i}.html").write_text(f"<p>{lang} page {i} " + "text " * 60)
    (b / "en-US" / "dup.html").write_text("<p>" + "Same   text " * 40 + "</p>")
    src_a = Source("pkg-a", "debian", ("usr/share/man/**/*.gz",), "man", "GPL-2.0", lang="en")
    src_b = Source(
        "pkg-b", "debian", ("*/*.html",), "html", "MIT", lang_map={"de-DE": "de", "en-US": "en"}
    )
    prov = {"registry": "debian", "version": "1.0", "archive": "x.deb", "sha256": "0"}
    return [(src_a, a, prov), (src_b, b, prov)]


def test_build_dedups_splits_by_document_and_writes_manifest(tmp_path: Path) -> None:
    import datasets

    m1 = build.build_corpus(fake_sources(tmp_path), tmp_path / "out1")
    m2 = build.build_corpus(fake_sources(tmp_path / "again"), tmp_path / "out2")
    d1 = datasets.load_from_disk(str(tmp_path / "out1" / "dataset"))
    d2 = datasets.load_from_disk(str(tmp_path / "out2" / "dataset"))
    for split in build.SPLITS:  # deterministic
        assert d1[split]["text"] == d2[split]["text"]
    assert m1 == m2
    docs = {split: set(d1[split]["doc_id"]) for split in build.SPLITS}
    assert not (docs["train"] & docs["valid"]) and not (docs["train"] & docs["test"])
    assert docs["valid"] | docs["test"], "60+ documents should put some outside train"
    all_text = [t for s in build.SPLITS for t in d1[s]["text"]]
    assert sum("Same text" in t for t in all_text) == 1  # duplicate kept once
    by_name = {
        s["name"]: s for s in json.loads((tmp_path / "out1/manifest.json").read_text())["sources"]
    }
    assert by_name["pkg-b"]["n_duplicates"] == 1
    assert all(s["license"] and s["version"] and s["files"] for s in by_name.values())
    assert "usr/share/man/man1/ls.1.gz" in by_name["pkg-a"]["files"]
    assert set(m1["bytes"]) == {"en", "de"}
    # the long man page was chunked but stays one document in one split
    ls_rows = [(s, i) for s in build.SPLITS for i, x in enumerate(d1[s]["source"]) if "ls.1" in x]
    assert len(ls_rows) > 1 and len({s for s, _ in ls_rows}) == 1
    split, _ = ls_rows[0]
    ds = datasets.DatasetDict({k: d1[k] for k in build.SPLITS})
    got = corpus.texts_for(split, "en", 10**9, corpus=ds)
    assert any(t.startswith("NAME") and t.rstrip().endswith("word") for t in got)
    capped = corpus.texts_for(split, "en", 500, corpus=ds)
    assert sum(len(t.encode()) for t in capped) <= 500


def test_split_is_a_function_of_the_text() -> None:
    splits = [build.split_of(build.doc_hash(f"doc {i}")) for i in range(2000)]
    assert splits == [build.split_of(build.doc_hash(f"doc {i}")) for i in range(2000)]
    assert 0.85 < splits.count("train") / 2000 < 0.95
    assert build.doc_hash("a  b\n c") == build.doc_hash("a b c")


def test_real_source_list_has_licenses_and_breadth() -> None:
    assert all(s.license for s in SOURCES)
    langs = {s.lang for s in SOURCES} | {v for s in SOURCES for v in s.lang_map.values()}
    assert {"en", "de", "ru", "ja", "zh", "python", "javascript", "c"} <= langs
    changed = (*SOURCES[:-1], Source("x", "npm", ("a",), "code", "MIT", lang="javascript"))
    assert build.recipe_hash(changed) != build.recipe_hash(SOURCES)


def test_load_corpus_not_prepared(tmp_path: Path) -> None:
    with pytest.raises(ZettError, match="zett prepare corpus"):
        corpus.load_corpus(tmp_path / "nothing")


def test_portable_corpus_loads_without_datasets(tmp_path: Path, monkeypatch) -> None:
    """`zett prepare corpus --portable DIR` output: same texts, readable with `datasets`
    unimportable (a bare GPU machine), and the pipeline's text mixture accepts it."""
    from zett.data.pipeline import TextMixture
    from zett.testing import make_tiny_corpus

    src = make_tiny_corpus(tmp_path / "ds")
    original = corpus.load_corpus(src)
    out = corpus.write_portable(tmp_path / "portable", src)
    assert (out / "train.jsonl.gz").is_file()
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # import now fails
    with pytest.raises(ImportError):
        import datasets  # noqa: F401
    port = corpus.load_corpus(out)
    assert set(port) == set(original.keys())
    for split in port:
        assert port[split]["text"] == original[split]["text"]
        assert port[split]["lang"] == original[split]["lang"]
    assert corpus.texts_for("test", "en", 300, corpus=port) == corpus.texts_for(
        "test", "en", 300, corpus=original
    )
    mix = TextMixture(port["train"])
    import numpy as np

    assert len(mix.draw(np.random.default_rng(0), 5)) == 5
    (out / "valid.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ZettError, match="valid.jsonl.gz"):
        corpus.load_corpus(out)
