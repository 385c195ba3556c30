"""Selection strategies: one family, one interface, a registry by name."""
