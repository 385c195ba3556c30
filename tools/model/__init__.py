"""The model: encoders, heads, uncertainty measures and the metrics that evaluate them."""
