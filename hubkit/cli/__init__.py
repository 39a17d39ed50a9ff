"""The `hubkit` command line: one module per noun, each thin (parse, call the stage, print)."""
