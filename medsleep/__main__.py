from medsleep.cli import main

main()
