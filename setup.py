"""The one native part of the package: intake's validating, extracting reader over libxml2
(``npr_pipeline/intake/native``, docs/decisions/extraction.md). Everything else is in
pyproject.toml; setuptools reads both. Built by ``make`` (``pip install -e .``) with the
system's libxml2 (``xml2-config``: libxml2-dev), no network."""

import shlex
import subprocess

from setuptools import Extension, setup


def _xml2(flag: str) -> list[str]:
    return shlex.split(
        subprocess.run(["xml2-config", flag], check=True, capture_output=True, text=True).stdout
    )


_cflags, _libs = _xml2("--cflags"), _xml2("--libs")
setup(
    ext_modules=[
        Extension(
            "npr_pipeline.intake.native._native",
            sources=["npr_pipeline/intake/native/_native.c"],
            include_dirs=[f[2:] for f in _cflags if f.startswith("-I")],
            library_dirs=[f[2:] for f in _libs if f.startswith("-L")],
            libraries=[f[2:] for f in _libs if f.startswith("-l")],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
