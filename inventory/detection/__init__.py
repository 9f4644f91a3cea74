"""Detection: a registry of detectors, each a set-based query over the inventory, and the scan that runs them."""
