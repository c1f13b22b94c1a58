"""The README a newcomer reads to the end, and docs/ for the rest: every relative link resolves to
a file and a heading, the README stays short, its first block is the two commands, each doc says
who it is for."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
README_MAX_LINES = 260
# The guide's promised set: deploy, guarantees, operating it, performance, development.
EXPECTED_DOCS = {"deploy.md", "guarantees.md", "operating.md", "performance.md", "development.md"}

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `#` there is a shell comment, not a heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces as dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6} (.+)$", line)
        if not match:
            continue
        base = anchor(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    links = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not ours
                links.append(target)
    return links


def test_the_docs_are_the_five_the_readme_promises():
    assert {doc.name for doc in DOCS} == EXPECTED_DOCS


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves_to_a_file_and_heading(path):
    broken = []
    for target in relative_links(path):
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(REPO)}")
    assert not broken, f"{path.name} has broken links:\n" + "\n".join(broken)


def test_the_readme_links_every_doc():
    targets = {target.partition("#")[0] for target in relative_links(README)}
    assert {f"docs/{name}" for name in EXPECTED_DOCS} <= targets


def test_the_readme_stays_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (limit {README_MAX_LINES})"


def test_the_readmes_first_block_is_the_two_commands_and_they_exist():
    text = README.read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first and text.index(first.group(0)) < text.index("\n## "), "the commands come before any section"
    commands = [line.split("#", 1)[0].strip() for line in first.group(1).splitlines() if line.strip()]
    assert commands == ["bash scripts/local-run.sh", "bash scripts/test.sh"]
    for command in commands:
        assert (REPO / command.split()[1]).is_file(), command
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text(), "CI runs the README's test command"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_each_doc_starts_by_saying_who_it_is_for(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "a title first"
    assert lines[2].startswith("For "), f"{path.name}: the line after the title says who it is for"


# The bot scopes each Slack Web API method this project calls needs (Slack's method pages;
# auth.test needs none). conversations.info: channels:read for a public channel, groups:read
# for a private one the bot was invited to.
SLACK_SCOPES = {"auth_test": set(), "chat_postMessage": {"chat:write"}, "chat_update": {"chat:write"},
                "users_info": {"users:read"}, "conversations_info": {"channels:read", "groups:read"}}


def manifest_bot_scopes(text: str) -> set[str]:
    """The `oauth_config.scopes.bot` list of slack/manifest.yaml (block style, as it is written)."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "bot:")
    scopes = set()
    for line in lines[at + 1:]:
        if not line.strip().startswith("- "):
            break
        scopes.add(line.strip()[2:].strip())
    return scopes


def test_the_slack_manifest_grants_every_scope_the_code_calls_for():
    """A newcomer's app is made from slack/manifest.yaml alone: every Slack method lib/ calls
    (the sync, slack_actions and `python -m lib check`) must work with its scopes, or the
    check's Slack lines WARN on a fresh set-up."""
    from slack_sdk import WebClient

    methods = {m for m in dir(WebClient) if not m.startswith("_") and callable(getattr(WebClient, m))}
    code = "\n".join(p.read_text() for p in (REPO / "lib").rglob("*.py"))
    called = {m for m in methods if re.search(rf"\.{m}\(", code)} - {"api_call"}
    assert called and called <= SLACK_SCOPES.keys(), f"a Slack method without its scope here: {called - SLACK_SCOPES.keys()}"
    needed = set().union(*(SLACK_SCOPES[m] for m in called))
    assert manifest_bot_scopes((REPO / "slack" / "manifest.yaml").read_text()) == needed
