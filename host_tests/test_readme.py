"""The two READMEs and the docs with a Chinese copy stay in step and stay true:
the English and Chinese copies show the same code blocks in the same order, the
same numbered headings and the same `code` spans in each section, link to each
other, and every command the READMEs show names a real module, make target,
subcommand, flag and file."""

import ast
import functools
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tools.harness import upy

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "README.md"
ZH = ROOT / "README.zh-CN.md"
# Fenced blocks in these languages hold commands; ```text blocks (diagrams,
# program output) are free to be translated.
COMMAND_LANGS = ("", "bash", "sh", "shell")
FREE_LANGS = ("text",)
# Languages whose '#' comments a translation may translate; the rest of every
# block that is not free stays verbatim (code, JSON examples).
HASH_COMMENT_LANGS = COMMAND_LANGS + ("python",)
PYTHONS = ("python", "python3", ".venv/bin/python")
# Tokens that name a file of this repository.
REPO_PATH = re.compile(r"^(boot\.py|main\.py|firmware|lib|tools|host_tests|docs|deploy|scripts)(/|$)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
TOOL = re.compile(r"python -m (tools\.\w+)")


def read(path):
    assert path.exists(), "%s is missing" % path.name
    return path.read_text(encoding="utf-8")


def code_blocks(text):
    """[(lang, body)] of every fenced block, in order. A fence may be indented
    (a block inside a list item); its body loses that indentation."""
    blocks, lang, body, indent = [], None, [], ""
    for line in text.splitlines():
        fence = line.lstrip()
        if fence.startswith("```"):
            if lang is None:
                lang, body, indent = fence[3:].strip(), [], line[: len(line) - len(fence)]
            else:
                blocks.append((lang, "\n".join(body)))
                lang = None
        elif lang is not None:
            body.append(line[len(indent):] if line.startswith(indent) else line)
    assert lang is None, "an unclosed ``` block"
    return blocks


def prose(text):
    """The text with its fenced blocks taken out."""
    out, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            out.append(line)
    return "\n".join(out)


def strip_comment(line):
    # A '#' that starts a word begins a shell comment; one inside a word (a URL
    # fragment) does not.
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def command_blocks(text):
    """The command blocks as lists of lines, comments and blank lines dropped."""
    out = []
    for lang, body in code_blocks(text):
        if lang in COMMAND_LANGS:
            out.append([ln for ln in (strip_comment(raw) for raw in body.splitlines()) if ln])
    return out


def verbatim_blocks(text):
    """Every fenced block a translation keeps as it is, as lists of lines:
    all but the free languages, '#' comments dropped where the language has
    them, blank lines dropped."""
    out = []
    for lang, body in code_blocks(text):
        if lang in FREE_LANGS:
            continue
        lines = body.splitlines()
        if lang in HASH_COMMENT_LANGS:
            lines = [strip_comment(ln) for ln in lines]
        out.append([ln.rstrip() for ln in lines if ln.strip()])
    return out


def headings(text):
    """[(level, section number or None)] of every heading, in order: code
    comments cite sections by number ("docs/protocol.md §2.2")."""
    return [(len(m.group(1)), m.group(2))
            for m in re.finditer(r"(?m)^(#{1,6}) (?:(\d+(?:\.\d+)*)\.?(?=\s))?", prose(text))]


def section_spans(text):
    """Per section (cut at every heading), the set of its inline `code` spans:
    field names, values, messages and commands a translation keeps. A <placeholder>
    may be worded in either language, so it counts as <>."""
    return [{re.sub(r"<[^<>`]*>", "<>", re.sub(r"\s+", " ", s)) for s in re.findall(r"`([^`]+)`", chunk)}
            for chunk in re.split(r"(?m)^(?=#{1,6} )", prose(text))]


def first_drift(en, zh, names=("README.md", "README.zh-CN.md"), what="code block"):
    """None when the lists match, else a line saying where they part."""
    for i, (a, b) in enumerate(zip(en, zh, strict=False)):
        if a != b:
            return "%s %d differs:\n  %s: %r\n  %s: %r" % (what, i + 1, names[0], a, names[1], b)
    if len(en) != len(zh):
        return "%s has %d %ss, %s %d" % (names[0], len(en), what, names[1], len(zh))
    return None


def span_drift(en_text, zh_text, names):
    """None when every section shows the same `code` spans, else the first
    section (by its English heading) and the spans only one copy shows."""
    for i, (a, b) in enumerate(zip(section_spans(en_text), section_spans(zh_text), strict=True)):
        if a != b:
            title = re.split(r"(?m)^(?=#{1,6} )", prose(en_text))[i].split("\n", 1)[0]
            return "section %r: `code` spans only in %s: %s; only in %s: %s" % (
                title, names[0], sorted(a - b), names[1], sorted(b - a))
    return None


def pair_drift(en_text, zh_text, names):
    """The first way a Chinese copy parts from its English copy: a code block,
    the headings and their numbers, or a section's `code` spans; else None."""
    return (first_drift(verbatim_blocks(en_text), verbatim_blocks(zh_text), names)
            or first_drift(headings(en_text), headings(zh_text), names, "heading")
            or span_drift(en_text, zh_text, names))


DOCS = ROOT / "docs"
# Pairs whose Chinese copy this test owns (docs/deploy.zh-CN.md words its placeholders in Chinese
# and translates its diagram blocks).
PAIRS = [(EN, ZH)] + [(DOCS / (n + ".md"), DOCS / (n + ".zh-CN.md")) for n in ("flashing", "mcp", "events", "protocol")]
PAIR_IDS = ["README", "flashing", "mcp", "events", "protocol"]
DOC_PAIRS = PAIRS[1:]


@pytest.mark.parametrize("en_path, zh_path", PAIRS, ids=PAIR_IDS)
def test_code_blocks_headings_and_spans_are_the_same_in_both_languages(en_path, zh_path):
    en, zh = read(en_path), read(zh_path)
    # Something must be compared: a page with neither blocks nor spans would pass empty.
    assert verbatim_blocks(en) or any(section_spans(en)), "%s shows no code block and no `code` span" % en_path.name
    drift = pair_drift(en, zh, (en_path.name, zh_path.name))
    assert drift is None, drift


@pytest.mark.parametrize("en_path, zh_path", DOC_PAIRS, ids=PAIR_IDS[1:])
def test_a_change_to_one_copy_of_a_doc_counts_as_drift(en_path, zh_path):
    en, zh = read(en_path), read(zh_path)
    names = (en_path.name, zh_path.name)
    assert pair_drift(en, zh, names) is None
    blocks = verbatim_blocks(zh)
    if blocks:  # a changed line of a code block
        line = blocks[0][0]
        assert pair_drift(en, zh.replace(line, line + " 1", 1), names) is not None
    span = next(s for spans in section_spans(zh) for s in sorted(spans) if "<" not in s)
    assert pair_drift(en, zh.replace("`%s`" % span, "`%s_`" % span, 1), names) is not None
    heading = re.search(r"(?m)^#+ .*$", zh.split("\n", 1)[1]).group(0)
    assert pair_drift(en, zh.replace(heading, "#" + heading, 1), names) is not None


def test_a_translated_code_comment_is_not_drift_and_a_changed_json_line_is():
    en = "```python\nx = f(1)  # call f\n```\n\n```json\n{\"a\":1}\n```\n"
    assert pair_drift(en, en.replace("# call f", "# 调用 f"), ("en", "zh")) is None
    assert pair_drift(en, en.replace('{"a":1}', '{"a":2}'), ("en", "zh")) is not None
    indented = "- body:\n\n  ```json\n  {\"a\":1}\n  ```\n"
    assert verbatim_blocks(indented) == [['{"a":1}']]


def test_a_changed_command_counts_as_drift_and_a_translated_comment_does_not():
    text = read(EN)
    blocks = verbatim_blocks(text)
    line = blocks[0][0]
    changed = text.replace(line, line + " --changed", 1)
    assert first_drift(blocks, verbatim_blocks(changed)) is not None
    commented = text.replace(line, line + "   # 注释已翻译", 1)
    assert first_drift(blocks, verbatim_blocks(commented)) is None


def test_the_readmes_link_to_each_other_and_to_the_chinese_guide():
    en, zh = read(EN), read(ZH)
    assert "(README.zh-CN.md)" in en.split("\n## ")[0], "README.md must link README.zh-CN.md at the top"
    assert "(README.md)" in zh.split("\n## ")[0], "README.zh-CN.md must link README.md at the top"
    assert "(docs/deploy.zh-CN.md)" in zh, "README.zh-CN.md must link docs/deploy.zh-CN.md"


@pytest.mark.parametrize("en_path, zh_path", DOC_PAIRS, ids=PAIR_IDS[1:])
def test_each_doc_links_its_other_language_at_the_top_and_the_chinese_readme_links_the_chinese_copy(
        en_path, zh_path):
    en, zh = read(en_path), read(zh_path)
    assert "(%s)" % zh_path.name in en.split("\n## ")[0], "%s must link %s at the top" % (en_path.name, zh_path.name)
    assert "(%s)" % en_path.name in zh.split("\n## ")[0], "%s must link %s at the top" % (zh_path.name, en_path.name)
    readme = read(ZH)
    assert "(docs/%s)" % zh_path.name in readme, "README.zh-CN.md must link docs/%s" % zh_path.name
    assert "(docs/%s)" % en_path.name not in readme, "README.zh-CN.md links docs/%s instead" % en_path.name


def test_ci_runs_the_test_command_the_readme_gives():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert ["make test"] == [ln for b in command_blocks(read(EN)) for ln in b if ln == "make test"][:1]


# --- every command shown is real -------------------------------------------

@functools.lru_cache(maxsize=None)
def help_text(*argv):
    """The --help of `python -m module [sub]` or `python script.py`."""
    cmd = [sys.executable, *argv, "--help"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "%s --help failed: %s" % (" ".join(argv), p.stderr.strip()[-300:])
    return p.stdout


def dev_commands():
    listed = help_text("-m", "tools.dev").split("positional arguments:")[1].split("options:")[0]
    return re.findall(r"^    (\w+)\s", listed, re.M)


def make_targets():
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def has_flag(flag, text):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), text) is not None


