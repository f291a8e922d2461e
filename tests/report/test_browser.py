"""The report opened in a real headless browser: every section renders, every image decodes,
no console errors.

Uses Debian's ``chromium`` (``.ci/run`` installs it when missing); skips with the reason
where no browser can be had.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from eegcrp.report import build_report
from eegcrp.stages.report import report_context

# Installed before the report's own scripts run: records uncaught errors and console.error.
_CAPTURE = ("<script>window.__eegcrpErrors=[];window.addEventListener('error',function(e)"
            "{window.__eegcrpErrors.push(String(e.message||e.type))},true);var __ce=console"
            ".error;console.error=function(){window.__eegcrpErrors.push(Array.prototype.join"
            ".call(arguments,' '));__ce.apply(console,arguments)};</script>")
# After load: images that did not decode, the errors, and the section headings shown.
_CHECK = ("<script>window.addEventListener('load',function(){var imgs=Array.prototype.slice"
          ".call(document.images);var pre=document.createElement('pre');pre.id='eegcrp-check';"
          "pre.textContent=JSON.stringify({images:imgs.length,broken:imgs.filter(function(i)"
          "{return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.alt||i.src.slice"
          "(0,40)}),errors:window.__eegcrpErrors,text:document.body.innerText.length});"
          "document.body.appendChild(pre)});</script>")


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser (install Debian's chromium; .ci/run does)")


def open_in_browser(html_path, tmp_path) -> dict:
    """Load ``html_path`` in headless Chromium and return the in-page check's result."""
    html = html_path.read_text()
    # the report's embedded libraries contain "</body>" in strings: patch the last one
    head, _, tail = html.rpartition("</body>")
    html = (head + _CHECK + "</body>" + tail).replace("<head>", "<head>" + _CAPTURE, 1)
    probe = tmp_path / "probe.html"
    probe.write_text(html)
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="eegcrp-check">(.*?)</pre>', out.stdout, re.S)
    assert match, f"the page did not load: {out.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_renders_in_a_browser(tiny_study, tmp_path):
    path = build_report(report_context(tiny_study), tmp_path / "report.html")
    result = open_in_browser(path, tmp_path)
    assert result["errors"] == []
    assert result["broken"] == []
    assert result["images"] >= 10
    html = path.read_text()
    for section in ("Summary", "Data", "Ground truth (simulation)", "Classification",
                    "Concept relevance", "Run metadata"):
        assert f">{section}<" in html or section in html
