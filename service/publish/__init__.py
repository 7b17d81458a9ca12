"""Publish a loaded dataset: swap its staging tables in for the live ones, in one transaction.

- :mod:`~service.publish.swap`: the renames, and dropping what a swap retired;
- :mod:`~service.publish.dependents`: users' views carried over to the new tables, and
  whatever can't be, named before anything changes.
"""
