#!/usr/bin/env python3
import sys
print("SKIP: maildiag-selfcheck is not written yet")
sys.exit(77)
