#!/usr/bin/env python3
"""Copy the first ```c code block of README.md into a .c file.

Used by tools/meson.build so that the README's usage example is compiled
and run as a test: the README cannot drift away from the API.
Usage: extract-readme-example.py README.md OUT.c
"""
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    readme, out = sys.argv[1], sys.argv[2]
    block, inside = [], False
    with open(readme, encoding="utf-8") as f:
        for line in f:
            if not inside and line.strip() == "```c":
                inside = True
            elif inside and line.strip() == "```":
                break
            elif inside:
                block.append(line)
    if not block:
        print(f"{readme}: no ```c block found", file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"/* generated from {readme} by extract-readme-example.py */\n")
        f.writelines(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
