"""allocator control plane: the thin Python layer around the database."""

__version__ = "0.1.0"
