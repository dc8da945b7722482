"""The README's "Config reference" documents every key the code accepts, with its default, and the
README links nowhere outside the repository. The tables are read from the registries (config
sections, layer types, schedules, data readers), so a new key fails here until it is documented.
"""
import dataclasses
import os
import re
import typing

import pytest
import yaml

from convtrain.config.common import LayerCommon
from convtrain.config.schema import SECTIONS, TOP_KEYS, Head
from convtrain.config.spec import SpecError, check_field, spec_to_dict
from convtrain.config.yaml_lines import Loader
from convtrain.data.readers import READERS
from convtrain.nn.layers.registry import LAYER_TYPES
from convtrain.train.schedules import SCHEDULES, Schedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _f:
    README = _f.read()


def reference(text: str = README) -> dict[str, dict[str, list[str]]]:
    """The "## Config reference" section -> {subsection heading: {first cell's key: cells}}."""
    start = text.index("\n## Config reference")
    end = text.find("\n## ", start + 1)
    tables, rows = {}, None
    for line in text[start:end if end >= 0 else None].splitlines():
        if line.startswith("### "):
            rows = tables.setdefault(line[4:].strip(), {})
        elif line.startswith("| `") and rows is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0].strip("`")] = cells
    return tables


def options_in(cell: str) -> dict[str, str]:
    """`opt: default` and `opt` (required) spans of a layer's or a schedule's options cell."""
    found = {m[1]: m[2] for m in re.finditer(r"`(\w+): ([^`]+)`", cell)}
    found.update({m[1]: "required" for m in re.finditer(r"`(\w+)` \(required", cell)})
    return found


def is_default(field: dataclasses.Field, hints: dict, text: str) -> bool:
    """Whether the README's default (YAML, as a user writes it) is the field's default."""
    text = text.strip("`")
    if text == "required":
        return field.default is dataclasses.MISSING
    if field.default is dataclasses.MISSING:
        return False
    value = yaml.load(text, Loader=Loader)
    if value == spec_to_dict(field.default):
        return True
    try:   # the short forms the option's own check takes: `size: 3` for (3, 3)
        return check_field(field, value, (), hints) == field.default
    except (SpecError, ValueError, TypeError):
        return False


def spec_fields(cls, prefix: str = ""):
    """(dotted key, field, type hints) of every option, nested spec sections flattened."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if dataclasses.is_dataclass(f.default):
            yield from spec_fields(type(f.default), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, hints


def external_links(text: str) -> list[str]:
    """Addresses that leave the repository: any scheme (http:, https:, ftp:, mailto:...),
    protocol-relative `//host` links and bare www. names. A Dask scheduler's address
    (`tcp://HOST:PORT`) is something the user types, not a link."""
    pattern = r"\b(?!tcp://)[a-z][a-z0-9+.-]*://\S+|\]\(\s*//[^)]*\)|\bwww\.\S+|\bmailto:\S+"
    return re.findall(pattern, text, flags=re.IGNORECASE)


def test_the_helpers_find_what_they_look_for():
    text = ("# x\n## Config reference\n### data\n| `data.a` | `[3, 3]` | m |\n"
            "### Layers\n| `conv` | `filters` (required, short), `size: 3` | c |\n## Next\n")
    tables = reference(text)
    assert tables == {"data": {"data.a": ["`data.a`", "`[3, 3]`", "m"]},
                      "Layers": {"conv": ["`conv`", "`filters` (required, short), `size: 3`", "c"]}}
    assert options_in(tables["Layers"]["conv"][1]) == {"filters": "required", "size": "3"}
    assert external_links("see [a](https://x.org/a), <http://b>, www.c.com, [d](ARCH.md)") == [
        "https://x.org/a),", "http://b>,", "www.c.com,"]
    assert external_links("[r](//host/x)") == ["](//host/x)"]


def test_every_section_option_is_documented_with_its_default():
    tables = reference()
    problems = []
    for section, cls in SECTIONS.items():
        rows = tables.get(section, {})
        documented = set()
        for key, f, hints in spec_fields(cls, f"{section}."):
            documented.add(key)
            if key not in rows:
                problems.append(f"{key}: not in the README's '### {section}' table")
            elif not is_default(f, hints, rows[key][1]):
                problems.append(f"{key}: the README says {rows[key][1]}, the default is {f.default!r}")
        problems += [f"{key}: documented but not an option" for key in set(rows) - documented]
    assert not problems, "\n".join(problems)


def test_every_top_level_key_is_documented():
    top = reference()["Top level"]
    for key, f, hints in spec_fields(Head):
        assert key in top and is_default(f, hints, top[key][1]), key
    for key in TOP_KEYS:
        assert key in top or key in SECTIONS, key


def test_every_data_set_name_is_documented():
    cell = reference()["data"]["data.dataset"][2]
    missing = [name for name in READERS if f"`{name}`" not in cell]
    assert not missing, f"data.dataset values missing from the README: {missing}"


def test_every_layer_type_and_option_is_documented_with_its_default():
    rows = reference()["Layers"]
    problems = []
    for name, cls in LAYER_TYPES.items():
        if name not in rows:
            problems.append(f"layer {name}: not in the README's '### Layers' table")
            continue
        documented = options_in(rows[name][1])
        for key, f, hints in spec_fields(cls.Spec):
            if key not in documented:
                problems.append(f"layer {name}: option {key} not documented")
            elif not is_default(f, hints, documented[key]):
                problems.append(f"layer {name}.{key}: the README says {documented[key]}, the "
                                f"default is {f.default!r}")
    common = reference()["Keys every layer takes"]
    for key, f, hints in spec_fields(LayerCommon):
        if key not in common or not is_default(f, hints, common[key][1]):
            problems.append(f"common layer key {key}: missing or with another default")
    assert not problems, "\n".join(problems)


def test_every_schedule_and_option_is_documented_with_its_default():
    rows = reference()["schedule"]
    common = {key for key, _, _ in spec_fields(Schedule)}
    assert common == {"warmup_steps"} and "`warmup_steps: 0`" in README
    problems = []
    for name, cls in SCHEDULES.items():
        if name not in rows:
            problems.append(f"schedule {name}: not in the README's '### schedule' table")
            continue
        documented = options_in(rows[name][1])
        for key, f, hints in spec_fields(cls):
            if key in common:
                continue
            if key not in documented:
                problems.append(f"schedule {name}: option {key} not documented")
            elif not is_default(f, hints, documented[key]):
                problems.append(f"schedule {name}.{key}: the README says {documented[key]}, "
                                f"the default is {f.default!r}")
    assert not problems, "\n".join(problems)


def test_the_readme_links_nowhere_outside_the_repository():
    assert external_links(README) == []


@pytest.mark.parametrize("target", re.findall(r"\]\(([^)\s]+)\)", README))
def test_every_link_in_the_readme_resolves(target):
    path, _, anchor = target.partition("#")
    if path:
        assert os.path.exists(os.path.join(ROOT, path)), target
    else:
        slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
                 for h in re.findall(r"^#+ (.+)$", README, flags=re.MULTILINE)}
        assert anchor in slugs, target
