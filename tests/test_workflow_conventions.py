"""Snakemake workflow-catalog standards: captions for every report item, readable params,
config/README.md covering every key, snakefmt-clean rules."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from san.pipeline.settings import parse_settings
from san.utils.formatting import flat_settings

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


def _report_calls(text: str) -> list[str]:
    """The argument text of every ``report(...)`` call (not the ``report:`` directive)."""
    calls = []
    for m in re.finditer(r"\breport\(", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[m.end() : i - 1])
    return calls


def _captions() -> list[tuple[Path, str]]:
    found = []
    for rules in RULE_FILES:
        for call in _report_calls(rules.read_text()):
            m = re.search(r"caption=f?\"([^\"]+)\"", call)
            assert m, f"{rules.name}: report() item without a caption: report({call.strip()[:80]}...)"
            found.append((rules, m.group(1)))
    return found


def test_every_report_item_has_an_existing_caption():
    captions = _captions()
    assert len(captions) >= 6
    table_names = re.findall(r'"(\w+)": "(\w+\.rst)"', (ROOT / "workflow/rules/report.smk").read_text())
    for rules, caption in captions:
        if "{" in caption:  # the tables' caption, one per table name
            assert table_names
            paths = [rules.parent / caption.replace("{TABLE_CAPTIONS[name]}", rst) for _, rst in table_names]
        else:
            paths = [rules.parent / caption]
        for path in paths:
            assert path.resolve().is_file(), f"{rules.name}: caption {path} does not exist"


def _settings_text(config: dict, *sections: str) -> str:
    settings = parse_settings(config)
    values = {}
    for name in sections:
        value = getattr(settings, name)
        values[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return flat_settings(values)


@pytest.mark.parametrize("rst", sorted((ROOT / "workflow" / "report").glob("*.rst")), ids=lambda p: p.name)
def test_caption_renders_without_docutils_warnings(rst):
    """Rendered as Snakemake does (Jinja2 with ``snakemake``, then docutils), warnings are errors."""
    jinja2 = pytest.importorskip("jinja2")
    from docutils.core import publish_parts

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    fake = SimpleNamespace(
        wildcards=SimpleNamespace(dataset="demo", scene="demo", variant="full"),
        params=SimpleNamespace(settings=_settings_text(config, "evaluation", "teacher")),
        config=config,
    )
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(rst.read_text()).render(snakemake=fake)
    html = publish_parts(text, writer_name="html", settings_overrides={"halt_level": 2, "report_level": 2})["body"]
    assert len(html) > 100
    if "wildcards" in rst.read_text():
        assert "demo/demo" in html and "{{" not in html


def test_flat_settings_is_readable_and_canonical():
    text = flat_settings({"nerf": {"steps": 2, "lr": 0.5, "hw": [4, 3], "model": {"backend": "auto"}}, "seed": None})
    assert text == "nerf.hw=[4, 3]; nerf.lr=0.5; nerf.model.backend=auto; nerf.steps=2; seed=null"
    assert flat_settings({"a": {"x": 1.0}}) != flat_settings({"a": {"x": 1.0000001}})


def test_real_stage_params_need_no_escaping_in_the_report():
    """Snakemake's report escapes quotes and newlines in params; ours carry none."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for sections in (
        ("nerf", "seed"),
        ("features", "teacher"),
        ("imitation", "teacher", "seed"),
        ("evaluation", "teacher"),
        ("report",),
    ):
        text = _settings_text(config, *sections)
        assert '"' not in text and "\n" not in text and "\\" not in text, text
        assert f"{sections[0]}." in text


def _schema_keys(node: dict, prefix: str = "") -> list[str]:
    props = node.get("properties")
    if not props:
        return [prefix]
    return [k for name, sub in props.items() for k in _schema_keys(sub, f"{prefix}.{name}" if prefix else name)]


def test_config_readme_names_every_file_and_key():
    readme = (ROOT / "config" / "README.md").read_text()
    for f in sorted((ROOT / "config").iterdir()):
        if f.name != "README.md":
            assert f"`{f.name}`" in readme, f"config/README.md does not describe {f.name}"
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    missing = []
    for key in _schema_keys(schema):
        section, _, rest = key.partition(".")
        leaf = rest.rsplit(".", 1)[-1] if rest else section
        if f"`{leaf}`" not in readme and f"`{rest}`" not in readme and f"`{section}.{rest}`" not in readme:
            missing.append(key)
    assert not missing, f"config/README.md does not mention: {missing}"


def test_snakefmt_check_is_clean():
    snakefmt = shutil.which("snakefmt") or str(Path(sys.executable).with_name("snakefmt"))
    if not Path(snakefmt).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("snakefmt is not installed (it is in the test extra)")
        pytest.skip("snakefmt is not installed: pip install -e '.[test]'")
    proc = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
