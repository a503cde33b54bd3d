"""``python -m rl_coordconv`` is ``python -m rl_coordconv.train``."""

from rl_coordconv.train import main

raise SystemExit(main())
