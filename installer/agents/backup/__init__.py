"""The backup agent: nightly verified database dumps, rotation, restore."""
