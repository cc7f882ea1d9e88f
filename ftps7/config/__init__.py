"""Configuration: the IIS-shaped XML file, loaded once into frozen objects (``model``).

``load_config(path)`` returns a `ServerConfig` or raises `ConfigErrors` listing
every problem in the file; see docs/configuration.md for the format.
"""

from __future__ import annotations

from ftps7.config.errors import ConfigError, ConfigErrors
from ftps7.config.loader import load_config

__all__ = ["ConfigError", "ConfigErrors", "load_config"]
