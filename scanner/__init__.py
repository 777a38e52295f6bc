"""layerscan: find secrets baked into container images."""

__version__ = "0.1.0"
