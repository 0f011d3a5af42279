"""Tiny stdlib HTML scanning for the web tests (no parser dependency needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

URL_ATTRS = {"src", "href", "action", "srcset", "poster", "data", "formaction", "xlink:href"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+['"]([^'"]+)""", re.IGNORECASE)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_styles: list[str] = []
        self.inline_scripts: list[str] = []
        self.nav_links: list[str] = []
        self._in_nav = 0
        self._script_open = False
        self._script_has_src = False
        self._script_type = ""

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for name, value in attrs:
            if name in URL_ATTRS and value:
                self.urls.extend(v.strip().split(" ")[0] for v in value.split(","))
            if name == "style":
                self.inline_styles.append(value or "")
            if name.startswith("on"):
                self.inline_scripts.append(f"{tag} {name}")
        if tag == "nav":
            self._in_nav += 1
        if tag == "a" and self._in_nav and d.get("href"):
            self.nav_links.append(d["href"])
        if tag == "style":
            self.inline_styles.append("<style>")
        if tag == "script":
            self._script_open = True
            self._script_has_src = "src" in d
            self._script_type = (d.get("type") or "").lower()

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_nav -= 1
        if tag == "script":
            self._script_open = False

    def handle_data(self, data):
        # JSON data blocks are not executed, so the CSP does not concern them.
        is_data = self._script_type in ("application/json", "application/ld+json")
        if self._script_open and not self._script_has_src and data.strip() and not is_data:
            self.inline_scripts.append(data.strip()[:60])


def scan(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def css_urls(css: str) -> list[str]:
    return CSS_URL.findall(css) + CSS_IMPORT.findall(css)


def is_foreign(url: str, own_host: str = "testserver") -> bool:
    """True for a URL that would make the browser talk to a host other than ours."""
    url = url.strip()
    lowered = url.lower()
    if lowered.startswith(("data:", "#", "mailto:", "tel:", "javascript:")):
        return lowered.startswith("javascript:")
    if lowered.startswith("//"):
        return True
    if re.match(r"^[a-z][a-z0-9+.-]*:", lowered):
        host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", lowered).split("/")[0].split(":")[0]
        return host != own_host
    return False
