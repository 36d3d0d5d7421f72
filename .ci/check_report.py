"""Check a Snakemake HTML report: every result has a caption, and its params read as typed.

    python .ci/check_report.py results/ci/report.html

Reads the ``var results = {...};`` block the HTML reporter embeds (Snakemake 9): each result's
``caption`` (rendered from workflow/report/*.rst) must be non-empty with no unrendered Jinja, and
its ``params`` must carry no escaped quotes (the stage settings are ``section.key=value`` pairs).
"""

import json
import re
import sys

path = sys.argv[1]
html = open(path, encoding="utf-8").read()
match = re.search(r"var results = (\{.*?\});\s*\n", html, re.S)
if not match:
    sys.exit(f"{path}: no embedded results block (not a Snakemake 9 HTML report?)")
results = json.loads(match.group(1))
problems = []
for name, r in results.items():
    caption = (r.get("caption") or "").strip()
    if not caption:
        problems.append(f"{name}: no caption")
    elif "{{" in caption or "{%" in caption:
        problems.append(f"{name}: caption has unrendered Jinja")
    params = r["job_properties"]["params"]
    if '\\"' in params or "{" in params:
        problems.append(f"{name}: params are not readable: {params[:120]}")
for p in problems:
    print(f"REPORT {p}")
print(f"{path}: {len(results)} result(s), {len(problems)} problem(s)")
sys.exit(1 if problems or not results else 0)
