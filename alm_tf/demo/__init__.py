"""The demo: an application on top of the library (synthetic data to exported
model, pictures and figures)."""
