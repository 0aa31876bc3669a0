"""Payments: the pure rules of money in and out (rules.py); provider adapters come beside them."""
