"""Reading inputs and writing the imputed long table (Parquet, or Delta in `delta`)."""
