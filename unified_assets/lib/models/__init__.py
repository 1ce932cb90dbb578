"""models layer: model specs, training, evaluation and the calendar backtest."""
