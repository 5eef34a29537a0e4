"""What a manifest records about the software that produced a run."""

from __future__ import annotations

import importlib.metadata
import platform

PACKAGES = ("emodistill-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "transformers",
            "openai")


def package_versions() -> dict[str, str | None]:
  out: dict[str, str | None] = {"python": platform.python_version()}
  for name in PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out
