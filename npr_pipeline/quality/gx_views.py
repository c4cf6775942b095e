"""GX Data Docs views that compile their Jinja templates once per process.

GX makes its page views anew for every Data Docs build, each with a Jinja environment of its
own, so every build compiled its ~50 templates again: about a third of the build, and a
period's checks build the docs once per run. These views keep GX's templates, filters and
output and only share the compiled code (Jinja's bytecode cache, in memory), keyed by
template name and source checksum as Jinja does it, so a changed template compiles afresh.
"""

from __future__ import annotations

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates of this process, by Jinja's bucket key (name and source checksum)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _MemoryBytecodeCache()

VIEWS_MODULE = __name__


class PageView(DefaultJinjaPageView):
    """GX's page view (suites, validation results), its templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED


class IndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, its templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED
