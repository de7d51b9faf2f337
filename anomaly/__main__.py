from anomaly.cli import main

main()
