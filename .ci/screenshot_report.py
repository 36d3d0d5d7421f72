"""Open a Snakemake HTML report in headless Chromium, show one figure's details (caption and job
parameters), check that both are displayed, and save a screenshot.

    python .ci/screenshot_report.py results/ci/report.html results/ci/report.png [--figure "timing breakdown"]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.interaction.browser import Chromium, find_chromium  # noqa: E402

CLICK_TEXT = "(t => { const el = [...document.querySelectorAll('a,li,div,span,td,button')].reverse()" \
             ".find(e => e.textContent.trim() === t); if (!el) return false; el.click(); return true; })"
CLICK_INFO = "(t => { const td = [...document.querySelectorAll('td')].find(e => e.textContent.trim() === t); if (!td) return false;" \
             " const els = [...td.parentElement.querySelectorAll('a,button,svg,span')];" \
             " els[els.length - 1].dispatchEvent(new MouseEvent('click', {bubbles: true})); return true; })"

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("report", type=Path)
p.add_argument("png", type=Path)
p.add_argument("--figure", default="timing breakdown", help="label of the figure whose details are shown")
args = p.parse_args()
chromium = find_chromium()
if chromium is None:
    sys.exit("chromium is not installed (Debian: apt-get install chromium)")
with Chromium(chromium) as page:
    page.send("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
    page.goto(args.report.resolve().as_uri())
    page.wait_for("document.body && document.body.innerText.includes('Figures')", 60, "the report's menu")
    if not page.evaluate(CLICK_TEXT + "('Figures')"):
        sys.exit(f"{args.report}: no 'Figures' category")
    page.wait_for(CLICK_INFO + f"({args.figure!r})", 30, f"figure {args.figure!r}")
    page.wait_for("document.body.innerText.includes('DESCRIPTION') && document.body.innerText.includes('JOB PARAMETERS')", 30,
                  "the figure's caption and parameters")
    text = page.evaluate("document.body.innerText")
    params = text.split("JOB PARAMETERS", 1)[1].strip().splitlines()[0]
    if "settings=" not in params or '\\"' in params or "{" in params:
        sys.exit(f"{args.report}: job parameters are not readable: {params[:200]}")
    time.sleep(0.5)
    page.screenshot(args.png)
print(f"{args.png}: report figure {args.figure!r} with its caption and parameters ({params[:80]}...)")