def shell_lines(text):
    """Every command line of both kinds: block lines (continuations joined) and
    inline `python -m tools...` / `make ...` spans."""
    lines = []
    for block in command_blocks(text):
        held = ""
        for ln in block:
            if ln.endswith("\\"):
                held += ln[:-1] + " "
            else:
                lines.append(held + ln)
                held = ""
    lines.extend(re.findall(r"`((?:\.venv/bin/)?python3? (?:-m tools\.|tools/)[^`]*|make [a-z][^`]*)`", text))
    return lines


def segments(line):
    for part in re.split(r"\s*(?:\|\||&&|\||;)\s*", line):
        try:
            words = shlex.split(part)
        except ValueError as e:
            raise AssertionError("cannot parse %r: %s" % (part, e)) from None
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words.pop(0)  # VAR=value before a command
        if words:
            yield words


def check_command(words):
    """Problems with one command, as short strings."""
    bad = []
    for w in words:
        if REPO_PATH.match(w) and "<" not in w and not (ROOT / w).exists():
            bad.append("no file %s" % w)
    if words[0] == "make":
        bad += ["no make target %r" % t for t in words[1:] if not t.startswith("-") and t not in make_targets()]
    if words[0] not in PYTHONS or len(words) < 2:
        return bad
    if words[1] == "-m" and len(words) > 2 and words[2].startswith("tools."):
        module, rest = words[2], words[3:]
        if importlib.util.find_spec(module) is None:
            return bad + ["no module %s" % module]
        argv = ["-m", module]
        if module == "tools.dev" and rest:
            if rest[0] not in dev_commands():
                return bad + ["tools.dev has no command %r" % rest[0]]
            argv.append(rest[0])
        if module == "tools.bench":
            from tools.bench.__main__ import BENCHES, LONG

            if rest and rest[0] in LONG:  # `soak --quick`: the rest are that benchmark's own options
                return bad + check_command(words[:1] + [BENCHES[rest[0]][1]] + rest[1:])
            names = help_text(*argv).split("benchmarks:")[1]
            bad += ["tools.bench has no benchmark %r" % n for n in rest
                    if not n.startswith("-") and not re.search(r"^  %s\s" % re.escape(n), names, re.M)]
    elif words[1].endswith(".py"):
        argv, rest = [words[1]], words[2:]
    else:
        return bad
    helptext = help_text(*argv)
    for w in rest:
        if w.startswith("--") and not has_flag(w.split("=")[0], helptext):
            bad.append("%s has no flag %s" % (" ".join(argv[-2:] if argv[0] == "-m" else argv), w.split("=")[0]))
    return bad


