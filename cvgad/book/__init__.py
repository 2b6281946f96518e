"""What the book's chapters use beside the library: widgets, exercises, the architecture diagram,
the latent-space measures and the results at a glance. Built on `cvgad.workbench`."""
