from xrayclient.cli import main

raise SystemExit(main())
