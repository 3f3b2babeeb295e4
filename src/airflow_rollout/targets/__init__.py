"""Target kinds: the contract (`base`), the registry of kinds (`registry`), and one module per built-in kind."""
