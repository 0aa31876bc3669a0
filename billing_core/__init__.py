"""Tollgate's billing core: pure metering math beside thin database adapters."""
