import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(ROOT)), "examples")
sys.path.insert(0, ROOT)