def test_every_command_in_the_readmes_names_real_modules_targets_flags_and_files():
    bad = []
    for path in (EN, ZH):
        for line in shell_lines(read(path)):
            for words in segments(line):
                bad += ["%s: `%s`: %s" % (path.name, " ".join(words), b) for b in check_command(words)]
    assert not bad, "\n".join(sorted(set(bad)))


def sections(text):
    """[(tool or None, section text)]: a heading that names `python -m tools.X`
    sets the tool for its section and its subsections."""
    out, stack = [], []  # stack of (level, tool)
    for chunk in re.split(r"(?m)^(?=#{1,6} )", text):
        m = re.match(r"(#+) (.*)", chunk)
        if not m:
            continue
        level, title = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= level:
            stack.pop()
        named = TOOL.search(title)
        tool = named.group(1) if named else (stack[-1][1] if stack else None)
        stack.append((level, tool))
        out.append((tool, chunk))
    return out


def tool_help(tool):
    if tool == "tools.dev":
        return "\n".join(help_text("-m", tool, c) for c in dev_commands())
    return help_text("-m", tool)


def test_every_flag_in_a_tools_section_is_in_that_tools_help():
    bad = []
    for path in (EN, ZH):
        seen = set()
        for tool, chunk in sections(read(path)):
            if tool is None:
                continue
            seen.add(tool)
            for span in re.findall(r"`([^`]+)`", chunk):
                if TOOL.search(span) and TOOL.search(span).group(1) != tool:
                    continue  # a command of another tool, checked as a command
                bad += ["%s: %s section: %s is not in its --help" % (path.name, tool, f)
                        for f in FLAG.findall(span) if not has_flag(f, tool_help(tool))]
        assert {"tools.sim", "tools.gateway", "tools.dev", "tools.mock_server"} <= seen, (path.name, seen)
    assert not bad, "\n".join(sorted(set(bad)))


