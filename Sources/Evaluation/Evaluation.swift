// Module Evaluation: see ../shared/DESIGN.md, "Package layout", for what it owns.
