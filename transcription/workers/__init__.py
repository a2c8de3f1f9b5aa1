"""Inference workers: the Redis registry of live workers and the runtime inside each one."""
