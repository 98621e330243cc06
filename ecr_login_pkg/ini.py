"""Read INI text (ecr-login.conf, the AWS CLI's config file) with the line of every section and key.

``configparser`` was a fifth of the work a run with nothing due does (2 ms to import)
and reports a line number for only some of its errors. This reader keeps the two
dialects ecr-login used it in, and records where each section and key was written,
for error messages. Both: no interpolation, no default section, ``=`` or ``:``,
full-line ``#``/``;`` comments, keys lower-cased, indented continuation lines, lines
split on newlines only. ecr-login.conf (strict): a section or key given twice is an
error, a blank or comment line ends a multi-line value, nothing but a comment may
follow ``[section]``. The AWS CLI's files (lenient, configparser's defaults as
botocore reads them): a repeated section continues the first, the last value of a
key wins, a blank line inside a multi-line value is kept and a comment skipped.
"""

from __future__ import annotations

from .records import record


class IniError(ValueError):
    """Text that is not INI: ``line`` is where, ``problem`` says what to change."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@record
class Section:
    """One ``[name]`` and its keys, each with the line it is set on."""

    name: str
    line: int
    values: dict[str, str]
    lines: dict[str, int]


def parse(text: str, *, strict: bool = True) -> dict[str, Section]:
    """The sections of ``text`` in order of appearance, read strictly (ecr-login.conf, where
    a repeated key would silently lose one of the two) or leniently (the AWS CLI's files)."""
    sections: dict[str, Section] = {}
    current: Section | None = None
    key: str | None = None  # the key whose value an indented line continues
    key_indent = 0
    parts: list[str] = []

    def finish_value() -> None:
        if current is not None and key is not None:
            current.values[key] = "\n".join(parts).rstrip()

    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            if strict:
                finish_value()
                key = None  # a blank line or a comment ends a multi-line value
            elif key is not None and not stripped:
                parts.append("")  # kept inside the value; trailing ones are trimmed at its end
            continue
        indent = len(line) - len(line.lstrip())
        if key is not None and indent > key_indent:
            parts.append(stripped)
            continue
        finish_value()
        key, key_indent = None, indent
        if stripped.startswith("["):
            current = _section(sections, stripped, number, strict)
            continue
        if current is None:
            raise IniError(number, "a key appears before any [section] (start with [defaults])")
        cut = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
        name = stripped[:cut].strip().lower()
        if cut < 0 or not name:
            raise IniError(number, "not 'key = value' or '[section]' syntax")
        if strict and name in current.values:
            raise IniError(number, f"[{current.name}] {name} is set twice (keep one)")
        key, parts = name, [stripped[cut + 1:].strip()]
        current.lines[name] = number
    finish_value()
    return sections


def _section(sections: dict[str, Section], stripped: str, number: int, strict: bool) -> Section:
    end = stripped.rfind("]")
    name = stripped[1:end].strip()
    rest = stripped[end + 1:].lstrip()
    if end < 0 or not name or (strict and rest and rest[0] not in "#;"):
        raise IniError(number, "not 'key = value' or '[section]' syntax")
    if name in sections:
        if strict:
            raise IniError(number, f"[{name}] appears twice (merge the two sections)")
        return sections[name]
    sections[name] = Section(name=name, line=number, values={}, lines={})
    return sections[name]
