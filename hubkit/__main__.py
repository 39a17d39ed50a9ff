from hubkit.cli.main import main

main()
