"""What training and inference both stand on: the config, the checkpoint format, the device and memory checks,
and files written whole (atomically). Loading a model to use it goes through here, never through ``training``."""