# --- the configuration table is the firmware's ------------------------------

CONFIG_SCRIPT = """
import json
from firmware import config_schema as s
print("J " + json.dumps({"defaults": s.DEFAULTS, "ranges": s.RANGES, "choices": s.CHOICES}))
"""


def firmware_config():
    """DEFAULTS, ranges and choices of firmware/config_schema.py, read by micropython
    (the module needs the MicroPython time functions)."""
    p = subprocess.run([upy.micropython_binary(), "-c", CONFIG_SCRIPT], cwd=ROOT, env=upy.env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return upy.json_lines(p.stdout.splitlines())[0]


def config_rows(text, heading):
    """{key: (default cell, allowed cell)} from the table under the heading."""
    section = text.split("\n## " + heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        for key in re.findall(r"`(\w+)`", cells[0]):
            rows[key] = (cells[1], cells[2])
    return rows


def values(cell):
    return [json.loads(v) for v in re.findall(r"`([^`]+)`", cell)]


def test_the_config_tables_list_every_key_with_its_default_and_range():
    cfg = firmware_config()
    defaults, ranges, choices = cfg["defaults"], cfg["ranges"], cfg["choices"]
    for path, heading in ((EN, "Configuration keys"), (ZH, "配置项")):
        rows = config_rows(read(path), heading)
        assert sorted(rows) == sorted(defaults), (path.name, set(rows) ^ set(defaults))
        bad = []
        for key, (default, allowed) in rows.items():
            if key == "client_id":
                continue  # made on first boot; the table says so
            shown = values(default) or [json.loads(default)]
            if shown != [defaults[key]]:
                bad.append("%s default %s, firmware %r" % (key, default, defaults[key]))
            if key in ranges and "%d–%d" % tuple(ranges[key]) not in allowed:
                bad.append("%s range %r, firmware %d–%d" % (key, allowed, *ranges[key]))
            if key in choices:
                listed = re.findall(r"`([^`]+)`", allowed) or re.findall(r"\d+", allowed)
                if sorted(map(str, choices[key])) != sorted(listed):
                    bad.append("%s allowed %r, firmware %r" % (key, allowed, choices[key]))
        assert not bad, "%s: %s" % (path.name, "; ".join(bad))


def test_every_gateway_and_sim_flag_is_in_both_readmes():
    for tool in ("tools.gateway", "tools.sim"):
        flags = set(FLAG.findall(help_text("-m", tool))) - {"--help"}
        for path in (EN, ZH):
            text = "\n".join(chunk for t, chunk in sections(read(path)) if t == tool)
            missing = sorted(f for f in flags if not has_flag(f, text))
            assert not missing, "%s: the %s section does not show %s" % (path.name, tool, ", ".join(missing))


# --- the wiring tables are the board profiles' ------------------------------

# The rows of a wiring table, in order, and the profile constants of each.
WIRING = (("MIC_SCK", "MIC_WS", "MIC_SD"), ("SPK_SCK", "SPK_WS", "SPK_SD"), ("BUTTON_PIN",), ("LED_PIN",),
          ("LAMP_PIN",), ("DISPLAY_SDA", "DISPLAY_SCL"))


def profile_pins(board):
    """The integer constants of firmware/boards/<board>.py, read without importing it."""
    tree = ast.parse((ROOT / "firmware" / "boards" / (board + ".py")).read_text())
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)}


def wiring_rows(text, board):
    section = re.split(r"(?m)^### `%s`" % board, text)[1]
    section = re.split(r"(?m)^#{2,3} ", section)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("|--")]
    return [[int(n) for n in re.findall(r"\d+", ln.rstrip(" |").rsplit("|", 1)[1])] for ln in rows[1:]]


def test_the_wiring_tables_are_the_board_profiles():
    for board in ("bread_compact_s3", "bread_compact_esp32"):
        pins = profile_pins(board)
        want = [[pins[name] for name in row] for row in WIRING]
        for path in (EN, ZH):
            assert wiring_rows(read(path), board) == want, (path.name, board)
