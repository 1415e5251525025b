"""Doubles and helpers shared by the tests: real servers on loopback, sample functions, sinks."""
