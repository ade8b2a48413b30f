"""The package's version: shown by every command's --version, recorded in every trained bundle."""
VERSION = "1.2.0"
