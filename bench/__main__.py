"""`python -m bench`: run every benchmark and print its table."""

from bench import dp_step

if __name__ == "__main__":
    dp_step.main()
