"""What the command-line tools share: a ``--help`` that states each option's default once."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, unless there is no default to state (None, an
    off switch, an empty list) or the help text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        stated = "(default" in text or "default:" in text
        if action.default is None or action.default is False or action.default == [] or stated:
            return text
        return super()._get_help_string(action)
