"""Each front end over loopback HTTP against the test server: magics/, api/, panel/, store/."""
