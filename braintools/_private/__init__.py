"""Plumbing the lessons do not teach: atomic writes, locks and process pools, distributed set-up, the command line's
commands. Nothing here is imported by a notebook; the public modules call it."""
