from acauth.cli import main

main()
