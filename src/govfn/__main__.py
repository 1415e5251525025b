from govfn.cli import main

main()
