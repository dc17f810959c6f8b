"""Code that runs in the pods dynoline spawns: simulator, sentinel and the shared store layer."""

__version__ = "0.1.0"
