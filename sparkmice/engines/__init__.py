"""Engines move blocks and sums; the statistics live in `sparkmice.kernels` and the chain
logic in `sparkmice.sampler`. `inprocess` runs on pandas in this process; `barrier` runs a
whole chain as one Spark barrier job; `perstep` runs one Spark job per exchange."""
