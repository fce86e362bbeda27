"""sslscope: train joint-embedding SSL models and see how they learn."""
