"""govfn's version, in a module of its own so that any module can name it without
importing the package's top level (and, through it, the SDK's names)."""

__version__ = "0.1.0"
