"""What the documentation tests read in the Markdown files: links, headings, code spans and the
commands of code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.serve import ROOT

DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text()), re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def code_spans(path: Path) -> list[str]:
    return CODE_SPAN.findall(prose(path.read_text()))


@dataclass(frozen=True)
class Command:
    document: Path
    text: str
    session: bool  # typed after a `$ ` prompt, with its output below it


def commands(path: Path) -> list[Command]:
    """Every command of the document's ``sh`` blocks, continuation lines joined, comments cut.
    In a block with `$ ` prompts only the prompted lines are commands; the rest is output."""
    found = []
    for language, body in FENCE.findall(path.read_text()):
        if language != "sh":
            continue
        lines = body.splitlines()
        session = any(line.startswith("$ ") for line in lines)
        current = ""
        for line in lines:
            if session and not current:
                if not line.startswith("$ ") or line.startswith("$ #"):
                    continue
                line = line[2:]
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            current += line.strip() if current else line
            if current.endswith("\\"):
                current = current[:-1].rstrip() + " "
                continue
            found.append(Command(path, uncomment(current), session))
            current = ""
    return found


def uncomment(line: str) -> str:
    """The command without a trailing `# comment` (one outside quotes, after a space)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index and line[index - 1] == " ":
            return line[:index].rstrip()
    return line.rstrip()


@dataclass(frozen=True)
class Step:
    command: str
    output: list[str]


def sessions(path: Path) -> list[list[Step]]:
    """The ``sh`` blocks written as terminal sessions: each `$ ` command with the lines it
    printed (`$ #` lines are remarks)."""
    found = []
    for language, body in FENCE.findall(path.read_text()):
        lines = body.splitlines()
        if language != "sh" or not any(line.startswith("$ ") for line in lines):
            continue
        steps: list[Step] = []
        pending = ""
        for line in lines:
            if pending:
                pending += " " + line.strip()
            elif line.startswith("$ #"):
                continue
            elif line.startswith("$ "):
                pending = line[2:]
            else:
                steps[-1].output.append(line)
                continue
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            steps.append(Step(pending, []))
            pending = ""
        found.append(steps)
    return found
