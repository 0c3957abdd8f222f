"""Compatibility with Hopsworks serving scripts: ``from hops import hdfs``. Found only when the real hops
library is not installed (this directory is last on sys.path)."""
