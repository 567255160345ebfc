"""ml_collections configs (`configs/<name>.py` with `get_config(arg=None)`), added with training."""
