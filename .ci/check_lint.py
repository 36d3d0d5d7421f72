"""Run ``snakemake --lint`` and fail on any finding except "no conda/container environment".

We ship one Python environment (pyproject.toml) and no conda registry is reachable on our machines,
so per-rule ``conda:``/``container:`` directives are the one lint finding we tolerate. (Snakemake 9
prints lints as text on stderr even when asked for JSON, so the text is parsed.)
"""

import re
import subprocess
import sys

TOLERATED = re.compile(r"conda environment or container", re.I)

snakemake = sys.argv[1] if len(sys.argv) > 1 else "snakemake"
proc = subprocess.run([snakemake, "--lint", *sys.argv[2:]], capture_output=True, text=True)
text = proc.stdout + proc.stderr

findings, where = [], None
for line in text.splitlines():
    header = re.match(r"Lints for (.*?):\s*$", line)
    if header:
        where = header.group(1)
    item = re.match(r"\s+\*\s+(.*)", line)
    if item and where:
        findings.append((where, item.group(1)))

if proc.returncode != 0 and not findings:
    print(text, file=sys.stderr)
    sys.exit(f"snakemake --lint failed (exit {proc.returncode}) without lint findings")
failing = [f for f in findings if not TOLERATED.search(f[1])]
for where, title in failing:
    print(f"LINT {where}: {title}")
print(f"snakemake --lint: {len(findings)} finding(s), {len(findings) - len(failing)} tolerated (no conda/container env), {len(failing)} failing")
sys.exit(1 if failing else 0)
