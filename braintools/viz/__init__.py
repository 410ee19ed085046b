"""Figures (notebooks 02-08), every one built without pyplot: slices, montages, GIFs and three-plane views in the
radiological convention (``slices``, ``orientation``), charts of numbers (``charts``), evaluation figures
(``evaluation``) and the interactive slice viewer (``widgets``).
"""
