"""Guards on the private parts of the drivers we use: each fails loudly when an upgrade removes one."""
