"""Reduced-order recurrent models (RNN / LSTM / GRU) of the connectome simulation."""
