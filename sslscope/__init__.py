"""sslscope: train joint-embedding SSL models and see how they learn."""

__version__ = "0.1.0"
