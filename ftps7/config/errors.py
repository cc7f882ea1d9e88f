"""What the configuration loader reports: errors that stop the load, warnings that do not.

Every problem names the file, the line, the element path (IIS-style, with the
key of collection entries: ``site[@name='Default FTP Site']``), the attribute
and value when there is one, and what would have been accepted, so that an
administrator can fix the file without reading code. The loader collects all
problems before giving up (buildbot's ``ConfigErrors`` habit): one run of
``ftps7 config check`` shows everything that is wrong, not just the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigError:
    """One problem in the configuration file (also used for warnings)."""

    file: str
    line: int  # 0 when the problem is not tied to a line (e.g. unreadable file)
    element: str  # "configuration/system.applicationHost/sites/site[@name='X']/ftpServer"
    attribute: str | None
    value: str | None
    message: str
    accepted: tuple[str, ...] | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:" if self.line > 0 else f"{self.file}:"
        if self.element:
            text += f" <{self.element}>"
        if self.attribute is not None:
            text += f" attribute {self.attribute}"
        text += (":" if self.element or self.attribute is not None else "") + f" {self.message}"
        if self.accepted:
            text += "; accepted: " + ", ".join(self.accepted)
        return text


class ConfigErrors(Exception):  # noqa: N818 - the name other modules import
    """The configuration cannot be used; ``errors`` holds every problem found."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: list[ConfigError] = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class Problems:
    """The loader's sink for errors and warnings of one file.

    Kept separate from the exception so that every stage can keep going after a
    problem and the caller decides at the end whether to raise.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []

    def error(
        self,
        line: int,
        element: str,
        message: str,
        *,
        attribute: str | None = None,
        value: str | None = None,
        accepted: Iterable[str] | None = None,
    ) -> None:
        self.errors.append(
            ConfigError(
                self.file,
                line,
                element,
                attribute,
                value,
                message,
                tuple(accepted) if accepted is not None else None,
            )
        )

    def warn(
        self,
        line: int,
        element: str,
        message: str,
        *,
        attribute: str | None = None,
        value: str | None = None,
    ) -> None:
        self.warnings.append(ConfigError(self.file, line, element, attribute, value, message, None))

    def raise_if_any(self) -> None:
        """Raise `ConfigErrors` with every error, in file order, if there is one."""
        if self.errors:
            raise ConfigErrors(sorted(self.errors, key=lambda error: error.line))

    def warning_texts(self) -> tuple[str, ...]:
        """The warnings as the strings that ``ServerConfig.warnings`` holds, in file order."""
        seen: set[str] = set()
        texts: list[str] = []
        for warning in sorted(self.warnings, key=lambda warning: warning.line):
            text = str(warning)
            if text not in seen:
                seen.add(text)
                texts.append(text)
        return tuple(texts)
