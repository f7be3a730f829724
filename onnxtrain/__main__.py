"""`python -m onnxtrain`: the same command line as the `onnxtrain` console script."""

from onnxtrain.cli import main

raise SystemExit(main())
