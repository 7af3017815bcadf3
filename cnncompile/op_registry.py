"""The op table: op name -> Op instance, filled by cnncompile.ops as its modules load.

It sits below both the graph and the ops, so that Graph.lint() and Graph.summary() can read
it: every op imports ir.py, so ir.py may not import the ops.
"""
REGISTRY = {}
