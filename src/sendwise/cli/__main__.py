from sendwise.cli.app import main

main()
