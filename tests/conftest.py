"""Shared by every test folder: this folder is on sys.path, so `import dbt_runner` works."""
