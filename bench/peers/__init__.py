"""Servers the bench compares against; each is started as its own process."""
