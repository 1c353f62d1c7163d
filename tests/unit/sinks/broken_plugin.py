"""A sink plug-in that fails while it loads (for the registry's tests)."""

raise RuntimeError("this plug-in is broken")
