from scanner.cli import main

if __name__ == "__main__":  # not when a spawned worker process (Dask) imports it as __mp_main__
    main()
