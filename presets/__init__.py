"""blendfx's factory presets: hand-editable TOML files, one chain each."""
