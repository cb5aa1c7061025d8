"""Package layout that pyproject.toml cannot express alone: the top-level
``cli/`` folder installs as ``hwnas.cli`` (no top-level ``cli`` module lands in
site-packages) and the data folders ship inside the package as
``hwnas/shipped/{devices,profiles,predictors}``."""

from setuptools import find_packages, setup

DATA = ("devices", "profiles", "predictors")

setup(
    packages=find_packages(include=["hwnas", "hwnas.*"]) + ["hwnas.cli"]
    + [f"hwnas.shipped.{d}" for d in DATA],
    package_dir={"hwnas.cli": "cli", **{f"hwnas.shipped.{d}": d for d in DATA}},
    package_data={**{f"hwnas.shipped.{d}": ["*", "**/*"] for d in DATA},
                  "hwnas.data": ["words/*.txt"],
                  "hwnas.adapters.reference": ["*.tflite"]},
    include_package_data=False,
)
