"""Resources: where HOME is, configurable per deployment and per test."""

from __future__ import annotations

from dagster import ConfigurableResource

from npr_pipeline.home import Home


class HomeResource(ConfigurableResource):
    """HOME for every asset; empty means NPR_HOME or data/home, as for the CLI."""

    root: str = ""

    def home(self) -> Home:
        """The resolved, existing HOME."""
        return Home.resolve(self.root or None).ensure()
