"""``python -m consul_streams.cli``: the same as the ``consul-streams`` script."""

from consul_streams.cli import main

raise SystemExit(main())
