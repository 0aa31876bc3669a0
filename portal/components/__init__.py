"""Stateless pieces shared by pages: they take plain values or vars, and do no I/O."""
