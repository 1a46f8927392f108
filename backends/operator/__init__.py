"""Neural operators: data sets from our solvers, FNO/TFNO (neuraloperator), LSM, trainer, Spectral-Refiner.

Conventions follow the neuraloperator library: tensors are (batch, channels, *spatial); losses are relative;
inputs and outputs are normalised channel-wise to unit Gaussian. Nothing here imports Qt.
"""
