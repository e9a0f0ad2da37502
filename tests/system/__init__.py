"""Real kernels (nbclient, jupyter_client): the example notebooks, history across kernels, interrupts."""
