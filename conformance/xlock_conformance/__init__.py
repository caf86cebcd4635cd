"""The xlock/1 conformance suite: runs bindings' drivers (see PROTOCOL.md) against one another."""

__version__ = "0.1.0"
